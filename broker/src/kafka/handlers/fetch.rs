//! Fetch (key 1), v4-17: whole batches from each partition's log, long
//! polling on `max_wait_ms` / `min_bytes`, response and partition byte
//! limits, topic ids from v13. Incremental fetch sessions (KIP-227) are
//! declined the way Kafka allows: session id 0 in every response, so
//! clients keep sending full fetch requests.
//!
//! Partitions are read on their owning shards, all in parallel. When there
//! is too little data, the fetch asks each of those shards to tell it when
//! one of its partitions grows, and reads again.
//!
//! A `read_committed` fetch (isolation level 1) gets only batches below the
//! last stable offset, and the aborted transactions among them so the
//! client drops their records; `read_uncommitted` gets everything and a
//! null list, as Kafka answers.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{select, select_all, Either};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::Offset;

use crate::kafka::errors::ErrorCode;
use crate::kafka::ConnectionTurn;
use crate::shard::scatter::scatter;
use crate::shard::Shard;
use crate::topics::ShardId;

/// The longest a fetch waits for data, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Kafka's UNKNOWN_TOPIC_ID, for v13+ requests naming an unknown id.
const UNKNOWN_TOPIC_ID: i16 = 100;
/// `isolation_level` of a `read_committed` client.
const READ_COMMITTED: i8 = 1;

/// One partition to read, as sent to its shard.
#[derive(Clone)]
struct PartitionRead {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    /// Only what is below the last stable offset.
    committed: bool,
}

/// What a shard read of one partition.
struct ReadResult {
    error: i16,
    high_watermark: i64,
    last_stable: i64,
    log_start: i64,
    records: Bytes,
    /// For `read_committed`: the aborted transactions in what was read.
    aborted: Option<Vec<AbortedTransaction>>,
}

impl ReadResult {
    /// A partition that could not be read.
    fn failed(error: i16) -> ReadResult {
        ReadResult {
            error,
            high_watermark: -1,
            last_stable: -1,
            log_start: -1,
            records: Bytes::new(),
            aborted: None,
        }
    }
}

/// A requested partition: answered now (unknown topic) or read on a shard.
enum Slot {
    Known(i16),
    Routed,
}

/// Answers a Fetch request, waiting for data as it asks. The first read
/// happens in the request's `turn` (after the connection's earlier
/// requests); waiting for more data does not hold up later requests.
pub async fn handle(
    shard: &Rc<Shard>,
    request: FetchRequest,
    version: i16,
    turn: ConnectionTurn,
) -> FetchResponse {
    turn.wait().await;
    let mut turn = Some(turn);
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let (slots, reads) = route(shard, &request, version);
    let min_bytes = i64::from(request.min_bytes.max(1));
    let max_bytes = request.max_bytes.max(0);
    loop {
        let results = read_all(shard, &reads, max_bytes).await;
        // Later requests of the connection may go on while this one waits.
        drop(turn.take());
        let bytes: i64 = results.iter().map(|r| r.records.len() as i64).sum();
        let errors = results.iter().any(|r| r.error != 0)
            || slots.iter().any(|s| matches!(s, Slot::Known(_)));
        if bytes >= min_bytes
            || errors
            || Instant::now() >= deadline
            || shard.stopping.is_triggered()
        {
            return respond(&request, version, &slots, results, max_bytes);
        }
        wait_for_appends(shard, &reads, &results, deadline).await;
    }
}

/// Resolves each requested partition's topic name and owning shard.
fn route(
    shard: &Shard,
    request: &FetchRequest,
    version: i16,
) -> (Vec<Slot>, Vec<(ShardId, PartitionRead)>) {
    let topics = shard.topics();
    let mut slots = Vec::new();
    let mut reads = Vec::new();
    for topic in &request.topics {
        let name = if version >= 13 {
            topics
                .topics
                .values()
                .find(|t| t.id == topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        for p in &topic.partitions {
            let owner = name.as_deref().and_then(|n| shard.owner(n, p.partition));
            match (owner, &name) {
                (Some(owner), Some(name)) => {
                    slots.push(Slot::Routed);
                    reads.push((
                        owner,
                        PartitionRead {
                            topic: name.clone(),
                            partition: p.partition,
                            offset: p.fetch_offset,
                            max_bytes: p.partition_max_bytes,
                            committed: request.isolation_level == READ_COMMITTED,
                        },
                    ));
                }
                _ if version >= 13 && name.is_none() => slots.push(Slot::Known(UNKNOWN_TOPIC_ID)),
                _ => slots.push(Slot::Known(ErrorCode::UnknownTopicOrPartition.code())),
            }
        }
    }
    (slots, reads)
}

/// Reads every routed partition on its shard, in request order.
async fn read_all(
    shard: &Rc<Shard>,
    reads: &[(ShardId, PartitionRead)],
    max_bytes: i32,
) -> Vec<ReadResult> {
    scatter(shard, reads.to_vec(), move |owner, reads| async move {
        read_on_owner(&owner, reads, max_bytes).await
    })
    .await
    .into_iter()
    .map(|result| result.unwrap_or_else(|e| ReadResult::failed(ErrorCode::from(e).code())))
    .collect()
}

/// On the owning shard: reads its partitions within `max_bytes` in all.
/// As KIP-74, the first partition with data returns at least one whole
/// batch even past the limits; later ones only within them.
async fn read_on_owner(
    shard: &Shard,
    reads: Vec<PartitionRead>,
    max_bytes: i32,
) -> Vec<ReadResult> {
    let mut budget = i64::from(max_bytes);
    let mut total = 0i64;
    let mut results = Vec::with_capacity(reads.len());
    for read in reads {
        let Some(log) = shard.log(&read.topic, read.partition) else {
            results.push(ReadResult::failed(
                ErrorCode::UnknownTopicOrPartition.code(),
            ));
            continue;
        };
        let last_stable = log.last_stable_offset().0;
        let mut result = ReadResult {
            error: 0,
            high_watermark: log.log_end_offset().0,
            last_stable,
            log_start: log.log_start_offset().0,
            records: Bytes::new(),
            aborted: read.committed.then(Vec::new),
        };
        let limit = i64::from(read.max_bytes.max(0)).min(budget);
        let nothing_stable = read.committed && read.offset >= last_stable;
        if (limit <= 0 && total > 0) || (nothing_stable && read.offset <= result.high_watermark) {
            results.push(result);
            continue;
        }
        match log
            .read(
                Offset(read.offset),
                usize::try_from(limit.max(1)).unwrap_or(1),
            )
            .await
        {
            Ok(mut found) => {
                if read.committed {
                    // The last stable offset is a batch boundary: the first
                    // batch of the oldest open transaction, or the log end.
                    found.batches.retain(|b| base_offset(b) < last_stable);
                    let upper = found
                        .batches
                        .last()
                        .map_or(read.offset, |b| last_offset(b) + 1);
                    result.aborted = Some(
                        log.aborted_txns(Offset(read.offset), Offset(upper))
                            .into_iter()
                            .map(|t| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(t.producer_id))
                                    .with_first_offset(t.first_offset)
                            })
                            .collect(),
                    );
                }
                result.records = concat(found.batches);
                total += result.records.len() as i64;
                budget -= result.records.len() as i64;
            }
            Err(e) => result.error = ErrorCode::from_storage(&e).code(),
        }
        results.push(result);
    }
    results
}

