//! ListOffsets (key 2), v1-9: earliest (-2), latest (-1, the log end
//! offset), max timestamp (-3), and the first offset at or after a time.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// Answers a ListOffsets request.
pub async fn handle(
    shard: &Shard,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let base = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let Some(log) = shard.log(&name, p.partition_index) else {
                partitions.push(base.with_error_code(ErrorCode::UnknownTopicOrPartition.code()));
                continue;
            };
            let found = match p.timestamp {
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
                _ => {
                    partitions.push(base.with_error_code(ErrorCode::InvalidRequest.code()));
                    continue;
                }
            };
            partitions.push(match found {
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
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
