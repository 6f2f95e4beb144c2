//! DeleteRecords (key 21), v0-2: moves each partition's log start offset
//! up (offset -1 means the high watermark, the log end on this single
//! node) and answers the new low watermark.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kelp_storage::Offset;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;
/// Kafka's low watermark on errors.
const INVALID_LOW_WATERMARK: i64 = -1;

/// Answers a DeleteRecords request.
pub async fn handle(shard: &Shard, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(INVALID_LOW_WATERMARK);
            partitions.push(
                match delete(shard, &name, p.partition_index, p.offset).await {
                    Ok(low_watermark) => result.with_low_watermark(low_watermark),
                    Err(code) => result.with_error_code(code.code()),
                },
            );
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

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
