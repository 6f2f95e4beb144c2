//! Consumer groups against a real `kelp` process: librdkafka consumers
//! (through the `rdkafka` crate) share a topic's partitions, hand them over
//! when one leaves or goes silent, and find their committed offsets after a
//! restart; raw requests check the coordinator's error codes (stale
//! generations, unknown members, deleting a group in use).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::groups::{
    assigned, check_exactly_once, classic_consumer, close_first, commit, commit_all, consume,
    create, fetch_offsets, find_listed, group_id, poll_once, produce, produce_and_consume, string,
    subscribe_all, wait_for_assignments, wait_for_coordinator, Consumed, Polls, GROUP_ID_NOT_FOUND,
    ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, NON_EMPTY_GROUP, REBALANCE_IN_PROGRESS, TIMEOUT,
    UNKNOWN_MEMBER_ID,
};
use common::raw::{call, topic_name, Raw};
use common::Broker;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DescribeGroupsRequest,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long any one wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(25);

/// Polls fail on any consume error; waits allow `DEADLINE`.
const POLLS: Polls = Polls {
    deadline: DEADLINE,
    tolerate_errors: false,
    exclusive: false,
};

/// The OffsetCommit version of the raw commits.
const COMMIT_VERSION: i16 = 7;

// ---------------------------------------------------------------------------
// rdkafka clients

/// A classic-protocol group consumer of this test binary.
fn group_consumer(broker: &Broker, group: &str) -> BaseConsumer {
    classic_consumer(broker, "kelp-groups-test", group)
}

// ---------------------------------------------------------------------------
// Raw protocol

/// A ConsumerProtocol subscription (version 0) to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| string(t)).collect())
        .encode(&mut buf, 0)
        .unwrap();
    buf.freeze()
}

/// A ConsumerProtocol assignment (version 0) of `partitions` of `topic`.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![AssignedPartitions::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions.to_vec())])
        .encode(&mut buf, 0)
        .unwrap();
    buf.freeze()
}

/// The partitions of each topic in a ConsumerProtocol assignment.
fn decode_assignment(mut bytes: Bytes) -> BTreeMap<String, BTreeSet<i32>> {
    if bytes.is_empty() {
        return BTreeMap::new();
    }
    let version = bytes.get_i16();
    let decoded = ConsumerProtocolAssignment::decode(&mut bytes, version.min(3)).unwrap();
    decoded
        .assigned_partitions
        .into_iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.into_iter().collect()))
        .collect()
}

const JOIN_VERSION: i16 = 5;
const SYNC_VERSION: i16 = 3;

/// JoinGroup v5 of a "consumer" member speaking "range", subscribed to `topic`.
fn join_request(group: &str, member_id: &str, topic: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(15_000)
        .with_member_id(string(member_id))
        .with_protocol_type(string("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(string("range"))
            .with_metadata(subscription(&[topic]))])
}

/// A new member's JoinGroup, through MEMBER_ID_REQUIRED: sends the join
/// with the member id the broker hands out and returns without waiting for
/// the answer (which comes when the rebalance completes); returns the
/// member id and the correlation id to receive.
fn start_join(raw: &mut Raw, group: &str, topic: &str, session_ms: i32) -> (String, i32) {
    let request = join_request(group, "", topic, session_ms);
    let id = raw.send(JOIN_VERSION, &request);
    let response = raw
        .receive::<JoinGroupRequest>(JOIN_VERSION, id)
        .expect("JoinGroup answered");
    assert_eq!(
        response.error_code, MEMBER_ID_REQUIRED,
        "a new member is first given its id"
    );
    let member_id = response.member_id.to_string();
    assert!(!member_id.is_empty());
    let request = join_request(group, &member_id, topic, session_ms);
    (member_id, raw.send(JOIN_VERSION, &request))
}

