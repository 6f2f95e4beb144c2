//! The log's producer state: idempotent producers' sequences, open
//! transactions (which bound the last stable offset) and the aborted
//! transactions, kept beside the log by the append path, saved in a
//! snapshot at every roll and clean close, and rebuilt at open from the
//! snapshot plus the batches after it.

use super::PartitionLog;
use crate::batch::{parse_marker, RecordBatch};
use crate::error::{StorageError, StorageResult};
use crate::io::{read_small_file, write_small_file, Storage};
use crate::producers::{
    snapshot, AbortedTxn, AbortedTxns, ProducerBatch, ProducerStates, ProducerSummary,
};
use crate::types::Offset;

/// File holding the producer-state snapshot.
pub(crate) const PRODUCER_SNAPSHOT: &str = "producer-snapshot";
/// Bytes read at a time while replaying batches after the snapshot.
const REPLAY_CHUNK: usize = 4 << 20;

impl<S: Storage> PartitionLog<S> {
    /// The last stable offset: the first offset of the oldest open
    /// transaction, or the log end when none is open. `read_committed`
    /// consumers see only what is below it.
    pub fn last_stable_offset(&self) -> Offset {
        let state = self.state.borrow();
        let end = state.log_end();
        // As Kafka, never below the log start (DeleteRecords may pass an
        // open transaction's first offset).
        state
            .producers
            .first_unstable_offset()
            .map_or(end, |first| Offset(first).clamp(state.log_start, end))
    }

    /// The aborted transactions with records in `[from, upper)`, which a
    /// `read_committed` fetch of that range lists for its client.
    pub fn aborted_txns(&self, from: Offset, upper: Offset) -> Vec<AbortedTxn> {
        self.state.borrow().aborted.overlapping(from.0, upper.0)
    }

    /// Whether `producer_id` has an open transaction here at `epoch` or later.
    pub fn has_open_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.state
            .borrow()
            .producers
            .has_open_txn(producer_id, epoch)
    }

    /// Where the producer state was last rebuilt from: the snapshot's
    /// offset, or the log start when there was no usable snapshot.
    pub fn producer_state_replayed_from(&self) -> Offset {
        self.state.borrow().producers_replayed_from
    }

    /// Notes, before its coordinator is asked, that `producer_id` at `epoch`
    /// may start a transaction here (see `ProducerStates::begin_verification`).
    pub fn begin_txn_verification(&self, producer_id: i64, epoch: i16) {
        self.state
            .borrow_mut()
            .producers
            .begin_verification(producer_id, epoch);
    }

    /// Every producer known here (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerSummary> {
        self.state.borrow().producers.summaries()
    }

    /// Forgets producers silent for `expiration_ms` (`producer.id.expiration.ms`)
    /// with no open transaction; how many.
    pub fn expire_producers(&self, expiration_ms: i64) -> usize {
        let now = self.ctx.clock.now().0;
        self.state.borrow_mut().producers.expire(now, expiration_ms)
    }

    /// Saves the producer state as of the log end. The caller holds the
    /// permit exclusively, so no append runs meanwhile.
    pub(crate) async fn write_producer_snapshot(&self) -> StorageResult<()> {
        let payload = {
            let state = self.state.borrow();
            snapshot::encode(&state.producers, &state.aborted, state.log_end().0)
        };
        let path = self.dir.join(PRODUCER_SNAPSHOT);
        write_small_file(&self.storage, &path, &payload)
            .await
            .map_err(|e| {
                self.poison(
                    "producer snapshot",
                    StorageError::io("write producer snapshot", &path)(e),
                )
            })
    }

    /// Rebuilds the producer state: from the snapshot when it is no newer
    /// than the log end, else from the log start, replaying the batches
    /// after it. Used at open and after the tail was cut.
    pub(crate) async fn rebuild_producer_state(&self) -> StorageResult<()> {
        let path = self.dir.join(PRODUCER_SNAPSHOT);
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        let saved = match read_small_file(&self.storage, &path).await {
            Ok(Some(bytes)) => match snapshot::decode(&bytes) {
                Ok(saved) => Some(saved),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable producer snapshot; rebuilding from the log");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "damaged producer snapshot; rebuilding from the log");
                None
            }
        };
        // Rebuilt aside and swapped in at the end: reads meanwhile keep
        // seeing the state as it was.
        let mut producers = ProducerStates::default();
        let mut aborted = AbortedTxns::default();
        let mut from = log_start;
        if let Some(saved) = saved.filter(|s| s.end_offset <= log_end.0) {
            from = Offset(saved.end_offset).max(log_start);
            producers = saved.producers;
            aborted = saved.aborted;
            aborted.forget_below(log_start.0);
        }
        let replayed_from = from;
        let mut batches = 0usize;
        while from < log_end {
            let read = self.read(from, REPLAY_CHUNK).await?;
            if read.batches.is_empty() {
                break;
            }
            for bytes in read.batches {
                let batch = RecordBatch::parse_unvalidated(bytes)?;
                track(&mut producers, &mut aborted, &batch);
                batches += 1;
                from = from.max(Offset(batch.last_offset() + 1));
            }
        }
        {
            let mut state = self.state.borrow_mut();
            state.producers = producers;
            state.aborted = aborted;
            state.producers_replayed_from = replayed_from;
        }
        if batches > 0 {
            tracing::info!(dir = %self.dir.display(), from = %replayed_from, batches, "rebuilt producer state");
        }
        Ok(())
    }
}

/// Applies one batch to the producer table and aborted index: a data batch
/// extends its producer, a marker ends its producer's transaction.
pub(crate) fn track(
    producers: &mut crate::producers::ProducerStates,
    aborted: &mut crate::producers::AbortedTxns,
    batch: &RecordBatch,
) {
    if batch.is_control() {
        let Some(marker) = parse_marker(batch) else {
            return;
        };
        let offset = batch.base_offset();
        if let Some(ended) = producers.end_txn(&marker, offset, batch.max_timestamp()) {
            if !marker.commit {
                aborted.push(AbortedTxn {
                    producer_id: ended.producer_id,
                    first_offset: ended.first_offset,
                    last_offset: ended.last_offset,
                });
            }
        }
        return;
    }
    producers.record(
        &ProducerBatch::of(batch),
        batch.base_offset(),
        batch.last_offset(),
        batch.max_timestamp(),
    );
}
