//! Helpers for the consumer group tests (the classic protocol and KIP-848):
//! rdkafka producers and consumers that poll, wait for assignments and check
//! what arrived, and the raw requests both protocols share (FindCoordinator,
//! OffsetCommit, OffsetFetch).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::raw::{call, create_topic, topic_name};
use super::Broker;

/// Timeout of a single rdkafka call.
pub const TIMEOUT: Duration = Duration::from_secs(10);

// Kafka error codes.
pub const NONE: i16 = 0;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const INVALID_REQUEST: i16 = 42;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
pub const STALE_MEMBER_EPOCH: i16 = 113;

/// How a test's polls and waits behave.
#[derive(Clone, Copy)]
pub struct Polls {
    /// How long any one wait may take before the test fails.
    pub deadline: Duration,
    /// Whether polls may return transient consume errors (the broker is
    /// away for a restart) instead of failing the test.
    pub tolerate_errors: bool,
    /// Whether a wait for assignments fails as soon as a partition is held
    /// by two consumers at once.
    pub exclusive: bool,
}

// ---------------------------------------------------------------------------
// rdkafka clients

/// A classic-protocol group consumer (`client.id` `client_id`) with short
/// session and heartbeat intervals, the range assignor and no auto-commit,
/// reading from the beginning where nothing was committed.
pub fn classic_consumer(broker: &Broker, client_id: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("client.id", client_id)
        .set("group.id", group)
        .set("group.protocol", "classic")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        // Also the rebalance timeout: bounds a rebalance that waits for a
        // member which never rejoins.
        .set("max.poll.interval.ms", "15000")
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

/// Produces message `i` (value `m-<i>`, key `k-<i>`) for each `i` in
/// `range`, to partition `i % partitions`, all acknowledged.
pub fn produce(broker: &Broker, topic: &str, partitions: i32, range: std::ops::Range<usize>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in range {
        let (key, value) = (format!("k-{i}"), format!("m-{i}"));
        producer
            .send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(&value)
                    .partition((i % partitions as usize) as i32),
            )
            .expect("queued");
    }
    producer.flush(TIMEOUT).expect("every message acknowledged");
}

/// Creates `topic` with `partitions` partitions.
pub fn create(broker: &Broker, topic: &str, partitions: i32) {
    let (error, message) = create_topic(broker, topic, partitions, &[]);
    assert_eq!(error, NONE, "CreateTopics {topic}: {message:?}");
}

/// The partitions of `topic` assigned to `consumer`.
pub fn assigned(consumer: &BaseConsumer, topic: &str) -> BTreeSet<i32> {
    consumer
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect()
}

/// A consumed message: partition, offset, value.
pub type Consumed = (i32, i64, String);

/// Polls every consumer once (briefly); returns what each received.
pub fn poll_once(consumers: &[&BaseConsumer], polls: Polls) -> Vec<Vec<Consumed>> {
    consumers
        .iter()
        .map(|consumer| {
            let mut got = Vec::new();
            match consumer.poll(Duration::from_millis(50)) {
                None => {}
                Some(Ok(message)) => got.push((
                    message.partition(),
                    message.offset(),
                    String::from_utf8(message.payload().unwrap().to_vec()).unwrap(),
                )),
                Some(Err(KafkaError::MessageConsumption(code))) if polls.tolerate_errors => {
                    eprintln!("tolerated consume error while the broker restarts: {code:?}");
                }
                Some(Err(e)) => panic!("no consume error: {e:?}"),
            }
            got
        })
        .collect()
}

/// Reads every consumer's assignment of `topic` (with no poll in between,
/// so none can change meanwhile) and checks that no partition is held by
/// two consumers at once.
pub fn assignments_now(consumers: &[&BaseConsumer], topic: &str) -> Vec<BTreeSet<i32>> {
    let assignments: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c, topic)).collect();
    let mut owners: BTreeMap<i32, usize> = BTreeMap::new();
    for (consumer, partitions) in assignments.iter().enumerate() {
        for partition in partitions {
            if let Some(other) = owners.insert(*partition, consumer) {
                panic!(
                    "partition {partition} is held by consumers {other} and {consumer}: \
                     {assignments:?}"
                );
            }
        }
    }
    assignments
}

/// Polls `consumers` until their assignments of `topic` have the sizes in
/// `sizes` and together cover `0..partitions` once; no message may arrive
/// meanwhile, and with `polls.exclusive` no partition may ever be held by
/// two consumers. Returns the assignments.
pub fn wait_for_assignments(
    consumers: &[&BaseConsumer],
    topic: &str,
    partitions: i32,
    sizes: &[usize],
    polls: Polls,
) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + polls.deadline;
    loop {
        for got in poll_once(consumers, polls) {
            assert!(got.is_empty(), "no message expected yet: {got:?}");
        }
        let assignments: Vec<BTreeSet<i32>> = if polls.exclusive {
            assignments_now(consumers, topic)
        } else {
            consumers.iter().map(|c| assigned(c, topic)).collect()
        };
        let mut all: Vec<i32> = assignments.iter().flatten().copied().collect();
        all.sort_unstable();
        let sized = assignments
            .iter()
            .map(BTreeSet::len)
            .eq(sizes.iter().copied());
        if sized && all == (0..partitions).collect::<Vec<_>>() {
            return assignments;
        }
        assert!(
            Instant::now() < deadline,
            "assignments never became sizes {sizes:?} covering {partitions} partitions once: \
             {assignments:?}"
        );
    }
}

