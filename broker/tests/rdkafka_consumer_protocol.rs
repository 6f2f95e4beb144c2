//! The KIP-848 consumer group protocol against a real `kelp` process:
//! librdkafka consumers with `group.protocol=consumer` (through the
//! `rdkafka` crate) share a topic's partitions, hand them over when one
//! leaves and keep their group across a broker restart; raw requests check
//! the coordinator's epochs and error codes (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe, OffsetCommit v9, ListGroups v5).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::groups::{
    assigned, assignments_now, classic_consumer, close_first, commit, commit_all, create,
    fetch_offsets, find_listed, group_id, poll_once, produce_and_consume, string, subscribe_all,
    wait_for_assignments, wait_for_coordinator, Consumed, Polls, COORDINATOR_LOAD_IN_PROGRESS,
    COORDINATOR_NOT_AVAILABLE, FENCED_MEMBER_EPOCH, GROUP_ID_NOT_FOUND, INVALID_REQUEST, NONE,
    STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, UNSUPPORTED_ASSIGNOR,
};
use common::raw::{call, topic_name};
use common::Broker;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedPartitions;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    ListGroupsRequest, MetadataRequest,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long any one wait may take before the test fails. Rebalances of
/// this protocol advance with heartbeats, every 5 s (the broker's
/// interval): a partition moves in two of them (revoked, then assigned).
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls fail on any consume error; waits allow `DEADLINE` and fail as
/// soon as two consumers hold the same partition.
const POLLS: Polls = Polls {
    deadline: DEADLINE,
    tolerate_errors: false,
    exclusive: true,
};
/// `POLLS`, but transient consume errors are tolerated: the broker is away
/// for a restart.
const RESTARTING: Polls = Polls {
    tolerate_errors: true,
    ..POLLS
};

/// The broker's heartbeat interval for consumer groups.
const HEARTBEAT_INTERVAL_MS: i32 = 5_000;

// ---------------------------------------------------------------------------
// rdkafka clients

/// A consumer of the KIP-848 protocol: no session timeout, heartbeat
/// interval or assignor on the client (the broker owns them), no
/// auto-commit, reading from the beginning where nothing was committed.
fn protocol_consumer(broker: &Broker, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("client.id", "kelp-consumer-protocol-test")
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        // Reconnect quickly after a broker restart.
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create()
        .expect("consumer")
}

/// Polls `consumers` a little longer: nothing more may arrive.
fn nothing_more(consumers: &[&BaseConsumer]) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        for got in poll_once(consumers, POLLS) {
            assert!(got.is_empty(), "nothing more expected: {got:?}");
        }
    }
}

/// Checks that every partition's messages in `received` have the offsets
/// `offsets`, in order.
fn check_offsets(received: &[Vec<Consumed>], partitions: i32, offsets: std::ops::Range<i64>) {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, offset, _) in received.iter().flatten() {
        by_partition.entry(*partition).or_default().push(*offset);
    }
    let expected: Vec<i64> = offsets.collect();
    for partition in 0..partitions {
        assert_eq!(
            by_partition.get(&partition),
            Some(&expected),
            "partition {partition}: offsets consumed"
        );
    }
}

// ---------------------------------------------------------------------------
// Raw protocol

const HEARTBEAT_VERSION: i16 = 1;
const DESCRIBE_VERSION: i16 = 1;
const COMMIT_VERSION: i16 = 9;

/// The topic id of `topic`, from Metadata v12.
fn topic_id(broker: &Broker, topic: &str) -> uuid::Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let response = call(broker, 12, &request);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    let described = &response.topics[0];
    assert_eq!(described.error_code, NONE, "Metadata: {described:?}");
    assert!(!described.topic_id.is_nil(), "{described:?}");
    described.topic_id
}

/// A ConsumerGroupHeartbeat v1 of `member` at `epoch`, nothing else set
/// (every optional field "unchanged").
fn heartbeat_request(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(string(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
}

/// A joining heartbeat (epoch 0) of `member`, subscribed to `topic`.
fn join_request(group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
    heartbeat_request(group, member, 0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(topic)]))
        .with_topic_partitions(Some(Vec::new()))
}

fn heartbeat(
    broker: &Broker,
    request: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    call(broker, HEARTBEAT_VERSION, request)
}

