//! API version ranges and the KIP-511 fallback answer to ApiVersions at an unknown version.
//!
//! A client that asks ApiVersions at a version the broker does not know gets
//! a v0 body with error UNSUPPORTED_VERSION and the broker's ranges, whatever
//! version it asked for; it then retries at the highest version both know.
//! That answer is written by hand here: it is fixed-layout and cannot fail.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The API key of ApiVersions.
pub const API_VERSIONS_KEY: i16 = 18;

/// The versions of one API that a broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API key.
    pub api_key: i16,
    /// The lowest version served.
    pub min: i16,
    /// The highest version served.
    pub max: i16,
}

impl ApiRange {
    /// The versions of `api_key` that the codec (kafka-protocol) can decode; `None` for unknown keys.
    pub fn codec_range(api_key: i16) -> Option<ApiRange> {
        let range = ApiKey::try_from(api_key).ok()?.valid_versions();
        Some(ApiRange {
            api_key,
            min: range.min,
            max: range.max,
        })
    }

    /// Whether `version` is within this range.
    pub fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// The framed ApiVersions v0 response with UNSUPPORTED_VERSION and `ranges`, for any asked version.
///
/// Kafka lists only ApiVersions' own range here; listing all served APIs is
/// also valid v0 and saves clients nothing, so pass what suits.
pub fn encode_api_versions_fallback(correlation_id: i32, ranges: &[ApiRange]) -> BytesMut {
    // size + correlation id (response header v0) + error code + array length + 6 bytes per entry.
    let body_bytes = 4 + 2 + 4 + 6 * ranges.len();
    let mut out = BytesMut::with_capacity(4 + body_bytes);
    // A range list long enough to overflow i32 cannot exist: API keys are i16.
    let count = i32::try_from(ranges.len()).unwrap_or(i32::MAX);
    out.put_i32(i32::try_from(body_bytes).unwrap_or(i32::MAX));
    out.put_i32(correlation_id);
    out.put_i16(UNSUPPORTED_VERSION);
    out.put_i32(count);
    for range in ranges.iter().take(count as usize) {
        out.put_i16(range.api_key);
        out.put_i16(range.min);
        out.put_i16(range.max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn fallback_decodes_as_api_versions_v0_with_unsupported_version() {
        let ranges = [
            ApiRange {
                api_key: 18,
                min: 0,
                max: 4,
            },
            ApiRange {
                api_key: 3,
                min: 0,
                max: 12,
            },
        ];
        let mut bytes = encode_api_versions_fallback(-7, &ranges).freeze();
        let size = bytes.get_i32();
        assert_eq!(size as usize, bytes.len());
        let header = ResponseHeader::decode(&mut bytes, 0).unwrap();
        assert_eq!(header.correlation_id, -7);
        let response = ApiVersionsResponse::decode(&mut bytes, 0).unwrap();
        assert!(!bytes.has_remaining());
        assert_eq!(response.error_code, UNSUPPORTED_VERSION);
        let got: Vec<_> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(got, vec![(18, 0, 4), (3, 0, 12)]);
    }

    #[test]
    fn codec_range_knows_api_versions_and_not_unknown_keys() {
        let range = ApiRange::codec_range(API_VERSIONS_KEY).unwrap();
        assert_eq!(range.min, 0);
        assert!(range.contains(3));
        assert!(!range.contains(range.max + 1));
        assert_eq!(ApiRange::codec_range(9999), None);
    }
}
