//! One shard: the partitions it owns and the state its request handlers
//! use. A shard is touched only from its own executor thread; other shards
//! reach it by [`Shard::call`] over the channel mesh.
//!
//! - [`mesh`]: cross-shard calls.
//! - [`scatter`]: a request split per owning shard, answers in request order.
//! - [`apply`]: bringing the shard's logs in line with a new topics snapshot.
//! - [`maintenance`]: background retention and compaction.

pub mod apply;
pub mod loaded;
pub mod maintenance;
pub mod mesh;
pub mod replay;
pub mod scatter;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use kelp_net::signal::Signal;
use kelp_net::Shutdown;
use kelp_storage::io::DmaStorage;
use kelp_storage::log::LogContext;
use kelp_storage::{Clock, LogConfig, LogId, PartitionLog, SystemClock, TailCache};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::groups::coordinator::GroupCoordinator;
use crate::topics::{partition_dir, ShardId, TopicMeta, TopicStore};
use crate::txn::coordinator::TxnCoordinator;
use mesh::Mesh;

/// A partition log as the broker holds it.
pub type Log = Rc<PartitionLog<DmaStorage>>;

/// The shard that hosts the controller (topic metadata writes).
pub const CONTROLLER_SHARD: ShardId = ShardId(0);

/// Why a shard could not open, close or remove a partition.
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
}

/// A partition log and the id of the topic it belongs to (a topic deleted
/// and created again under its name is another topic).
struct OwnedLog {
    topic_id: Uuid,
    log: Log,
}

/// The state of one shard.
pub struct Shard {
    /// This shard's index.
    pub id: ShardId,
    /// The broker's configuration.
    pub config: Rc<BrokerConfig>,
    /// The latest topics snapshot from the controller.
    topics: RefCell<Rc<TopicStore>>,
    /// The topic metadata writer; only on [`CONTROLLER_SHARD`].
    controller: Option<Controller>,
    logs: RefCell<HashMap<(String, i32), OwnedLog>>,
    cache: Rc<TailCache>,
    clock: Rc<dyn Clock>,
    next_log_id: Cell<u64>,
    /// Signalled after appends, for long-polling fetches.
    pub appended: Signal,
    /// Set at shutdown: connections stop reading, fetches stop waiting.
    pub stopping: Rc<Shutdown>,
    /// The consumer groups this shard coordinates.
    groups: GroupCoordinator,
    /// The transactional ids this shard coordinates.
    txns: TxnCoordinator,
    mesh: Mesh,
}

impl Shard {
    /// A shard with no partitions yet; [`Shard::apply_topics`] opens them.
    pub fn new(
        id: ShardId,
        config: Rc<BrokerConfig>,
        controller: Option<Controller>,
        mesh: Mesh,
    ) -> Rc<Shard> {
        Rc::new(Shard {
            id,
            cache: Rc::new(TailCache::new(config.cache_bytes_per_shard)),
            config,
            topics: RefCell::new(Rc::new(TopicStore::default())),
            controller,
            logs: RefCell::new(HashMap::new()),
            clock: Rc::new(SystemClock),
            next_log_id: Cell::new(0),
            appended: Signal::default(),
            stopping: Rc::new(Shutdown::default()),
            groups: GroupCoordinator::default(),
            txns: TxnCoordinator::default(),
            mesh,
        })
    }

    /// The number of shards of this broker.
    pub fn shards(&self) -> usize {
        self.mesh.shards()
    }

    /// The current topics snapshot.
    pub fn topics(&self) -> Rc<TopicStore> {
        Rc::clone(&self.topics.borrow())
    }

    /// The consumer group coordinator's partitions on this shard.
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    /// The transaction coordinator's partitions on this shard.
    pub fn txns(&self) -> &TxnCoordinator {
        &self.txns
    }

    /// The controller. Only handlers forwarded to [`CONTROLLER_SHARD`] use it.
    pub fn controller(&self) -> &Controller {
        self.controller
            .as_ref()
            .expect("controller work is forwarded to the controller shard, which has one")
    }

    /// The shard that owns a partition, by the current snapshot.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<ShardId> {
        let index = usize::try_from(partition).ok()?;
        self.topics
            .borrow()
            .topics
            .get(topic)?
            .partition_shards
            .get(index)
            .copied()
    }

    /// The log configuration of a topic under the current snapshot.
    pub fn topic_log_config(&self, topic: &TopicMeta) -> LogConfig {
        self.log_config_under(&self.topics(), topic)
    }

    /// The log configuration of a topic under `store`: the broker's static
    /// defaults, then the dynamic broker configs, then the topic's overrides.
    fn log_config_under(&self, store: &TopicStore, topic: &TopicMeta) -> LogConfig {
        let mut config = self.config.topic_defaults.log_config();
        for (name, value) in store.effective_overrides(self.config.node_id, Some(topic)) {
            // Validated when they were set.
            let _ = crate::topics::configs::apply(&mut config, &name, &value);
        }
        config
    }

    async fn open_log(
        &self,
        topic: &TopicMeta,
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
        let dir = partition_dir(&self.config.data_dir, &topic.name, partition);
        let log = PartitionLog::open(DmaStorage, &dir, config, ctx)
            .await
            .map_err(|source| ShardError::Storage {
                topic: topic.name.clone(),
                partition,
                source,
            })?;
        let log = Rc::new(log);
        self.logs.borrow_mut().insert(
            (topic.name.clone(), partition),
            OwnedLog {
                topic_id: topic.id,
                log: Rc::clone(&log),
            },
        );
        Ok(log)
    }

    /// The log of a partition, if this shard has it.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Log> {
        self.logs
            .borrow()
            .get(&(topic.to_owned(), partition))
            .map(|owned| Rc::clone(&owned.log))
    }

    /// Every partition log this shard holds, by topic and partition.
    pub fn logs(&self) -> Vec<((String, i32), Log)> {
        let mut logs: Vec<((String, i32), Log)> = self
            .logs
            .borrow()
            .iter()
            .map(|(key, owned)| (key.clone(), Rc::clone(&owned.log)))
            .collect();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        logs
    }

    /// Flushes and closes every log, for a clean shutdown.
    pub async fn close(&self) {
        use futures_util::StreamExt;
        let logs: Vec<((String, i32), OwnedLog)> = self.logs.borrow_mut().drain().collect();
        futures_util::stream::iter(logs)
            .for_each_concurrent(
                apply::CONCURRENT_LOG_OPS,
                |((topic, partition), owned)| async move {
                    if let Err(e) = owned.log.close().await {
                        tracing::error!(topic, partition, error = %e, "closing partition failed");
                    }
                },
            )
            .await;
    }

    /// Closes this shard's end of the mesh; the last step of shutdown.
    pub fn close_mesh(&self) {
        self.mesh.close();
    }
}
