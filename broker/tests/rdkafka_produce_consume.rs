//! librdkafka (through the `rdkafka` crate, a client nobody here wrote)
//! produces to and consumes from a real `kelp` process: every codec, keys,
//! values, headers and timestamps come back in order per partition; the
//! data survives a restart; ListOffsets by time answers right.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

/// What a consumed message carried: key, value, timestamp, header, offset.
type Received = (String, String, i64, String, i64);

fn producer(broker: &Broker, codec: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("compression.codec", codec)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

fn consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", "kelp-interop")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

fn value(codec: &str, i: usize) -> String {
    format!("{codec}-value-{i}-{}", "x".repeat(i % 50))
}

/// Produces `count` messages to `topic`, key-partitioned, with a header and
/// a timestamp each; returns the messages by partition in produce order.
fn produce(
    broker: &Broker,
    topic: &str,
    codec: &str,
    count: usize,
) -> HashMap<i32, Vec<(String, String, i64)>> {
    let producer = producer(broker, codec);
    let mut sent: HashMap<i32, Vec<(String, String, i64)>> = HashMap::new();
    let base_ts = 1_700_000_000_000i64;
    for i in 0..count {
        let (k, v) = (key(i), value(codec, i));
        let partition = (i % PARTITIONS as usize) as i32;
        let ts = base_ts + i as i64;
        let headers = OwnedHeaders::new().insert(Header {
            key: "seq",
            value: Some(i.to_string().as_bytes()),
        });
        let record = BaseRecord::to(topic)
            .key(&k)
            .payload(&v)
            .partition(partition)
            .timestamp(ts)
            .headers(headers);
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "send failed: {e}"
                    );
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
        sent.entry(partition).or_default().push((k, v, ts));
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every message acknowledged");
    sent
}

/// Reads every partition of `topic` from the beginning until `expected`
/// messages arrived, and checks them against what was sent.
fn consume_and_check(
    broker: &Broker,
    topic: &str,
    sent: &HashMap<i32, Vec<(String, String, i64)>>,
) {
    let consumer = consumer(broker);
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let expected: usize = sent.values().map(Vec::len).sum();
    let mut got: HashMap<i32, Vec<Received>> = HashMap::new();
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while received < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed {received} of {expected}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("no consume error");
        let header = message.headers().expect("header present").get(0);
        let seq = String::from_utf8(header.value.unwrap().to_vec()).unwrap();
        got.entry(message.partition()).or_default().push((
            String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
            String::from_utf8(message.payload().unwrap().to_vec()).unwrap(),
            message.timestamp().to_millis().unwrap(),
            seq,
            message.offset(),
        ));
        received += 1;
    }
    for (partition, messages) in sent {
        let got = &got[partition];
        assert_eq!(got.len(), messages.len(), "partition {partition} count");
        for (i, ((k, v, ts), (gk, gv, gts, seq, offset))) in messages.iter().zip(got).enumerate() {
            assert_eq!(
                (k, v, ts),
                (gk, gv, gts),
                "partition {partition} message {i}"
            );
            assert_eq!(*offset, i as i64, "offsets are dense and in order");
            assert_eq!(seq, &k["key-".len()..], "header travels with its message");
        }
    }
}

#[test]
fn every_codec_round_trips_and_survives_a_restart() {
    let mut broker = Broker::start();
    let admin_check = consumer(&broker);
    let mut all = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("interop-{codec}");
        create_topic(&broker, &topic);
        let sent = produce(&broker, &topic, codec, 100_000);
        consume_and_check(&broker, &topic, &sent);
        all.push((topic, sent));
    }
    drop(admin_check);
    // A clean restart keeps everything.
    let dir = broker.take_dir();
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    assert!(broker.stop().success(), "SIGTERM stops the broker cleanly");
    let broker = Broker::start_in(&data_dir, port);
    for (topic, sent) in &all {
        consume_and_check(&broker, topic, sent);
    }
    // ListOffsets by timestamp: message i has timestamp base + i.
    let consumer = consumer(&broker);
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("interop-none", 0, Offset::Offset(1_700_000_000_000 + 600))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .unwrap();
    let offset = found.find_partition("interop-none", 0).unwrap().offset();
    // Partition 0 holds messages 0, 6, 12, ...: message 600 is its 100th.
    assert_eq!(offset, Offset::Offset(100));
    drop(dir);
}

fn create_topic(broker: &Broker, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .unwrap();
    let topics = [NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))];
    let results =
        futures_executor::block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap();
    for result in results {
        result.expect("topic created");
    }
}

#[test]
fn a_one_mib_message_goes_through_where_the_topic_allows_it() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let broker = Broker::start();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .unwrap();
    let big =
        NewTopic::new("big", 1, TopicReplication::Fixed(1)).set("max.message.bytes", "2097152");
    let small = NewTopic::new("small", 1, TopicReplication::Fixed(1));
    for result in
        futures_executor::block_on(admin.create_topics(&[big, small], &AdminOptions::new()))
            .unwrap()
    {
        result.expect("topic created");
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("message.max.bytes", "4000000")
        .set("acks", "all")
        .set("message.send.max.retries", "0")
        .create()
        .unwrap();
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    producer
        .send(BaseRecord::<(), [u8]>::to("big").payload(&payload))
        .unwrap();
    producer
        .flush(Duration::from_secs(30))
        .expect("the 1 MiB message is acknowledged");
    // The default max.message.bytes (1048588, as Kafka) refuses it.
    producer
        .send(BaseRecord::<(), [u8]>::to("small").payload(&payload))
        .unwrap();
    let _ = producer.flush(Duration::from_secs(30));
    let consumer = consumer(&broker);
    let (_, small_end) = consumer
        .fetch_watermarks("small", 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(small_end, 0, "MESSAGE_TOO_LARGE: nothing appended");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("big", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the 1 MiB message did not come back"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            assert_eq!(message.unwrap().payload().unwrap(), &payload[..]);
            break;
        }
    }
}