fn finish_join(raw: &mut Raw, correlation_id: i32) -> JoinGroupResponse {
    let response = raw
        .receive::<JoinGroupRequest>(JOIN_VERSION, correlation_id)
        .expect("JoinGroup answered");
    assert_eq!(response.error_code, NONE, "JoinGroup: {response:?}");
    response
}

fn sync(
    raw: &mut Raw,
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, Bytes)],
) -> i32 {
    let request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(string(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(string(member))
                        .with_assignment(bytes.clone())
                })
                .collect(),
        );
    raw.send(SYNC_VERSION, &request)
}

fn finish_sync(raw: &mut Raw, correlation_id: i32) -> SyncGroupResponse {
    let response = raw
        .receive::<SyncGroupRequest>(SYNC_VERSION, correlation_id)
        .expect("SyncGroup answered");
    assert_eq!(response.error_code, NONE, "SyncGroup: {response:?}");
    response
}

fn heartbeat(raw: &mut Raw, group: &str, member_id: &str, generation: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(string(member_id));
    let id = raw.send(3, &request);
    raw.receive::<HeartbeatRequest>(3, id)
        .expect("Heartbeat answered")
        .error_code
}

fn describe(broker: &Broker, group: &str) -> DescribedGroup {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let mut response = call(broker, 4, &request);
    assert_eq!(response.groups.len(), 1);
    let described = response.groups.remove(0);
    assert_eq!(described.error_code, NONE, "DescribeGroups: {described:?}");
    described
}

/// ListGroups v4 with a states filter; the entry of `group` if listed.
fn listed(broker: &Broker, group: &str, states: &[&str]) -> Option<ListedGroup> {
    let request =
        ListGroupsRequest::default().with_states_filter(states.iter().map(|s| string(s)).collect());
    find_listed(broker, 4, &request, group)
}

fn delete_groups(broker: &Broker, groups: &[&str]) -> Vec<(String, i16)> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    call(broker, 2, &request)
        .results
        .into_iter()
        .map(|r| (r.group_id.0.to_string(), r.error_code))
        .collect()
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn three_consumers_share_six_partitions_exactly_once() {
    let broker = Broker::start();
    create(&broker, "shared", 6);
    let consumers: Vec<BaseConsumer> = (0..3).map(|_| group_consumer(&broker, "sharers")).collect();
    let (refs, assignments) = subscribe_all(&consumers, "shared", 6, &[2, 2, 2], POLLS);

    let received = produce_and_consume(&broker, "shared", 6, 0..600, &refs, &assignments, POLLS);
    // Offsets are dense per partition: 100 messages each, from 0.
    for messages in &received {
        let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (partition, offset, _) in messages {
            by_partition.entry(*partition).or_default().push(*offset);
        }
        for offsets in by_partition.values() {
            assert_eq!(offsets, &(0..100).collect::<Vec<i64>>());
        }
    }
    // No rebalance moved anything meanwhile.
    let after: Vec<BTreeSet<i32>> = refs.iter().map(|c| assigned(c, "shared")).collect();
    assert_eq!(after, assignments);
}

