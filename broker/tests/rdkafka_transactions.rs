//! Idempotent and transactional producers against a real `kelp` process,
//! with librdkafka (the `rdkafka` crate): retries over cut connections are
//! written once, transactions commit and abort across partitions as
//! `read_committed` and `read_uncommitted` consumers expect, a
//! consume-transform-produce loop is exactly-once across a restart of the
//! processor, a new instance fences the old one, and a broker restart in
//! the middle of a transaction never leaves it half visible.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::groups::{create, produce, NONE};
use common::proxy::Proxy;
use common::raw::{call, topic_name};
use common::{free_port, Broker};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListOffsetsRequest,
    ListTransactionsRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Bounds every client call and wait.
const TIMEOUT: Duration = Duration::from_secs(30);

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

/// A transactional producer with `transactional.id` `id`, ready for a first
/// transaction.
fn transactional(addr: &str, id: &str) -> TxnProducer {
    let producer: TxnProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "20000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");
    producer
}

/// Sends `values` to `topic`, value `i` to partition `i % partitions`, and
/// waits until the broker has them.
fn send_all(producer: &TxnProducer, topic: &str, partitions: i32, values: &[String]) {
    for (i, value) in values.iter().enumerate() {
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .payload(value)
                    .partition(i as i32 % partitions),
            )
            .expect("queued");
    }
    producer.flush(TIMEOUT).expect("flushed");
}

/// Every record of `topic`'s partitions that a consumer with `isolation`
/// reads, per partition in offset order; stops once `expected` records are
/// in and a second more brings nothing, or at the deadline.
fn read_back(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    isolation: &str,
    expected: usize,
) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", "kelp-txn-reader")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + TIMEOUT;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value =
                    String::from_utf8(message.payload().unwrap_or_default().to_vec()).unwrap();
                read.entry(message.partition()).or_default().push(value);
                count += 1;
                quiet_since = Instant::now();
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {
                if count >= expected && quiet_since.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
        }
    }
    read
}

/// All values read, whatever their partition, sorted.
fn flat(read: &BTreeMap<i32, Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = read.values().flatten().cloned().collect();
    all.sort();
    all
}

/// ListOffsets latest of one partition under `isolation` (0 or 1).
fn latest(broker: &Broker, topic: &str, partition: i32, isolation: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response = call(broker, 5, &request);
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.error_code, NONE);
    answer.offset
}

/// DescribeTransactions of one id: its state name and producer id.
fn describe_txn(broker: &Broker, id: &str) -> (i16, String, i64) {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_owned()))]);
    let response = call(broker, 0, &request);
    let state = &response.transaction_states[0];
    (
        state.error_code,
        state.transaction_state.to_string(),
        state.producer_id.0,
    )
}

/// Waits until `id`'s transaction state is `state` (markers are written
/// after EndTxn is answered).
fn wait_for_state(broker: &Broker, id: &str, state: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, now, _) = describe_txn(broker, id);
        if now == state {
            return;
        }
        assert!(Instant::now() < deadline, "{id} stayed {now}, not {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_idempotent_producer_over_cut_connections_writes_each_record_once_in_order() {
    let proxy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy_listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let broker = Broker::start_advertising(&dir.path().join("data"), free_port(), proxy_port, &[]);
    let proxy = Arc::new(Proxy::start(proxy_listener, broker.addr));
    let topic = "idempotent-cuts";
    create(&broker, topic, 3);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", proxy.addr.to_string())
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("batch.num.messages", "100")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "20")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "100")
        .create()
        .expect("idempotent producer");
    let sending = Arc::new(AtomicBool::new(true));
    let cutter = {
        let (proxy, sending) = (Arc::clone(&proxy), Arc::clone(&sending));
        std::thread::spawn(move || {
            while sending.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(60));
                proxy.cut();
            }
        })
    };
    const COUNT: usize = 30_000;
    for i in 0..COUNT {
        let value = format!("{i:06}");
        let record = BaseRecord::<str, str>::to(topic)
            .payload(&value)
            .partition((i % 3) as i32);
        let mut record = record;
        // The queue may fill while connections are down: wait and retry.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        if i % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record acknowledged");
    sending.store(false, Ordering::Relaxed);
    cutter.join().unwrap();
    assert!(
        proxy.cuts() >= 5,
        "connections were cut {} times",
        proxy.cuts()
    );
    let read = read_back(&broker, topic, 3, "read_uncommitted", COUNT);
    for p in 0..3 {
        let expected: Vec<String> = (0..COUNT)
            .filter(|i| i % 3 == p as usize)
            .map(|i| format!("{i:06}"))
            .collect();
        let got = read.get(&p).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            expected.len(),
            "partition {p}: no duplicates, no gaps"
        );
        assert_eq!(got, expected, "partition {p}: in order");
    }
}