/// Joins `member` with a heartbeat, waiting out a coordinator that is not
/// ready yet.
fn join(broker: &Broker, group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatResponse {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let response = heartbeat(broker, &join_request(group, member, topic));
        if ![COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS].contains(&response.error_code)
        {
            return response;
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// ConsumerGroupDescribe of `groups`, in order.
fn describe_consumer_groups(broker: &Broker, groups: &[&str]) -> Vec<DescribedGroup> {
    let request = ConsumerGroupDescribeRequest::default()
        .with_group_ids(groups.iter().map(|g| group_id(g)).collect());
    let response = call(broker, DESCRIBE_VERSION, &request);
    assert_eq!(response.groups.len(), groups.len(), "{response:?}");
    for (described, group) in response.groups.iter().zip(groups) {
        assert_eq!(described.group_id.as_str(), *group);
    }
    response.groups
}

/// ConsumerGroupDescribe of one group that must exist.
fn describe_consumer_group(broker: &Broker, group: &str) -> DescribedGroup {
    let described = describe_consumer_groups(broker, &[group]).remove(0);
    assert_eq!(
        described.error_code, NONE,
        "ConsumerGroupDescribe: {described:?}"
    );
    described
}

/// The partitions of each topic (by name) in a described assignment.
fn described_partitions(
    assignment: &kafka_protocol::messages::consumer_group_describe_response::Assignment,
) -> BTreeMap<String, BTreeSet<i32>> {
    assignment
        .topic_partitions
        .iter()
        .map(|t| {
            (
                t.topic_name.0.to_string(),
                t.partitions.iter().copied().collect(),
            )
        })
        .collect()
}

/// ListGroups v5 with a types filter; the entry of `group` if listed.
fn listed(broker: &Broker, group: &str, types: &[&str]) -> Option<ListedGroup> {
    let request =
        ListGroupsRequest::default().with_types_filter(types.iter().map(|t| string(t)).collect());
    find_listed(broker, 5, &request, group)
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn three_members_of_the_consumer_protocol_share_six_partitions() {
    let broker = Broker::start();
    create(&broker, "kip848-shared", 6);
    let consumers: Vec<BaseConsumer> = (0..3)
        .map(|_| protocol_consumer(&broker, "kip848-sharers"))
        .collect();
    let (refs, assignments) = subscribe_all(&consumers, "kip848-shared", 6, &[2, 2, 2], POLLS);

    let received = produce_and_consume(
        &broker,
        "kip848-shared",
        6,
        0..600,
        &refs,
        &assignments,
        POLLS,
    );
    // Offsets are dense per partition: 100 messages each, from 0.
    check_offsets(&received, 6, 0..100);
    nothing_more(&refs);
    // No rebalance moved anything meanwhile.
    assert_eq!(assignments_now(&refs, "kip848-shared"), assignments);

    // The broker's view agrees.
    let described = describe_consumer_group(&broker, "kip848-sharers");
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert_eq!(described.assignor_name.as_str(), "uniform");
    assert_eq!(described.assignment_epoch, described.group_epoch);
    assert_eq!(described.members.len(), 3, "{described:?}");
    let mut held: Vec<BTreeSet<i32>> = described
        .members
        .iter()
        .map(|m| {
            assert_eq!(m.client_id.as_str(), "kelp-consumer-protocol-test");
            assert_eq!(
                m.subscribed_topic_names
                    .iter()
                    .map(|t| t.0.to_string())
                    .collect::<Vec<_>>(),
                vec!["kip848-shared".to_owned()]
            );
            let assigned = described_partitions(&m.assignment);
            assert_eq!(assigned, described_partitions(&m.target_assignment));
            assigned.get("kip848-shared").cloned().unwrap_or_default()
        })
        .collect();
    held.sort();
    let mut expected = assignments.clone();
    expected.sort();
    assert_eq!(held, expected);
}

#[test]
fn a_leaving_member_hands_over_and_commits_need_the_current_epoch() {
    let broker = Broker::start();
    let partitions: Vec<i32> = (0..6).collect();
    create(&broker, "kip848-handover", 6);
    let mut consumers: Vec<BaseConsumer> = (0..3)
        .map(|_| protocol_consumer(&broker, "kip848-handovers"))
        .collect();
    let (refs, assignments) = subscribe_all(&consumers, "kip848-handover", 6, &[2, 2, 2], POLLS);
    produce_and_consume(
        &broker,
        "kip848-handover",
        6,
        0..300,
        &refs,
        &assignments,
        POLLS,
    );
    commit_all(&refs);
    assert_eq!(
        fetch_offsets(&broker, "kip848-handovers", "kip848-handover", &partitions),
        vec![50; 6],
        "every member committed its position"
    );
    let before = describe_consumer_group(&broker, "kip848-handovers");
    assert_eq!(before.members.len(), 3, "{before:?}");

    // Closing the consumer leaves the group (epoch -1); the others take
    // over its partitions, at a new epoch.
    close_first(&mut consumers);
    let refs: Vec<&BaseConsumer> = consumers.iter().collect();
    let assignments = wait_for_assignments(&refs, "kip848-handover", 6, &[3, 3], POLLS);
    let after = describe_consumer_group(&broker, "kip848-handovers");
    assert_eq!(after.members.len(), 2, "{after:?}");
    assert!(
        after.group_epoch > before.group_epoch,
        "the leave bumped the group epoch: {} then {}",
        before.group_epoch,
        after.group_epoch
    );

    // The new owners start where the committed offsets say: only new
    // messages arrive, each once.
    let received = produce_and_consume(
        &broker,
        "kip848-handover",
        6,
        300..600,
        &refs,
        &assignments,
        POLLS,
    );
    check_offsets(&received, 6, 50..100);
    nothing_more(&refs);
    assert_eq!(assignments_now(&refs, "kip848-handover"), assignments);

    // Commits at the members' new epochs are accepted.
    commit_all(&refs);
    assert_eq!(
        fetch_offsets(&broker, "kip848-handovers", "kip848-handover", &partitions),
        vec![100; 6]
    );
}

#[test]
fn member_epochs_are_checked() {
    const GROUP: &str = "kip848-epochs";
    const TOPIC: &str = "kip848-epochs-topic";
    let broker = Broker::start();
    create(&broker, TOPIC, 3);
    let id = topic_id(&broker, TOPIC);
    wait_for_coordinator(&broker, GROUP, DEADLINE);
    // v1: the client chooses its member id (a UUID's 22 base64 characters).
    let member = "rawMember0123456789abc";
    assert_eq!(member.len(), 22);

    // Malformed joins change nothing.
    let no_subscription =
        join_request(GROUP, "someOtherMember0000000", TOPIC).with_subscribed_topic_names(None);
    assert_eq!(
        heartbeat(&broker, &no_subscription).error_code,
        INVALID_REQUEST
    );
    let empty_subscription = join_request(GROUP, "someOtherMember0000000", TOPIC)
        .with_subscribed_topic_names(Some(Vec::new()));
    assert_eq!(
        heartbeat(&broker, &empty_subscription).error_code,
        INVALID_REQUEST
    );
    let bad_assignor = join_request(GROUP, "someOtherMember0000000", TOPIC)
        .with_server_assignor(Some(string("nope")));
    assert_eq!(
        heartbeat(&broker, &bad_assignor).error_code,
        UNSUPPORTED_ASSIGNOR
    );

    // The first member gets every partition.
    let joined = join(&broker, GROUP, member, TOPIC);
    assert_eq!(joined.error_code, NONE, "join: {joined:?}");
    assert_eq!(joined.member_id.as_deref(), Some(member));
    let epoch = joined.member_epoch;
    assert!(epoch >= 1, "{joined:?}");
    assert_eq!(joined.heartbeat_interval_ms, HEARTBEAT_INTERVAL_MS);
    let assignment = joined
        .assignment
        .expect("a join is answered with its assignment");
    assert_eq!(assignment.topic_partitions.len(), 1, "{assignment:?}");
    assert_eq!(assignment.topic_partitions[0].topic_id, id);
    let mut partitions = assignment.topic_partitions[0].partitions.clone();
    partitions.sort_unstable();
    assert_eq!(partitions, vec![0, 1, 2]);
    let owned = vec![OwnedPartitions::default()
        .with_topic_id(id)
        .with_partitions(vec![0, 1, 2])];

    // The joins refused above left nothing behind.
    let described = describe_consumer_group(&broker, GROUP);
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert!(described.group_epoch >= 1, "{described:?}");
    assert_eq!(described.assignment_epoch, described.group_epoch);
    assert_eq!(described.assignor_name.as_str(), "uniform");
    assert_eq!(described.members.len(), 1, "{described:?}");
    let described_member = &described.members[0];
    assert_eq!(described_member.member_id.as_str(), member);
    assert_eq!(described_member.member_epoch, epoch);
    assert_eq!(described_member.client_id.as_str(), "raw-test");
    assert_eq!(
        described_member
            .subscribed_topic_names
            .iter()
            .map(|t| t.0.to_string())
            .collect::<Vec<_>>(),
        vec![TOPIC.to_owned()]
    );
    let everything = BTreeMap::from([(TOPIC.to_owned(), BTreeSet::from([0, 1, 2]))]);
    assert_eq!(
        described_partitions(&described_member.assignment),
        everything
    );
    assert_eq!(
        described_partitions(&described_member.target_assignment),
        everything
    );
    assert_eq!(described_member.assignment.topic_partitions[0].topic_id, id);
    // An unknown group, described with it.
    let both = describe_consumer_groups(&broker, &[GROUP, "kip848-no-such-group"]);
    assert_eq!(both[0].error_code, NONE);
    assert_eq!(both[1].error_code, GROUP_ID_NOT_FOUND, "{:?}", both[1]);

    // Listed as a consumer group, not as a classic one.
    let entry = listed(&broker, GROUP, &["consumer"]).expect("listed among consumer groups");
    assert_eq!(entry.group_type.as_str(), "consumer");
    assert_eq!(entry.protocol_type.as_str(), "consumer");
    assert_eq!(entry.group_state.as_str(), "Stable");
    assert!(listed(&broker, GROUP, &["classic"]).is_none());
    assert!(listed(&broker, GROUP, &[]).is_some());

    // A heartbeat from the future is fenced; the member stays as it was.
    let ahead = heartbeat(&broker, &heartbeat_request(GROUP, member, epoch + 1));
    assert_eq!(ahead.error_code, FENCED_MEMBER_EPOCH, "{ahead:?}");
    let steady = heartbeat(
        &broker,
        &heartbeat_request(GROUP, member, epoch).with_topic_partitions(Some(owned.clone())),
    );
    assert_eq!(steady.error_code, NONE, "{steady:?}");
    assert_eq!(steady.member_epoch, epoch);
    // An unknown member, joined or leaving.
    let unknown = heartbeat(
        &broker,
        &heartbeat_request(GROUP, "nobodyKnowsMe000000000", 1),
    );
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID, "{unknown:?}");
    let unknown = heartbeat(
        &broker,
        &heartbeat_request(GROUP, "nobodyKnowsMe000000000", -1),
    );
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID, "{unknown:?}");

    // OffsetCommit v9 needs the member's current epoch.
    let offsets = [(0, 5), (1, 6), (2, 7)];
    for wrong in [epoch - 1, epoch + 1] {
        assert_eq!(
            commit(
                &broker,
                COMMIT_VERSION,
                GROUP,
                member,
                wrong,
                TOPIC,
                &offsets
            ),
            vec![
                (0, STALE_MEMBER_EPOCH),
                (1, STALE_MEMBER_EPOCH),
                (2, STALE_MEMBER_EPOCH)
            ],
            "a commit at epoch {wrong} (current {epoch})"
        );
    }
    assert_eq!(
        commit(
            &broker,
            COMMIT_VERSION,
            GROUP,
            "nobodyKnowsMe000000000",
            epoch,
            TOPIC,
            &offsets
        ),
        vec![
            (0, UNKNOWN_MEMBER_ID),
            (1, UNKNOWN_MEMBER_ID),
            (2, UNKNOWN_MEMBER_ID)
        ]
    );
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &[0, 1, 2]),
        vec![-1; 3]
    );
    assert_eq!(
        commit(
            &broker,
            COMMIT_VERSION,
            GROUP,
            member,
            epoch,
            TOPIC,
            &offsets
        ),
        vec![(0, NONE), (1, NONE), (2, NONE)]
    );
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &[0, 1, 2]),
        vec![5, 6, 7]
    );

    // Leaving: epoch -1, echoed; the group is left empty, offsets kept.
    let left = heartbeat(&broker, &heartbeat_request(GROUP, member, -1));
    assert_eq!(left.error_code, NONE, "{left:?}");
    assert_eq!(left.member_epoch, -1);
    assert_eq!(left.member_id.as_deref(), Some(member));
    let described = describe_consumer_group(&broker, GROUP);
    assert!(described.members.is_empty(), "{described:?}");
    assert_eq!(described.group_state.as_str(), "Empty", "{described:?}");
    let gone = heartbeat(
        &broker,
        &heartbeat_request(GROUP, member, epoch).with_topic_partitions(Some(owned)),
    );
    assert_eq!(gone.error_code, UNKNOWN_MEMBER_ID, "{gone:?}");
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &[0, 1, 2]),
        vec![5, 6, 7]
    );
}

