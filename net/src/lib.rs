//! Kelp's Kafka wire layer: framing, request headers, codecs and connection I/O on glommio.
//!
//! No broker logic lives here; the broker plugs in through
//! [`connection::RequestHandler`].
//!
//! # Layout
//!
//! - [`frame`]: the 4-byte size prefix, checked against the frame limit before anything is buffered.
//! - [`header`]: request headers; unknown API keys still give their correlation id.
//! - [`versions`]: API version ranges and the KIP-511 ApiVersions fallback response.
//! - [`codec`]: request bodies in and framed responses out, on the `kafka-protocol` crate
//!   (vendored with a decoder allocation fix, see `vendor/kafka-protocol/KELP-PATCH.md`).
//! - [`connection`]: one connection's loop: pipelined handling, responses in request order.
//! - [`shared_stream`]: one stream read and written by two tasks of a thread.
//! - [`signal`]: a single-threaded change notification with generations.
//! - [`shutdown`]: the stop signal connections watch to drain and close.
//!
//! # Fuzzing
//!
//! `net/fuzz` holds a cargo-fuzz target that runs framing, header parsing and
//! body decoding on arbitrary bytes. It needs a nightly toolchain:
//! `cd net && cargo +nightly fuzz run decode_request`.

pub mod codec;
pub mod connection;
pub mod frame;
pub mod header;
pub mod shared_stream;
pub mod shutdown;
pub mod signal;
pub mod versions;

pub use codec::{
    decode_request, encode_response, encode_response_message, DecodeError, EncodeError,
};
pub use connection::{
    serve, serve_stream, ConnectionError, ConnectionLimits, HandlerOutcome, RequestHandler,
};
pub use frame::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use header::{parse_request, HeaderError, RequestHeader};
pub use shutdown::Shutdown;
pub use versions::{encode_api_versions_fallback, ApiRange};
