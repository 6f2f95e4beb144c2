//! Per-partition batching: records in, ready batches out.
//!
//! Each partition has at most one open batch (a [`BatchBuilder`]) and a
//! queue of closed ones. A batch closes when it reaches `batch_size` bytes
//! (estimated before compression), when it is `linger` old, or on flush.
//! Every record of a batch shares one `Rc<BatchState>`: the delivery
//! future of a record is that pointer plus the record's index, so the only
//! allocations per record are the builder's own.
//!
//! Records for a topic whose metadata is not known yet are parked (with a
//! small slot each) until the sender has looked the topic up; that happens
//! only for the first records of each topic.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kelp_storage::batch::{BatchBuilder, Compression};

use super::partitioner::Partitioner;
use super::{ProducerRecord, RecordMetadata};
use crate::error::Error;
use crate::metadata::TopicMetadata;

/// Bytes counted per record on top of key, value and headers: the record's varints and attributes.
const RECORD_OVERHEAD_BYTES: usize = 24;

/// The outcome shared by every record of one batch.
#[derive(Debug)]
pub(crate) struct BatchState {
    partition: i32,
    /// The base offset the broker assigned (-1 with acks=0), or the batch's error.
    outcome: RefCell<Option<Result<i64, Error>>>,
    wakers: RefCell<Vec<Waker>>,
}

impl BatchState {
    fn new(partition: i32) -> Rc<BatchState> {
        Rc::new(BatchState {
            partition,
            outcome: RefCell::new(None),
            wakers: RefCell::new(Vec::new()),
        })
    }

