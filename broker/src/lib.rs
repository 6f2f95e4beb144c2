//! Kelp's broker (the `kelp` binary).
//!
//! # Layout
//!
//! - [`config`]: flags, TOML file and defaults.
//! - [`preflight`]: start-up checks (io_uring, `ulimit -l`, O_DIRECT, data
//!   directory lock) that fail with a fix, not a panic.
//! - [`app`]: starts the shards and listeners in order, stops them in
//!   reverse on SIGTERM/SIGINT.
//! - [`shard`]: one shard's partitions and state, and cross-shard calls.
//! - [`controller`]: the one writer of topic metadata, on shard 0.
//! - [`groups`]: consumer group coordination and committed offsets.
//! - [`txn`]: the transaction coordinator and its `__transaction_state` log.
//! - [`topics`]: topic metadata, names, configs, partition placement.
//! - [`kafka`]: the API registry, error codes, dispatcher and one handler
//!   module per Kafka API.
//! - [`wire`]: Kafka's byte format of coordinator records, shared by
//!   [`groups`] and [`txn`].
//! - [`cli`]: the `kelp topic|produce|consume|group|cluster` commands, a
//!   client of any Kafka-compatible broker.

pub mod app;
pub mod cli;
pub mod config;
pub mod controller;
pub mod groups;
pub mod kafka;
pub mod preflight;
pub mod shard;
pub mod topics;
pub mod txn;
pub mod wire;
