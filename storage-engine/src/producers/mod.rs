//! Idempotent producers' state of one partition: for each producer id, its
//! epoch and the sequence numbers and offsets of its last five batches, so
//! a retried batch is recognised and answered with its first offsets, and a
//! gap or a stale epoch is refused. Kafka's `ProducerStateManager`.
//!
//! It also tracks transactions: a producer's first transactional batch
//! opens its transaction here, the coordinator's marker ends it, and the
//! oldest open transaction bounds the last stable offset. Aborted ones go
//! to the [`aborted`] index that `read_committed` fetches consult.
//!
//! Pure: the log asks [`ProducerStates::check`] before an append and calls
//! [`ProducerStates::record`] after it; a log opened after a restart loads
//! a [`snapshot`] and feeds the batches after it to `record` and
//! [`ProducerStates::end_txn`] to rebuild the table.

pub mod aborted;
pub mod snapshot;

use std::collections::{BTreeMap, HashMap, VecDeque};

pub use aborted::{AbortedTxn, AbortedTxns};

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
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

impl ProducerBatch {
    /// The producer fields of a parsed batch.
    pub fn of(batch: &crate::batch::RecordBatch) -> ProducerBatch {
        let first_sequence = batch.base_sequence();
        ProducerBatch {
            producer_id: batch.producer_id(),
            epoch: batch.producer_epoch(),
            first_sequence,
            last_sequence: add_sequence(first_sequence, batch.last_offset_delta()),
            transactional: batch.is_transactional(),
        }
    }
}

/// Where a batch of a producer landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Landed {
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
    /// A plain batch from a producer whose transaction here is open.
    #[error("producer {producer_id} sent a non-transactional batch inside its open transaction")]
    InvalidTxnState {
        /// Producer id.
        producer_id: i64,
    },
    /// A transactional batch whose producer's transaction here was not
    /// verified with its coordinator (or ended meanwhile).
    #[error("producer {producer_id}: the partition is not part of an ongoing transaction")]
    NotInTransaction {
        /// Producer id.
        producer_id: i64,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<Landed>,
    pub(crate) last_timestamp_ms: i64,
    /// The epoch of the coordinator that wrote its last marker (-1: none).
    pub(crate) coordinator_epoch: i32,
    /// The first offset of its open transaction here, if one is open.
    pub(crate) txn_first_offset: Option<i64>,
}

/// What DescribeProducers reports of one producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerSummary {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// The sequence of its last record here (-1: none in this epoch).
    pub last_sequence: i32,
    /// The largest timestamp of its batches and markers.
    pub last_timestamp_ms: i64,
    /// The epoch of the coordinator that wrote its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction (-1: none).
    pub txn_start_offset: i64,
}

/// A transaction that a marker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// The offset of its first batch here.
    pub first_offset: i64,
    /// The offset of the marker.
    pub last_offset: i64,
}

/// A commit or abort marker from a transaction coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// The producer epoch the coordinator ends it with.
    pub epoch: i16,
    /// Commit (else abort).
    pub commit: bool,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
}

