//! The state machine of one transactional id, as Kafka's
//! `TransactionMetadata` and `TransactionCoordinator` decide it: pure
//! functions from the current metadata and a request to the metadata to
//! write (or an error code). The coordinator partition writes what they
//! return to `__transaction_state` before it answers.

use std::collections::BTreeSet;

use super::records::{TxnStatus, TxnValue};
use crate::kafka::errors::ErrorCode;

/// An epoch at which a producer id is used up and a new one is given
/// (Kafka's `isEpochExhausted`: one epoch is kept for fencing).
const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;
/// The producer id or epoch of no producer.
pub const NONE: i64 = -1;

/// A topic partition of a transaction.
pub type TxnPartition = (String, i32);

/// One transactional id's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id now in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (-1: none).
    pub previous_producer_id: i64,
    /// The producer epoch now in use.
    pub epoch: i16,
    /// The epoch before the last bump, for recognising a retried
    /// InitProducerId (-1: none; not saved in the log, as in Kafka).
    pub last_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// Where the transaction stands.
    pub status: TxnStatus,
    /// The partitions of the open (or completing) transaction.
    pub partitions: BTreeSet<TxnPartition>,
    /// When the open transaction started (-1: none open).
    pub start_ms: i64,
    /// When the metadata last changed.
    pub last_update_ms: i64,
}

/// What InitProducerId does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// Write this, then answer with its producer id and epoch.
    Write(TxnMetadata),
    /// A retry of a bump that was already written: answer with these.
    Answer {
        /// Producer id.
        producer_id: i64,
        /// Epoch.
        epoch: i16,
    },
    /// The previous instance left a transaction open: write this abort
    /// (with a bumped epoch, fencing it), finish it, and answer
    /// CONCURRENT_TRANSACTIONS so the client retries.
    AbortFirst(TxnMetadata),
}

impl TxnMetadata {
    /// A new transactional id with a fresh producer id.
    pub fn new(producer_id: i64, timeout_ms: i32, now: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            previous_producer_id: NONE,
            epoch: 0,
            last_epoch: -1,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
        }
    }

    /// The record value saved for it.
    pub fn to_value(&self) -> TxnValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, index) in &self.partitions {
            match partitions.last_mut() {
                Some((last, indexes)) if last == topic => indexes.push(*index),
                _ => partitions.push((topic.clone(), vec![*index])),
            }
        }
        TxnValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: NONE,
            producer_epoch: self.epoch,
            timeout_ms: self.timeout_ms,
            status: self.status,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            client_transaction_version: 0,
        }
    }

    /// The metadata a saved value holds.
    pub fn from_value(value: &TxnValue) -> TxnMetadata {
        TxnMetadata {
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            epoch: value.producer_epoch,
            last_epoch: -1,
            timeout_ms: value.timeout_ms,
            status: value.status,
            partitions: value
                .partitions
                .iter()
                .flat_map(|(topic, indexes)| indexes.iter().map(|i| (topic.clone(), *i)))
                .collect(),
            start_ms: value.start_ms,
            last_update_ms: value.last_update_ms,
        }
    }

    /// Whether markers are being written (requests must wait).
    pub fn is_completing(&self) -> bool {
        matches!(
            self.status,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence
        )
    }

    /// The request's producer is this transactional id's current one.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
        if producer_id != self.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if epoch != self.epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(())
    }

    /// Back to no open transaction, with a bumped epoch (or a new producer
    /// id when the epoch is used up). Only a bump the client asked for with
    /// the epoch it had (KIP-360) remembers that epoch, so that its retry is
    /// recognised; a new instance's bump remembers none, and the instance
    /// it fenced stays fenced, as Kafka's `prepareIncrementProducerEpoch`.
    fn bumped(
        &self,
        timeout_ms: i32,
        now: i64,
        asked_with_epoch: bool,
        new_id: impl FnOnce() -> Result<i64, ErrorCode>,
    ) -> Result<TxnMetadata, ErrorCode> {
        let mut next = TxnMetadata {
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            ..self.clone()
        };
        if self.epoch >= EXHAUSTED_EPOCH {
            next.previous_producer_id = self.producer_id;
            next.producer_id = new_id()?;
            next.epoch = 0;
            next.last_epoch = -1;
        } else {
            next.last_epoch = if asked_with_epoch { self.epoch } else { -1 };
            next.epoch = self.epoch + 1;
        }
        Ok(next)
    }
}

