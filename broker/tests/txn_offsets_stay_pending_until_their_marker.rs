//! TxnOffsetCommit over the raw protocol: offsets a transaction commits
//! are pending (OffsetFetch with `require_stable` answers
//! UNSTABLE_OFFSET_COMMIT, without it the old offset shows) until EndTxn
//! commits them; hostile values (empty group id, unknown and negative
//! partitions, huge metadata, no producer id, a zombie epoch, a generation
//! for no group) get Kafka's per-partition codes.

mod common;

use std::time::{Duration, Instant};

use common::groups::{group_id, string, wait_for_coordinator, ILLEGAL_GENERATION, NONE};
use common::raw::{call, create_topic, topic_name};
use common::Broker;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, EndTxnRequest, InitProducerIdRequest, OffsetFetchRequest, ProducerId,
    TransactionalId, TxnOffsetCommitRequest,
};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const INVALID_GROUP_ID: i16 = 24;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
/// Answers that mean "not ready yet, ask again".
const RETRIABLE: [i16; 4] = [14, 15, 16, 51];

/// Retries `attempt` until its error code is not a retriable one.
fn until_settled<T>(what: &str, mut attempt: impl FnMut() -> (i16, T)) -> (i16, T) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, value) = attempt();
        if !RETRIABLE.contains(&code) {
            return (code, value);
        }
        assert!(Instant::now() < deadline, "{what}: still {code}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// InitProducerId v4 for `txn`: its producer id and epoch.
fn init_producer(broker: &Broker, txn: &str) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(string(txn))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let (code, response) = until_settled("InitProducerId", || {
        let response = call(broker, 4, &request);
        (response.error_code, response)
    });
    assert_eq!(code, NONE, "InitProducerId: {response:?}");
    (response.producer_id.0, response.producer_epoch)
}

/// AddOffsetsToTxn v3: `group`'s offsets partition joins the transaction.
fn add_offsets(broker: &Broker, txn: &str, (id, epoch): (i64, i16), group: &str) {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(string(txn)))
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
        .with_group_id(group_id(group));
    let (code, _) = until_settled("AddOffsetsToTxn", || {
        (call(broker, 3, &request).error_code, ())
    });
    assert_eq!(code, NONE, "AddOffsetsToTxn");
}

/// One partition of a TxnOffsetCommit.
fn offset(partition: i32, committed: i64, metadata: &str) -> TxnOffsetCommitRequestPartition {
    TxnOffsetCommitRequestPartition::default()
        .with_partition_index(partition)
        .with_committed_offset(committed)
        .with_committed_metadata(Some(string(metadata)))
}

/// TxnOffsetCommit v3 of `topics` for `group`: each partition's code, in
/// request order.
fn txn_commit(
    broker: &Broker,
    txn: &str,
    (id, epoch): (i64, i16),
    group: &str,
    topics: Vec<(&str, Vec<TxnOffsetCommitRequestPartition>)>,
) -> Vec<(i32, i16)> {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(string(txn)))
        .with_group_id(group_id(group))
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let (_, codes) = until_settled("TxnOffsetCommit", || {
        let response = call(broker, 3, &request);
        let codes: Vec<(i32, i16)> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.error_code))
            .collect();
        // Retried only while the coordinator is not ready for any partition.
        let code = if codes.iter().all(|(_, c)| RETRIABLE.contains(c)) {
            codes.first().map_or(NONE, |(_, c)| *c)
        } else {
            NONE
        };
        (code, codes)
    });
    codes
}

/// OffsetFetch of partitions 0 and 1 of `t` for `group` at `version`: each
/// partition's (offset, error code).
fn fetch(broker: &Broker, version: i16, group: &str, require_stable: bool) -> Vec<(i64, i16)> {
    if version >= 8 {
        let request = OffsetFetchRequest::default()
            .with_require_stable(require_stable)
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name("t"))
                    .with_partition_indexes(vec![0, 1])]))]);
        let response = call(broker, version, &request);
        let group = &response.groups[0];
        assert_eq!(group.error_code, NONE, "the group itself is fine");
        return group.topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.error_code))
            .collect();
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_require_stable(require_stable && version >= 7)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partition_indexes(vec![0, 1])]));
    let response = call(broker, version, &request);
    assert_eq!(response.error_code, NONE);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.error_code))
        .collect()
}