/// Waits until a partition read grows past the end seen in `results`, the
/// deadline passes, or the broker stops. Each owning shard watches its own
/// partitions; the first to see growth ends the wait.
async fn wait_for_appends(
    shard: &Rc<Shard>,
    reads: &[(ShardId, PartitionRead)],
    results: &[ReadResult],
    deadline: Instant,
) {
    let mut per_shard: std::collections::BTreeMap<ShardId, Vec<(String, i32, i64)>> =
        std::collections::BTreeMap::new();
    for ((owner, read), result) in reads.iter().zip(results) {
        per_shard.entry(*owner).or_default().push((
            read.topic.clone(),
            read.partition,
            result.high_watermark,
        ));
    }
    let watches: Vec<_> = per_shard
        .into_iter()
        .map(|(owner, seen)| {
            Box::pin(shard.call(owner, move |s| async move {
                wait_on_owner(&s, &seen, deadline).await;
            }))
        })
        .collect();
    let now = Instant::now();
    if watches.is_empty() || now >= deadline {
        return;
    }
    let timer = Box::pin(glommio::timer::sleep(deadline - now));
    let stopping = Box::pin(shard.stopping.triggered());
    match select(select_all(watches), select(timer, stopping)).await {
        Either::Left(_) | Either::Right(_) => {}
    }
}

/// On the owning shard: returns once one of `seen`'s partitions has grown
/// past the end seen (or is gone), at the deadline, or at shutdown.
async fn wait_on_owner(shard: &Shard, seen: &[(String, i32, i64)], deadline: Instant) {
    loop {
        // Taken before the check, so an append in between is not missed.
        let seen_generation = shard.appended.generation();
        let grown = seen.iter().any(|(topic, partition, end)| {
            shard
                .log(topic, *partition)
                .is_none_or(|log| log.log_end_offset().0 > *end)
        });
        let now = Instant::now();
        if grown || now >= deadline || shard.stopping.is_triggered() {
            return;
        }
        let appended = shard.appended.changed(seen_generation);
        let timer = glommio::timer::sleep(deadline - now);
        let stopping = shard.stopping.triggered();
        futures_util::pin_mut!(appended, timer, stopping);
        select(appended, select(timer, stopping)).await;
    }
}

/// Builds the response in request order. Across shards the response limit
/// is applied again: after the first partition with data, a partition whose
/// records would pass `max_bytes` is answered without them.
fn respond(
    request: &FetchRequest,
    version: i16,
    slots: &[Slot],
    results: Vec<ReadResult>,
    max_bytes: i32,
) -> FetchResponse {
    let mut results = results.into_iter();
    let mut slots = slots.iter();
    let mut total = 0i64;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let base = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1);
            let slot = slots.next().expect("one slot per requested partition");
            let data = match slot {
                Slot::Known(code) => base.with_error_code(*code),
                Slot::Routed => {
                    let read = results.next().expect("one read per routed partition");
                    let mut data = base
                        .with_error_code(read.error)
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.last_stable)
                        .with_aborted_transactions(read.aborted);
                    if version >= 5 {
                        data.log_start_offset = read.log_start;
                    }
                    let len = read.records.len() as i64;
                    if read.error == 0 {
                        if total > 0 && total + len > i64::from(max_bytes) {
                            data = data.with_records(Some(Bytes::new()));
                        } else {
                            total += len;
                            data = data.with_records(Some(read.records));
                        }
                    }
                    data
                }
            };
            partitions.push(data);
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
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics)
}

/// A stored batch's base offset (its first 8 bytes; reads return whole,
/// validated batches).
fn base_offset(batch: &Bytes) -> i64 {
    batch
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MAX, i64::from_be_bytes)
}

/// A stored batch's last offset: base offset plus its last offset delta.
fn last_offset(batch: &Bytes) -> i64 {
    let delta = batch
        .get(23..27)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes);
    base_offset(batch) + i64::from(delta)
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