#[test]
fn a_leaving_member_hands_its_partitions_over() {
    let broker = Broker::start();
    create(&broker, "handover", 6);
    let mut consumers: Vec<BaseConsumer> = (0..3)
        .map(|_| group_consumer(&broker, "handovers"))
        .collect();
    let (refs, assignments) = subscribe_all(&consumers, "handover", 6, &[2, 2, 2], POLLS);
    produce_and_consume(&broker, "handover", 6, 0..300, &refs, &assignments, POLLS);
    commit_all(&refs);

    // Closing the consumer sends LeaveGroup; the others take over.
    close_first(&mut consumers);
    let refs: Vec<&BaseConsumer> = consumers.iter().collect();
    let assignments = wait_for_assignments(&refs, "handover", 6, &[3, 3], POLLS);

    // The new owners start where the committed offsets say: only new
    // messages arrive, each once.
    produce_and_consume(&broker, "handover", 6, 300..600, &refs, &assignments, POLLS);
    let after: Vec<BTreeSet<i32>> = refs.iter().map(|c| assigned(c, "handover")).collect();
    assert_eq!(after, assignments);
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let broker = Broker::start();
    create(&broker, "expiry", 6);
    let consumer = group_consumer(&broker, "expiring");
    consumer.subscribe(&["expiry"]).unwrap();
    wait_for_assignments(&[&consumer], "expiry", 6, &[6], POLLS);

    // A raw member joins (the rebalance needs the rdkafka consumer polled,
    // so it runs in a thread), takes its share, then never heartbeats.
    let addr = broker.addr;
    let silent = std::thread::spawn(move || {
        let mut raw = Raw::connect_to(addr, Duration::from_secs(30));
        let (member_id, id) = start_join(&mut raw, "expiring", "expiry", 6_000);
        let joined = finish_join(&mut raw, id);
        assert_ne!(
            joined.leader.as_str(),
            member_id,
            "the rdkafka consumer leads"
        );
        assert!(joined.members.is_empty(), "a follower gets no member list");
        let id = sync(&mut raw, "expiring", &member_id, joined.generation_id, &[]);
        let synced = finish_sync(&mut raw, id);
        let partitions = decode_assignment(synced.assignment)
            .remove("expiry")
            .unwrap_or_default();
        (raw, member_id, joined.generation_id, partitions)
    });
    let deadline = Instant::now() + DEADLINE;
    while !silent.is_finished() {
        assert!(Instant::now() < deadline, "the raw member never synced");
        for got in poll_once(&[&consumer], POLLS) {
            assert!(got.is_empty());
        }
    }
    let (mut raw, member_id, generation, raw_partitions) = silent.join().expect("raw member");
    assert_eq!(raw_partitions.len(), 3, "range gives the raw member half");

    // rdkafka holds the other half...
    let deadline = Instant::now() + DEADLINE;
    loop {
        poll_once(&[&consumer], POLLS);
        let mine = assigned(&consumer, "expiry");
        if mine.len() == 3 {
            assert!(
                mine.is_disjoint(&raw_partitions),
                "{mine:?} / {raw_partitions:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rdkafka consumer never got the other half: {mine:?}"
        );
    }
    // ... and all of it once the silent member's session expired.
    wait_for_assignments(&[&consumer], "expiry", 6, &[6], POLLS);
    let described = describe(&broker, "expiring");
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert_eq!(described.members.len(), 1, "{described:?}");
    assert_ne!(described.members[0].member_id.as_str(), member_id);
    assert_eq!(
        heartbeat(&mut raw, "expiring", &member_id, generation),
        UNKNOWN_MEMBER_ID,
        "the expired member is gone"
    );
}

#[test]
fn committed_offsets_survive_a_restart_without_loss_or_replay() {
    const P: i32 = 4;
    let mut broker = Broker::start();
    let dir = broker.take_dir();
    create(&broker, "durable", P);
    produce(&broker, "durable", P, 0..400);
    let partitions: Vec<i32> = (0..P).collect();

    // Phase 1: consume half, commit synchronously, stop cleanly.
    let consumer = group_consumer(&broker, "durables");
    consumer.subscribe(&["durable"]).unwrap();
    let mut consumed = consume(&[&consumer], 200, POLLS).remove(0);
    let committed = commit_consumed(&consumer, &consumed, &[0; P as usize]);
    drop(consumer);
    assert!(broker.stop().success(), "SIGTERM stops the broker cleanly");

    let mut broker = Broker::start_in(&broker.data_dir, common::free_port());
    assert_eq!(
        fetch_offsets(&broker, "durables", "durable", &partitions),
        committed,
        "OffsetFetch after a clean restart"
    );

    // Phase 2: a new consumer resumes there; consume a quarter more, commit,
    // and crash the broker (SIGKILL) right after the commit returned.
    let consumer = group_consumer(&broker, "durables");
    assert_eq!(committed_offsets(&consumer, &partitions), committed);
    consumer.subscribe(&["durable"]).unwrap();
    let more = consume(&[&consumer], 100, POLLS).remove(0);
    check_resumes_at(&more, &committed);
    let committed = commit_consumed(&consumer, &more, &committed);
    consumed.extend(more);
    broker.kill();
    let broker = Broker::start_in(&broker.data_dir, common::free_port());
    drop(consumer);
    assert_eq!(
        fetch_offsets(&broker, "durables", "durable", &partitions),
        committed,
        "OffsetFetch after a crash"
    );

    // Phase 3: the rest, and nothing else.
    let consumer = group_consumer(&broker, "durables");
    assert_eq!(committed_offsets(&consumer, &partitions), committed);
    consumer.subscribe(&["durable"]).unwrap();
    let rest = consume(&[&consumer], 100, POLLS).remove(0);
    check_resumes_at(&rest, &committed);
    consumed.extend(rest);
    let all = vec![(0..P).collect::<BTreeSet<i32>>()];
    check_exactly_once(&[consumed], &all, 0..400);
    drop(consumer);
    drop(broker);
    drop(dir);
}

/// Commits (synchronously) the position after `consumed` on each
/// partition, or `previous` where nothing was consumed; returns the
/// offsets committed.
fn commit_consumed(consumer: &BaseConsumer, consumed: &[Consumed], previous: &[i64]) -> Vec<i64> {
    let mut next = previous.to_vec();
    for (partition, offset, _) in consumed {
        let slot = &mut next[*partition as usize];
        *slot = (*slot).max(offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next.iter().enumerate() {
        list.add_partition_offset("durable", partition as i32, Offset::Offset(*offset))
            .unwrap();
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .expect("synchronous commit");
    next
}

/// The committed offsets rdkafka reads (OffsetFetch) for `partitions`.
fn committed_offsets(consumer: &BaseConsumer, partitions: &[i32]) -> Vec<i64> {
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition("durable", *p);
    }
    let list = consumer
        .committed_offsets(list, TIMEOUT)
        .expect("committed offsets");
    partitions
        .iter()
        .map(
            |p| match list.find_partition("durable", *p).unwrap().offset() {
                Offset::Offset(o) => o,
                other => panic!("partition {p}: no committed offset: {other:?}"),
            },
        )
        .collect()
}

/// Each partition's messages in `consumed` start at its committed offset
/// and follow each other.
fn check_resumes_at(consumed: &[Consumed], committed: &[i64]) {
    let mut next = committed.to_vec();
    for (partition, offset, _) in consumed {
        assert_eq!(
            *offset, next[*partition as usize],
            "partition {partition} resumes at its committed offset, without gaps"
        );
        next[*partition as usize] += 1;
    }
}

#[test]
fn a_commit_from_a_stale_generation_is_refused() {
    let broker = Broker::start();
    // OffsetCommit of group "stale" on "stale-topic" as a member and generation.
    let commit_stale = |member: &str, generation: i32, offsets: &[(i32, i64)]| {
        commit(
            &broker,
            COMMIT_VERSION,
            "stale",
            member,
            generation,
            "stale-topic",
            offsets,
        )
    };
    create(&broker, "stale-topic", 2);
    wait_for_coordinator(&broker, "stale", DEADLINE);

    // A joins alone: generation 1, leader.
    let mut a = Raw::connect(&broker, Duration::from_secs(30));
    let (a_id, id) = start_join(&mut a, "stale", "stale-topic", 30_000);
    let joined = finish_join(&mut a, id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader.as_str(), a_id);
    let id = sync(
        &mut a,
        "stale",
        &a_id,
        1,
        &[(&a_id, assignment("stale-topic", &[0, 1]))],
    );
    finish_sync(&mut a, id);

    // B joins: A learns of the rebalance from its heartbeat and rejoins.
    let mut b = Raw::connect(&broker, Duration::from_secs(30));
    let (b_id, b_join) = start_join(&mut b, "stale", "stale-topic", 30_000);
    let deadline = Instant::now() + DEADLINE;
    loop {
        match heartbeat(&mut a, "stale", &a_id, 1) {
            REBALANCE_IN_PROGRESS => break,
            NONE => assert!(Instant::now() < deadline, "no rebalance after B joined"),
            other => panic!("A's heartbeat: error {other}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let request = join_request("stale", &a_id, "stale-topic", 30_000);
    let id = a.send(JOIN_VERSION, &request);
    let a_joined = finish_join(&mut a, id);
    let b_joined = finish_join(&mut b, b_join);
    assert_eq!(a_joined.generation_id, 2);
    assert_eq!(b_joined.generation_id, 2);
    assert_eq!(a_joined.leader.as_str(), a_id);
    assert_eq!(a_joined.members.len(), 2);
    let b_sync = sync(&mut b, "stale", &b_id, 2, &[]);
    let a_sync = sync(
        &mut a,
        "stale",
        &a_id,
        2,
        &[
            (&a_id, assignment("stale-topic", &[0])),
            (&b_id, assignment("stale-topic", &[1])),
        ],
    );
    finish_sync(&mut a, a_sync);
    let b_assignment = finish_sync(&mut b, b_sync).assignment;
    assert_eq!(
        decode_assignment(b_assignment),
        BTreeMap::from([("stale-topic".to_owned(), BTreeSet::from([1]))])
    );

    // A's commit as of generation 1: ILLEGAL_GENERATION on every partition,
    // nothing stored.
    assert_eq!(
        commit_stale(&a_id, 1, &[(0, 99), (1, 98)]),
        vec![(0, ILLEGAL_GENERATION), (1, ILLEGAL_GENERATION)]
    );
    assert_eq!(
        fetch_offsets(&broker, "stale", "stale-topic", &[0, 1]),
        vec![-1, -1]
    );
    // An unknown member, or no member at all while the group is active.
    assert_eq!(
        commit_stale("nobody", 2, &[(0, 5), (1, 5)]),
        vec![(0, UNKNOWN_MEMBER_ID), (1, UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        commit_stale("", -1, &[(0, 5)]),
        vec![(0, UNKNOWN_MEMBER_ID)]
    );
    // The current generation commits.
    assert_eq!(
        commit_stale(&a_id, 2, &[(0, 7), (1, 8)]),
        vec![(0, NONE), (1, NONE)]
    );
    assert_eq!(
        fetch_offsets(&broker, "stale", "stale-topic", &[0, 1]),
        vec![7, 8]
    );
    assert_eq!(commit_stale(&b_id, 2, &[(1, 9)]), vec![(1, NONE)]);
    assert_eq!(
        fetch_offsets(&broker, "stale", "stale-topic", &[0, 1]),
        vec![7, 9]
    );

    // A simple commit (no generation, no member) to a group without
    // members creates it and stores the offsets.
    assert_eq!(
        commit(
            &broker,
            COMMIT_VERSION,
            "simple",
            "",
            -1,
            "stale-topic",
            &[(0, 3), (1, 4)]
        ),
        vec![(0, NONE), (1, NONE)]
    );
    assert_eq!(
        fetch_offsets(&broker, "simple", "stale-topic", &[0, 1]),
        vec![3, 4]
    );
    let simple = describe(&broker, "simple");
    assert_eq!(simple.group_state.as_str(), "Empty", "{simple:?}");
    assert_eq!(simple.protocol_type.as_str(), "", "{simple:?}");
    // And again: the group exists now, still without members.
    assert_eq!(
        commit(
            &broker,
            COMMIT_VERSION,
            "simple",
            "",
            -1,
            "stale-topic",
            &[(0, 6)]
        ),
        vec![(0, NONE)]
    );
    assert_eq!(
        fetch_offsets(&broker, "simple", "stale-topic", &[0, 1]),
        vec![6, 4]
    );
}

#[test]
fn groups_are_listed_described_and_deleted() {
    let broker = Broker::start();
    create(&broker, "listed-topic", 2);
    produce(&broker, "listed-topic", 2, 0..10);
    let consumer = group_consumer(&broker, "listed");
    consumer.subscribe(&["listed-topic"]).unwrap();
    let received = consume(&[&consumer], 10, POLLS);
    check_exactly_once(&received, &[BTreeSet::from([0, 1])], 0..10);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("synchronous commit");

    // Active: listed and described as Stable; cannot be deleted.
    let entry = listed(&broker, "listed", &[]).expect("the group is listed");
    assert_eq!(entry.protocol_type.as_str(), "consumer");
    assert_eq!(entry.group_state.as_str(), "Stable");
    assert!(listed(&broker, "listed", &["Stable"]).is_some());
    assert!(listed(&broker, "listed", &["empty"]).is_none());
    let described = describe(&broker, "listed");
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert_eq!(described.protocol_type.as_str(), "consumer");
    assert_eq!(described.protocol_data.as_str(), "range");
    assert_eq!(described.members.len(), 1, "{described:?}");
    let member = &described.members[0];
    assert_eq!(member.client_id.as_str(), "kelp-groups-test");
    assert_eq!(
        decode_assignment(member.member_assignment.clone()),
        BTreeMap::from([("listed-topic".to_owned(), BTreeSet::from([0, 1]))])
    );
    assert_eq!(
        delete_groups(&broker, &["listed", "no-such-group"]),
        vec![
            ("listed".to_owned(), NON_EMPTY_GROUP),
            ("no-such-group".to_owned(), GROUP_ID_NOT_FOUND),
        ]
    );

    // Closed: Empty, offsets kept.
    drop(consumer);
    let entry = listed(&broker, "listed", &["Empty"]).expect("the empty group is listed");
    assert_eq!(entry.protocol_type.as_str(), "consumer");
    assert_eq!(entry.group_state.as_str(), "Empty");
    assert!(listed(&broker, "listed", &["stable"]).is_none());
    let described = describe(&broker, "listed");
    assert_eq!(described.group_state.as_str(), "Empty", "{described:?}");
    assert_eq!(described.protocol_type.as_str(), "consumer");
    assert_eq!(described.protocol_data.as_str(), "");
    assert!(described.members.is_empty());
    assert_eq!(
        fetch_offsets(&broker, "listed", "listed-topic", &[0, 1]),
        vec![5, 5]
    );
    // librdkafka's own view (ListGroups + DescribeGroups).
    let plain: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .expect("consumer");
    let groups = plain
        .fetch_group_list(Some("listed"), TIMEOUT)
        .expect("group list");
    let groups: Vec<(String, String, String, usize)> = groups
        .groups()
        .iter()
        .map(|g| {
            (
                g.name().to_owned(),
                g.state().to_owned(),
                g.protocol_type().to_owned(),
                g.members().len(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![(
            "listed".to_owned(),
            "Empty".to_owned(),
            "consumer".to_owned(),
            0
        )]
    );

    // Deleted: gone from the list, Dead when described, offsets gone.
    let admin = common::admin(&broker);
    let options = rdkafka::admin::AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures_executor::block_on(admin.delete_groups(&["listed"], &options))
        .expect("DeleteGroups");
    assert_eq!(results, vec![Ok("listed".to_owned())]);
    assert!(listed(&broker, "listed", &[]).is_none());
    let described = describe(&broker, "listed");
    assert_eq!(described.group_state.as_str(), "Dead", "{described:?}");
    assert!(described.members.is_empty());
    assert_eq!(
        fetch_offsets(&broker, "listed", "listed-topic", &[0, 1]),
        vec![-1, -1]
    );
    assert_eq!(
        delete_groups(&broker, &["listed"]),
        vec![("listed".to_owned(), GROUP_ID_NOT_FOUND)]
    );
}
