//! One shard: the partitions it owns and the state its request handlers
//! use. A shard is touched only from its own executor thread.

pub mod notify;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use kelp_storage::io::DmaStorage;
use kelp_storage::log::LogContext;
use kelp_storage::{Clock, LogConfig, LogId, PartitionLog, SystemClock, TailCache};

use crate::config::BrokerConfig;
use crate::topics::{partition_dir, ShardId, TopicMeta, TopicStore};
use notify::Notify;

/// A partition log as the broker holds it.
pub type Log = Rc<PartitionLog<DmaStorage>>;

/// Why a shard could not open or create a partition.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The storage engine failed.
    #[error("partition {topic}-{partition}: {source}")]
    Storage {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The error.
        source: kelp_storage::StorageError,
    },
    /// The topic metadata could not be saved.
    #[error(transparent)]
    Store(#[from] crate::topics::StoreError),
}

/// The state of one shard.
pub struct Shard {
    /// This shard's index.
    pub id: ShardId,
    /// The broker's configuration.
    pub config: Rc<BrokerConfig>,
    /// Topic metadata (owned by shard 0 while the broker runs one shard).
    pub store: RefCell<TopicStore>,
    logs: RefCell<HashMap<(String, i32), Log>>,
    cache: Rc<TailCache>,
    clock: Rc<dyn Clock>,
    next_log_id: Cell<u64>,
    /// Signalled after every append, for long-polling fetches.
    pub appended: Notify,
}

impl Shard {
    /// Opens every partition this shard owns.
    pub async fn open(
        id: ShardId,
        config: Rc<BrokerConfig>,
        store: TopicStore,
    ) -> Result<Shard, ShardError> {
        let shard = Shard {
            id,
            cache: Rc::new(TailCache::new(config.cache_bytes_per_shard)),
            config,
            store: RefCell::new(store),
            logs: RefCell::new(HashMap::new()),
            clock: Rc::new(SystemClock),
            next_log_id: Cell::new(0),
            appended: Notify::default(),
        };
        let owned: Vec<(String, i32, LogConfig)> = {
            let store = shard.store.borrow();
            store
                .topics
                .values()
                .flat_map(|topic| {
                    let config = shard.topic_log_config(topic);
                    topic
                        .partition_shards
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s == id)
                        .map(move |(p, _)| (topic.name.clone(), p as i32, config.clone()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for (topic, partition, config) in owned {
            shard.open_log(&topic, partition, config).await?;
        }
        Ok(shard)
    }

    /// The log configuration of a topic: broker defaults, then its overrides.
    pub fn topic_log_config(&self, topic: &TopicMeta) -> LogConfig {
        let mut config = self.config.topic_defaults.log_config();
        for (name, value) in &topic.configs {
            // Overrides were validated when they were set.
            let _ = crate::topics::configs::apply(&mut config, name, value);
        }
        config
    }

    async fn open_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Log, ShardError> {
        let id = self.next_log_id.get();
        self.next_log_id.set(id + 1);
        let ctx = LogContext {
            id: LogId(id),
            cache: Rc::clone(&self.cache),
            clock: Rc::clone(&self.clock),
        };
        let dir = partition_dir(&self.config.data_dir, topic, partition);
        let log = PartitionLog::open(DmaStorage, &dir, config, ctx)
            .await
            .map_err(|source| ShardError::Storage {
                topic: topic.to_owned(),
                partition,
                source,
            })?;
        let log = Rc::new(log);
        self.logs
            .borrow_mut()
            .insert((topic.to_owned(), partition), Rc::clone(&log));
        Ok(log)
    }

    /// The log of a partition, if this shard has it.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Log> {
        self.logs
            .borrow()
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Creates a topic: records it durably, then opens its partitions.
    pub async fn create_topic(&self, meta: TopicMeta) -> Result<(), ShardError> {
        let config = self.topic_log_config(&meta);
        {
            let mut store = self.store.borrow_mut();
            store.topics.insert(meta.name.clone(), meta.clone());
            store.save(&self.config.data_dir)?;
        }
        for partition in 0..meta.partition_shards.len() {
            self.open_log(&meta.name, partition as i32, config.clone())
                .await?;
        }
        Ok(())
    }

    /// Flushes and closes every log, for a clean shutdown.
    pub async fn close(&self) {
        let logs: Vec<((String, i32), Log)> = self.logs.borrow_mut().drain().collect();
        for ((topic, partition), log) in logs {
            if let Err(e) = log.close().await {
                tracing::error!(topic, partition, error = %e, "closing partition failed");
            }
        }
    }
}
