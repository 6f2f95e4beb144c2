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
    /// No topic has this name.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
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

    /// Replaces the config overrides of topic `name` (already validated):
    /// records them durably, then applies the new configuration live to
    /// every partition log of the topic that this shard holds. Returns
    /// `Ok(false)` when the topic does not exist. On a failed save the
    /// in-memory overrides are left as they were.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<bool, ShardError> {
        let meta = {
            let mut store = self.store.borrow_mut();
            let Some(meta) = store.topics.get_mut(name) else {
                return Ok(false);
            };
            let old = std::mem::replace(&mut meta.configs, configs);
            let meta = meta.clone();
            if let Err(e) = store.save(&self.config.data_dir) {
                if let Some(meta) = store.topics.get_mut(name) {
                    meta.configs = old;
                }
                return Err(e.into());
            }
            meta
        };
        let config = self.topic_log_config(&meta);
        for partition in 0..meta.partition_shards.len() {
            if let Some(log) = self.log(name, partition as i32) {
                log.set_config(config.clone());
            }
        }
        Ok(true)
    }

    /// Every partition log this shard holds, by topic and partition.
    pub fn logs(&self) -> Vec<((String, i32), Log)> {
        let mut logs: Vec<((String, i32), Log)> = self
            .logs
            .borrow()
            .iter()
            .map(|(key, log)| (key.clone(), Rc::clone(log)))
            .collect();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        logs
    }

    /// Raises a topic's partition count to `count`: the new partitions are
    /// placed, recorded durably, then opened. Returns the updated metadata.
    pub async fn add_partitions(&self, name: &str, count: usize) -> Result<TopicMeta, ShardError> {
        let (meta, first_new) = {
            let mut store = self.store.borrow_mut();
            let Some(current) = store.topics.get(name).map(|t| t.partition_shards.len()) else {
                return Err(ShardError::UnknownTopic(name.to_owned()));
            };
            let added = store.place(count.saturating_sub(current), self.config.cores);
            let meta = store.topics.get_mut(name).expect("checked above");
            meta.partition_shards.extend(added);
            let meta = meta.clone();
            if let Err(e) = store.save(&self.config.data_dir) {
                if let Some(meta) = store.topics.get_mut(name) {
                    meta.partition_shards.truncate(current);
                }
                return Err(e.into());
            }
            (meta, current)
        };
        let config = self.topic_log_config(&meta);
        for (partition, owner) in meta.partition_shards.iter().enumerate().skip(first_new) {
            if *owner == self.id {
                self.open_log(name, partition as i32, config.clone())
                    .await?;
            }
        }
        Ok(meta)
    }

    /// Deletes a topic: its partition logs (files and directories) first,
    /// then its record in the store, durably. A crash in between leaves the
    /// topic listed with empty partitions, never old data under a new topic
    /// of the same name.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, ShardError> {
        if !self.store.borrow().topics.contains_key(name) {
            return Err(ShardError::UnknownTopic(name.to_owned()));
        }
        let logs: Vec<(i32, Log)> = {
            let mut map = self.logs.borrow_mut();
            let keys: Vec<(String, i32)> = map.keys().filter(|(t, _)| t == name).cloned().collect();
            keys.into_iter()
                .filter_map(|key| map.remove(&key).map(|log| (key.1, log)))
                .collect()
        };
        let mut failed = None;
        for (partition, log) in logs {
            let result = match Rc::try_unwrap(log) {
                Ok(log) => log.delete().await,
                // A request in flight still holds the log: close it so it
                // takes no more writes, then remove its directory.
                Err(log) => {
                    let _ = log.close().await;
                    std::fs::remove_dir_all(log.dir()).map_err(|e| {
                        kelp_storage::StorageError::io("remove log directory", log.dir())(e)
                    })
                }
            };
            if let Err(source) = result {
                tracing::error!(topic = name, partition, error = %source, "deleting partition failed");
                failed.get_or_insert(ShardError::Storage {
                    topic: name.to_owned(),
                    partition,
                    source,
                });
            }
        }
        let meta = {
            let mut store = self.store.borrow_mut();
            let meta = store.topics.remove(name);
            store.save(&self.config.data_dir)?;
            meta
        };
        match (failed, meta) {
            (Some(error), _) => Err(error),
            (None, Some(meta)) => Ok(meta),
            (None, None) => Err(ShardError::UnknownTopic(name.to_owned())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::collections::BTreeMap;

    #[test]
    fn altered_configs_are_saved_and_applied_to_open_logs() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap();
        executor.run(async move {
            let overrides = Overrides {
                data_dir: Some(data_dir.clone()),
                cores: Some(1),
                listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            };
            let config = Rc::new(BrokerConfig::build(&overrides).unwrap());
            let shard = Shard::open(ShardId(0), config, TopicStore::default())
                .await
                .unwrap();
            let meta = TopicMeta {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                partition_shards: vec![ShardId(0); 2],
                configs: BTreeMap::new(),
            };
            shard.create_topic(meta).await.unwrap();
            let configs = BTreeMap::from([("retention.ms".to_owned(), "1234".to_owned())]);
            assert!(shard.set_topic_configs("t", configs.clone()).unwrap());
            assert!(!shard.set_topic_configs("absent", BTreeMap::new()).unwrap());
            for partition in 0..2 {
                assert_eq!(
                    shard.log("t", partition).unwrap().config().retention_ms,
                    1234
                );
            }
            let saved = TopicStore::load(&data_dir).unwrap();
            assert_eq!(saved.topics["t"].configs, configs);
            shard.close().await;
        });
    }
}
