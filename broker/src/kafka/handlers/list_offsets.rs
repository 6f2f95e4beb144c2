//! ListOffsets (key 2), v1-9: earliest (-2), latest (-1: the log end
//! offset, or the last stable offset for `read_committed`), max timestamp
//! (-3), and the first offset at or after a time; each partition answered
//! by its owning shard.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::scatter::{regroup, scatter_or};
use crate::shard::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// `isolation_level` of a `read_committed` client.
const READ_COMMITTED: i8 = 1;

/// Answers a ListOffsets request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut items = Vec::new();
    let mut indexes = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    let committed = request.isolation_level == READ_COMMITTED;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        topics.push((topic.name, topic.partitions.len()));
        for p in topic.partitions {
            indexes.push(p.partition_index);
            items.push(match shard.owner(&name, p.partition_index) {
                Some(owner) => Ok((owner, (name.clone(), p.partition_index, p.timestamp))),
                None => Err(empty(p.partition_index)
                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code())),
            });
        }
    }
    let answers = scatter_or(
        shard,
        items,
        move |owner, lookups| async move {
            let mut answers = Vec::with_capacity(lookups.len());
            for (topic, partition, timestamp) in lookups {
                answers
                    .push(lookup(&owner, &topic, partition, timestamp, committed, version).await);
            }
            answers
        },
        |position, e| empty(indexes[position]).with_error_code(ErrorCode::from(e).code()),
    )
    .await;
    let topics = regroup(topics, answers)
        .into_iter()
        .map(|(name, partitions)| {
            ListOffsetsTopicResponse::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// A partition's answer with nothing found.
fn empty(partition: i32) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(partition)
        .with_timestamp(-1)
        .with_offset(-1)
}

/// On the owning shard: one partition's lookup.
async fn lookup(
    shard: &Shard,
    topic: &str,
    partition: i32,
    timestamp: i64,
    committed: bool,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let base = empty(partition);
    let Some(log) = shard.log(topic, partition) else {
        return base.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
    };
    let found = match timestamp {
        LATEST if committed => Ok(Some((log.last_stable_offset().0, -1))),
        LATEST => Ok(Some((log.log_end_offset().0, -1))),
        EARLIEST => Ok(Some((log.log_start_offset().0, -1))),
        MAX_TIMESTAMP => log
            .max_timestamp()
            .await
            .map(|found| found.map(|(o, ts)| (o.0, ts))),
        ts if ts >= 0 => log
            .offset_for_timestamp(ts)
            .await
            .map(|found| found.map(|(o, ts)| (o.0, ts))),
        _ => return base.with_error_code(ErrorCode::InvalidRequest.code()),
    };
    // As Kafka: a record a read_committed client may not read yet is not
    // found by a time lookup.
    let by_time = timestamp == MAX_TIMESTAMP || timestamp >= 0;
    let found = found.map(|hit| {
        hit.filter(|(offset, _)| !(committed && by_time) || *offset < log.last_stable_offset().0)
    });
    match found {
        Ok(Some((offset, timestamp))) => {
            let found = base.with_offset(offset).with_timestamp(timestamp);
            // The leader epoch field exists from v4.
            if version >= 4 {
                found.with_leader_epoch(LEADER_EPOCH.0)
            } else {
                found
            }
        }
        Ok(None) => base,
        Err(e) => base.with_error_code(ErrorCode::from_storage(&e).code()),
    }
}
