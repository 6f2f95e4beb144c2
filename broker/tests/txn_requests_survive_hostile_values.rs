//! Producer-id and transaction requests with values no well-behaved client
//! sends (empty and unknown ids, stale and foreign producer ids, bad
//! timeouts, unknown and internal topics, stray transactional batches) get
//! Kafka's error codes at each version, and a well-formed transaction still
//! commits after them.

mod common;

use common::groups::{create, INVALID_REQUEST, NONE};
use common::raw::{call, topic_name};
use common::txn::{
    add, codes, end, init, init_at, latest, list_offset, produce, producer_batch, txn_id,
};
use common::Broker;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, DescribeProducersRequest, DescribeTransactionsRequest, GroupId,
    ListTransactionsRequest, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_GROUP_ID: i16 = 24;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const INVALID_RECORD: i16 = 87;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

#[test]
fn hostile_values_get_kafkas_errors_and_transactions_keep_working() {
    let broker = Broker::start();
    let topic = "hostile-txn";
    create(&broker, topic, 2);

    // InitProducerId: checks in Kafka's order, each at the version that knows it.
    assert_eq!(
        init_at(&broker, 4, &init(Some(""), 0, (-1, -1))).0,
        INVALID_REQUEST
    );
    for timeout in [0, -5, i32::MAX] {
        assert_eq!(
            init_at(&broker, 4, &init(Some("t"), timeout, (-1, -1))),
            (INVALID_TRANSACTION_TIMEOUT, -1, -1)
        );
    }
    assert_eq!(
        init_at(&broker, 4, &init(None, -1, (-1, 5))).0,
        INVALID_REQUEST
    );
    let (code, first, epoch) = init_at(&broker, 1, &init(None, -1, (-1, -1)));
    assert_eq!(
        (code, epoch),
        (NONE, 0),
        "an idempotent producer, as kafka-python asks"
    );
    let (_, second, _) = init_at(&broker, 4, &init(None, i32::MAX, (first, 0)));
    assert_ne!(first, second, "idempotent producers always get a fresh id");
    let id = "hostile-1";
    let (code, pid, epoch) = init_at(&broker, 4, &init(Some(id), 60_000, (-1, -1)));
    assert_eq!((code, epoch), (NONE, 0));
    let (code, _, bumped) = init_at(&broker, 4, &init(Some(id), 60_000, (pid, 0)));
    assert_eq!((code, bumped), (NONE, 1), "KIP-360: the epoch is bumped");
    let (code, _, again) = init_at(&broker, 4, &init(Some(id), 60_000, (pid, 0)));
    assert_eq!(
        (code, again),
        (NONE, 1),
        "a retried bump answers the same epoch"
    );
    assert_eq!(
        init_at(&broker, 4, &init(Some(id), 60_000, (pid + 77, 0))).0,
        PRODUCER_FENCED
    );
    assert_eq!(
        init_at(&broker, 3, &init(Some(id), 60_000, (pid + 77, 0))).0,
        INVALID_PRODUCER_EPOCH,
        "v3 predates PRODUCER_FENCED"
    );
    let producer = (pid, 1);

    // AddPartitionsToTxn.
    let r = call(
        &broker,
        3,
        &add("never-initialised", producer, &[(topic, 0)]),
    );
    assert_eq!(codes(&r), vec![INVALID_PRODUCER_ID_MAPPING]);
    let r = call(
        &broker,
        3,
        &add(
            id,
            producer,
            &[(topic, 0), ("no-such-topic", 0), (topic, 99)],
        ),
    );
    assert_eq!(
        codes(&r),
        vec![
            OPERATION_NOT_ATTEMPTED,
            UNKNOWN_TOPIC_OR_PARTITION,
            UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    let r = call(&broker, 3, &add(id, producer, &[("__consumer_offsets", 0)]));
    assert_eq!(codes(&r), vec![TOPIC_AUTHORIZATION_FAILED]);
    let r = call(&broker, 3, &add(id, (pid, 0), &[(topic, 0)]));
    assert_eq!(codes(&r), vec![PRODUCER_FENCED]);
    let r = call(&broker, 1, &add(id, (pid, 0), &[(topic, 0)]));
    assert_eq!(codes(&r), vec![INVALID_PRODUCER_EPOCH]);
    let r = call(&broker, 3, &add(id, (pid + 1, 1), &[(topic, 0)]));
    assert_eq!(codes(&r), vec![INVALID_PRODUCER_ID_MAPPING]);
    let r = call(&broker, 3, &add("", producer, &[(topic, 0)]));
    assert_eq!(codes(&r), vec![INVALID_REQUEST]);
    let many: Vec<(&str, i32)> = (0..2000).map(|_| ("no-such-topic", -1)).collect();
    let r = call(&broker, 3, &add(id, producer, &many));
    assert_eq!(codes(&r), vec![UNKNOWN_TOPIC_OR_PARTITION; 2000]);

    // AddOffsetsToTxn and EndTxn before anything was added.
    let offsets = |group: &str| {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(1)
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
    };
    assert_eq!(call(&broker, 3, &offsets("")).error_code, INVALID_GROUP_ID);
    assert_eq!(
        call(&broker, 3, &end(id, producer, true)).error_code,
        INVALID_TXN_STATE
    );
    assert_eq!(
        call(&broker, 3, &end("", producer, true)).error_code,
        INVALID_REQUEST
    );
    assert_eq!(
        call(&broker, 3, &end("nobody", producer, false)).error_code,
        INVALID_PRODUCER_ID_MAPPING
    );

    // Produce: stray transactional batches and client markers.
    let stray = producer_batch(producer, 0, true, false);
    assert_eq!(
        produce(&broker, topic, None, stray.clone()),
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert_eq!(
        produce(&broker, topic, Some(id), stray.clone()),
        INVALID_TXN_STATE,
        "KIP-890: partition 0 was never added to the transaction"
    );
    assert_eq!(
        produce(
            &broker,
            topic,
            Some(id),
            producer_batch(producer, 0, false, true)
        ),
        INVALID_RECORD,
        "clients may not write markers"
    );
    assert_eq!(
        latest(&broker, topic, 1),
        latest(&broker, topic, 0),
        "nothing open"
    );

    // Admin requests with odd ids.
    let described = call(
        &broker,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![
            txn_id(""),
            txn_id("nobody"),
            txn_id(id),
        ]),
    );
    let described: Vec<i16> = described
        .transaction_states
        .iter()
        .map(|s| s.error_code)
        .collect();
    assert_eq!(
        described,
        vec![INVALID_REQUEST, TRANSACTIONAL_ID_NOT_FOUND, NONE]
    );
    let listed = call(
        &broker,
        1,
        &ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Bogus")])
            .with_producer_id_filters(vec![ProducerId(-9)])
            .with_duration_filter(i64::MAX),
    );
    assert_eq!(listed.error_code, NONE);
    assert!(listed.transaction_states.is_empty());
    assert_eq!(
        listed.unknown_state_filters,
        vec![StrBytes::from_static_str("Bogus")]
    );
    let producers = call(
        &broker,
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default()
                .with_name(topic_name("no-such-topic"))
                .with_partition_indexes(vec![0]),
            TopicRequest::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![-1, 0]),
        ]),
    );
    let partition_codes: Vec<i16> = producers
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(
        partition_codes,
        vec![UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION, NONE]
    );

    // A well-formed transaction still commits.
    let r = call(&broker, 3, &add(id, producer, &[(topic, 0)]));
    assert_eq!(codes(&r), vec![NONE]);
    assert_eq!(
        produce(
            &broker,
            topic,
            Some(id),
            producer_batch(producer, 0, true, false)
        ),
        NONE
    );
    let open_end = latest(&broker, topic, 0);
    // A time lookup does not find the open record for read_committed.
    assert_eq!(list_offset(&broker, topic, 0, 1_000), open_end - 1);
    assert_eq!(list_offset(&broker, topic, 1, 1_000), -1);
    assert_eq!(
        latest(&broker, topic, 1),
        open_end - 1,
        "held back by the open transaction"
    );
    assert_eq!(call(&broker, 3, &end(id, producer, true)).error_code, NONE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while latest(&broker, topic, 1) != latest(&broker, topic, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit marker arrives"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(latest(&broker, topic, 0), open_end + 1, "one marker");
}
