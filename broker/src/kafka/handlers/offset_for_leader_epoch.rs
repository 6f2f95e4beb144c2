//! OffsetForLeaderEpoch (key 23), v2-4: the end offset of the largest
//! leader epoch at or below the one asked, from the partition's epoch
//! cache; UNDEFINED (-1, -1) as Kafka when none is known. This single node
//! leads every partition at epoch 0.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kelp_storage::LeaderEpoch;

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::scatter::{regroup, scatter_or};
use crate::shard::Shard;

/// Kafka's UNDEFINED_EPOCH, also "no current epoch to check".
const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's UNDEFINED_EPOCH_OFFSET.
const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// Answers an OffsetForLeaderEpoch request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut items = Vec::new();
    let mut indexes = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        topics.push((topic.topic, topic.partitions.len()));
        for p in topic.partitions {
            indexes.push(p.partition);
            let question = (
                name.clone(),
                p.partition,
                p.current_leader_epoch,
                p.leader_epoch,
            );
            items.push(match shard.owner(&name, p.partition) {
                Some(owner) => Ok((owner, question)),
                None => Err(answer(p.partition, Err(ErrorCode::UnknownTopicOrPartition))),
            });
        }
    }
    let answers = scatter_or(
        shard,
        items,
        |owner, questions| async move {
            questions
                .into_iter()
                .map(|(topic, partition, current, asked)| {
                    answer(
                        partition,
                        end_offset(&owner, &topic, partition, current, asked),
                    )
                })
                .collect()
        },
        |position, e| answer(indexes[position], Err(e.into())),
    )
    .await;
    let topics = regroup(topics, answers)
        .into_iter()
        .map(|(name, partitions)| {
            OffsetForLeaderTopicResult::default()
                .with_topic(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// A partition's answer: the end offset found, none, or an error.
fn answer(partition: i32, found: Result<Option<(i32, i64)>, ErrorCode>) -> EpochEndOffset {
    let result = EpochEndOffset::default()
        .with_partition(partition)
        .with_leader_epoch(UNDEFINED_EPOCH)
        .with_end_offset(UNDEFINED_EPOCH_OFFSET);
    match found {
        Ok(Some((epoch, offset))) => result.with_leader_epoch(epoch).with_end_offset(offset),
        Ok(None) => result,
        Err(code) => result.with_error_code(code.code()),
    }
}

/// On the owning shard: one partition's answer.
fn end_offset(
    shard: &Shard,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> Result<Option<(i32, i64)>, ErrorCode> {
    let log = shard
        .log(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    // Kafka's checkCurrentLeaderEpoch: -1 skips the check.
    if current_leader_epoch != UNDEFINED_EPOCH {
        if current_leader_epoch < LEADER_EPOCH.0 {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if current_leader_epoch > LEADER_EPOCH.0 {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
    }
    if leader_epoch == UNDEFINED_EPOCH {
        return Ok(None);
    }
    Ok(log
        .end_offset_for_epoch(LeaderEpoch(leader_epoch))
        .map(|(epoch, offset)| (epoch.0, offset.0)))
}
