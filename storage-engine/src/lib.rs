//! Kelp's storage engine: the on-disk log of one partition replica.
//!
//! # Layout
//!
//! - [`batch`]: a zero-copy view of Kafka RecordBatch v2, its validation,
//!   records, compression codecs and a builder.
//! - [`io`]: the file interface ([`io::Storage`]), with the glommio
//!   direct-I/O backend and an in-memory backend that injects faults.
//! - [`segment`]: one segment: the aligned appender, the sparse offset and
//!   time indexes, and the batch scanner used by reads and recovery.
//! - [`log`]: [`PartitionLog`]: append, flush (group commit), read,
//!   truncation, roll, recovery, retention, leader-epoch cache.
//! - [`producers`]: idempotent producers' sequence state of one partition.
//! - [`compaction`]: rewriting closed segments to the newest record per key.
//! - [`cache`]: the per-shard tail cache of recent batches.
//! - [`turns`]: tickets that keep work in the order it was asked for.
//!
//! A log belongs to one shard and is used from that shard's executor only;
//! nothing here takes a lock or needs `Send`.

pub mod batch;
pub mod cache;
pub mod clock;
pub mod compaction;
pub mod config;
pub mod error;
pub mod io;
pub mod log;
pub mod producers;
pub mod segment;
pub mod turns;
pub mod types;

pub use batch::TimestampType;
pub use cache::TailCache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{CleanupPolicy, LogConfig};
pub use error::{StorageError, StorageResult};
pub use log::PartitionLog;
pub use types::{LeaderEpoch, LogId, Offset, TimestampMs};
