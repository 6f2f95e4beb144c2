//! kelp-client against a real kelp broker: topics made with its admin
//! client, records produced with batching and compression come back whole
//! and in order through its consumer, and failures read clearly.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Broker;
use kelp_client::{
    Admin, ClientConfig, Compression, ConsumedRecord, Consumer, ConsumerConfig, Error, Producer,
    ProducerConfig, ProducerRecord, StartOffset,
};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;

/// Runs `future` on a fresh glommio executor on this thread.
fn run<T>(future: impl Future<Output = T>) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor")
        .run(future)
}

fn config(broker: &Broker) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::new(broker.addr.to_string())
    }
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{}", i % 97))
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value-{i}-{}", "v".repeat(i % 50)))
}

/// Produces `RECORDS` keyed records; returns, per partition, the record index at each offset.
async fn produce_all(
    broker: &Broker,
    topic: &str,
    compression: Compression,
) -> BTreeMap<i32, Vec<usize>> {
    let producer = Producer::connect(
        config(broker),
        ProducerConfig {
            compression,
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("producer connects");
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let record = ProducerRecord::new(topic, value(i))
            .with_key(key(i))
            .with_header("index", Some(Bytes::from(i.to_string())));
        deliveries.push(producer.send_async(record).await);
    }
    producer.flush().await;
    let mut by_partition: BTreeMap<i32, BTreeMap<i64, usize>> = BTreeMap::new();
    let mut key_partition: BTreeMap<Bytes, i32> = BTreeMap::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let metadata = delivery.await.expect("record acknowledged");
        let previous = by_partition
            .entry(metadata.partition)
            .or_default()
            .insert(metadata.offset, i);
        assert_eq!(previous, None, "offset {} given twice", metadata.offset);
        let partition = *key_partition.entry(key(i)).or_insert(metadata.partition);
        assert_eq!(partition, metadata.partition, "one key, one partition");
    }
    assert_eq!(
        by_partition.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );
    producer.close().await;
    by_partition
        .into_iter()
        .map(|(partition, offsets)| {
            let expected: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(
                offsets.keys().copied().collect::<Vec<_>>(),
                expected,
                "partition {partition}: offsets 0..n without gaps"
            );
            (partition, offsets.into_values().collect())
        })
        .collect()
}

/// Reads `count` records of `topic` from the start of every partition.
async fn consume(broker: &Broker, topic: &str, count: usize) -> Vec<ConsumedRecord> {
    let mut consumer = Consumer::connect(config(broker), ConsumerConfig::default())
        .await
        .expect("consumer connects");
    consumer
        .assign_topic(topic, StartOffset::Earliest)
        .await
        .expect("topic is known");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} records",
            records.len()
        );
        records.extend(consumer.poll().await.expect("fetch"));
    }
    assert_eq!(records.len(), count, "nothing more than was produced");
    records
}

#[test]
fn produced_records_come_back_whole_and_in_order() {
    let broker = Broker::start();
    run(async {
        let admin = Admin::connect(config(&broker))
            .await
            .expect("admin connects");
        for (topic, compression) in [("plain", Compression::None), ("zstd", Compression::Zstd)] {
            admin
                .create_topic(topic, PARTITIONS, &[("retention.ms", "3600000")])
                .await
                .expect("topic created");
            let produced = produce_all(&broker, topic, compression).await;
            let records = consume(&broker, topic, RECORDS).await;
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            for record in &records {
                let expected_offset = next.entry(record.partition).or_insert(0);
                assert_eq!(
                    record.offset, *expected_offset,
                    "{topic}: in order, no gaps"
                );
                *expected_offset += 1;
                let i = produced[&record.partition][record.offset as usize];
                assert_eq!(&*record.topic, topic);
                assert_eq!(record.key, Some(key(i)));
                assert_eq!(record.value, Some(value(i)));
                assert_eq!(
                    record.headers,
                    vec![("index".to_owned(), Some(Bytes::from(i.to_string())))]
                );
                assert!(record.timestamp_ms > 0);
            }
            for (partition, indexes) in &produced {
                assert_eq!(next[partition], indexes.len() as i64);
            }
        }

        let topics = admin.list_topics().await.expect("list");
        for name in ["plain", "zstd"] {
            let info = topics.iter().find(|t| t.name == name).expect("listed");
            assert_eq!(info.partitions, PARTITIONS);
        }
        let described = admin.describe_topic("zstd").await.expect("describe");
        assert_eq!(described.partitions.len(), PARTITIONS as usize);
        assert!(described.partitions.iter().all(|p| p.leader >= 0));

        let again = admin.create_topic("plain", PARTITIONS, &[]).await;
        let error = again.expect_err("the topic exists");
        assert_eq!(error, Error::TopicExists("plain".to_owned()));
        assert_eq!(error.to_string(), "topic \"plain\" already exists");
    });
}

#[test]
fn acks_zero_resolves_when_sent_and_delivers() {
    let broker = Broker::start();
    run(async {
        let admin = Admin::connect(config(&broker))
            .await
            .expect("admin connects");
        admin.create_topic("fire", 1, &[]).await.expect("created");
        let producer = Producer::connect(
            config(&broker),
            ProducerConfig {
                acks: 0,
                compression: Compression::Lz4,
                ..ProducerConfig::default()
            },
        )
        .await
        .expect("producer connects");
        let deliveries: Vec<_> = (0..500)
            .map(|i| producer.send(ProducerRecord::new("fire", value(i))))
            .collect();
        producer.flush().await;
        for delivery in deliveries {
            let metadata = delivery.await.expect("sent");
            assert_eq!((metadata.partition, metadata.offset), (0, -1));
        }
        let records = consume(&broker, "fire", 500).await;
        let values: Vec<Bytes> = records.into_iter().filter_map(|r| r.value).collect();
        assert_eq!(values, (0..500).map(value).collect::<Vec<_>>());

        admin.delete_topic("fire").await.expect("deleted");
        assert_eq!(
            admin.delete_topic("fire").await,
            Err(Error::UnknownTopic("fire".to_owned()))
        );
        // acks=0 cannot hear about the deletion; a producer that looks the topic up can.
        let acked = Producer::connect(config(&broker), ProducerConfig::default())
            .await
            .expect("producer connects");
        let unknown = acked
            .send(ProducerRecord::new("fire", Bytes::from_static(b"x")))
            .await;
        assert_eq!(unknown, Err(Error::UnknownTopic("fire".to_owned())));
    });
}

#[test]
fn nobody_listening_fails_fast_and_says_where() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    run(async {
        let config = ClientConfig {
            request_timeout: Duration::from_secs(10),
            ..ClientConfig::new(addr.clone())
        };
        let started = Instant::now();
        let error = Admin::connect(config.clone())
            .await
            .expect_err("nobody listens");
        assert_eq!(
            error.to_string(),
            format!("cannot reach the broker at {addr}: connection refused")
        );
        let error = Producer::connect(config.clone(), ProducerConfig::default())
            .await
            .expect_err("nobody listens");
        assert!(matches!(error, Error::Connect { .. }), "{error}");
        let two = ClientConfig {
            bootstrap: format!("{addr}, {addr}"),
            ..config
        };
        let error = Consumer::connect(two, ConsumerConfig::default())
            .await
            .expect_err("nobody listens");
        assert!(
            error.to_string().starts_with(&format!(
                "no broker reachable at {addr}, {addr}: cannot reach the broker at {addr}"
            )),
            "{error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a refused connection is not waited on"
        );
    });
}
