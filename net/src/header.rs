//! Request headers: API key, version, correlation id and client id in front of every request.
//!
//! Header v1 is `api_key: i16, api_version: i16, correlation_id: i32,
//! client_id: nullable string`; v2 (flexible APIs) adds tagged fields. The
//! header version follows from the API key and version, so an unknown API key
//! can only be read up to its correlation id: that is returned in the error, so
//! the broker can still answer or log it. Versions outside what the codec
//! supports are not refused here but in [`crate::codec::decode_request`]: the
//! header of every known API parses the same way at any version.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

/// Bytes of the fixed part every request header starts with (key, version, correlation id).
pub const FIXED_HEADER_BYTES: usize = 8;

/// A parsed request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The API key (Produce = 0, Fetch = 1, ...).
    pub api_key: i16,
    /// The API version the body is encoded at.
    pub api_version: i16,
    /// Echoed in the response so the client can match it to this request.
    pub correlation_id: i32,
    /// The client's self-chosen id, if sent (invalid UTF-8 is replaced, as the Java broker does).
    pub client_id: Option<String>,
    /// The header version this header was read with: 1 or 2, or 0 when only the fixed 8 bytes were read.
    pub header_version: i16,
}

impl RequestHeader {
    /// The API key as the codec's enum, `None` for keys the codec does not know.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }

    /// Whether this request's API key and version are both within what the codec can decode.
    pub fn is_version_supported(&self) -> bool {
        self.api()
            .is_some_and(|api| api_version_known(api, self.api_version))
    }
}

/// Why a request header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The frame is shorter than the fixed 8 header bytes; there is no correlation id.
    #[error("request frame of {len} bytes is shorter than a request header")]
    Truncated {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The API key is not one the codec knows; the rest of the header cannot be read.
    #[error("unknown API key {api_key} (version {api_version}, correlation id {correlation_id})")]
    UnknownApiKey {
        /// The API key as sent.
        api_key: i16,
        /// The API version as sent.
        api_version: i16,
        /// The correlation id to answer with.
        correlation_id: i32,
    },
    /// The header after the fixed 8 bytes is invalid (client id or tagged fields).
    #[error("malformed request header (API key {api_key} v{api_version}, correlation id {correlation_id}): {reason}")]
    Malformed {
        /// The API key as sent.
        api_key: i16,
        /// The API version as sent.
        api_version: i16,
        /// The correlation id as sent.
        correlation_id: i32,
        /// What was wrong.
        reason: &'static str,
    },
}

impl HeaderError {
    /// The request's correlation id, when the frame was long enough to hold one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            HeaderError::Truncated { .. } => None,
            HeaderError::UnknownApiKey { correlation_id, .. }
            | HeaderError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// Splits a request frame into its header and its body (the body shares the frame's memory).
///
/// ApiVersions at a version the codec does not know is still parsed (KIP-511:
/// the broker must answer it): with the header version its known rules imply
/// for that version (v2 from v3 on), and if that fails, with only the fixed 8
/// bytes (`header_version` 0, empty body), since the body is never read then.
pub fn parse_request(frame: BytesMut) -> Result<(RequestHeader, Bytes), HeaderError> {
    let mut buf = frame.freeze();
    if buf.len() < FIXED_HEADER_BYTES {
        return Err(HeaderError::Truncated { len: buf.len() });
    }
    let api_key = buf.get_i16();
    let api_version = buf.get_i16();
    let correlation_id = buf.get_i32();
    let Ok(api) = ApiKey::try_from(api_key) else {
        return Err(HeaderError::UnknownApiKey {
            api_key,
            api_version,
            correlation_id,
        });
    };
    // The generated rules are version thresholds, so they give an answer for any version.
    let header_version = api.request_header_version(api_version);
    match read_rest(&mut buf, header_version) {
        Ok(client_id) => Ok((
            RequestHeader {
                api_key,
                api_version,
                correlation_id,
                client_id,
                header_version,
            },
            buf,
        )),
        Err(_) if api == ApiKey::ApiVersions && !api_version_known(api, api_version) => Ok((
            RequestHeader {
                api_key,
                api_version,
                correlation_id,
                client_id: None,
                header_version: 0,
            },
            Bytes::new(),
        )),
        Err(reason) => Err(HeaderError::Malformed {
            api_key,
            api_version,
            correlation_id,
            reason,
        }),
    }
}

/// Whether the codec decodes `api` at `api_version`.
fn api_version_known(api: ApiKey, api_version: i16) -> bool {
    let range = api.valid_versions();
    range.min <= api_version && api_version <= range.max
}

/// Reads the client id and, for header v2, skips the header's tagged fields.
fn read_rest(buf: &mut Bytes, header_version: i16) -> Result<Option<String>, &'static str> {
    if header_version < 1 {
        return Ok(None);
    }
    if buf.remaining() < 2 {
        return Err("client id length is missing");
    }
    let client_id = match buf.get_i16() {
        -1 => None,
        len if len < -1 => return Err("client id length is negative"),
        len => {
            let len = usize::try_from(len).map_err(|_| "client id length is negative")?;
            if buf.remaining() < len {
                return Err("client id is longer than the frame");
            }
            let bytes = buf.split_to(len);
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    if header_version >= 2 {
        skip_tagged_fields(buf)?;
    }
    Ok(client_id)
}

/// Skips a tagged-field section; the request header defines no tags, so all are unknown.
fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), &'static str> {
    let count = read_unsigned_varint(buf)?;
    for _ in 0..count {
        let _tag = read_unsigned_varint(buf)?;
        let size = read_unsigned_varint(buf)? as usize;
        if buf.remaining() < size {
            return Err("tagged field is longer than the frame");
        }
        buf.advance(size);
    }
    Ok(())
}