/// Whether InitProducerId needs a fresh producer id: for a new
/// transactional id, or one whose epoch is used up.
pub fn needs_new_producer_id(current: Option<&TxnMetadata>) -> bool {
    current.is_none_or(|m| m.epoch >= EXHAUSTED_EPOCH)
}

/// InitProducerId for a transactional id. `expected` is the producer id
/// and epoch the client already has (KIP-360, v3+), if any.
pub fn init_producer_id(
    current: Option<&TxnMetadata>,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now: i64,
    new_id: impl FnOnce() -> Result<i64, ErrorCode>,
) -> Result<InitOutcome, ErrorCode> {
    let Some(current) = current else {
        // Whatever the client believes, a new id starts here (Kafka creates
        // it at epoch -1, which accepts any expectation, and bumps to 0).
        return Ok(InitOutcome::Write(TxnMetadata::new(
            new_id()?,
            timeout_ms,
            now,
        )));
    };
    if let Some((producer_id, epoch)) = expected {
        let known = producer_id == current.producer_id
            || (producer_id == current.previous_producer_id && epoch >= EXHAUSTED_EPOCH);
        if !known {
            return Err(ErrorCode::ProducerFenced);
        }
    }
    match current.status {
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence => {
            Err(ErrorCode::ConcurrentTransactions)
        }
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
            match expected {
                Some((producer_id, epoch))
                    if producer_id == current.producer_id && epoch != current.epoch =>
                {
                    if epoch == current.last_epoch {
                        // A retry of the bump this coordinator already
                        // made: the client never saw its answer.
                        Ok(InitOutcome::Answer {
                            producer_id: current.producer_id,
                            epoch: current.epoch,
                        })
                    } else {
                        Err(ErrorCode::ProducerFenced)
                    }
                }
                _ => Ok(InitOutcome::Write(current.bumped(
                    timeout_ms,
                    now,
                    expected.is_some(),
                    new_id,
                )?)),
            }
        }
        TxnStatus::Ongoing => Ok(InitOutcome::AbortFirst(fencing_abort(current, now))),
        TxnStatus::Dead => Err(ErrorCode::ConcurrentTransactions),
    }
}

/// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
/// partition): the metadata to write, or `None` when every partition is
/// already in the open transaction.
pub fn add_partitions(
    current: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
    partitions: &[TxnPartition],
    now: i64,
) -> Result<Option<TxnMetadata>, ErrorCode> {
    current.check_producer(producer_id, epoch)?;
    match current.status {
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence => {
            return Err(ErrorCode::ConcurrentTransactions)
        }
        TxnStatus::Dead => return Err(ErrorCode::InvalidTxnState),
        _ => {}
    }
    if current.status == TxnStatus::Ongoing
        && partitions.iter().all(|p| current.partitions.contains(p))
    {
        return Ok(None);
    }
    let mut next = current.clone();
    if next.status != TxnStatus::Ongoing {
        next.partitions.clear();
        next.start_ms = now;
        next.status = TxnStatus::Ongoing;
    }
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now;
    Ok(Some(next))
}

