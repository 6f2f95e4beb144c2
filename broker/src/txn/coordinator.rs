//! The transaction coordinator's entry point: which `__transaction_state`
//! partition (and so which shard) coordinates a transactional id, each
//! shard's loaded partitions, and producer ids from the controller.

use std::future::Future;
use std::rc::Rc;

use super::partition::TxnLogPartition;
use super::state::TxnPartition;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::ensure_internal;
use crate::shard::loaded::{on_every_partition_of, on_partition_of, CoordinatorPartition, Loaded};
use crate::shard::{Shard, CONTROLLER_SHARD};
use crate::topics::TopicMeta;

/// The internal topic holding transactional ids and their state.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";
/// The internal topic's configs, as Kafka sets them (its records are
/// written uncompressed, so `compression.type` keeps Kelp's default).
const TRANSACTION_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.bytes", "104857600"),
];

/// The `__transaction_state` topic, created on first use.
pub async fn transaction_topic(shard: &Rc<Shard>) -> Result<TopicMeta, ErrorCode> {
    ensure_internal(
        shard,
        TRANSACTION_TOPIC,
        shard.config.txns.state_log_partitions,
        TRANSACTION_TOPIC_CONFIGS,
    )
    .await
}

/// A producer id never handed out before, from the controller shard.
pub async fn new_producer_id(shard: &Rc<Shard>) -> Result<i64, ErrorCode> {
    shard
        .call(CONTROLLER_SHARD, |controller| async move {
            controller
                .controller()
                .producer_ids()
                .next_id()
                .map_err(|e| {
                    tracing::error!(error = %e, "no producer id could be handed out");
                    ErrorCode::UnknownServerError
                })
        })
        .await
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?
}

/// Runs `f` on the coordinator partition of `transactional_id`, on the
/// shard that owns it.
pub async fn on_txn_coordinator<T, F, Fut>(
    shard: &Rc<Shard>,
    transactional_id: &str,
    f: F,
) -> Result<T, ErrorCode>
where
    F: FnOnce(Rc<Shard>, Rc<TxnLogPartition>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let meta = transaction_topic(shard).await?;
    on_partition_of(shard, meta, transactional_id, f).await
}

/// Whether `partition` is in the open transaction of `transactional_id`'s
/// producer `producer_id` at `epoch`: Kafka's verification (KIP-890) of a
/// first transactional write to a partition.
pub async fn verify_in_transaction(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partition: TxnPartition,
) -> Result<(), ErrorCode> {
    let id = transactional_id.to_owned();
    on_txn_coordinator(shard, transactional_id, move |_, coordinator| async move {
        coordinator.verify_partition(&id, producer_id, epoch, &partition)
    })
    .await
    .and_then(|verdict| verdict)
}

/// Runs `f` on every `__transaction_state` partition of every shard.
pub async fn on_every_txn_partition<T, F, Fut>(shard: &Rc<Shard>, f: F) -> Result<Vec<T>, ErrorCode>
where
    F: Fn(Rc<TxnLogPartition>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    transaction_topic(shard).await?;
    on_every_partition_of(shard, f).await
}

impl CoordinatorPartition for TxnLogPartition {
    const TOPIC: &'static str = TRANSACTION_TOPIC;

    async fn get(shard: &Rc<Shard>, index: i32) -> Result<Rc<Self>, ErrorCode> {
        shard.txns().partition(shard, index).await
    }
}

/// The `__transaction_state` partitions a shard has loaded.
#[derive(Default)]
pub struct TxnCoordinator {
    partitions: Loaded<TxnLogPartition>,
}

impl TxnCoordinator {
    /// Loads every `__transaction_state` partition the shard owns, as a
    /// Kafka coordinator does when it becomes leader: transactions that were
    /// ending finish, and open ones time out, even if no client asks for
    /// their id after a restart.
    pub async fn load_owned(&self, shard: &Rc<Shard>) {
        let indexes: Vec<i32> = shard
            .logs()
            .into_iter()
            .filter(|((topic, _), _)| topic == TRANSACTION_TOPIC)
            .map(|((_, index), _)| index)
            .collect();
        for index in indexes {
            if let Err(code) = self.partition(shard, index).await {
                tracing::warn!(
                    partition = index,
                    ?code,
                    "transactional ids not loaded at start"
                );
            }
        }
    }

    /// The partition, loaded from its log on first use.
    pub async fn partition(
        &self,
        shard: &Rc<Shard>,
        index: i32,
    ) -> Result<Rc<TxnLogPartition>, ErrorCode> {
        self.partitions
            .get_or_load(index, || async {
                let log = shard
                    .log(TRANSACTION_TOPIC, index)
                    .ok_or(ErrorCode::NotCoordinator)?;
                TxnLogPartition::load(shard, index, log, shard.config.txns)
                    .await
                    .map_err(|e| {
                        tracing::error!(partition = index, error = %e, "loading transactional ids failed");
                        ErrorCode::CoordinatorNotAvailable
                    })
            })
            .await
    }
}
