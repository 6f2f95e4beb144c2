//! Arbitrary bytes through framing, header parsing and body decoding, as a connection reads them.
//!
//! Run from `net/`: `cargo +nightly fuzz run decode_request`. Any panic, abort
//! or out-of-memory is a bug: hostile input must only ever produce errors.

#![no_main]

use kelp_net::{decode_request, parse_request, FrameDecoder};
use libfuzzer_sys::fuzz_target;

/// Small enough that libFuzzer's inputs reach the decoder; the checks do not depend on it.
const MAX_FRAME_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    decoder.extend(data);
    while let Ok(Some(frame)) = decoder.next_frame() {
        if let Ok((header, body)) = parse_request(frame) {
            let _ = decode_request(&header, body);
        }
    }
});
