//! One module per Kafka API, each with its version range in its doc.

pub mod api_versions;
pub mod create_topics;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