/// EndTxn: the prepare record to write (its markers follow), or `None`
/// when the same end was already reached (a retry).
pub fn end_txn(
    current: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now: i64,
) -> Result<Option<TxnMetadata>, ErrorCode> {
    current.check_producer(producer_id, epoch)?;
    match (current.status, commit) {
        (TxnStatus::Ongoing, _) => {
            let mut next = current.clone();
            next.status = if commit {
                TxnStatus::PrepareCommit
            } else {
                TxnStatus::PrepareAbort
            };
            next.last_update_ms = now;
            Ok(Some(next))
        }
        (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(None),
        (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
            Err(ErrorCode::ConcurrentTransactions)
        }
        (TxnStatus::PrepareEpochFence, _) => Err(ErrorCode::ConcurrentTransactions),
        _ => Err(ErrorCode::InvalidTxnState),
    }
}

/// The record that ends a transaction once its markers are written.
pub fn completed(current: &TxnMetadata, now: i64) -> TxnMetadata {
    let status = match current.status {
        TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
        _ => TxnStatus::CompleteAbort,
    };
    TxnMetadata {
        status,
        partitions: BTreeSet::new(),
        start_ms: -1,
        last_update_ms: now,
        ..current.clone()
    }
}

/// The abort of a transaction open past its timeout, with a bumped epoch
/// so its producer is fenced, as Kafka's coordinator does.
pub fn timed_out(current: &TxnMetadata, now: i64) -> Option<TxnMetadata> {
    let expired = current.status == TxnStatus::Ongoing
        && current.start_ms >= 0
        && now.saturating_sub(current.start_ms) > i64::from(current.timeout_ms);
    expired.then(|| fencing_abort(current, now))
}

/// The abort of an open transaction that its producer did not ask for: the
/// epoch is bumped so the producer is fenced, and the markers carry the
/// new epoch.
fn fencing_abort(current: &TxnMetadata, now: i64) -> TxnMetadata {
    let mut abort = current.clone();
    abort.last_epoch = -1;
    abort.epoch = abort.epoch.saturating_add(1);
    abort.status = TxnStatus::PrepareAbort;
    abort.last_update_ms = now;
    abort
}

/// Whether an idle transactional id is old enough to be forgotten
/// (`transactional.id.expiration.ms`).
pub fn expired(current: &TxnMetadata, now: i64, expiration_ms: i64) -> bool {
    matches!(
        current.status,
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
    ) && now.saturating_sub(current.last_update_ms) >= expiration_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> TxnMetadata {
        match init_producer_id(None, 60_000, None, 0, || Ok(42)).unwrap() {
            InitOutcome::Write(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn p(topic: &str, index: i32) -> TxnPartition {
        (topic.to_owned(), index)
    }

    #[test]
    fn a_transaction_goes_from_empty_through_ongoing_to_complete() {
        let m = fresh();
        assert_eq!(
            (m.producer_id, m.epoch, m.status),
            (42, 0, TxnStatus::Empty)
        );
        let ongoing = add_partitions(&m, 42, 0, &[p("a", 0), p("b", 1)], 10)
            .unwrap()
            .unwrap();
        assert_eq!(ongoing.status, TxnStatus::Ongoing);
        assert_eq!(ongoing.start_ms, 10);
        assert_eq!(add_partitions(&ongoing, 42, 0, &[p("a", 0)], 11), Ok(None));
        let prepare = end_txn(&ongoing, 42, 0, true, 20).unwrap().unwrap();
        assert_eq!(prepare.status, TxnStatus::PrepareCommit);
        assert_eq!(
            add_partitions(&prepare, 42, 0, &[p("c", 0)], 21),
            Err(ErrorCode::ConcurrentTransactions)
        );
        assert_eq!(
            end_txn(&prepare, 42, 0, true, 21),
            Err(ErrorCode::ConcurrentTransactions)
        );
        assert_eq!(
            end_txn(&prepare, 42, 0, false, 21),
            Err(ErrorCode::InvalidTxnState)
        );
        let done = completed(&prepare, 30);
        assert_eq!(
            (done.status, done.partitions.len()),
            (TxnStatus::CompleteCommit, 0)
        );
        assert_eq!(
            end_txn(&done, 42, 0, true, 31),
            Ok(None),
            "a retried commit"
        );
        assert_eq!(
            end_txn(&done, 42, 0, false, 31),
            Err(ErrorCode::InvalidTxnState)
        );
        assert_eq!(
            end_txn(&m, 42, 0, false, 31),
            Err(ErrorCode::InvalidTxnState),
            "nothing open"
        );
        // The record round-trips through the log format.
        assert_eq!(
            TxnMetadata::from_value(&ongoing.to_value()),
            TxnMetadata {
                last_epoch: -1,
                ..ongoing
            }
        );
    }

    #[test]
    fn a_new_instance_fences_the_old_and_aborts_its_transaction() {
        let m = fresh();
        let ongoing = add_partitions(&m, 42, 0, &[p("a", 0)], 10)
            .unwrap()
            .unwrap();
        let InitOutcome::AbortFirst(abort) =
            init_producer_id(Some(&ongoing), 60_000, None, 20, || unreachable!()).unwrap()
        else {
            panic!("the open transaction is aborted first");
        };
        assert_eq!((abort.status, abort.epoch), (TxnStatus::PrepareAbort, 1));
        assert_eq!(
            add_partitions(&abort, 42, 0, &[p("a", 0)], 21),
            Err(ErrorCode::ProducerFenced)
        );
        assert_eq!(
            init_producer_id(Some(&abort), 60_000, None, 21, || unreachable!()),
            Err(ErrorCode::ConcurrentTransactions)
        );
        let done = completed(&abort, 22);
        let InitOutcome::Write(next) =
            init_producer_id(Some(&done), 60_000, None, 23, || unreachable!()).unwrap()
        else {
            panic!("bumped");
        };
        assert_eq!((next.epoch, next.status), (2, TxnStatus::Empty));
        assert_eq!(
            end_txn(&next, 42, 1, true, 24),
            Err(ErrorCode::ProducerFenced),
            "the old instance"
        );
        assert_eq!(
            end_txn(&next, 7, 2, true, 24),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
        // The fenced instance asking with the epoch it had is not handed
        // the new instance's epoch.
        assert_eq!(
            init_producer_id(Some(&next), 60_000, Some((42, 1)), 25, || unreachable!()),
            Err(ErrorCode::ProducerFenced)
        );
        // KIP-360: a bump asked for with the current epoch; its retry gets
        // the same answer, not a second bump.
        let InitOutcome::Write(asked) =
            init_producer_id(Some(&next), 60_000, Some((42, 2)), 25, || unreachable!()).unwrap()
        else {
            panic!("bumped");
        };
        assert_eq!((asked.epoch, asked.last_epoch), (3, 2));
        assert_eq!(
            init_producer_id(Some(&asked), 60_000, Some((42, 2)), 26, || unreachable!()),
            Ok(InitOutcome::Answer {
                producer_id: 42,
                epoch: 3
            })
        );
        assert_eq!(
            init_producer_id(Some(&next), 60_000, Some((9, 0)), 25, || unreachable!()),
            Err(ErrorCode::ProducerFenced)
        );
    }

    #[test]
    fn a_used_up_epoch_gets_a_new_producer_id() {
        let mut m = fresh();
        m.epoch = EXHAUSTED_EPOCH;
        let InitOutcome::Write(next) =
            init_producer_id(Some(&m), 1_000, None, 5, || Ok(43)).unwrap()
        else {
            panic!("rotated");
        };
        assert_eq!(
            (next.producer_id, next.previous_producer_id, next.epoch),
            (43, 42, 0)
        );
        assert_eq!(next.timeout_ms, 1_000);
    }

    #[test]
    fn a_transaction_past_its_timeout_is_aborted_with_a_fencing_epoch() {
        let m = fresh();
        let ongoing = add_partitions(&m, 42, 0, &[p("a", 0)], 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(timed_out(&ongoing, 61_000), None);
        let abort = timed_out(&ongoing, 61_001).unwrap();
        assert_eq!((abort.status, abort.epoch), (TxnStatus::PrepareAbort, 1));
        assert_eq!(
            end_txn(&abort, 42, 0, true, 61_002),
            Err(ErrorCode::ProducerFenced)
        );
        assert!(!expired(&ongoing, i64::MAX, 1));
        assert!(expired(&completed(&abort, 5), 10, 5));
    }
}
