//! Compaction (`cleanup.policy=compact`): rewrites closed segments keeping
//! only the newest record of each key.
//!
//! As in Kafka, the closed segments are a clean section (compacted before,
//! below the cleaner checkpoint) followed by a dirty one. A pass maps each
//! key of the dirty section (as much of it as the key budget allows) to the
//! offset of its newest record, then rewrites every segment up to the end
//! of the mapped part that loses records.
//! Records keep their offsets (a batch keeps its base offset and offset
//! deltas; gaps are fine), records without a key are kept, control batches
//! are kept, and a tombstone (null value) is kept until its timestamp is
//! older than `delete.retention.ms`, so consumers have that long to see the
//! delete. The active segment is never rewritten.
//!
//! Transactions, as Kafka's cleaner treats them: nothing at or past the last
//! stable offset is cleaned (an open transaction's records may still be
//! aborted), and records of aborted transactions are dropped without
//! superseding anything, so an aborted write never hides a committed one.
//!
//! The rewrite goes to `B.log.cleaned` (with its indexes), is synced, and
//! is swapped in under the log's permit by renaming to `B.log.swap` (the
//! commit point) and then over the original; recovery finishes or discards
//! an interrupted swap. The pass runs as a background task on the owning
//! shard (the caller picks its task queue), throttled to a byte rate.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ahash::RandomState;
use bytes::Bytes;

use crate::batch::{Record, RecordBatch, Retained};
use crate::error::{StorageError, StorageResult};
use crate::io::{OpenMode, Storage, StorageFile};
use crate::log::recovery::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::log::PartitionLog;
use crate::producers::AbortedTxns;
use crate::segment::appender::Appender;
use crate::segment::scan::{scan, BatchInfo, ScanRange};
use crate::segment::{
    segment_path, write_index_files, LoadMode, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};
use crate::types::Offset;

/// Whether `batch` belongs to a transaction that an abort marker ended.
fn is_aborted(aborted: &AbortedTxns, batch: &RecordBatch) -> bool {
    batch.is_transactional()
        && !batch.is_control()
        && aborted.contains(batch.producer_id(), batch.base_offset())
}

/// How a compaction pass runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompactionOptions {
    /// Upper bound on bytes read per second (`None`: as fast as the disk goes).
    pub throttle_bytes_per_sec: Option<u64>,
}

/// What a compaction pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Segments rewritten.
    pub segments_rewritten: usize,
    /// Records dropped (superseded, or expired tombstones).
    pub records_removed: u64,
    /// Bytes of the closed segments before the pass.
    pub bytes_before: u64,
    /// Bytes of the closed segments after it.
    pub bytes_after: u64,
}

/// Key to the offset of its newest record.
type KeyMap = HashMap<Bytes, i64, RandomState>;

/// A closed segment as the pass saw it when it started.
struct Snapshot<F> {
    base: Offset,
    /// The next segment's base: where this one's offset range ends.
    end: Offset,
    generation: u64,
    file: Rc<F>,
    size: u64,
}

