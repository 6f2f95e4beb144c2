//! The clients one harness core runs: producers that send as fast as the
//! broker takes records or on a fixed schedule, and consumers that read
//! and, for end-to-end runs, take each record's age.
//!
//! Latency is observed in send order (one task per producer awaits its
//! deliveries oldest first), which can overstate a record acknowledged
//! before an older one; with one connection per broker, acknowledgements
//! come back in send order anyway.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kelp_client::{Consumer, DeliveryFuture, Producer, ProducerRecord, StartOffset};
use rand::Rng;

use crate::latency::Latencies;
use crate::progress::{Progress, Samples};
use crate::scenario::{Keys, Scenario};

/// How often a core hands its latency samples to the main thread.
const HAND_OVER_EVERY: Duration = Duration::from_millis(500);

/// Microseconds since `epoch`, the run's shared clock.
pub fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One producer's part of the run.
pub struct ProducerPlan {
    /// Messages per second for this producer; `None` is as fast as possible.
    pub rate: Option<f64>,
}

/// The values and keys records carry, made once.
pub struct Payloads {
    value: Bytes,
    keys: Vec<Bytes>,
    timestamped: bool,
}

impl Payloads {
    /// Payloads for `scenario`; end-to-end values carry their send time.
    pub fn new(scenario: &Scenario, timestamped: bool) -> Payloads {
        let keys = match scenario.keys {
            Keys::None => Vec::new(),
            Keys::Sequential | Keys::Random => (0..scenario.key_count.max(1))
                .map(|i| Bytes::from(format!("key-{i}")))
                .collect(),
        };
        Payloads {
            value: Bytes::from(vec![b'x'; scenario.message_size]),
            keys,
            timestamped,
        }
    }

    /// The value of a prefill record (no send time).
    pub fn value_for_prefill(&self) -> Bytes {
        self.value.clone()
    }

    fn value(&self, epoch: Instant) -> Bytes {
        if !self.timestamped {
            return self.value.clone();
        }
        let mut value = BytesMut::with_capacity(self.value.len());
        value.put_u64(micros_since(epoch));
        value.extend_from_slice(&self.value[8..]);
        value.freeze()
    }
}

/// Sends records until the run stops (or `plan.limit`), recording
/// produce-to-acknowledgement latency while measuring.
pub async fn produce(
    producer: Rc<Producer>,
    scenario: Rc<Scenario>,
    payloads: Rc<Payloads>,
    plan: ProducerPlan,
    progress: Arc<Progress>,
    epoch: Instant,
) {
    let topic: Rc<str> = Rc::from(scenario.topic().as_str());
    let message_bytes = scenario.message_size as u64;
    let pending: Rc<std::cell::RefCell<VecDeque<(u64, DeliveryFuture)>>> = Rc::default();
    let done = Rc::new(std::cell::Cell::new(false));
    let collector = glommio::spawn_local(collect(
        Rc::clone(&pending),
        Rc::clone(&done),
        Arc::clone(&progress),
        message_bytes,
        epoch,
    ));
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut sent = 0u64;
    while !progress.stopped() {
        // Open loop: each record has a due time, and latency counts from it.
        let due = match plan.rate {
            Some(rate) => {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    glommio::timer::sleep(wait).await;
                }
                u64::try_from(due.duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
            }
            None => micros_since(epoch),
        };
        let mut record = ProducerRecord::new(Rc::clone(&topic), payloads.value(epoch));
        if !payloads.keys.is_empty() {
            let key = match scenario.keys {
                Keys::Random => rng.random_range(0..payloads.keys.len()),
                _ => (sent % payloads.keys.len() as u64) as usize,
            };
            record = record.with_key(payloads.keys[key].clone());
        }
        let delivery = producer.send_async(record).await;
        pending.borrow_mut().push_back((due, delivery));
        sent += 1;
        if sent % 256 == 0 {
            // Let the sender and the collector run between bursts.
            glommio::yield_if_needed().await;
        }
    }
    producer.flush().await;
    done.set(true);
    collector.await;
}

/// Awaits deliveries oldest first and records their latency.
async fn collect(
    pending: Rc<std::cell::RefCell<VecDeque<(u64, DeliveryFuture)>>>,
    done: Rc<std::cell::Cell<bool>>,
    progress: Arc<Progress>,
    message_bytes: u64,
    epoch: Instant,
) {
    let mut latencies = Latencies::default();
    let mut last_hand_over = Instant::now();
    loop {
        let next = pending.borrow_mut().pop_front();
        let Some((due, delivery)) = next else {
            if done.get() {
                break;
            }
            glommio::timer::sleep(Duration::from_micros(200)).await;
            continue;
        };
        match delivery.await {
            Ok(_) => {
                progress.count(1, message_bytes);
                if progress.measuring() {
                    latencies.record_micros(micros_since(epoch).saturating_sub(due));
                }
            }
            Err(_) => {
                progress
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if last_hand_over.elapsed() >= HAND_OVER_EVERY {
            progress.hand_over(Samples {
                produce_ack: std::mem::take(&mut latencies),
                end_to_end: Latencies::default(),
            });
            last_hand_over = Instant::now();
        }
    }
    progress.hand_over(Samples {
        produce_ack: latencies,
        end_to_end: Latencies::default(),
    });
}

/// Reads `partitions` of the topic until the run stops, counting records
/// (and taking their age when `timestamped`). With `total`, the run stops
/// once all consumers together have read that many records (a filled topic
/// read to its end).
#[allow(clippy::too_many_arguments)]
pub async fn consume(
    mut consumer: Consumer,
    scenario: Rc<Scenario>,
    partitions: Vec<i32>,
    start: StartOffset,
    timestamped: bool,
    total: Option<u64>,
    progress: Arc<Progress>,
    epoch: Instant,
) {
    let topic = scenario.topic();
    consumer.assign(&topic, &partitions, start);
    let mut latencies = Latencies::default();
    let mut last_hand_over = Instant::now();
    while !progress.stopped() {
        match consumer.poll().await {
            Ok(records) => {
                let now = micros_since(epoch);
                let mut bytes = 0u64;
                for record in &records {
                    let value = record.value.as_deref().unwrap_or_default();
                    bytes += value.len() as u64;
                    if timestamped && progress.measuring() && value.len() >= 8 {
                        let sent =
                            u64::from_be_bytes(value[..8].try_into().expect("8 bytes checked"));
                        latencies.record_micros(now.saturating_sub(sent));
                    }
                }
                if !timestamped {
                    progress.count(records.len() as u64, bytes);
                }
                let read = progress
                    .messages_whole_run
                    .load(std::sync::atomic::Ordering::Relaxed);
                if total.is_some_and(|total| read >= total) {
                    progress
                        .stop
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(error) => {
                eprintln!("kelp-bench: fetch failed: {error}");
                progress
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
        if last_hand_over.elapsed() >= HAND_OVER_EVERY {
            progress.hand_over(Samples {
                produce_ack: Latencies::default(),
                end_to_end: std::mem::take(&mut latencies),
            });
            last_hand_over = Instant::now();
        }
    }
    progress.hand_over(Samples {
        produce_ack: Latencies::default(),
        end_to_end: latencies,
    });
}