#[test]
fn consumer_groups_survive_a_restart() {
    const GROUP: &str = "kip848-durables";
    const TOPIC: &str = "kip848-durable";
    let mut broker = Broker::start();
    let dir = broker.take_dir();
    let port = broker.addr.port();
    create(&broker, TOPIC, 6);
    let consumers: Vec<BaseConsumer> = (0..2).map(|_| protocol_consumer(&broker, GROUP)).collect();
    let (refs, assignments) = subscribe_all(&consumers, TOPIC, 6, &[3, 3], POLLS);
    produce_and_consume(&broker, TOPIC, 6, 0..300, &refs, &assignments, POLLS);
    commit_all(&refs);
    let partitions: Vec<i32> = (0..6).collect();
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &partitions),
        vec![50; 6]
    );
    let before = describe_consumer_group(&broker, GROUP);
    assert_eq!(before.members.len(), 2, "{before:?}");

    // A clean stop, and the same broker again on the same address, while
    // the consumers keep polling.
    broker.terminate();
    let deadline = Instant::now() + DEADLINE;
    let data_dir = broker.data_dir.clone();
    // The wait runs in a thread so that the consumers are polled meanwhile.
    let stopping = std::thread::spawn(move || broker.wait());
    while !stopping.is_finished() {
        assert!(Instant::now() < deadline, "the broker never stopped");
        for got in poll_once(&refs, RESTARTING) {
            assert!(got.is_empty(), "no message expected: {got:?}");
        }
    }
    assert!(
        stopping.join().unwrap().success(),
        "SIGTERM stops the broker cleanly"
    );
    for got in poll_once(&refs, RESTARTING) {
        assert!(got.is_empty(), "no message expected: {got:?}");
    }
    let broker = Broker::start_in(&data_dir, port);

    // The group is back with its two members, before anyone rejoined.
    let described = describe_consumer_group(&broker, GROUP);
    assert_eq!(described.members.len(), 2, "{described:?}");
    let ids = |d: &DescribedGroup| -> BTreeSet<String> {
        d.members.iter().map(|m| m.member_id.to_string()).collect()
    };
    assert_eq!(ids(&described), ids(&before), "the same members");
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &partitions),
        vec![50; 6]
    );

    // The consumers keep (or regain) their partitions; new messages
    // arrive once each, nothing consumed before comes back.
    let assignments = wait_for_assignments(&refs, TOPIC, 6, &[3, 3], RESTARTING);
    let received =
        produce_and_consume(&broker, TOPIC, 6, 300..600, &refs, &assignments, RESTARTING);
    check_offsets(&received, 6, 50..100);
    nothing_more(&refs);
    let described = describe_consumer_group(&broker, GROUP);
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert_eq!(described.members.len(), 2, "{described:?}");
    assert_eq!(ids(&described), ids(&before), "the same members");
    commit_all(&refs);
    assert_eq!(
        fetch_offsets(&broker, GROUP, TOPIC, &partitions),
        vec![100; 6]
    );
    drop(consumers);
    drop(broker);
    drop(dir);
}