#[test]
fn transactions_commit_and_abort_across_partitions() {
    let broker = Broker::start();
    let topic = "txn-mixed";
    create(&broker, topic, 3);
    let addr = broker.addr.to_string();
    let producer = transactional(&addr, "mixed-1");
    let mut committed = Vec::new();
    let mut everything = Vec::new();
    for n in 0..6 {
        let values: Vec<String> = (0..30).map(|i| format!("t{n}-{i:02}")).collect();
        producer.begin_transaction().unwrap();
        send_all(&producer, topic, 3, &values);
        // Plain records written meanwhile are always visible.
        produce(&broker, topic, 3, n * 3..n * 3 + 3);
        let plain: Vec<String> = (n * 3..n * 3 + 3).map(|i| format!("m-{i}")).collect();
        everything.extend(values.clone());
        everything.extend(plain.clone());
        committed.extend(plain);
        if n % 2 == 0 {
            producer.commit_transaction(TIMEOUT).unwrap();
            committed.extend(values);
        } else {
            producer.abort_transaction(TIMEOUT).unwrap();
        }
    }
    wait_for_state(&broker, "mixed-1", "CompleteAbort");
    committed.sort();
    everything.sort();
    let read = read_back(&broker, topic, 3, "read_committed", committed.len());
    assert_eq!(
        flat(&read),
        committed,
        "read_committed sees exactly the committed records"
    );
    let read = read_back(&broker, topic, 3, "read_uncommitted", everything.len());
    assert_eq!(
        flat(&read),
        everything,
        "read_uncommitted sees every record"
    );

    // An open transaction holds read_committed back at its first offset.
    producer.begin_transaction().unwrap();
    send_all(&producer, topic, 3, &["open-0".to_owned()]);
    let (end, stable) = (latest(&broker, topic, 0, 0), latest(&broker, topic, 0, 1));
    assert_eq!(stable, end - 1, "the last stable offset is the open batch");
    let (code, state, producer_id) = describe_txn(&broker, "mixed-1");
    assert_eq!((code, state.as_str()), (NONE, "Ongoing"));
    let listed = call(
        &broker,
        1,
        &ListTransactionsRequest::default().with_duration_filter(-1),
    );
    assert!(listed
        .transaction_states
        .iter()
        .any(|t| t.transactional_id.0.as_str() == "mixed-1" && t.producer_id.0 == producer_id));
    let producers = call(
        &broker,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![0])]),
    );
    let active = &producers.topics[0].partitions[0].active_producers;
    assert!(
        active
            .iter()
            .any(|p| p.producer_id.0 == producer_id && p.current_txn_start_offset == end - 1),
        "{active:?}"
    );
    producer.commit_transaction(TIMEOUT).unwrap();
    wait_for_state(&broker, "mixed-1", "CompleteCommit");
    assert_eq!(latest(&broker, topic, 0, 1), latest(&broker, topic, 0, 0));
    let (code, _, _) = describe_txn(&broker, "no-such-id");
    assert_eq!(code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
}

/// One consume-transform-produce step: reads up to `max` records, writes
/// `out-<value>` for each and commits the input offsets in the same
/// transaction. Returns how many it processed (0: nothing to read).
fn process(
    consumer: &BaseConsumer,
    producer: &TxnProducer,
    output: &str,
    max: usize,
    commit: bool,
) -> usize {
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while batch.len() < max && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => batch.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    if batch.is_empty() {
        return 0;
    }
    producer.begin_transaction().unwrap();
    let outputs: Vec<String> = batch.iter().map(|v| format!("out-{v}")).collect();
    send_all(producer, output, 1, &outputs);
    if commit {
        let positions = consumer.position().unwrap();
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&positions, &metadata, TIMEOUT)
            .unwrap();
        producer.commit_transaction(TIMEOUT).unwrap();
    }
    batch.len()
}

