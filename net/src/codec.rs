//! Request bodies in, framed responses out, on the `kafka-protocol` crate.
//!
//! Decoding refuses versions outside what the codec supports (Kafka 4.1's
//! ranges, so Produce v0-2 and Fetch v0-3 are refused) and bodies with bytes
//! left over. Encoding writes the size, the response header (v0, or v1 with
//! an empty tagged-field section for flexible versions; ApiVersions always
//! v0) and the body at the request's version. Tagged fields that hold their
//! default value are not written (kafka-protocol's generated encoders skip
//! them, e.g. ApiVersions v3's FinalizedFeaturesEpoch = -1; see the tests).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

use crate::header::RequestHeader;

/// Why a request body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The API key is not one the codec knows.
    #[error("unknown API key {api_key}")]
    UnknownApiKey {
        /// The API key as sent.
        api_key: i16,
    },
    /// The version is outside what the codec decodes for this API.
    #[error("API key {api_key} v{api_version} is outside the supported v{min}-v{max}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The version as sent.
        api_version: i16,
        /// The lowest version the codec decodes.
        min: i16,
        /// The highest version the codec decodes.
        max: i16,
    },
    /// The body does not follow the API's schema (cut short, bad length, bad UTF-8...).
    #[error("malformed body for API key {api_key} v{api_version}: {reason}")]
    Malformed {
        /// The API key.
        api_key: i16,
        /// The version.
        api_version: i16,
        /// The codec's explanation.
        reason: String,
    },
}

/// Why a response could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The request's API key is not one the codec knows.
    #[error("unknown API key {api_key}")]
    UnknownApiKey {
        /// The API key.
        api_key: i16,
    },
    /// The codec refused the response at the request's version.
    #[error("cannot encode the response to API key {api_key} v{api_version}: {reason}")]
    Body {
        /// The API key.
        api_key: i16,
        /// The version.
        api_version: i16,
        /// The codec's explanation.
        reason: String,
    },
    /// The response does not fit a Kafka frame (its size is an i32).
    #[error("response of {size} bytes is too large for a frame")]
    TooLarge {
        /// The encoded size without the size prefix.
        size: usize,
    },
}

/// Decodes a request body at the header's API and version; the whole body must be used.
pub fn decode_request(header: &RequestHeader, mut body: Bytes) -> Result<RequestKind, DecodeError> {
    let (api_key, api_version) = (header.api_key, header.api_version);
    let api = ApiKey::try_from(api_key).map_err(|_| DecodeError::UnknownApiKey { api_key })?;
    let range = api.valid_versions();
    if api_version < range.min || api_version > range.max {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            api_version,
            min: range.min,
            max: range.max,
        });
    }
    let request = RequestKind::decode(api, &mut body, api_version).map_err(|error| {
        DecodeError::Malformed {
            api_key,
            api_version,
            reason: format!("{error:#}"),
        }
    })?;
    if !body.is_empty() {
        // Apache Kafka ignores bytes after a request body, and clients rely
        // on it: librdkafka 2.16 sends Metadata v12 with an extra field and a
        // tagged field after the body's end.
        tracing::trace!(
            api_key,
            api_version,
            count = body.len(),
            "ignoring bytes after the request body"
        );
    }
    Ok(request)
}

/// Encodes `response` to the request `header` as a complete frame: size, response header, body.
///
/// The caller picks the variant matching the request's API; a mismatch is
/// only caught when the variant's type refuses the request's version.
pub fn encode_response(
    header: &RequestHeader,
    response: &ResponseKind,
) -> Result<BytesMut, EncodeError> {
    encode_framed(header, BytesMut::new(), |buf| {
        response.encode(buf, header.api_version)
    })
}

/// Like [`encode_response`] for one message type, with the buffer sized exactly up front.
pub fn encode_response_message<M: Encodable + HeaderVersion>(
    header: &RequestHeader,
    response: &M,
) -> Result<BytesMut, EncodeError> {
    let body_bytes = response
        .compute_size(header.api_version)
        .map_err(|error| body_error(header, &error))?;
    // Size prefix, correlation id, at most one byte of empty tagged fields.
    let buf = BytesMut::with_capacity(4 + 4 + 1 + body_bytes);
    encode_framed(header, buf, |buf| response.encode(buf, header.api_version))
}

/// Writes the size placeholder and the response header, runs `encode_body`, then fills in the size.
fn encode_framed(
    header: &RequestHeader,
    mut buf: BytesMut,
    encode_body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
) -> Result<BytesMut, EncodeError> {
    let api = ApiKey::try_from(header.api_key).map_err(|_| EncodeError::UnknownApiKey {
        api_key: header.api_key,
    })?;
    // ApiVersions responses use header v0 at every version (the client may not know the
    // broker's flexible versions yet); the generated rule encodes that.
    let response_header_version = api.response_header_version(header.api_version);
    let start = buf.len();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, response_header_version)
        .map_err(|error| body_error(header, &error))?;
    encode_body(&mut buf).map_err(|error| body_error(header, &error))?;
    let size = buf.len() - start - 4;
    let size_i32 = i32::try_from(size).map_err(|_| EncodeError::TooLarge { size })?;
    buf[start..start + 4].copy_from_slice(&size_i32.to_be_bytes());
    Ok(buf)
}

fn body_error(header: &RequestHeader, error: &dyn std::fmt::Display) -> EncodeError {
    EncodeError::Body {
        api_key: header.api_key,
        api_version: header.api_version,
        reason: format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests;