#[test]
fn transactional_offsets_are_pending_until_the_transaction_commits() {
    let broker = Broker::start();
    create_topic(&broker, "t", 2, &[]);
    wait_for_coordinator(&broker, "g", Duration::from_secs(30));
    // A second InitProducerId bumps the epoch: 0 is then a zombie's.
    init_producer(&broker, "tx");
    let producer = init_producer(&broker, "tx");
    assert!(producer.1 > 0, "{producer:?}");
    add_offsets(&broker, "tx", producer, "g");

    let codes = txn_commit(
        &broker,
        "tx",
        producer,
        "g",
        vec![
            (
                "t",
                vec![
                    offset(0, 10, "m"),
                    offset(1, 20, &"x".repeat(5000)),
                    offset(-1, 1, ""),
                    offset(2, 1, ""),
                ],
            ),
            ("no-such-topic", vec![offset(0, 1, "")]),
        ],
    );
    assert_eq!(
        codes,
        vec![
            (0, NONE),
            (1, OFFSET_METADATA_TOO_LARGE),
            (-1, UNKNOWN_TOPIC_OR_PARTITION),
            (2, UNKNOWN_TOPIC_OR_PARTITION),
            (0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );

    // Pending: unstable for clients that ask, absent for the others.
    for version in [7, 8] {
        assert_eq!(
            fetch(&broker, version, "g", true),
            vec![(-1, UNSTABLE_OFFSET_COMMIT), (-1, NONE)],
            "v{version}"
        );
    }
    for version in [1, 6, 7, 8] {
        assert_eq!(
            fetch(&broker, version, "g", false),
            vec![(-1, NONE), (-1, NONE)],
            "v{version}"
        );
    }

    // Refusals that leave the transaction as it was.
    let zombie = (producer.0, producer.1 - 1);
    let partition = || vec![("t", vec![offset(1, 99, "")])];
    assert_eq!(
        txn_commit(&broker, "tx", zombie, "g", partition()),
        vec![(1, INVALID_PRODUCER_EPOCH)]
    );
    assert_eq!(
        txn_commit(&broker, "tx", (-1, 0), "g", partition()),
        vec![(1, INVALID_PRODUCER_ID_MAPPING)]
    );
    assert_eq!(
        txn_commit(&broker, "tx", producer, "", partition()),
        vec![(1, INVALID_GROUP_ID)]
    );
    // A group whose offsets partition (37; "g" is on 3) the transaction
    // never added: Kafka's verification refuses it.
    assert_eq!(
        txn_commit(&broker, "tx", producer, "never-added", partition()),
        vec![(1, INVALID_TXN_STATE)]
    );
    // Its offsets partition joins the transaction first, so the group's
    // own check is reached (Kafka verifies the transaction before it).
    add_offsets(&broker, "tx", producer, "no-such-group");
    let with_member = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(string("tx")))
        .with_group_id(group_id("no-such-group"))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_generation_id(3)
        .with_member_id(string("m"))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![offset(0, 5, "")])]);
    let response = call(&broker, 3, &with_member);
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        ILLEGAL_GENERATION
    );

    // EndTxn answers once the commit is decided; the markers follow.
    let end = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(string("tx")))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(true);
    let (code, _) = until_settled("EndTxn", || (call(&broker, 3, &end).error_code, ()));
    assert_eq!(code, NONE);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched = fetch(&broker, 7, "g", true);
        if fetched == vec![(10, NONE), (-1, NONE)] {
            break;
        }
        assert!(
            fetched[0] == (-1, UNSTABLE_OFFSET_COMMIT),
            "only pending or committed: {fetched:?}"
        );
        assert!(Instant::now() < deadline, "the commit never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fetch(&broker, 1, "g", false), vec![(10, NONE), (-1, NONE)]);
}