/// A processor's consumer: group `group`, read_committed, no auto-commit.
fn processor_consumer(broker: &Broker, group: &str, input: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    consumer.subscribe(&[input]).unwrap();
    consumer
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_processor_restart() {
    let broker = Broker::start();
    let (input, output) = ("ctp-in", "ctp-out");
    create(&broker, input, 2);
    create(&broker, output, 1);
    produce(&broker, input, 2, 0..200);
    let addr = broker.addr.to_string();

    // The first instance commits some transactions, then dies in the
    // middle of one, its output written but not committed.
    let consumer = processor_consumer(&broker, "ctp", input);
    let producer = transactional(&addr, "ctp-processor");
    let mut done = 0;
    while done < 90 {
        done += process(&consumer, &producer, output, 30, true);
    }
    assert!(process(&consumer, &producer, output, 30, false) > 0);
    drop(producer);
    drop(consumer);

    // The restarted instance fences the first, whose open transaction is
    // aborted, and carries on from the committed offsets.
    let consumer = processor_consumer(&broker, "ctp", input);
    let producer = transactional(&addr, "ctp-processor");
    let mut idle = 0;
    while idle < 3 {
        if process(&consumer, &producer, output, 50, true) == 0 {
            idle += 1;
        }
    }
    let mut expected: Vec<String> = (0..200).map(|i| format!("out-m-{i}")).collect();
    expected.sort();
    let read = read_back(&broker, output, 1, "read_committed", expected.len());
    assert_eq!(
        flat(&read),
        expected,
        "every input transformed exactly once"
    );
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = Broker::start();
    let topic = "txn-fencing";
    create(&broker, topic, 2);
    let addr = broker.addr.to_string();
    let first = transactional(&addr, "fenced-id");
    first.begin_transaction().unwrap();
    send_all(
        &first,
        topic,
        2,
        &["zombie-0".to_owned(), "zombie-1".to_owned()],
    );
    let second = transactional(&addr, "fenced-id");
    let fenced = first.commit_transaction(TIMEOUT);
    match fenced {
        Err(KafkaError::Transaction(e)) => assert!(e.is_fatal(), "fenced is fatal: {e}"),
        other => panic!("the first producer was not fenced: {other:?}"),
    }
    second.begin_transaction().unwrap();
    send_all(
        &second,
        topic,
        2,
        &["live-0".to_owned(), "live-1".to_owned()],
    );
    second.commit_transaction(TIMEOUT).unwrap();
    let read = read_back(&broker, topic, 2, "read_committed", 2);
    assert_eq!(flat(&read), vec!["live-0".to_owned(), "live-1".to_owned()]);
}

#[test]
fn a_broker_restart_mid_transaction_leaves_it_whole_or_aborted() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut broker = Broker::start_in(&data, port);
    let topic = "txn-restart";
    create(&broker, topic, 3);
    let addr = broker.addr.to_string();
    let producer = transactional(&addr, "restart-id");
    producer.begin_transaction().unwrap();
    let values: Vec<String> = (0..30).map(|i| format!("r-{i:02}")).collect();
    send_all(&producer, topic, 3, &values);
    broker.kill();
    let broker = Broker::start_in(&data, port);
    let visible = match producer.commit_transaction(TIMEOUT) {
        Ok(()) => values.clone(),
        Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
            producer.abort_transaction(TIMEOUT).unwrap();
            Vec::new()
        }
        Err(e) => panic!("neither committed nor abortable: {e}"),
    };
    let read = read_back(&broker, topic, 3, "read_committed", visible.len());
    assert_eq!(flat(&read), visible, "all of the transaction or none of it");
    // The coordinator and the partitions carry on after the restart.
    producer.begin_transaction().unwrap();
    send_all(&producer, topic, 3, &["after".to_owned()]);
    producer.commit_transaction(TIMEOUT).unwrap();
    wait_for_state(&broker, "restart-id", "CompleteCommit");
    let read = read_back(&broker, topic, 3, "read_committed", visible.len() + 1);
    assert_eq!(flat(&read).len(), visible.len() + 1);
}
