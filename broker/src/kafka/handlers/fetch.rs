//! Fetch (key 1), v4-17: whole batches from each partition's log, long
//! polling on `max_wait_ms` / `min_bytes`, response and partition byte
//! limits, topic ids from v13. Incremental fetch sessions (KIP-227) are
//! declined the way Kafka allows: session id 0 in every response, so
//! clients keep sending full fetch requests.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::Offset;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The longest a fetch waits for data, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Kafka's UNKNOWN_TOPIC_ID, for v13+ requests naming an unknown id.
const UNKNOWN_TOPIC_ID: i16 = 100;

/// Answers a Fetch request, waiting for data as it asks.
pub async fn handle(shard: &Shard, request: FetchRequest, version: i16) -> FetchResponse {
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    loop {
        let notified = shard.appended.notified();
        let (response, bytes, errors) = read_once(shard, &request, version).await;
        let now = Instant::now();
        if bytes >= i64::from(request.min_bytes.max(1)) || errors || now >= deadline {
            return response;
        }
        let timer = glommio::timer::sleep(deadline - now);
        futures_util::pin_mut!(notified, timer);
        futures_util::future::select(notified, timer).await;
    }
}

/// One pass over every requested partition: the response, the bytes it
/// holds, and whether any partition has an error (answered at once).
async fn read_once(
    shard: &Shard,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, i64, bool) {
    let mut budget = i64::from(request.max_bytes.max(0));
    let mut total = 0i64;
    let mut errors = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = if version >= 13 {
            shard
                .store
                .borrow()
                .topics
                .values()
                .find(|t| t.id == topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let base = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1);
            let log = name.as_deref().and_then(|n| shard.log(n, p.partition));
            let Some(log) = log else {
                errors = true;
                let code = if version >= 13 && name.is_none() {
                    UNKNOWN_TOPIC_ID
                } else {
                    ErrorCode::UnknownTopicOrPartition.code()
                };
                partitions.push(base.with_error_code(code));
                continue;
            };
            let (start, end) = (log.log_start_offset().0, log.log_end_offset().0);
            let mut data = base.with_high_watermark(end).with_last_stable_offset(end);
            if version >= 5 {
                data.log_start_offset = start;
            }
            // KIP-74: the first partition with data returns at least one
            // whole batch even past the limits; later ones only within them.
            let limit = i64::from(p.partition_max_bytes.max(0)).min(budget);
            if limit <= 0 && total > 0 {
                partitions.push(data);
                continue;
            }
            match log
                .read(
                    Offset(p.fetch_offset),
                    usize::try_from(limit.max(1)).unwrap_or(1),
                )
                .await
            {
                Ok(result) => {
                    let records = concat(result.batches);
                    let len = records.len() as i64;
                    total += len;
                    budget -= len;
                    partitions.push(data.with_records(Some(records)));
                }
                Err(e) => {
                    errors = true;
                    partitions.push(data.with_error_code(ErrorCode::from_storage(&e).code()));
                }
            }
        }
        let mut response = FetchableTopicResponse::default()
            .with_partitions(partitions)
            .with_topic_id(topic.topic_id);
        if version < 13 {
            response =
                response.with_topic(TopicName(StrBytes::from_string(topic.topic.0.to_string())));
        }
        topics.push(response);
    }
    (
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        total,
        errors,
    )
}

/// The batches as one buffer: a single read is passed through; batches
/// from the tail cache are joined (one copy).
fn concat(mut batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.pop().expect("one batch"),
        _ => {
            let mut out = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            for batch in batches {
                out.extend_from_slice(&batch);
            }
            out.freeze()
        }
    }
}
