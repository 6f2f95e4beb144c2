//! Consumer groups: the coordinator's state machines and the records that
//! make them durable in `__consumer_offsets`.
//!
//! - [`classic`]: the classic (JoinGroup/SyncGroup) group state machine.
//! - [`consumer`]: the KIP-848 consumer group state machine.
//! - [`consumer_log`]: a consumer group as records, written and read back.
//! - [`consumer_records`]: Kafka's byte formats of the KIP-848 consumer group records.
//! - [`coordinator`]: which partition and shard coordinate a group.
//! - [`partition`]: one `__consumer_offsets` partition's groups, offsets and log.
//! - [`settings`]: the broker's group settings, Kafka's defaults.
//! - [`records`]: Kafka's byte formats of offset commits and group metadata.
//! - [`assignors`]: the server-side assignors of the KIP-848 protocol.

pub mod assignors;
pub mod classic;
pub mod consumer;
pub mod consumer_log;
pub mod consumer_records;
pub mod coordinator;
pub mod partition;
pub mod records;
pub mod settings;