/// Reads a Kafka unsigned varint (at most 5 bytes, as Kafka's `ByteUtils.readUnsignedVarint`).
fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, &'static str> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return Err("varint is cut short");
        }
        let byte = buf.get_u8();
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint is longer than 5 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn frame(api_key: i16, api_version: i16, correlation_id: i32, rest: &[u8]) -> BytesMut {
        let mut frame = BytesMut::new();
        frame.put_i16(api_key);
        frame.put_i16(api_version);
        frame.put_i32(correlation_id);
        frame.put_slice(rest);
        frame
    }

    #[test]
    fn header_v1_with_client_id() {
        // Metadata v1: header v1, then the body.
        let (header, body) =
            parse_request(frame(3, 1, 77, b"\x00\x03abc\xff\xff\xff\xff")).unwrap();
        assert_eq!(
            header,
            RequestHeader {
                api_key: 3,
                api_version: 1,
                correlation_id: 77,
                client_id: Some("abc".to_owned()),
                header_version: 1,
            }
        );
        assert_eq!(body.as_ref(), b"\xff\xff\xff\xff");
        assert!(header.is_version_supported());
    }

    #[test]
    fn header_v2_skips_tagged_fields_and_keeps_null_client_id() {
        // Metadata v12: header v2; one unknown tagged field (tag 5, 2 bytes).
        let (header, body) =
            parse_request(frame(3, 12, -5, b"\xff\xff\x01\x05\x02zz\x01\x00")).unwrap();
        assert_eq!(header.client_id, None);
        assert_eq!(header.header_version, 2);
        assert_eq!(header.correlation_id, -5);
        assert_eq!(body.as_ref(), b"\x01\x00");
    }

    #[test]
    fn unknown_api_key_still_yields_correlation_id() {
        let error = parse_request(frame(9999, 3, 42, b"whatever")).unwrap_err();
        assert_eq!(
            error,
            HeaderError::UnknownApiKey {
                api_key: 9999,
                api_version: 3,
                correlation_id: 42
            }
        );
        assert_eq!(error.correlation_id(), Some(42));
        // Exactly the fixed 8 bytes is enough.
        let error = parse_request(frame(-1, 0, 43, b"")).unwrap_err();
        assert_eq!(error.correlation_id(), Some(43));
    }

    #[test]
    fn short_frames_have_no_correlation_id() {
        let error = parse_request(BytesMut::from(&[0u8, 3, 0, 1, 0, 0, 0][..])).unwrap_err();
        assert_eq!(error, HeaderError::Truncated { len: 7 });
        assert_eq!(error.correlation_id(), None);
    }

    #[test]
    fn malformed_client_id_keeps_correlation_id() {
        let error = parse_request(frame(3, 1, 8, b"\x00\x09abc")).unwrap_err();
        assert!(
            matches!(
                error,
                HeaderError::Malformed {
                    correlation_id: 8,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = parse_request(frame(3, 1, 8, b"\xff\xfe")).unwrap_err();
        assert!(matches!(error, HeaderError::Malformed { .. }), "{error:?}");
        let error =
            parse_request(frame(3, 12, 8, b"\xff\xff\x80\x80\x80\x80\x80\x01")).unwrap_err();
        assert!(
            matches!(error, HeaderError::Malformed { reason, .. } if reason.contains("5 bytes")),
            "{error:?}"
        );
    }

    #[test]
    fn out_of_range_version_of_a_known_api_parses() {
        // Produce v0 is below what the codec decodes; the header still parses (v1 rules).
        let (header, _) = parse_request(frame(0, 0, 1, b"\x00\x00")).unwrap();
        assert_eq!(header.header_version, 1);
        assert!(!header.is_version_supported());
    }

    #[test]
    fn api_versions_at_an_unknown_version_is_parsed_as_header_v2() {
        // ApiVersions v99: v2 rules (client id, then tagged fields), then a body we never read.
        let (header, body) = parse_request(frame(18, 99, 1234, b"\x00\x02kc\x00junk")).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("kc"));
        assert_eq!(header.header_version, 2);
        assert_eq!(header.correlation_id, 1234);
        assert_eq!(body.as_ref(), b"junk");
        assert!(!header.is_version_supported());
    }

    #[test]
    fn api_versions_at_an_unknown_version_falls_back_to_the_fixed_bytes() {
        for rest in [&b""[..], b"\x00", b"\x00\x50abc", b"\x00\x01k\x03"] {
            let (header, body) = parse_request(frame(18, 300, 9, rest)).unwrap();
            assert_eq!(header.correlation_id, 9);
            assert_eq!(header.header_version, 0);
            assert_eq!(header.client_id, None);
            assert!(body.is_empty());
        }
        // At a known version a broken header is an error, not a fallback.
        let error = parse_request(frame(18, 3, 9, b"\x00\x50abc")).unwrap_err();
        assert!(matches!(error, HeaderError::Malformed { .. }));
    }

    #[test]
    fn invalid_utf8_client_id_is_replaced_not_refused() {
        let (header, _) = parse_request(frame(3, 1, 1, b"\x00\x02\xff\xfe")).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("\u{fffd}\u{fffd}"));
    }
}