/// Subscribes each of `consumers` to `topic` and waits for their
/// assignments (see `wait_for_assignments`); returns the consumers as the
/// slice the polling helpers take, and the assignments.
pub fn subscribe_all<'a>(
    consumers: &'a [BaseConsumer],
    topic: &str,
    partitions: i32,
    sizes: &[usize],
    polls: Polls,
) -> (Vec<&'a BaseConsumer>, Vec<BTreeSet<i32>>) {
    for consumer in consumers {
        consumer.subscribe(&[topic]).unwrap();
    }
    let refs: Vec<&BaseConsumer> = consumers.iter().collect();
    let assignments = wait_for_assignments(&refs, topic, partitions, sizes, polls);
    (refs, assignments)
}

/// Closes the first of `consumers` (unsubscribes and drops it): it leaves
/// its group.
pub fn close_first(consumers: &mut Vec<BaseConsumer>) {
    let leaving = consumers.remove(0);
    leaving.unsubscribe();
    drop(leaving);
}

/// Polls `consumers` until `count` messages arrived in all; returns what
/// each one received.
pub fn consume(consumers: &[&BaseConsumer], count: usize, polls: Polls) -> Vec<Vec<Consumed>> {
    let mut received: Vec<Vec<Consumed>> = vec![Vec::new(); consumers.len()];
    let deadline = Instant::now() + polls.deadline;
    while received.iter().map(Vec::len).sum::<usize>() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} messages",
            received.iter().map(Vec::len).sum::<usize>()
        );
        for (mine, got) in received.iter_mut().zip(poll_once(consumers, polls)) {
            mine.extend(got);
        }
    }
    received
}

/// Checks that `received` holds each of `expected` exactly once, and that
/// each consumer read only from its own partitions.
pub fn check_exactly_once(
    received: &[Vec<Consumed>],
    assignments: &[BTreeSet<i32>],
    expected: impl Iterator<Item = usize>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (consumer, (messages, assignment)) in received.iter().zip(assignments).enumerate() {
        for (partition, offset, value) in messages {
            assert!(
                assignment.contains(partition),
                "consumer {consumer} (assigned {assignment:?}) got partition {partition} \
                 offset {offset}"
            );
            *seen.entry(value).or_default() += 1;
        }
    }
    let expected: BTreeSet<String> = expected.map(|i| format!("m-{i}")).collect();
    for value in &expected {
        assert_eq!(
            seen.get(value.as_str()).copied(),
            Some(1),
            "{value} consumed once"
        );
    }
    assert_eq!(seen.len(), expected.len(), "nothing else consumed");
}

/// Produces `range` to `topic` (see `produce`), consumes it with
/// `consumers` and checks that each message arrived exactly once, at the
/// consumer assigned its partition (`assignments`); returns what each
/// consumer received.
pub fn produce_and_consume(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
    consumers: &[&BaseConsumer],
    assignments: &[BTreeSet<i32>],
    polls: Polls,
) -> Vec<Vec<Consumed>> {
    produce(broker, topic, partitions, range.clone());
    let received = consume(consumers, range.len(), polls);
    check_exactly_once(&received, assignments, range);
    received
}

/// Commits each consumer's position synchronously.
pub fn commit_all(consumers: &[&BaseConsumer]) {
    for consumer in consumers {
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("synchronous commit");
    }
}

// ---------------------------------------------------------------------------
// Raw protocol

pub fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

pub fn string(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Waits (at most `deadline`) until FindCoordinator for `group` answers
/// (the broker creates `__consumer_offsets` on first use).
pub fn wait_for_coordinator(broker: &Broker, group: &str, deadline: Duration) {
    let deadline = Instant::now() + deadline;
    loop {
        let request = FindCoordinatorRequest::default()
            .with_key(string(group))
            .with_key_type(0);
        let response = call(broker, 3, &request);
        if response.error_code == NONE {
            assert_eq!(response.port, i32::from(broker.addr.port()));
            return;
        }
        assert!(
            [COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS]
                .contains(&response.error_code),
            "FindCoordinator: error {}",
            response.error_code
        );
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// ListGroups (of `version`) with the filters of `request`; the entry of
/// `group` if listed.
pub fn find_listed(
    broker: &Broker,
    version: i16,
    request: &ListGroupsRequest,
    group: &str,
) -> Option<ListedGroup> {
    let response = call(broker, version, request);
    assert_eq!(response.error_code, NONE);
    response
        .groups
        .into_iter()
        .find(|g| g.group_id.0.as_str() == group)
}

/// OffsetCommit (of `version`) of `offsets` (partition, offset) of `topic`
/// by `member` at `generation` (the classic protocol) or member epoch
/// (KIP-848); the error code of each partition, in order.
pub fn commit(
    broker: &Broker,
    version: i16,
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Vec<(i32, i16)> {
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(string(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(partition, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*partition)
                            .with_committed_offset(*offset)
                    })
                    .collect(),
            )]);
    let response = call(broker, version, &request);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect()
}

/// OffsetFetch v7 of `partitions` of `topic`: the committed offsets.
pub fn fetch_offsets(broker: &Broker, group: &str, topic: &str, partitions: &[i32]) -> Vec<i64> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let response = call(broker, 7, &request);
    assert_eq!(response.error_code, NONE, "OffsetFetch: {response:?}");
    let topic = &response.topics[0];
    topic
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, NONE);
            p.committed_offset
        })
        .collect()
}
