//! Idempotent producers' state of one partition: for each producer id, its
//! epoch and the sequence numbers and offsets of its last five batches, so
//! a retried batch is recognised and answered with its first offsets, and a
//! gap or a stale epoch is refused. Kafka's `ProducerStateManager`.
//!
//! Pure: the log asks [`ProducerStates::check`] before an append and calls
//! [`ProducerStates::record`] after it; a log opened after a restart feeds
//! its batches to `record` to rebuild the table.

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`).
pub const BATCHES_RETAINED: usize = 5;
/// Kafka's default `producer.id.expiration.ms` (one day).
pub const PRODUCER_EXPIRATION_MS: i64 = 86_400_000;
/// The producer id of a batch from a producer that is not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;
/// The epoch a producer id has before any batch of it was seen.
const NO_PRODUCER_EPOCH: i16 = -1;

/// The producer fields of a batch, as its header carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id (`NO_PRODUCER_ID` when not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence number of the first record.
    pub first_sequence: i32,
    /// Sequence number of the last record.
    pub last_sequence: i32,
}

/// Where a batch of a producer landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Landed {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
    last_offset: i64,
}

/// What the table says of a batch about to be appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// It was appended before at these offsets: answer with them, write nothing.
    Duplicate {
        /// The first offset it got then.
        base_offset: i64,
        /// The last offset it got then.
        last_offset: i64,
    },
}

/// Why a batch is refused; mapped to Kafka codes by the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's (a fenced zombie).
    #[error("producer {producer_id} has epoch {current}, the batch {epoch}")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// The producer's epoch here.
        current: i16,
        /// The batch's epoch.
        epoch: i16,
    },
    /// The batch does not follow the producer's last one.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// The sequence the next batch must start at.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
}

/// One producer's state.
#[derive(Clone, Debug)]
struct Producer {
    epoch: i16,
    batches: VecDeque<Landed>,
    last_timestamp_ms: i64,
}

/// The producers of one partition.
#[derive(Clone, Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

impl ProducerStates {
    /// How many producers are known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides on a batch from a client before it is appended.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict, ProducerError> {
        if batch.producer_id == NO_PRODUCER_ID {
            return Ok(Verdict::Append);
        }
        let Some(producer) = self.producers.get(&batch.producer_id) else {
            // A producer seen for the first time (or expired) may start anywhere,
            // as Kafka accepts it since KIP-360.
            return Ok(Verdict::Append);
        };
        if batch.epoch < producer.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                current: producer.epoch,
                epoch: batch.epoch,
            });
        }
        if batch.epoch > producer.epoch {
            // A bumped epoch starts its sequences again at 0.
            if batch.first_sequence != 0 && producer.epoch != NO_PRODUCER_EPOCH {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: batch.producer_id,
                    expected: 0,
                    got: batch.first_sequence,
                });
            }
            return Ok(Verdict::Append);
        }
        if let Some(seen) = producer.batches.iter().find(|b| {
            b.first_sequence == batch.first_sequence && b.last_sequence == batch.last_sequence
        }) {
            return Ok(Verdict::Duplicate {
                base_offset: seen.base_offset,
                last_offset: seen.last_offset,
            });
        }
        let Some(last) = producer.batches.back() else {
            return Ok(Verdict::Append);
        };
        let expected = next_sequence(last.last_sequence);
        if batch.first_sequence != expected {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                expected,
                got: batch.first_sequence,
            });
        }
        Ok(Verdict::Append)
    }

    /// Records a batch appended at `base_offset..=last_offset`; also how a
    /// table is rebuilt from the log, batch by batch in offset order.
    pub fn record(
        &mut self,
        batch: &ProducerBatch,
        base_offset: i64,
        last_offset: i64,
        timestamp_ms: i64,
    ) {
        if batch.producer_id == NO_PRODUCER_ID {
            return;
        }
        let producer = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| Producer {
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(BATCHES_RETAINED),
                last_timestamp_ms: timestamp_ms,
            });
        if batch.epoch != producer.epoch {
            // A new epoch: the old epoch's batches can no longer be retried.
            producer.epoch = batch.epoch;
            producer.batches.clear();
        }
        if producer.batches.len() == BATCHES_RETAINED {
            producer.batches.pop_front();
        }
        producer.batches.push_back(Landed {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            base_offset,
            last_offset,
        });
        producer.last_timestamp_ms = producer.last_timestamp_ms.max(timestamp_ms);
    }

    /// Forgets producers silent since `now_ms - expiration_ms`; how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, p| now_ms.saturating_sub(p.last_timestamp_ms) < expiration_ms);
        before - self.producers.len()
    }
}

/// The sequence after `sequence`: they wrap from `i32::MAX` to 0.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, first: i32, count: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            epoch,
            first_sequence: first,
            last_sequence: first + (count - 1),
        }
    }

    /// Appends as the log would: check, then record at the next offsets.
    fn append(
        states: &mut ProducerStates,
        next: &mut i64,
        b: ProducerBatch,
    ) -> Result<(i64, i64), ProducerError> {
        match states.check(&b)? {
            Verdict::Duplicate {
                base_offset,
                last_offset,
            } => Ok((base_offset, last_offset)),
            Verdict::Append => {
                let count = i64::from(b.last_sequence - b.first_sequence + 1);
                let base = *next;
                *next += count;
                states.record(&b, base, base + count - 1, 0);
                Ok((base, base + count - 1))
            }
        }
    }

    #[test]
    fn a_retried_batch_gets_its_first_offsets_and_is_not_written_twice() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 0, 10)),
            Ok((0, 9))
        );
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 10, 5)),
            Ok((10, 14))
        );
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 0, 10)),
            Ok((0, 9)),
            "retry"
        );
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 10, 5)),
            Ok((10, 14)),
            "retry"
        );
        assert_eq!(next, 15, "nothing written twice");
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        for i in 0..6 {
            append(&mut states, &mut next, batch(1, 0, i, 1)).unwrap();
        }
        assert_eq!(
            append(&mut states, &mut next, batch(1, 0, 1, 1)),
            Ok((1, 1))
        );
        assert_eq!(
            append(&mut states, &mut next, batch(1, 0, 0, 1)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 1,
                expected: 6,
                got: 0
            }),
            "the sixth-last batch is forgotten"
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        append(&mut states, &mut next, batch(1, 3, 0, 2)).unwrap();
        assert_eq!(
            append(&mut states, &mut next, batch(1, 3, 5, 1)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 1,
                expected: 2,
                got: 5
            })
        );
        assert_eq!(
            append(&mut states, &mut next, batch(1, 2, 2, 1)),
            Err(ProducerError::InvalidProducerEpoch {
                producer_id: 1,
                current: 3,
                epoch: 2
            })
        );
        // A bumped epoch (KIP-360) starts again at 0, and only there.
        assert!(matches!(
            append(&mut states, &mut next, batch(1, 4, 2, 1)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        append(&mut states, &mut next, batch(1, 4, 0, 1)).unwrap();
        // Producers do not disturb each other, and non-idempotent batches pass.
        append(&mut states, &mut next, batch(2, 0, 0, 1)).unwrap();
        append(&mut states, &mut next, batch(NO_PRODUCER_ID, -1, -1, 1)).unwrap();
        assert_eq!(states.len(), 2);
    }

    #[test]
    fn sequences_wrap_and_unknown_producers_may_start_anywhere() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        append(&mut states, &mut next, batch(9, 0, i32::MAX - 1, 2)).unwrap();
        append(&mut states, &mut next, batch(9, 0, 0, 1)).unwrap();
        assert_eq!(states.len(), 1);
    }

    #[test]
    fn silent_producers_expire_and_a_rebuilt_table_answers_the_same() {
        let mut states = ProducerStates::default();
        let mut log = Vec::new();
        for (pid, ts) in [(1, 1_000), (2, 50_000)] {
            let b = batch(pid, 0, 0, 3);
            states.record(&b, pid * 10, pid * 10 + 2, ts);
            log.push((b, pid * 10, ts));
        }
        // Rebuilt from the log: the same verdicts.
        let mut rebuilt = ProducerStates::default();
        for (b, base, ts) in &log {
            rebuilt.record(b, *base, base + 2, *ts);
        }
        for probe in [batch(1, 0, 0, 3), batch(2, 0, 3, 1), batch(2, 0, 9, 1)] {
            assert_eq!(rebuilt.check(&probe), states.check(&probe));
        }
        assert_eq!(
            states.expire(1_000 + PRODUCER_EXPIRATION_MS, PRODUCER_EXPIRATION_MS),
            1
        );
        assert_eq!(states.len(), 1);
    }
}
