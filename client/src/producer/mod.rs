//! A batching producer.
//!
//! [`Producer::send`] only appends the record to its partition's open batch
//! and returns a [`DeliveryFuture`]; a sender task closes batches at
//! `batch_size` bytes or after `linger`, and sends each broker one
//! ProduceRequest carrying a batch of each of its ready partitions, with at
//! most `max_in_flight` requests outstanding per broker connection.
//!
//! # Back-pressure
//!
//! The buffer is bounded: `buffer_memory_bytes` of records not yet
//! acknowledged (estimated uncompressed). [`Producer::send`] never waits:
//! when the buffer is full its future resolves at once to
//! [`Error::BufferFull`]. [`Producer::send_async`] waits for room first
//! and is what a load generator should call.
//!
//! # Delivery
//!
//! No idempotence and no retries yet: a batch that fails (a Kafka error, a
//! broken connection, a partition without a leader) fails all its records,
//! and the metadata of its topic is refreshed for the batches after it.
//! Records of one partition are written in send order: batches of a
//! partition go out in order, one per request, on one connection that
//! Kafka answers in order.
//!
//! # Shutdown
//!
//! Call [`Producer::flush`] (or [`Producer::close`]) before dropping the
//! producer: dropping it stops the sender, and records not yet sent fail
//! with [`Error::Closed`].

mod accumulator;
mod partitioner;
mod sender;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::Task;
use kelp_storage::batch::Compression;

pub use accumulator::DeliveryFuture;
pub use partitioner::{murmur2, Partitioner};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::metadata::Cluster;
use accumulator::{Accumulator, BatchLimits, Wake};
use kelp_net::signal::Signal;

/// How the producer batches and sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Acknowledgements to wait for: -1 (all in-sync replicas), 1 (the leader), 0 (none).
    pub acks: i16,
    /// A partition's batch is closed once it holds this many bytes (estimated, uncompressed).
    pub batch_size: usize,
    /// How long a batch may wait for more records before it is sent.
    pub linger: Duration,
    /// How each batch's records are compressed.
    pub compression: Compression,
    /// ProduceRequests in flight per broker connection (at least 1).
    pub max_in_flight: usize,
    /// How records without an explicit partition are spread.
    pub partitioner: Partitioner,
    /// Bytes of records buffered and in flight before `send` refuses (and `send_async` waits).
    pub buffer_memory_bytes: usize,
    /// Batch bytes per ProduceRequest before the rest waits for the next request (one batch always fits).
    pub max_request_bytes: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            batch_size: 16_384,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            max_in_flight: 5,
            partitioner: Partitioner::Murmur2Key,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
        }
    }
}

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic; an `Rc<str>` so a hot loop can reuse one allocation for every record.
    pub topic: Rc<str>,
    /// The partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` is null).
    pub key: Option<Bytes>,
    /// The value (`None` is null, a tombstone).
    pub value: Option<Bytes>,
    /// Record headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` takes the current time.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<Rc<str>>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn with_partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> ProducerRecord {
        self.headers.push((key.into(), value));
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> ProducerRecord {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with acks=0 (the broker does not say).
    pub offset: i64,
}

/// State shared by the producer handle, its sender task and its request tasks.
pub(crate) struct Shared {
    pub(crate) cluster: Rc<Cluster>,
    pub(crate) config: ProducerConfig,
    pub(crate) accumulator: RefCell<Accumulator>,
    /// Rung when there is work for the sender.
    pub(crate) work: Signal,
    /// Rung when buffer bytes are given back or everything is acknowledged.
    pub(crate) progress: Signal,
    /// Callers inside `flush`; while any, batches go out without lingering.
    pub(crate) flushing: Cell<usize>,
    /// ProduceRequests in flight per node id.
    pub(crate) in_flight: RefCell<ahash::HashMap<i32, usize>>,
}

/// A producer; must be used inside a glommio executor (it spawns its sender task there).
pub struct Producer {
    shared: Rc<Shared>,
    /// Dropping the task cancels it: the sender lives as long as the producer.
    _sender: Task<()>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Producer {
    /// Connects to the cluster (fails at once if no bootstrap broker answers) and starts the sender.
    pub async fn connect(
        config: ClientConfig,
        producer: ProducerConfig,
    ) -> Result<Producer, Error> {
        let cluster = Cluster::connect(config).await?;
        Producer::with_cluster(cluster, producer)
    }

    /// A producer on an existing cluster handle.
    pub fn with_cluster(cluster: Rc<Cluster>, config: ProducerConfig) -> Result<Producer, Error> {
        if !(-1..=1).contains(&config.acks) {
            return Err(Error::Config(format!(
                "acks must be -1, 0 or 1, not {}",
                config.acks
            )));
        }
        if config.max_in_flight == 0 || config.batch_size == 0 {
            return Err(Error::Config(
                "max_in_flight and batch_size must be at least 1".to_owned(),
            ));
        }
        let limits = BatchLimits {
            batch_size: config.batch_size,
            linger: config.linger,
            compression: config.compression,
            partitioner: config.partitioner,
            buffer_memory_bytes: config.buffer_memory_bytes,
        };
        let shared = Rc::new(Shared {
            cluster,
            config,
            accumulator: RefCell::new(Accumulator::new(limits)),
            work: Signal::default(),
            progress: Signal::default(),
            flushing: Cell::new(0),
            in_flight: RefCell::new(ahash::HashMap::default()),
        });
        let sender = glommio::spawn_local(sender::run(shared.clone()));
        Ok(Producer {
            shared,
            _sender: sender,
        })
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Rc<Cluster> {
        &self.shared.cluster
    }

    /// Appends a record to its batch without waiting; a full buffer fails the future at once.
    pub fn send(&self, record: ProducerRecord) -> DeliveryFuture {
        let appended = self.shared.accumulator.borrow_mut().append(record);
        match appended {
            Ok((future, wake)) => {
                if wake == Wake::Yes {
                    self.shared.work.notify();
                }
                future
            }
            Err(error) => DeliveryFuture::failed(error),
        }
    }

    /// Waits until the buffer has room for the record, then appends it like [`Producer::send`].
    pub async fn send_async(&self, record: ProducerRecord) -> DeliveryFuture {
        let bytes = Accumulator::record_bytes(&record);
        loop {
            let seen = self.shared.progress.generation();
            if self.shared.accumulator.borrow().has_room(bytes) {
                return self.send(record);
            }
            self.shared.progress.changed(seen).await;
        }
    }

    /// Sends everything buffered now and waits until all of it is acknowledged or failed.
    ///
    /// Records sent while flushing are waited for too.
    pub async fn flush(&self) {
        let shared = &self.shared;
        shared.flushing.set(shared.flushing.get() + 1);
        // Restores the count even if the caller drops this future.
        let _flushing = FlushGuard(shared);
        shared.work.notify();
        loop {
            let seen = shared.progress.generation();
            if shared.accumulator.borrow().is_empty() {
                return;
            }
            shared.progress.changed(seen).await;
        }
    }

    /// Flushes, then stops the sender.
    pub async fn close(self) {
        self.flush().await;
    }
}

struct FlushGuard<'a>(&'a Shared);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.flushing.set(self.0.flushing.get().saturating_sub(1));
    }
}
