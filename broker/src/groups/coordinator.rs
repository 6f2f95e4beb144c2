//! The group coordinator's entry point: which `__consumer_offsets`
//! partition (and so which shard) coordinates a group, and each shard's
//! registry of the partitions it has loaded.

use std::future::Future;
use std::rc::Rc;

use super::partition::OffsetsPartition;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::ensure_internal;
use crate::shard::loaded::{on_every_partition_of, on_partition_of, CoordinatorPartition, Loaded};
use crate::shard::Shard;
use crate::topics::TopicMeta;

/// The internal topic holding groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The internal topic's configs, as Kafka sets them.
const OFFSETS_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("compression.type", "producer"),
    ("segment.bytes", "104857600"),
];

/// The `__consumer_offsets` partition of a group: Kafka's
/// `abs(groupId.hashCode()) % partitions`, with Java's String hash, so a
/// group lands where it would in Kafka.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    // Kafka's Utils.abs: i32::MIN maps to 0.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// The `__consumer_offsets` topic, created on first use.
pub async fn offsets_topic(shard: &Rc<Shard>) -> Result<TopicMeta, ErrorCode> {
    ensure_internal(
        shard,
        OFFSETS_TOPIC,
        shard.config.groups.offsets_topic_partitions,
        OFFSETS_TOPIC_CONFIGS,
    )
    .await
}

/// Runs `f` on the coordinator partition of `group_id`, on the shard that
/// owns it.
pub async fn on_coordinator<T, F, Fut>(
    shard: &Rc<Shard>,
    group_id: &str,
    f: F,
) -> Result<T, ErrorCode>
where
    F: FnOnce(Rc<OffsetsPartition>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let meta = offsets_topic(shard).await?;
    on_partition_of(shard, meta, group_id, |_, partition| f(partition)).await
}

/// Runs `f` on every `__consumer_offsets` partition of every shard.
pub async fn on_every_partition<T, F, Fut>(shard: &Rc<Shard>, f: F) -> Result<Vec<T>, ErrorCode>
where
    F: Fn(Rc<OffsetsPartition>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    offsets_topic(shard).await?;
    on_every_partition_of(shard, f).await
}

impl CoordinatorPartition for OffsetsPartition {
    const TOPIC: &'static str = OFFSETS_TOPIC;

    async fn get(shard: &Rc<Shard>, index: i32) -> Result<Rc<Self>, ErrorCode> {
        shard.groups().partition(shard, index).await
    }
}

/// The `__consumer_offsets` partitions a shard has loaded.
#[derive(Default)]
pub struct GroupCoordinator {
    partitions: Loaded<OffsetsPartition>,
}

impl GroupCoordinator {
    /// The partition, loaded from its log on first use.
    pub async fn partition(
        &self,
        shard: &Rc<Shard>,
        index: i32,
    ) -> Result<Rc<OffsetsPartition>, ErrorCode> {
        self.partitions
            .get_or_load(index, || async {
                let log = shard
                    .log(OFFSETS_TOPIC, index)
                    .ok_or(ErrorCode::NotCoordinator)?;
                let topic_ids = shard
                    .topics()
                    .topics
                    .values()
                    .map(|m| (m.name.clone(), m.id))
                    .collect();
                OffsetsPartition::load(
                    index,
                    log,
                    Rc::clone(&shard.stopping),
                    topic_ids,
                    shard.config.groups,
                )
                .await
                .map_err(|e| {
                    tracing::error!(partition = index, error = %e, "loading consumer groups failed");
                    ErrorCode::CoordinatorNotAvailable
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_on_the_partition_kafka_picks() {
        // Java: "my-group".hashCode() == -1_906_497_762, abs % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // A hash of i32::MIN maps to partition 0, as Kafka's Utils.abs does.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        for id in ["a", "group-1", "ünïcode", "x".repeat(300).as_str()] {
            assert!((0..50).contains(&partition_for(id, 50)));
        }
    }
}
