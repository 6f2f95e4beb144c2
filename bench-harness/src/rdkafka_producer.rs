//! The cross-check: the same produce workload driven by librdkafka (through
//! the `rdkafka` crate) instead of kelp-client, one OS thread per producer,
//! so the harness's own client can be compared with a client nobody here
//! wrote. Latency is taken in librdkafka's delivery callback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::latency::Latencies;
use crate::progress::{Progress, Samples};
use crate::scenario::Scenario;
use crate::workload::micros_since;

/// How often a producer thread hands its latency samples over.
const HAND_OVER_EVERY: Duration = Duration::from_millis(500);

/// Counts deliveries and records their latency.
struct Deliveries {
    progress: Arc<Progress>,
    epoch: Instant,
    message_bytes: u64,
    latencies: std::sync::Mutex<Latencies>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    /// The send time, in microseconds since the run's epoch.
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<u64>) {
        match result {
            Ok(_) => {
                self.progress.count(1, self.message_bytes);
                if self.progress.measuring() {
                    // Only this producer's polling thread calls back.
                    if let Ok(mut latencies) = self.latencies.lock() {
                        latencies.record_micros(micros_since(self.epoch).saturating_sub(*sent));
                    }
                }
            }
            Err(_) => {
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Starts one librdkafka producer thread per scenario producer; with
/// `idempotent`, as an idempotent producer (acks=-1, whatever the scenario
/// says), and with `max_in_flight` requests per connection if given.
pub fn start(
    scenario: &Scenario,
    bootstrap: &str,
    (idempotent, max_in_flight): (bool, Option<u32>),
    progress: &Arc<Progress>,
    epoch: Instant,
) -> Result<Vec<JoinHandle<()>>, KafkaError> {
    let mut threads = Vec::new();
    for _ in 0..scenario.producers {
        let context = Deliveries {
            progress: Arc::clone(progress),
            epoch,
            message_bytes: scenario.message_size as u64,
            latencies: std::sync::Mutex::new(Latencies::default()),
        };
        let mut config = ClientConfig::new();
        if let Some(n) = max_in_flight {
            config.set("max.in.flight.requests.per.connection", n.to_string());
        }
        let producer: BaseProducer<Deliveries> = config
            .set("bootstrap.servers", bootstrap)
            .set(
                "acks",
                if idempotent {
                    "-1".to_owned()
                } else {
                    scenario.acks.to_string()
                },
            )
            .set("linger.ms", scenario.linger_ms.to_string())
            .set("batch.size", scenario.batch_size.to_string())
            .set("compression.codec", scenario.compression.as_str())
            .set("enable.idempotence", idempotent.to_string())
            .set("queue.buffering.max.kbytes", "65536")
            .create_with_context(context)?;
        let (topic, value) = (scenario.topic(), vec![b'x'; scenario.message_size]);
        let progress = Arc::clone(progress);
        threads.push(std::thread::spawn(move || {
            let mut last_hand_over = Instant::now();
            while !progress.stopped() {
                let sent = Box::new(micros_since(epoch));
                let record =
                    BaseRecord::<(), [u8], Box<u64>>::with_opaque_to(&topic, sent).payload(&value);
                if let Err((e, _)) = producer.send(record) {
                    if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                        progress.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    producer.poll(Duration::from_millis(1));
                } else {
                    producer.poll(Duration::ZERO);
                }
                if last_hand_over.elapsed() >= HAND_OVER_EVERY {
                    hand_over(&producer, &progress);
                    last_hand_over = Instant::now();
                }
            }
            let _ = producer.flush(Duration::from_secs(30));
            hand_over(&producer, &progress);
        }));
    }
    Ok(threads)
}

fn hand_over(producer: &BaseProducer<Deliveries>, progress: &Progress) {
    let taken = producer
        .context()
        .latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    progress.hand_over(Samples {
        produce_ack: taken,
        end_to_end: Latencies::default(),
    });
}