impl<S: Storage> PartitionLog<S> {
    /// The share of closed-segment bytes not compacted yet.
    pub fn dirty_ratio(&self) -> f64 {
        let state = self.state.borrow();
        let (mut dirty, mut total) = (0u64, 0u64);
        for segment in state.segments.values().filter(|s| !s.is_active()) {
            total += segment.size;
            if segment.base_offset >= state.cleaned_end {
                dirty += segment.size;
            }
        }
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Whether the log is compacted and enough of it is dirty to clean.
    pub fn needs_compaction(&self) -> bool {
        let config = self.config.borrow();
        config.cleanup_policy.compact
            && self.dirty_ratio() > 0.0
            && self.dirty_ratio() >= config.min_cleanable_dirty_ratio
    }

    /// Runs one compaction pass over the closed segments.
    pub async fn compact(&self, options: CompactionOptions) -> StorageResult<CompactionOutcome> {
        let started = Instant::now();
        let mut bytes_read = 0u64;
        let snapshots: Vec<Snapshot<S::File>> = {
            let state = self.state.borrow();
            let bases: Vec<Offset> = state.segments.keys().copied().collect();
            bases
                .windows(2)
                .map(|pair| {
                    let s = &state.segments[&pair[0]];
                    Snapshot {
                        base: s.base_offset,
                        end: pair[1],
                        generation: s.generation,
                        file: Rc::clone(&s.file),
                        size: s.size,
                    }
                })
                .collect()
        };
        // Only segments wholly below the last stable offset.
        let stable = self.last_stable_offset();
        let snapshots: Vec<Snapshot<S::File>> = snapshots
            .into_iter()
            .take_while(|s| s.end <= stable)
            .collect();
        let cleanable_end = snapshots
            .last()
            .map_or(self.state.borrow().active().base_offset.min(stable), |s| {
                s.end
            });
        let aborted = self.state.borrow().aborted.clone();
        let mut outcome = CompactionOutcome {
            bytes_before: snapshots.iter().map(|s| s.size).sum(),
            ..CompactionOutcome::default()
        };
        let config = self.config();
        let max_decompressed = config.max_decompressed_bytes;

        // Pass 1: the newest offset of every key, over as many closed
        // segments as the key budget allows; later segments wait for the
        // next pass. Keeping a record the map does not cover is always safe.
        let cleaned_end = self.state.borrow().cleaned_end;
        let first_dirty = snapshots
            .iter()
            .position(|s| s.end > cleaned_end)
            .unwrap_or(snapshots.len());
        let mut latest = KeyMap::default();
        let mut mapped = first_dirty;
        for snapshot in &snapshots[first_dirty..] {
            if latest.len() >= config.compaction_max_keys {
                break;
            }
            self.visit_batches(snapshot, 0, |batch| {
                if !batch.is_control() && !is_aborted(&aborted, &batch) {
                    for record in batch.records(max_decompressed)? {
                        let record = record?;
                        if let Some(key) = record.key.clone() {
                            latest.insert(key, record.offset(batch.base_offset()));
                        }
                    }
                }
                Ok(ControlFlow::Continue(()))
            })
            .await?;
            mapped += 1;
            bytes_read += snapshot.size;
            throttle(options, started, bytes_read).await;
        }
        let snapshots = &snapshots[..mapped];
        let cleanable_end = snapshots.last().map_or(cleanable_end, |s| s.end);

        // Pass 2: rewrite each segment that loses records.
        let tombstone_horizon_ms = self.ctx.clock.now().0 - config.delete_retention_ms;
        for snapshot in snapshots {
            let removed = self
                .rewrite(
                    snapshot,
                    &latest,
                    &aborted,
                    tombstone_horizon_ms,
                    max_decompressed,
                )
                .await?;
            bytes_read += snapshot.size;
            if removed > 0 {
                outcome.segments_rewritten += 1;
                outcome.records_removed += removed;
            }
            throttle(options, started, bytes_read).await;
        }

        self.write_checkpoint(crate::log::CLEANER_CHECKPOINT, cleanable_end)
            .await?;
        let mut state = self.state.borrow_mut();
        state.cleaned_end = state.cleaned_end.max(cleanable_end);
        outcome.bytes_after = state
            .segments
            .values()
            .filter(|s| !s.is_active())
            .map(|s| s.size)
            .sum();
        drop(state);
        tracing::info!(dir = %self.dir.display(), ?outcome, "compaction pass done");
        Ok(outcome)
    }

    /// Calls `visit` with the batches of a snapshot from file position
    /// `start` until it says stop; returns the position after the last
    /// batch visited.
    async fn visit_batches(
        &self,
        snapshot: &Snapshot<S::File>,
        start: u64,
        mut visit: impl FnMut(RecordBatch) -> StorageResult<ControlFlow<()>>,
    ) -> StorageResult<u64> {
        let mut result = Ok(());
        let range = ScanRange {
            start,
            end: snapshot.size,
            verify: false,
            previous_last_offset: None,
        };
        let path = segment_path(&self.dir, snapshot.base, LOG_EXT);
        let outcome = scan(
            &*snapshot.file,
            range,
            |_, bytes| match RecordBatch::parse_unvalidated(bytes)
                .map_err(StorageError::from)
                .and_then(&mut visit)
            {
                Ok(flow) => flow,
                Err(e) => {
                    result = Err(e);
                    ControlFlow::Break(())
                }
            },
        )
        .await
        .map_err(StorageError::io("read segment", path))?;
        result.map(|()| outcome.next_position)
    }

    /// Rewrites one segment without superseded records; returns how many
    /// records it dropped (0: the segment was left alone). Memory stays
    /// bounded: the segment is filtered and written a window at a time.
    async fn rewrite(
        &self,
        snapshot: &Snapshot<S::File>,
        latest: &KeyMap,
        aborted: &AbortedTxns,
        tombstone_horizon_ms: i64,
        max_decompressed: usize,
    ) -> StorageResult<u64> {
        // A record goes if a newer one has its key, if it is a tombstone
        // past delete.retention.ms, or if its transaction aborted; other
        // records without a key stay.
        let keeps = |batch: &RecordBatch, record: &Record| {
            if is_aborted(aborted, batch) {
                return false;
            }
            let Some(key) = &record.key else { return true };
            let superseded = latest
                .get(key)
                .is_some_and(|newest| *newest != record.offset(batch.base_offset()));
            let expired_tombstone =
                record.value.is_none() && batch.record_timestamp(record) < tombstone_horizon_ms;
            !superseded && !expired_tombstone
        };
        // A first, read-only pass: most segments of a compacted topic are
        // already clean, and those are left untouched.
        let mut removed = 0u64;
        self.visit_batches(snapshot, 0, |batch| {
            if !batch.is_control() {
                for record in batch.records(max_decompressed)? {
                    removed += u64::from(!keeps(&batch, &record?));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        if removed == 0 {
            return Ok(0);
        }
        let base = snapshot.base;
        let cleaned = |ext: &str| {
            PathBuf::from(format!(
                "{}.{CLEANED_SUFFIX}",
                segment_path(&self.dir, base, ext).display()
            ))
        };
        let log_cleaned = cleaned(LOG_EXT);
        let file = self
            .storage
            .open(&log_cleaned, OpenMode::CreateTruncate)
            .await
            .map_err(StorageError::io("create compacted segment", &log_cleaned))?;
        let file = Rc::new(file);
        let config = self.config();
        let mut appender = Appender::new(
            Rc::clone(&file),
            0,
            &[],
            0,
            config.write_chunk_bytes,
            config.write_chunk_bytes as u64,
        );
        let mut index = Segment::empty(base, Rc::clone(&file), 0);
        let window_bytes = config.write_chunk_bytes.max(1);
        let mut position = 0;
        while position < snapshot.size {
            let mut kept: Vec<Bytes> = Vec::new();
            let mut kept_bytes = 0;
            position = self
                .visit_batches(snapshot, position, |batch| {
                    let retained = if batch.is_control() {
                        Retained::All
                    } else {
                        batch.retain(max_decompressed, |record| keeps(&batch, record))?
                    };
                    match retained {
                        Retained::All => kept.push(batch.into_bytes()),
                        Retained::Some(bytes) => kept.push(bytes.freeze()),
                        Retained::None => {}
                    }
                    kept_bytes += kept.last().map_or(0, Bytes::len);
                    Ok(if kept_bytes >= window_bytes {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    })
                })
                .await?;
            for bytes in kept {
                let batch = RecordBatch::parse_unvalidated(bytes.clone())?;
                let info = BatchInfo::of(&batch, appender.len());
                appender.append(&bytes);
                index.note_batch(&info, info.position, config.index_interval_bytes);
            }
            write_out(&mut appender, &log_cleaned).await?;
        }
        write_out(&mut appender, &log_cleaned).await?;
        let size = appender.len();
        file.truncate(size)
            .await
            .map_err(StorageError::io("truncate compacted segment", &log_cleaned))?;
        file.sync()
            .await
            .map_err(StorageError::io("fsync compacted segment", &log_cleaned))?;
        index.push_final_time_entry();
        let index_paths = [cleaned(INDEX_EXT), cleaned(TIME_INDEX_EXT)];
        write_index_files(
            &self.storage,
            &index_paths,
            &index.offset_index,
            &index.time_index,
        )
        .await?;
        self.swap_in(snapshot, log_cleaned, index_paths).await?;
        Ok(removed)
    }

    /// Replaces the segment with its compacted files, unless it changed
    /// (deleted by retention, truncated) while the copy was written.
    async fn swap_in(
        &self,
        snapshot: &Snapshot<S::File>,
        log_cleaned: PathBuf,
        index_paths: [PathBuf; 2],
    ) -> StorageResult<()> {
        let _exclusive = self.exclusive().await;
        let unchanged = self
            .state
            .borrow()
            .segments
            .get(&snapshot.base)
            .is_some_and(|s| s.generation == snapshot.generation && !s.is_active());
        let io = |op| StorageError::io(op, &self.dir);
        if !unchanged {
            for path in std::iter::once(&log_cleaned).chain(&index_paths) {
                self.storage
                    .remove(path)
                    .await
                    .map_err(io("remove stale compacted file"))?;
            }
            return Ok(());
        }
        let base = snapshot.base;
        let log_path = segment_path(&self.dir, base, LOG_EXT);
        let swap = PathBuf::from(format!("{}.{SWAP_SUFFIX}", log_path.display()));
        self.storage
            .rename(&log_cleaned, &swap)
            .await
            .map_err(io("commit compaction"))?;
        self.storage
            .sync_dir(&self.dir)
            .await
            .map_err(io("sync directory"))?;
        let finals = [
            segment_path(&self.dir, base, INDEX_EXT),
            segment_path(&self.dir, base, TIME_INDEX_EXT),
        ];
        for (from, to) in index_paths.iter().zip(&finals) {
            self.storage
                .rename(from, to)
                .await
                .map_err(io("swap compacted index"))?;
        }
        self.storage
            .rename(&swap, &log_path)
            .await
            .map_err(io("swap compacted segment"))?;
        self.storage
            .sync_dir(&self.dir)
            .await
            .map_err(io("sync directory"))?;
        let config = self.config();
        let now = self.ctx.clock.now().0;
        let mut segment = Segment::load(
            &self.storage,
            &self.dir,
            base,
            LoadMode::Sealed,
            now,
            &config,
        )
        .await?;
        let next_base = {
            let mut state = self.state.borrow_mut();
            segment.generation = state.next_generation;
            state.next_generation += 1;
            state.segments.insert(base, segment);
            state.segments.range(base.next()..).next().map(|(b, _)| *b)
        };
        // Cached batches of this range are the uncompacted originals.
        if let Some(next_base) = next_base {
            self.ctx.cache.invalidate_below(self.ctx.id, next_base);
        }
        Ok(())
    }
}

async fn write_out<F: StorageFile>(
    appender: &mut Appender<F>,
    path: &std::path::Path,
) -> StorageResult<()> {
    if let Some(writes) = appender.take_writes() {
        let end = writes
            .run()
            .await
            .map_err(StorageError::io("write compacted segment", path))?;
        appender.wrote(end);
    }
    Ok(())
}

/// Sleeps long enough that `bytes` since `started` stay under the rate.
async fn throttle(options: CompactionOptions, started: Instant, bytes: u64) {
    let Some(rate) = options.throttle_bytes_per_sec.filter(|r| *r > 0) else {
        return;
    };
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        glommio::timer::sleep(wait).await;
    }
}

/// Runs compaction for one log in the background: every `check_every` it
/// compacts if [`PartitionLog::needs_compaction`] says the dirty ratio has
/// passed `min.cleanable.dirty.ratio`. Returns when the log is closed, or
/// with the first error. The shard spawns it on its low-priority task queue.
pub async fn clean_in_background<S: Storage>(
    log: Rc<PartitionLog<S>>,
    check_every: Duration,
    options: CompactionOptions,
) -> StorageResult<()> {
    loop {
        glommio::timer::sleep(check_every).await;
        if log.is_closed() {
            return Ok(());
        }
        if log.needs_compaction() {
            log.compact(options).await?;
        }
    }
}
