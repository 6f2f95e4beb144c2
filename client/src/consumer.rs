//! An assign-only consumer (no groups, no committed offsets) with a fetch kept in flight per broker.
//!
//! [`Consumer::poll`] waits for the first fetch response from any broker,
//! decodes it, and before returning sends that broker's next fetch from the
//! new positions, so the broker is already gathering the next records
//! while the caller processes these. Only one fetch per broker is in
//! flight: the next one's offsets come from the previous one's records.
//!
//! A position out of range (the log was truncated or deleted under the
//! consumer) is reset to the partition's earliest offset with ListOffsets,
//! as Kafka's `auto.offset.reset=earliest` does.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use glommio::Task;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest};
use kelp_storage::batch::{peek_total_len, RecordBatch};

use crate::admin::millis;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::metadata::{topic_name, Cluster};

/// Kafka's OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// The most one batch may decompress to; bounds memory against a hostile or corrupt batch.
const MAX_DECOMPRESSED_BATCH_BYTES: usize = 256 * 1024 * 1024;

/// How long to wait before trying again when no partition can be fetched (no leader).
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(100);

/// Where to start reading an assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The oldest offset still in the log.
    Earliest,
    /// The end of the log: only records produced from now on.
    Latest,
    /// This offset.
    At(i64),
}

/// How the consumer fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// How long the broker may hold a fetch waiting for `fetch_min_bytes`.
    pub fetch_max_wait: Duration,
    /// Bytes the broker waits for before answering a fetch.
    pub fetch_min_bytes: i32,
    /// Most bytes in one fetch response (the first batch is always returned whole).
    pub fetch_max_bytes: i32,
    /// Most bytes per partition in one fetch response.
    pub partition_max_bytes: i32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
        }
    }
}

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The topic.
    pub topic: Rc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Create time (or log append time, per the topic) in ms since the epoch.
    pub timestamp_ms: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
    /// Headers in order (keys read as UTF-8, invalid bytes replaced).
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Where an assigned partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Needs a ListOffsets (Earliest or Latest) first.
    Reset(StartOffset),
    /// The next offset to fetch.
    At(i64),
}

type PartitionKey = (Rc<str>, i32);

/// A fetch sent to one broker.
struct InFlight {
    leader: i32,
    /// The partitions and the offsets they were fetched from.
    partitions: Vec<(PartitionKey, i64)>,
    task: Task<Result<FetchResponse, Error>>,
}