#[test]
fn a_classic_group_in_use_refuses_consumer_protocol_members() {
    const GROUP: &str = "kip848-classic";
    const TOPIC: &str = "kip848-classic-topic";
    let broker = Broker::start();
    create(&broker, TOPIC, 2);
    let consumer = classic_consumer(&broker, "kelp-classic-test", GROUP);
    consumer.subscribe(&[TOPIC]).unwrap();
    wait_for_assignments(&[&consumer], TOPIC, 2, &[2], POLLS);

    let refused = join(&broker, GROUP, "wouldBeMember00000000a", TOPIC);
    assert_eq!(refused.error_code, GROUP_ID_NOT_FOUND, "{refused:?}");
    // It is no consumer group either when described.
    let described = describe_consumer_groups(&broker, &[GROUP]).remove(0);
    assert_eq!(described.error_code, GROUP_ID_NOT_FOUND, "{described:?}");
    let entry = listed(&broker, GROUP, &["classic"]).expect("listed among classic groups");
    assert_eq!(entry.group_type.as_str(), "classic");
    assert!(listed(&broker, GROUP, &["consumer"]).is_none());

    // The classic consumer goes on undisturbed.
    produce_and_consume(
        &broker,
        TOPIC,
        2,
        0..20,
        &[&consumer],
        &[BTreeSet::from([0, 1])],
        POLLS,
    );
    assert_eq!(assigned(&consumer, TOPIC), BTreeSet::from([0, 1]));
}
