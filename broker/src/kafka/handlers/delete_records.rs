//! DeleteRecords (key 21), v0-2: moves each partition's log start offset
//! up (offset -1 means the high watermark, the log end on this single
//! node) and answers the new low watermark; each partition on its
//! owning shard.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kelp_storage::Offset;

use crate::kafka::errors::ErrorCode;
use crate::shard::scatter::{regroup, scatter_or};
use crate::shard::Shard;

/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;
/// Kafka's low watermark on errors.
const INVALID_LOW_WATERMARK: i64 = -1;

/// Answers a DeleteRecords request.
pub async fn handle(shard: &Rc<Shard>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut items = Vec::new();
    let mut indexes = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        topics.push((topic.name, topic.partitions.len()));
        for p in topic.partitions {
            indexes.push(p.partition_index);
            items.push(match shard.owner(&name, p.partition_index) {
                Some(owner) => Ok((owner, (name.clone(), p.partition_index, p.offset))),
                None => Err(result(
                    p.partition_index,
                    Err(ErrorCode::UnknownTopicOrPartition),
                )),
            });
        }
    }
    let answers = scatter_or(
        shard,
        items,
        |owner, deletions| async move {
            let mut answers = Vec::with_capacity(deletions.len());
            for (topic, partition, offset) in deletions {
                let outcome = delete(&owner, &topic, partition, offset).await;
                answers.push(result(partition, outcome));
            }
            answers
        },
        |position, e| result(indexes[position], Err(e.into())),
    )
    .await;
    let topics = regroup(topics, answers)
        .into_iter()
        .map(|(name, partitions)| {
            DeleteRecordsTopicResult::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// A partition's answer: its new low watermark or an error.
fn result(partition: i32, outcome: Result<i64, ErrorCode>) -> DeleteRecordsPartitionResult {
    let result = DeleteRecordsPartitionResult::default()
        .with_partition_index(partition)
        .with_low_watermark(INVALID_LOW_WATERMARK);
    match outcome {
        Ok(low_watermark) => result.with_low_watermark(low_watermark),
        Err(code) => result.with_error_code(code.code()),
    }
}

/// On the owning shard: moves one partition's log start.
async fn delete(shard: &Shard, topic: &str, partition: i32, offset: i64) -> Result<i64, ErrorCode> {
    let log = shard
        .log(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if !log.config().cleanup_policy.delete {
        // Kafka: records of a compact-only topic cannot be deleted.
        return Err(ErrorCode::PolicyViolation);
    }
    let offset = if offset == HIGH_WATERMARK {
        log.log_end_offset().0
    } else {
        offset
    };
    if offset < 0 {
        return Err(ErrorCode::OffsetOutOfRange);
    }
    match log.truncate_prefix(Offset(offset)).await {
        Ok(start) => Ok(start.0),
        Err(e) => {
            let code = ErrorCode::from_storage(&e);
            if code != ErrorCode::OffsetOutOfRange {
                tracing::error!(topic, partition, error = %e, "DeleteRecords failed");
            }
            Err(code)
        }
    }
}