    /// Records the outcome and wakes every waiting record.
    pub(crate) fn complete(&self, outcome: Result<i64, Error>) {
        {
            let mut slot = self.outcome.borrow_mut();
            if slot.is_some() {
                return;
            }
            *slot = Some(outcome);
        }
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    fn poll_record(&self, index: u32, cx: &mut Context<'_>) -> Poll<Result<RecordMetadata, Error>> {
        match &*self.outcome.borrow() {
            Some(Ok(base_offset)) => Poll::Ready(Ok(RecordMetadata {
                partition: self.partition,
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(index)
                },
            })),
            Some(Err(error)) => Poll::Ready(Err(error.clone())),
            None => {
                let mut wakers = self.wakers.borrow_mut();
                // Records of one batch are often awaited by one task: keep one waker for it.
                if !wakers.last().is_some_and(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// The batch a parked record joined and its index there, or why it joined none.
type BatchLink = Result<(Rc<BatchState>, u32), Error>;

/// Parked records of one topic, with the slot each one's future watches.
type ParkedRecords = Vec<(ProducerRecord, Rc<ParkedSlot>)>;

/// Where a parked record learns which batch it joined.
#[derive(Debug, Default)]
pub(crate) struct ParkedSlot {
    link: RefCell<Option<BatchLink>>,
    waker: RefCell<Option<Waker>>,
}

impl ParkedSlot {
    fn settle(&self, link: BatchLink) {
        *self.link.borrow_mut() = Some(link);
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Resolves to the record's partition and offset once the broker acknowledges its batch.
#[derive(Debug)]
#[must_use = "a record's delivery is only known by awaiting its future"]
pub struct DeliveryFuture {
    state: Delivery,
}

#[derive(Debug)]
enum Delivery {
    Batch { batch: Rc<BatchState>, index: u32 },
    Parked(Rc<ParkedSlot>),
    Done(Option<Result<RecordMetadata, Error>>),
}

impl DeliveryFuture {
    /// A future that is already resolved with `error`.
    pub(crate) fn failed(error: Error) -> DeliveryFuture {
        DeliveryFuture {
            state: Delivery::Done(Some(Err(error))),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                Delivery::Batch { batch, index } => return batch.poll_record(*index, cx),
                Delivery::Done(result) => {
                    return Poll::Ready(result.take().unwrap_or(Err(Error::Closed)));
                }
                Delivery::Parked(slot) => {
                    let link = slot.link.borrow_mut().take();
                    self.state = match link {
                        Some(Ok((batch, index))) => Delivery::Batch { batch, index },
                        Some(Err(error)) => Delivery::Done(Some(Err(error))),
                        None => {
                            *slot.waker.borrow_mut() = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                    };
                }
            }
        }
    }
}

/// What the accumulator needs to know of the producer's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub(crate) batch_size: usize,
    pub(crate) linger: Duration,
    pub(crate) compression: Compression,
    pub(crate) partitioner: Partitioner,
    pub(crate) buffer_memory_bytes: usize,
}

/// A closed batch waiting to be sent.
#[derive(Debug)]
pub(crate) struct ReadyBatch {
    pub(crate) topic: Rc<str>,
    pub(crate) partition: i32,
    pub(crate) builder: BatchBuilder,
    pub(crate) state: Rc<BatchState>,
    /// Estimated bytes, given back to the buffer when the batch is done.
    pub(crate) bytes: usize,
}

impl ReadyBatch {
    /// Fails every record of the batch.
    pub(crate) fn fail(&self, error: Error) {
        self.state.complete(Err(error));
    }
}

#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    state: Rc<BatchState>,
    bytes: usize,
    created: Instant,
}

#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
}

#[derive(Debug)]
struct TopicQueues {
    name: Rc<str>,
    meta: Rc<TopicMetadata>,
    partitions: Vec<PartitionQueue>,
    round_robin: Cell<u32>,
}

/// One produce request's worth of batches for one broker.
#[derive(Debug)]
pub(crate) struct Drained {
    pub(crate) leader: i32,
    pub(crate) batches: Vec<ReadyBatch>,
}

/// All batches of one producer.
#[derive(Debug)]
pub(crate) struct Accumulator {
    limits: BatchLimits,
    topics: HashMap<Rc<str>, TopicQueues, ahash::RandomState>,
    parked: HashMap<Rc<str>, ParkedRecords, ahash::RandomState>,
    /// Parked topics whose lookup has started, so the sender starts one per topic.
    resolving: Vec<Rc<str>>,
    /// Estimated bytes of records not yet acknowledged (open, ready, in flight, parked).
    buffered_bytes: usize,
    /// Batches not yet closed or drained, across all partitions.
    batches: usize,
    /// Where the next drain starts, so no partition is always last.
    rotation: usize,
}

/// What an append asks of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nothing new for the sender.
    No,
    /// A batch opened (a new linger deadline), closed, or a topic needs a lookup.
    Yes,
}

impl Accumulator {
    pub(crate) fn new(limits: BatchLimits) -> Accumulator {
        Accumulator {
            limits,
            topics: HashMap::default(),
            parked: HashMap::default(),
            resolving: Vec::new(),
            buffered_bytes: 0,
            batches: 0,
            rotation: 0,
        }
    }

    /// Estimated bytes of a record in a batch.
    pub(crate) fn record_bytes(record: &ProducerRecord) -> usize {
        let field = |f: &Option<Bytes>| f.as_ref().map_or(0, Bytes::len);
        RECORD_OVERHEAD_BYTES
            + field(&record.key)
            + field(&record.value)
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + field(v) + 2)
                .sum::<usize>()
    }

    /// Whether a record of `bytes` fits the buffer now (one record always fits an empty buffer).
    pub(crate) fn has_room(&self, bytes: usize) -> bool {
        self.buffered_bytes == 0 || self.buffered_bytes + bytes <= self.limits.buffer_memory_bytes
    }

    /// Whether nothing is buffered (everything sent was acknowledged or failed).
    pub(crate) fn is_empty(&self) -> bool {
        self.buffered_bytes == 0
    }

    /// Gives back the bytes of a finished batch.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.buffered_bytes = self.buffered_bytes.saturating_sub(bytes);
    }

    /// Adds a record to its partition's open batch.
    pub(crate) fn append(
        &mut self,
        record: ProducerRecord,
    ) -> Result<(DeliveryFuture, Wake), Error> {
        let bytes = Self::record_bytes(&record);
        if !self.has_room(bytes) {
            return Err(Error::BufferFull {
                limit_bytes: self.limits.buffer_memory_bytes,
            });
        }
        if !self.topics.contains_key(&*record.topic) {
            let slot = Rc::new(ParkedSlot::default());
            let first = !self.parked.contains_key(&*record.topic);
            self.parked
                .entry(record.topic.clone())
                .or_default()
                .push((record, slot.clone()));
            self.buffered_bytes += bytes;
            let future = DeliveryFuture {
                state: Delivery::Parked(slot),
            };
            return Ok((future, if first { Wake::Yes } else { Wake::No }));
        }
        let (batch, index, wake) = self.append_known(record, bytes)?;
        self.buffered_bytes += bytes;
        Ok((
            DeliveryFuture {
                state: Delivery::Batch { batch, index },
            },
            wake,
        ))
    }

    /// Appends to a topic whose metadata is known; the caller accounts the bytes.
    fn append_known(
        &mut self,
        record: ProducerRecord,
        bytes: usize,
    ) -> Result<(Rc<BatchState>, u32, Wake), Error> {
        let limits = self.limits;
        let topic = self
            .topics
            .get_mut(&*record.topic)
            .ok_or_else(|| Error::UnknownTopic(record.topic.to_string()))?;
        let count = u32::try_from(topic.partitions.len()).unwrap_or(u32::MAX);
        if count == 0 {
            return Err(Error::UnknownTopic(record.topic.to_string()));
        }
        let partition = match record.partition {
            Some(p) if u32::try_from(p).is_ok_and(|p| p < count) => p,
            Some(p) => {
                return Err(Error::UnknownPartition {
                    topic: record.topic.to_string(),
                    partition: p,
                })
            }
            None => limits
                .partitioner
                .partition(record.key.as_deref(), count, &topic.round_robin),
        };
        // partition < count, which is the length of `partitions`.
        let queue = &mut topic.partitions[partition as usize];
        let mut wake = Wake::No;
        if queue
            .open
            .as_ref()
            .is_some_and(|open| open.bytes + bytes > limits.batch_size)
        {
            close(queue, &topic.name, partition);
            self.batches -= 1;
            wake = Wake::Yes;
        }
        let open = queue.open.get_or_insert_with(|| {
            wake = Wake::Yes;
            self.batches += 1;
            OpenBatch {
                builder: BatchBuilder::new(limits.compression),
                state: BatchState::new(partition),
                bytes: 0,
                created: Instant::now(),
            }
        });
        let timestamp = record.timestamp_ms.unwrap_or_else(now_ms);
        if record.headers.is_empty() {
            open.builder.push(
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &[],
            );
        } else {
            let headers: Vec<(&[u8], Option<&[u8]>)> = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect();
            open.builder.push(
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
            );
        }
        open.bytes += bytes;
        // The builder counts in i32, so the index fits a u32.
        let index = (open.builder.len() - 1) as u32;
        let state = open.state.clone();
        if open.bytes >= limits.batch_size {
            close(queue, &topic.name, partition);
            self.batches -= 1;
            wake = Wake::Yes;
        }
        Ok((state, index, wake))
    }

    /// Topics with parked records whose lookup has not started; marks them started.
    pub(crate) fn topics_to_resolve(&mut self) -> Vec<Rc<str>> {
        let new: Vec<Rc<str>> = self
            .parked
            .keys()
            .filter(|t| !self.resolving.contains(t))
            .cloned()
            .collect();
        self.resolving.extend(new.iter().cloned());
        new
    }

    /// Installs (or updates) a topic's metadata and moves its parked records into batches.
    pub(crate) fn resolve(&mut self, topic: &Rc<str>, meta: Result<Rc<TopicMetadata>, Error>) {
        self.resolving.retain(|t| t != topic);
        let parked = self.parked.remove(topic).unwrap_or_default();
        match meta {
            Ok(meta) => {
                self.update_metadata(topic, meta);
                for (record, slot) in parked {
                    let bytes = Self::record_bytes(&record);
                    match self.append_known(record, bytes) {
                        Ok((batch, index, _)) => slot.settle(Ok((batch, index))),
                        Err(error) => {
                            self.release(bytes);
                            slot.settle(Err(error));
                        }
                    }
                }
            }
            Err(error) => {
                for (record, slot) in parked {
                    self.release(Self::record_bytes(&record));
                    slot.settle(Err(error.clone()));
                }
            }
        }
    }

    /// Replaces a topic's metadata (new leaders, more partitions).
    pub(crate) fn update_metadata(&mut self, topic: &Rc<str>, meta: Rc<TopicMetadata>) {
        let queues = self
            .topics
            .entry(topic.clone())
            .or_insert_with(|| TopicQueues {
                name: topic.clone(),
                meta: meta.clone(),
                partitions: Vec::new(),
                round_robin: Cell::new(0),
            });
        // Partitions are only ever added in Kafka.
        while queues.partitions.len() < meta.partitions.len() {
            queues.partitions.push(PartitionQueue::default());
        }
        queues.meta = meta;
    }

    /// The earliest time an open batch's linger runs out.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.batches == 0 {
            return None;
        }
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|q| q.open.as_ref().map(|o| o.created + self.limits.linger))
            .min()
    }

    /// Closes lingered (or, when `flushing`, all) open batches and takes, per leader that
    /// `can_send` to, one request's worth: at most one batch per partition (Kafka takes one
    /// batch per partition per request) and about `max_request_bytes`.
    ///
    /// Batches whose partition has no leader fail at once: without idempotence the
    /// producer does not retry, so it does not hold them either.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        flushing: bool,
        max_request_bytes: usize,
        mut can_send: impl FnMut(i32) -> bool,
    ) -> (Vec<Drained>, Vec<Rc<str>>) {
        let linger = self.limits.linger;
        let mut requests: Vec<Drained> = Vec::new();
        let mut request_bytes: Vec<usize> = Vec::new();
        let mut stale: Vec<Rc<str>> = Vec::new();
        let mut released = 0;
        self.rotation = self.rotation.wrapping_add(1);
        for topic in self.topics.values_mut() {
            let count = topic.partitions.len();
            for step in 0..count {
                let partition_index = (self.rotation + step) % count;
                let queue = &mut topic.partitions[partition_index];
                // The index came from an i32 partition count.
                let partition = partition_index as i32;
                if queue
                    .open
                    .as_ref()
                    .is_some_and(|o| flushing || now.duration_since(o.created) >= linger)
                {
                    close(queue, &topic.name, partition);
                    self.batches -= 1;
                }
                if queue.ready.is_empty() {
                    continue;
                }
                let leader = match topic.meta.leader(partition) {
                    Ok(leader) => leader,
                    Err(error) => {
                        for batch in queue.ready.drain(..) {
                            released += batch.bytes;
                            batch.fail(error.clone());
                        }
                        if !stale.contains(&topic.name) {
                            stale.push(topic.name.clone());
                        }
                        continue;
                    }
                };
                let slot = match requests.iter().position(|r| r.leader == leader) {
                    Some(slot) => slot,
                    None if can_send(leader) => {
                        requests.push(Drained {
                            leader,
                            batches: Vec::new(),
                        });
                        request_bytes.push(0);
                        requests.len() - 1
                    }
                    None => continue,
                };
                let full = request_bytes[slot] > 0
                    && request_bytes[slot] + queue.ready[0].bytes > max_request_bytes;
                if full {
                    continue;
                }
                if let Some(batch) = queue.ready.pop_front() {
                    request_bytes[slot] += batch.bytes;
                    requests[slot].batches.push(batch);
                }
            }
        }
        self.release(released);
        (requests, stale)
    }
}

