//! Produce with `acks=-1`, SIGKILL the broker at a random moment, restart
//! it: every acknowledged message is there, at the offset it was
//! acknowledged with, in order, exactly once (the producer does not retry,
//! so unacknowledged messages cannot come back as duplicates).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;

/// Records every acknowledgement: (partition, offset) -> payload.
#[derive(Default)]
struct Acks {
    acked: Mutex<HashMap<(i32, i64), String>>,
}

/// The producer's context: shares the acknowledgements with the test.
struct ArcAcks(Arc<Acks>);

impl ClientContext for ArcAcks {}

impl ProducerContext for ArcAcks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            self.0
                .acked
                .lock()
                .unwrap()
                .insert((message.partition(), message.offset()), payload);
        }
    }
}

fn seed() -> u64 {
    std::env::var("KELP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let seed = seed();
    eprintln!("KELP_CRASH_SEED={seed}");
    let mut broker = Broker::start();
    let dir = broker.take_dir();
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    create_topic(&broker);
    let context = Arc::new(Acks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (context, stop) = (Arc::clone(&context), Arc::clone(&stop));
        let bootstrap = broker.addr.to_string();
        std::thread::spawn(move || {
            let producer: BaseProducer<ArcAcks> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("linger.ms", "2")
                .set("enable.idempotence", "false")
                .set("message.send.max.retries", "0")
                .set("message.timeout.ms", "5000")
                .create_with_context(ArcAcks(context))
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("m{i}");
                let record = BaseRecord::to(TOPIC)
                    .payload(&payload)
                    .key(&payload)
                    .partition((i % PARTITIONS as u64) as i32);
                if producer.send(record).is_ok() {
                    i += 1;
                }
                producer.poll(Duration::ZERO);
                if i % 500 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = producer.flush(Duration::from_secs(10));
        })
    };
    // Let some acknowledgements arrive, then kill at a moment chosen by the seed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while context.acked.lock().unwrap().len() < 1_000 {
        assert!(Instant::now() < deadline, "no acknowledgements");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(seed % 1_500));
    broker.kill();
    stop.store(true, Ordering::Relaxed);
    producer_thread.join().unwrap();
    let acked = context.acked.lock().unwrap().clone();
    eprintln!("{} messages acknowledged before the kill", acked.len());

    let broker = Broker::start_in(&data_dir, port);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", "crash-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut ends = HashMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .unwrap();
        ends.insert(p, high);
    }
    let total: i64 = ends.values().sum();
    let mut found: HashMap<(i32, i64), String> = HashMap::new();
    let mut previous: HashMap<i32, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (found.len() as i64) < total {
        assert!(Instant::now() < deadline, "read {} of {total}", found.len());
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.unwrap();
        let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        let seq: u64 = payload[1..].parse().unwrap();
        // Within a partition messages keep the order they were produced in.
        if let Some(prev) = previous.insert(message.partition(), seq) {
            assert!(
                seq > prev,
                "partition {} went from m{prev} to m{seq}",
                message.partition()
            );
        }
        assert!(
            found
                .insert((message.partition(), message.offset()), payload)
                .is_none(),
            "offset read twice"
        );
    }
    let mut payloads: Vec<&String> = found.values().collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), found.len(), "no message is stored twice");
    for (position, payload) in &acked {
        assert_eq!(
            found.get(position),
            Some(payload),
            "acknowledged message at {position:?} lost (seed {seed})"
        );
    }
    drop(dir);
}

fn create_topic(broker: &Broker) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .unwrap();
    let topics = [NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))];
    for result in
        futures_executor::block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap()
    {
        result.expect("topic created");
    }
}
