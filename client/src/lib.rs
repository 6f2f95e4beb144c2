//! A lean Kafka client on glommio, for Kelp's bench harness and CLI.
//!
//! It speaks the Kafka protocol to any Kafka-compatible broker: it asks each
//! broker its API versions and uses the highest both sides support.
//!
//! # Threading
//!
//! Everything is single-threaded (`Rc`, `RefCell`) and must run inside a
//! glommio `LocalExecutor`: the producer and the consumer spawn local tasks.
//! A multi-core harness runs one executor per core, and each core creates
//! its own clients (and so its own connections); nothing is shared across
//! cores.
//!
//! # Layout
//!
//! - [`config`]: [`ClientConfig`], where the cluster is.
//! - [`error`]: [`Error`], the one error type.
//! - [`connection`]: one TCP connection with pipelined requests and version negotiation.
//! - [`metadata`]: the cluster view (brokers, topic partitions and their leaders) and the connection pool.
//! - [`admin`]: create, delete, list and describe topics.
//! - [`producer`]: batching producer (accumulator, sender, partitioner).
//! - [`consumer`]: assign-only consumer with a fetch kept in flight per broker.
//!
//! Not here yet: consumer groups, idempotent or transactional producing, retries.

pub mod admin;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod metadata;
pub mod producer;

pub use admin::{Admin, PartitionInfo, TopicDescription, TopicInfo};
pub use config::ClientConfig;
pub use connection::Connection;
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartOffset};
pub use error::Error;
pub use kelp_storage::batch::Compression;
pub use metadata::Cluster;
pub use producer::{
    DeliveryFuture, Partitioner, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