impl Drop for Accumulator {
    fn drop(&mut self) {
        // Records never sent must not leave their futures waiting forever.
        for topic in self.topics.values_mut() {
            for queue in &mut topic.partitions {
                if let Some(open) = queue.open.take() {
                    open.state.complete(Err(Error::Closed));
                }
                for batch in queue.ready.drain(..) {
                    batch.fail(Error::Closed);
                }
            }
        }
        for (_, parked) in self.parked.drain() {
            for (_, slot) in parked {
                slot.settle(Err(Error::Closed));
            }
        }
    }
}

/// Moves a partition's open batch to its ready queue.
fn close(queue: &mut PartitionQueue, topic: &Rc<str>, partition: i32) {
    if let Some(open) = queue.open.take() {
        queue.ready.push_back(ReadyBatch {
            topic: topic.clone(),
            partition,
            builder: open.builder,
            state: open.state,
            bytes: open.bytes,
        });
    }
}

/// Wall-clock milliseconds since the Unix epoch, the record timestamp Kafka expects.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMetadata;
    use futures_lite::future::poll_once;

    fn meta(partitions: i32, leader: i32) -> Rc<TopicMetadata> {
        Rc::new(TopicMetadata {
            name: "t".to_owned(),
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| PartitionMetadata {
                    partition: p,
                    leader,
                    leader_epoch: 0,
                    replicas: vec![leader],
                    isr: vec![leader],
                })
                .collect(),
        })
    }

    fn limits(batch_size: usize) -> BatchLimits {
        BatchLimits {
            batch_size,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            partitioner: Partitioner::Murmur2Key,
            buffer_memory_bytes: 1 << 20,
        }
    }

    fn record(partition: i32, value: &'static [u8]) -> ProducerRecord {
        ProducerRecord::new("t", Bytes::from_static(value)).with_partition(partition)
    }

    #[test]
    fn batches_close_at_batch_size_and_share_one_state() {
        let mut acc = Accumulator::new(limits(3 * (RECORD_OVERHEAD_BYTES + 1)));
        acc.update_metadata(&Rc::from("t"), meta(2, 7));
        let mut futures = Vec::new();
        for _ in 0..4 {
            let (future, _) = acc.append(record(0, b"x")).expect("room");
            futures.push(future);
        }
        let now = Instant::now();
        // The first three filled a batch; the fourth is still lingering.
        let (drained, stale) = acc.drain(now, false, usize::MAX, |_| true);
        assert!(stale.is_empty());
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].leader, 7);
        assert_eq!(drained[0].batches.len(), 1);
        let batch = &drained[0].batches[0];
        assert_eq!(batch.builder.len(), 3);
        let Delivery::Batch { batch: first, .. } = &futures[0].state else {
            panic!("a known topic gives a batch delivery");
        };
        let Delivery::Batch {
            batch: third,
            index,
        } = &futures[2].state
        else {
            panic!("a known topic gives a batch delivery");
        };
        assert!(Rc::ptr_eq(first, third) && Rc::ptr_eq(first, &batch.state));
        assert_eq!(*index, 2);
        batch.state.complete(Ok(100));
        let third = poll_once(&mut futures[2]).now_or_never_ready();
        assert_eq!(third.expect("ready").expect("acknowledged").offset, 102);
        // The lingering batch goes once flushing.
        let (drained, _) = acc.drain(now, true, usize::MAX, |_| true);
        assert_eq!(drained[0].batches[0].builder.len(), 1);
    }

    #[test]
    fn one_batch_per_partition_per_request_and_busy_leaders_wait() {
        let mut acc = Accumulator::new(limits(1));
        acc.update_metadata(&Rc::from("t"), meta(2, 1));
        for _ in 0..3 {
            let _ = acc.append(record(0, b"a")).expect("room");
            let _ = acc.append(record(1, b"b")).expect("room");
        }
        let now = Instant::now();
        let (drained, _) = acc.drain(now, false, usize::MAX, |_| false);
        assert!(
            drained.is_empty(),
            "a leader at its in-flight limit gets nothing"
        );
        let (drained, _) = acc.drain(now, false, usize::MAX, |_| true);
        assert_eq!(drained.len(), 1);
        let mut partitions: Vec<i32> = drained[0].batches.iter().map(|b| b.partition).collect();
        partitions.sort_unstable();
        assert_eq!(partitions, [0, 1]);
    }

    #[test]
    fn a_full_buffer_refuses_records_and_release_makes_room() {
        let mut small = limits(1 << 10);
        small.buffer_memory_bytes = 2 * (RECORD_OVERHEAD_BYTES + 1);
        let mut acc = Accumulator::new(small);
        acc.update_metadata(&Rc::from("t"), meta(1, 1));
        let _ = acc.append(record(0, b"a")).expect("room");
        let _ = acc.append(record(0, b"b")).expect("room");
        assert!(matches!(
            acc.append(record(0, b"c")),
            Err(Error::BufferFull { .. })
        ));
        acc.release(RECORD_OVERHEAD_BYTES + 1);
        assert!(acc.append(record(0, b"c")).is_ok());
    }

    #[test]
    fn parked_records_join_batches_once_the_topic_is_known() {
        let mut acc = Accumulator::new(limits(1 << 10));
        let (mut future, wake) = acc.append(record(0, b"a")).expect("room");
        assert_eq!(wake, Wake::Yes);
        assert_eq!(acc.topics_to_resolve(), vec![Rc::<str>::from("t")]);
        assert!(acc.topics_to_resolve().is_empty(), "one lookup per topic");
        assert!(poll_once(&mut future).now_or_never_ready().is_none());
        acc.resolve(&Rc::from("t"), Ok(meta(1, 3)));
        let (drained, _) = acc.drain(Instant::now(), true, usize::MAX, |_| true);
        drained[0].batches[0].state.complete(Ok(40));
        assert_eq!(
            poll_once(&mut future).now_or_never_ready(),
            Some(Ok(RecordMetadata {
                partition: 0,
                offset: 40
            }))
        );
        let (mut unknown, _) = acc
            .append(ProducerRecord::new("nope", Bytes::from_static(b"x")))
            .expect("room");
        acc.resolve(&Rc::from("nope"), Err(Error::UnknownTopic("nope".into())));
        assert_eq!(
            poll_once(&mut unknown).now_or_never_ready(),
            Some(Err(Error::UnknownTopic("nope".into())))
        );
    }

    #[test]
    fn leaderless_partitions_fail_their_batches() {
        let mut acc = Accumulator::new(limits(1));
        acc.update_metadata(&Rc::from("t"), meta(1, -1));
        let (mut future, _) = acc.append(record(0, b"a")).expect("room");
        let (drained, stale) = acc.drain(Instant::now(), false, usize::MAX, |_| true);
        assert!(drained.is_empty());
        assert_eq!(stale, vec![Rc::<str>::from("t")]);
        assert!(matches!(
            poll_once(&mut future).now_or_never_ready(),
            Some(Err(Error::NoLeader { .. }))
        ));
        assert!(acc.is_empty());
    }

    /// Polls a future once outside an executor.
    trait NowOrNever<T> {
        fn now_or_never_ready(self) -> Option<T>;
    }

    impl<F: Future> NowOrNever<F::Output> for futures_lite::future::PollOnce<F> {
        fn now_or_never_ready(self) -> Option<F::Output> {
            futures_lite::future::block_on(self)
        }
    }
}
