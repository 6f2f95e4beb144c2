//! ApiVersions (key 18), v0-4: the version range of every API this broker
//! implements, read from the registry.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::kafka::registry::IMPLEMENTED;

/// Versions of ApiVersions served.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Answers with the implemented APIs. Feature fields keep their defaults so
/// they are left out of the encoding (librdkafka before 2.1.2 mis-skips them).
pub fn handle(_request: ApiVersionsRequest) -> ApiVersionsResponse {
    let api_keys = IMPLEMENTED
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key)
                .with_min_version(api.min)
                .with_max_version(api.max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(api_keys)
}