/// The producers of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStates {
    pub(crate) producers: HashMap<i64, Producer>,
    /// Open transactions: first offset -> producer id.
    pub(crate) ongoing: BTreeMap<i64, i64>,
    /// Producers whose next transaction here the coordinator is checking
    /// or has allowed, by epoch (Kafka's verification guard, KIP-890); a
    /// marker of the producer withdraws it. Not saved: after a restart a
    /// first write is checked again.
    pub(crate) verifying: HashMap<i64, i16>,
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
        if batch.first_sequence < 0 {
            // A coordinator's transactional offset commit: only its epoch is
            // checked, as Kafka checks batches the broker writes itself.
            return Ok(Verdict::Append);
        }
        if !batch.transactional && producer.txn_first_offset.is_some() {
            // Whatever its epoch: a newer one would otherwise adopt the open
            // transaction, and the coordinator's marker would be refused.
            return Err(ProducerError::InvalidTxnState {
                producer_id: batch.producer_id,
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
        let producer = self.entry(batch.producer_id, batch.epoch, timestamp_ms);
        let opens_txn = batch.transactional && producer.txn_first_offset.is_none();
        if opens_txn {
            producer.txn_first_offset = Some(base_offset);
        }
        if batch.first_sequence >= 0 {
            if producer.batches.len() == BATCHES_RETAINED {
                producer.batches.pop_front();
            }
            producer.batches.push_back(Landed {
                first_sequence: batch.first_sequence,
                last_sequence: batch.last_sequence,
                base_offset,
                last_offset,
            });
        }
        producer.last_timestamp_ms = producer.last_timestamp_ms.max(timestamp_ms);
        if opens_txn {
            self.ongoing.insert(base_offset, batch.producer_id);
        }
    }

    /// The producer's entry, created at `epoch` if unknown; a newer epoch
    /// forgets the old epoch's batches, which can no longer be retried.
    fn entry(&mut self, producer_id: i64, epoch: i16, timestamp_ms: i64) -> &mut Producer {
        let producer = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| Producer {
                epoch,
                batches: VecDeque::with_capacity(BATCHES_RETAINED),
                last_timestamp_ms: timestamp_ms,
                coordinator_epoch: -1,
                txn_first_offset: None,
            });
        if epoch != producer.epoch {
            producer.epoch = epoch;
            producer.batches.clear();
        }
        producer
    }

    /// Decides on a coordinator's marker: one from an older producer epoch
    /// than the partition has seen is a zombie's and refused.
    pub fn check_marker(&self, marker: &TxnMarker) -> Result<(), ProducerError> {
        match self.producers.get(&marker.producer_id) {
            Some(producer) if marker.epoch < producer.epoch => {
                Err(ProducerError::InvalidProducerEpoch {
                    producer_id: marker.producer_id,
                    current: producer.epoch,
                    epoch: marker.epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a marker appended at `offset`, ending the producer's open
    /// transaction here; returns that transaction (`None` when it had no
    /// batch on this partition).
    pub fn end_txn(
        &mut self,
        marker: &TxnMarker,
        offset: i64,
        timestamp_ms: i64,
    ) -> Option<EndedTxn> {
        self.verifying.remove(&marker.producer_id);
        let producer = self.entry(marker.producer_id, marker.epoch, timestamp_ms);
        producer.coordinator_epoch = marker.coordinator_epoch;
        producer.last_timestamp_ms = producer.last_timestamp_ms.max(timestamp_ms);
        let first_offset = producer.txn_first_offset.take()?;
        self.ongoing.remove(&first_offset);
        Some(EndedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
        })
    }

    /// Notes that the coordinator is being asked whether `producer_id` at
    /// `epoch` may start a transaction here; a marker arriving before the
    /// batch withdraws it, so a batch delayed past its transaction's end
    /// cannot open a transaction nobody will end.
    pub fn begin_verification(&mut self, producer_id: i64, epoch: i16) {
        self.verifying.insert(producer_id, epoch);
    }

    /// Refuses a client's transactional batch that would open a transaction
    /// here without a standing verification of its producer and epoch.
    pub fn check_txn_start(&self, batch: &ProducerBatch) -> Result<(), ProducerError> {
        let opens = batch.transactional
            && batch.producer_id != NO_PRODUCER_ID
            && !self.has_open_txn(batch.producer_id, batch.epoch);
        if opens && self.verifying.get(&batch.producer_id) != Some(&batch.epoch) {
            return Err(ProducerError::NotInTransaction {
                producer_id: batch.producer_id,
            });
        }
        Ok(())
    }

    /// Whether the producer has an open transaction here at `epoch` or a
    /// later one (a first transactional write needs no coordinator check then).
    pub fn has_open_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|p| p.txn_first_offset.is_some() && p.epoch >= epoch)
    }

    /// The first offset of the oldest open transaction: nothing at or past
    /// it is stable.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Every producer, for DescribeProducers, by producer id.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut out: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(id, p)| ProducerSummary {
                producer_id: *id,
                epoch: p.epoch,
                last_sequence: p.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp_ms: p.last_timestamp_ms,
                coordinator_epoch: p.coordinator_epoch,
                txn_start_offset: p.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|s| s.producer_id);
        out
    }

    /// Forgets producers silent since `now_ms - expiration_ms`, except those
    /// with an open transaction (its marker is still to come); how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, p| {
            p.txn_first_offset.is_some()
                || now_ms.saturating_sub(p.last_timestamp_ms) < expiration_ms
        });
        before - self.producers.len()
    }
}

/// The sequence after `sequence`: they wrap from `i32::MAX` to 0.
fn next_sequence(sequence: i32) -> i32 {
    add_sequence(sequence, 1)
}

/// `sequence + delta`, wrapping past `i32::MAX` to 0 as Kafka's sequences do.
fn add_sequence(sequence: i32, delta: i32) -> i32 {
    if sequence < 0 {
        return sequence;
    }
    let sum = i64::from(sequence) + i64::from(delta);
    // Both are non-negative i32s, so the remainder fits.
    i32::try_from(sum % (i64::from(i32::MAX) + 1)).expect("below i32::MAX + 1")
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
            transactional: false,
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
    fn a_plain_batch_inside_an_open_transaction_is_refused() {
        let mut states = ProducerStates::default();
        let txn = ProducerBatch {
            transactional: true,
            ..batch(3, 0, 0, 2)
        };
        states.record(&txn, 10, 11, 0);
        assert!(states.has_open_txn(3, 0));
        assert!(!states.has_open_txn(3, 1), "a newer epoch starts anew");
        assert_eq!(
            states.check(&batch(3, 0, 2, 1)),
            Err(ProducerError::InvalidTxnState { producer_id: 3 })
        );
        assert_eq!(
            states.check(&batch(3, 1, 0, 1)),
            Err(ProducerError::InvalidTxnState { producer_id: 3 }),
            "a newer epoch may not adopt the open transaction"
        );
        let commit = TxnMarker {
            producer_id: 3,
            epoch: 0,
            commit: true,
            coordinator_epoch: 0,
        };
        assert_eq!(
            states.end_txn(&commit, 12, 0),
            Some(EndedTxn {
                producer_id: 3,
                first_offset: 10,
                last_offset: 12
            })
        );
        assert_eq!(states.check(&batch(3, 0, 2, 1)), Ok(Verdict::Append));
        assert_eq!(states.first_unstable_offset(), None);
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