/// An assign-only consumer; must be used inside a glommio executor.
pub struct Consumer {
    cluster: Rc<Cluster>,
    config: ConsumerConfig,
    positions: BTreeMap<PartitionKey, Position>,
    /// Dropping the consumer drops these, which cancels the fetches.
    in_flight: Vec<InFlight>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.config)
            .field("positions", &self.positions)
            .field("fetches_in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Consumer {
    /// Connects to the cluster (fails at once if no bootstrap broker answers).
    pub async fn connect(
        config: ClientConfig,
        consumer: ConsumerConfig,
    ) -> Result<Consumer, Error> {
        Ok(Consumer::with_cluster(
            Cluster::connect(config).await?,
            consumer,
        ))
    }

    /// A consumer on an existing cluster handle.
    pub fn with_cluster(cluster: Rc<Cluster>, config: ConsumerConfig) -> Consumer {
        Consumer {
            cluster,
            config,
            positions: BTreeMap::new(),
            in_flight: Vec::new(),
        }
    }

    /// Reads `partitions` of `topic` from `start` (replacing their positions if already assigned).
    pub fn assign(&mut self, topic: &str, partitions: &[i32], start: StartOffset) {
        let topic: Rc<str> = Rc::from(topic);
        let position = match start {
            StartOffset::At(offset) => Position::At(offset),
            reset => Position::Reset(reset),
        };
        for &partition in partitions {
            self.positions.insert((topic.clone(), partition), position);
        }
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_topic(&mut self, topic: &str, start: StartOffset) -> Result<(), Error> {
        let meta = self.cluster.refresh_topic(topic).await?;
        let partitions: Vec<i32> = meta.partitions.iter().map(|p| p.partition).collect();
        self.assign(topic, &partitions, start);
        Ok(())
    }

    /// Stops reading a partition.
    pub fn unassign(&mut self, topic: &str, partition: i32) {
        self.positions
            .retain(|(t, p), _| !(&**t == topic && *p == partition));
    }

    /// The next offset to be read from a partition, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions
            .iter()
            .find(|((t, p), _)| &**t == topic && *p == partition)
            .and_then(|(_, position)| match position {
                Position::At(offset) => Some(*offset),
                Position::Reset(_) => None,
            })
    }

    /// The records of the next fetch response (possibly none, after `fetch_max_wait`).
    pub async fn poll(&mut self) -> Result<Vec<ConsumedRecord>, Error> {
        if self.positions.is_empty() {
            return Err(Error::Config("poll with no partition assigned".to_owned()));
        }
        loop {
            self.reset_positions().await?;
            self.start_fetches().await?;
            if self.in_flight.is_empty() {
                glommio::timer::sleep(NO_LEADER_BACKOFF).await;
                continue;
            }
            let (fetch, response) = self.next_response().await;
            let records = self.take_records(&fetch, response);
            // Send the next fetch before handing the records over (pipelining).
            self.start_fetches().await?;
            return records;
        }
    }

    /// Waits for the first in-flight fetch to answer and removes it.
    async fn next_response(&mut self) -> (InFlight, Result<FetchResponse, Error>) {
        let in_flight = &mut self.in_flight;
        let (index, response) = poll_fn(|cx| {
            for (index, fetch) in in_flight.iter_mut().enumerate() {
                if let Poll::Ready(response) = Pin::new(&mut fetch.task).poll(cx) {
                    return Poll::Ready((index, response));
                }
            }
            Poll::Pending
        })
        .await;
        (in_flight.swap_remove(index), response)
    }

    /// Sends a fetch to every leader that has assigned partitions and none in flight.
    async fn start_fetches(&mut self) -> Result<(), Error> {
        let mut by_leader: BTreeMap<i32, Vec<(PartitionKey, i64)>> = BTreeMap::new();
        for ((topic, partition), position) in &self.positions {
            let Position::At(offset) = *position else {
                continue;
            };
            let key = (topic.clone(), *partition);
            let fetching = self
                .in_flight
                .iter()
                .any(|f| f.partitions.iter().any(|(k, _)| *k == key));
            if fetching {
                continue;
            }
            let meta = self.cluster.topic(topic).await?;
            let leader = match meta.leader(*partition) {
                Ok(leader) => leader,
                Err(Error::NoLeader { .. }) => {
                    self.cluster.invalidate_topic(topic);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if self.in_flight.iter().any(|f| f.leader == leader) {
                continue;
            }
            by_leader.entry(leader).or_default().push((key, offset));
        }
        for (leader, partitions) in by_leader {
            let connection = self.cluster.node(leader).await?;
            let request = self.fetch_request(&partitions);
            let task = glommio::spawn_local(async move { connection.call(request).await });
            self.in_flight.push(InFlight {
                leader,
                partitions,
                task,
            });
        }
        Ok(())
    }

    fn fetch_request(&self, partitions: &[(PartitionKey, i64)]) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for ((topic, partition), offset) in partitions {
            let fetch = FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(*offset)
                .with_current_leader_epoch(-1)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(self.config.partition_max_bytes);
            match topics.iter_mut().find(|t| t.topic.as_str() == &**topic) {
                Some(t) => t.partitions.push(fetch),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![fetch]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(millis(self.config.fetch_max_wait))
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            .with_isolation_level(0)
            // No fetch session: epoch -1 asks for a plain full fetch every time.
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// Decodes a fetch response and moves the positions past what it returned.
    fn take_records(
        &mut self,
        fetch: &InFlight,
        response: Result<FetchResponse, Error>,
    ) -> Result<Vec<ConsumedRecord>, Error> {
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                if error.invalidates_metadata() {
                    for ((topic, _), _) in &fetch.partitions {
                        self.cluster.invalidate_topic(topic);
                    }
                }
                return Err(error);
            }
        };
        if let Some(error) = Error::from_code(response.error_code, None) {
            return Err(error);
        }
        let mut records = Vec::new();
        for topic in &response.responses {
            for data in &topic.partitions {
                let Some((key, fetched_from)) = fetch
                    .partitions
                    .iter()
                    .find(|((t, p), _)| &**t == topic.topic.as_str() && *p == data.partition_index)
                else {
                    continue;
                };
                // Reassigned or reset while the fetch was out: its data is stale.
                if self.positions.get(key) != Some(&Position::At(*fetched_from)) {
                    continue;
                }
                match data.error_code {
                    0 => {}
                    OFFSET_OUT_OF_RANGE => {
                        self.positions
                            .insert(key.clone(), Position::Reset(StartOffset::Earliest));
                        continue;
                    }
                    code => {
                        let error = Error::kafka(code, None);
                        if error.invalidates_metadata() {
                            self.cluster.invalidate_topic(&key.0);
                            continue;
                        }
                        return Err(error);
                    }
                }
                let Some(bytes) = data.records.clone() else {
                    continue;
                };
                let next =
                    decode_records(key, *fetched_from, bytes, &mut records).map_err(|reason| {
                        Error::Protocol {
                            addr: format!("node {}", fetch.leader),
                            reason: format!("{} partition {}: {reason}", key.0, key.1),
                        }
                    })?;
                self.positions.insert(key.clone(), Position::At(next));
            }
        }
        Ok(records)
    }

    /// Turns Earliest/Latest positions into offsets with ListOffsets, one request per leader.
    async fn reset_positions(&mut self) -> Result<(), Error> {
        let mut by_leader: BTreeMap<i32, Vec<(PartitionKey, i64)>> = BTreeMap::new();
        for ((topic, partition), position) in &self.positions {
            let timestamp = match position {
                Position::Reset(StartOffset::Latest) => -1,
                Position::Reset(_) => -2,
                Position::At(_) => continue,
            };
            let leader = self.cluster.topic(topic).await?.leader(*partition)?;
            by_leader
                .entry(leader)
                .or_default()
                .push(((topic.clone(), *partition), timestamp));
        }
        for (leader, partitions) in by_leader {
            let mut topics: Vec<ListOffsetsTopic> = Vec::new();
            for ((topic, partition), timestamp) in &partitions {
                let entry = ListOffsetsPartition::default()
                    .with_partition_index(*partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(*timestamp);
                match topics.iter_mut().find(|t| t.name.as_str() == &**topic) {
                    Some(t) => t.partitions.push(entry),
                    None => topics.push(
                        ListOffsetsTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(vec![entry]),
                    ),
                }
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(0)
                .with_timeout_ms(millis(self.cluster.config().request_timeout))
                .with_topics(topics);
            let response = self.cluster.node(leader).await?.call(request).await?;
            for topic in &response.topics {
                for answer in &topic.partitions {
                    let key: PartitionKey = (Rc::from(topic.name.as_str()), answer.partition_index);
                    if let Some(error) = Error::from_code(answer.error_code, None) {
                        if error.invalidates_metadata() {
                            self.cluster.invalidate_topic(&key.0);
                        }
                        return Err(error);
                    }
                    if let Some(position) = self.positions.get_mut(&key) {
                        *position = Position::At(answer.offset);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Appends the records of `bytes` at or after `from` to `out`; returns the next offset to fetch.
///
/// A batch cut off at the end (the response's byte limit) is left for the next fetch.
fn decode_records(
    (topic, partition): &PartitionKey,
    from: i64,
    mut bytes: Bytes,
    out: &mut Vec<ConsumedRecord>,
) -> Result<i64, String> {
    let mut next = from;
    while let Some(total) = peek_total_len(&bytes) {
        let total = total.map_err(|e| e.to_string())?;
        if bytes.len() < total {
            break;
        }
        let batch = RecordBatch::parse(bytes.split_to(total)).map_err(|e| e.to_string())?;
        if batch.last_offset() < next {
            continue;
        }
        if !batch.is_control() {
            let base_offset = batch.base_offset();
            for record in batch
                .records(MAX_DECOMPRESSED_BATCH_BYTES)
                .map_err(|e| e.to_string())?
            {
                let record = record.map_err(|e| e.to_string())?;
                let offset = record.offset(base_offset);
                // A fetch may start inside a batch: skip what came before the position.
                if offset < next {
                    continue;
                }
                out.push(ConsumedRecord {
                    topic: topic.clone(),
                    partition: *partition,
                    offset,
                    timestamp_ms: batch.record_timestamp(&record),
                    headers: record
                        .headers
                        .into_iter()
                        .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                        .collect(),
                    key: record.key,
                    value: record.value,
                });
            }
        }
        // Compaction leaves gaps; the next fetch starts after the batch, not after its last record.
        next = batch.last_offset() + 1;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelp_storage::batch::{BatchBuilder, Compression};

    fn batch(base_offset: i64, values: &[&str], codec: Compression) -> Vec<u8> {
        let mut builder = BatchBuilder::new(codec);
        for value in values {
            builder.push(1_000, Some(b"k"), Some(value.as_bytes()), &[(b"h", None)]);
        }
        builder.build(base_offset).expect("build").to_vec()
    }

    #[test]
    fn records_before_the_position_and_cut_batches_are_skipped() {
        let mut bytes = batch(10, &["a", "b", "c"], Compression::Zstd);
        bytes.extend(batch(13, &["d"], Compression::None));
        let third = batch(14, &["e"], Compression::None);
        bytes.extend(&third[..third.len() - 1]);
        let key: PartitionKey = (Rc::from("t"), 2);
        let mut out = Vec::new();
        let next = decode_records(&key, 11, Bytes::from(bytes), &mut out).expect("decodes");
        assert_eq!(next, 14, "the cut batch is fetched again");
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
        assert_eq!(out[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(out[0].headers, vec![("h".to_owned(), None)]);
        assert_eq!(out[0].timestamp_ms, 1_000);
        assert_eq!(out[2].partition, 2);
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let mut bytes = batch(0, &["a"], Compression::None);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let key: PartitionKey = (Rc::from("t"), 0);
        let error =
            decode_records(&key, 0, Bytes::from(bytes), &mut Vec::new()).expect_err("CRC mismatch");
        assert!(error.contains("CRC"), "{error}");
    }
}
