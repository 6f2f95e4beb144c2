//! Produce (key 0), v3-12 (v0-2 are advertised, as Kafka 4 does, and
//! refused): batches validated and appended per partition; `acks=-1` is
//! answered only once the batches are durable, `acks=0` not at all.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::batch::{peek_total_len, BatchError};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, StorageError};

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::auto_create;
use crate::shard::{Log, Shard};

/// The leader epoch this single-node broker stamps into batches.
pub const LEADER_EPOCH: LeaderEpoch = LeaderEpoch(0);

/// What a Produce request asks of the connection.
pub enum ProduceOutcome {
    /// Send this response.
    Respond(ProduceResponse),
    /// `acks=0`: send nothing.
    NoResponse,
}

/// Answers a Produce request.
pub async fn handle(shard: &Shard, request: ProduceRequest, version: i16) -> ProduceOutcome {
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    // Logs to flush for acks=-1, with the (topic, partition) response
    // positions each one answers.
    let mut to_flush: Vec<(Log, (usize, usize))> = Vec::new();
    for (topic_pos, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (partition_pos, data) in topic.partition_data.into_iter().enumerate() {
            let response = if !matches!(acks, -1..=1) {
                failed(data.index, ErrorCode::InvalidRequiredAcks, None, version)
            } else {
                match partition_log(shard, &name, data.index).await {
                    Err(code) => failed(data.index, code, None, version),
                    Ok(log) => {
                        let response =
                            append(&log, data.index, data.records.unwrap_or_default(), version)
                                .await;
                        if response.error_code == 0 && acks == -1 {
                            to_flush.push((log, (topic_pos, partition_pos)));
                        }
                        response
                    }
                }
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    shard.appended.notify();
    // acks=-1: durable before the answer. Flushes of many producers share fsyncs.
    let flushes = futures_util::future::join_all(to_flush.iter().map(|(log, _)| log.flush())).await;
    for ((log, (topic_pos, partition_pos)), result) in to_flush.iter().zip(flushes) {
        if let Err(e) = result {
            tracing::error!(dir = %log.dir().display(), error = %e, "flush failed");
            let partition = &mut responses[*topic_pos].partition_responses[*partition_pos];
            partition.error_code = ErrorCode::from_storage(&e).code();
            partition.base_offset = -1;
        }
    }
    if acks == 0 {
        return ProduceOutcome::NoResponse;
    }
    ProduceOutcome::Respond(ProduceResponse::default().with_responses(responses))
}

async fn partition_log(shard: &Shard, topic: &str, partition: i32) -> Result<Log, ErrorCode> {
    let exists = shard.store.borrow().topics.contains_key(topic);
    if !exists {
        if !shard.config.topic_defaults.auto_create_topics {
            return Err(ErrorCode::UnknownTopicOrPartition);
        }
        auto_create(shard, topic).await?;
    }
    shard
        .log(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)
}

/// The first Produce version with an error message per partition.
const ERROR_MESSAGE_VERSION: i16 = 8;
/// The first Produce version with the log start offset.
const LOG_START_VERSION: i16 = 5;

fn failed(
    index: i32,
    code: ErrorCode,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1);
    if version >= ERROR_MESSAGE_VERSION {
        response.with_error_message(message.map(StrBytes::from_string))
    } else {
        response
    }
}

/// Appends every batch in `records` (a producer normally sends one).
async fn append(log: &Log, index: i32, records: Bytes, version: i16) -> PartitionProduceResponse {
    let mut batches = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        match peek_total_len(&rest) {
            Some(Ok(len)) if len <= rest.len() => batches.push(rest.split_to(len)),
            Some(Err(e)) => {
                return failed(
                    index,
                    ErrorCode::CorruptMessage,
                    Some(e.to_string()),
                    version,
                )
            }
            _ => {
                let e = BatchError::TooShort { len: rest.len() };
                return failed(
                    index,
                    ErrorCode::CorruptMessage,
                    Some(e.to_string()),
                    version,
                );
            }
        }
    }
    if batches.is_empty() {
        return failed(
            index,
            ErrorCode::InvalidRecord,
            Some("the request holds no record batch".to_owned()),
            version,
        );
    }
    let mut base_offset = None;
    for bytes in batches {
        // The request frame is shared; the log needs the batch to itself to
        // stamp offsets, so it gets its own copy.
        let batch = bytes::BytesMut::from(&bytes[..]);
        match log.append(batch, AppendOrigin::Leader(LEADER_EPOCH)).await {
            Ok(info) => {
                base_offset.get_or_insert(info.base_offset.0);
            }
            Err(e) => {
                let code = ErrorCode::from_storage(&e);
                if matches!(e, StorageError::Io { .. } | StorageError::Poisoned { .. }) {
                    tracing::error!(dir = %log.dir().display(), error = %e, "append failed");
                }
                return failed(index, code, Some(e.to_string()), version);
            }
        }
    }
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(base_offset.unwrap_or(-1));
    if version >= LOG_START_VERSION {
        response.with_log_start_offset(log.log_start_offset().0)
    } else {
        response
    }
}
