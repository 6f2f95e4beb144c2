//! Group requests with values no well-behaved client sends (negative
//! timeouts and epochs, empty and unknown ids, unknown topics and topic
//! ids, huge generations, thousands of duplicate names) get Kafka's error
//! codes, and the coordinator keeps serving well-formed requests after them.

mod common;

use std::time::Duration;

use common::groups::{
    group_id, string, wait_for_coordinator, INVALID_REQUEST, NONE, UNKNOWN_MEMBER_ID,
};
use common::raw::{call, create_topic, topic_name};
use common::Broker;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    TopicName,
};

const INVALID_GROUP_ID: i16 = 24;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_ID_NOT_FOUND: i16 = 69;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;

fn join(group: &str, session_ms: i32, protocol_type: &str, protocols: usize) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(-5)
        .with_protocol_type(string(protocol_type))
        .with_protocols(
            (0..protocols)
                .map(|i| {
                    JoinGroupRequestProtocol::default()
                        .with_name(string(&format!("p{i}")))
                        .with_metadata(bytes::Bytes::from_static(b"\xff\xff\xff"))
                })
                .collect(),
        )
}

fn commit(group: &str, topic: &str, partition: i32, metadata: String) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(-7)
                .with_committed_metadata(Some(string(&metadata)))])])
}

#[test]
fn hostile_values_get_kafkas_errors_and_the_coordinator_keeps_serving() {
    let broker = Broker::start();
    create_topic(&broker, "t", 2, &[]);
    wait_for_coordinator(&broker, "g", Duration::from_secs(30));

    // JoinGroup: empty group id, out-of-range session timeouts, no protocols.
    assert_eq!(
        call(&broker, 5, &join("", 10_000, "consumer", 1)).error_code,
        INVALID_GROUP_ID
    );
    for session in [-1, 0, i32::MIN, i32::MAX] {
        let response = call(&broker, 5, &join("g", session, "consumer", 1));
        assert_eq!(response.error_code, INVALID_SESSION_TIMEOUT, "{session}");
    }
    let response = call(&broker, 5, &join("g", 10_000, "", 0));
    assert_eq!(response.error_code, INCONSISTENT_GROUP_PROTOCOL);
    // A thousand protocols with garbage metadata are stored, not parsed.
    let response = call(&broker, 3, &join("g", 10_000, "consumer", 1_000));
    assert_eq!(response.error_code, NONE, "v3 joins at once (no KIP-394)");

    // SyncGroup, Heartbeat, LeaveGroup for members and groups that do not exist.
    let sync = SyncGroupRequest::default()
        .with_group_id(group_id("nobody"))
        .with_generation_id(i32::MAX)
        .with_member_id(string("ghost"));
    assert_eq!(call(&broker, 3, &sync).error_code, UNKNOWN_MEMBER_ID);
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group_id("g"))
        .with_generation_id(i32::MIN)
        .with_member_id(string(""));
    assert_eq!(call(&broker, 3, &heartbeat).error_code, UNKNOWN_MEMBER_ID);
    let leave = LeaveGroupRequest::default()
        .with_group_id(group_id("nobody"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(string(""));
            50
        ]);
    let left = call(&broker, 4, &leave);
    assert_eq!(left.members.len(), 50);
    assert!(left
        .members
        .iter()
        .all(|m| m.error_code == UNKNOWN_MEMBER_ID));

    // OffsetCommit: unknown topic, negative partition, oversized metadata.
    let c = call(&broker, 8, &commit("simple", "missing", 0, String::new()));
    assert_eq!(
        c.topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let c = call(&broker, 8, &commit("simple", "t", -1, String::new()));
    assert_eq!(
        c.topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let c = call(&broker, 8, &commit("simple", "t", 0, "x".repeat(5_000)));
    assert_eq!(
        c.topics[0].partitions[0].error_code,
        OFFSET_METADATA_TOO_LARGE
    );

    // OffsetFetch for an empty group id and for partitions never committed.
    let fetch = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(group_id(""))
        .with_topics(Some(vec![
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(TopicName(string("t")))
                .with_partition_indexes(vec![0, -3, 99]),
        ]))]);
    let fetched = call(&broker, 8, &fetch);
    let partitions = &fetched.groups[0].topics[0].partitions;
    assert!(partitions
        .iter()
        .all(|p| p.committed_offset == -1 && p.error_code == NONE));

    // ConsumerGroupHeartbeat: bad epochs, unknown topic ids, an empty group.
    let bad_epoch = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id("c"))
        .with_member_id(string("m-hostile-0000000000000"))
        .with_member_epoch(-5);
    assert_eq!(call(&broker, 1, &bad_epoch).error_code, INVALID_REQUEST);
    let no_group = bad_epoch
        .clone()
        .with_group_id(group_id(""))
        .with_member_epoch(0);
    assert_eq!(call(&broker, 1, &no_group).error_code, INVALID_REQUEST);
    let unknown_topics = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id("c"))
        .with_member_id(string("m-hostile-0000000000001"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(string("no-such-topic"))]))
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic_id(uuid::Uuid::from_u128(42))
            .with_partitions(vec![-1, i32::MAX])]));
    let answer = call(&broker, 1, &unknown_topics);
    assert_eq!(
        answer.error_code, INVALID_REQUEST,
        "owned partitions on a join"
    );
    let joined = call(
        &broker,
        1,
        &unknown_topics.with_topic_partitions(Some(Vec::new())),
    );
    assert_eq!(joined.error_code, NONE);
    assert_eq!(joined.assignment.map(|a| a.topic_partitions.len()), Some(0));

    // DescribeGroups and DeleteGroups with thousands of (duplicate) names.
    let names = vec![group_id("nobody"); 2_000];
    let described = call(
        &broker,
        5,
        &DescribeGroupsRequest::default().with_groups(names.clone()),
    );
    assert_eq!(described.groups.len(), 2_000);
    let deleted = call(
        &broker,
        2,
        &DeleteGroupsRequest::default().with_groups_names(names),
    );
    assert_eq!(deleted.results.len(), 1, "duplicates answered once");
    assert_eq!(deleted.results[0].error_code, GROUP_ID_NOT_FOUND);

    // After all that, a well-formed group still forms.
    let response = call(&broker, 3, &join("after", 10_000, "consumer", 1));
    assert_eq!(response.error_code, NONE);
    assert_eq!(response.generation_id, 1);
    drop(broker);
}
