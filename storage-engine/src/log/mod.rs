//! [`PartitionLog`]: the log of one partition replica, a directory of
//! segments.
//!
//! # Concurrency on one shard
//!
//! A log is used from its shard's executor only, by many tasks at once
//! (producers, consumers, the flusher, retention). State lives in a
//! `RefCell` that is never borrowed across an `.await`; the I/O runs on
//! cloned file handles. One async permit serialises the operations that
//! write to disk (flush, roll, truncation, retention, compaction swap).
//!
//! Every append takes a ticket when it is called and waits for its turn,
//! so batches land in call order even when one of them must wait. Appends
//! then take the fast path, a copy into the active segment's aligned buffer
//! with no await, unless something needs the permit first (a roll, a new
//! leader epoch to persist, too much unwritten data, an exclusive operation
//! such as truncation). A flush holds the permit but lets fast
//! appends continue; flushes that arrive while one runs wait and are then
//! usually already covered by it (group commit).
//!
//! A failed write or fsync poisons the log: what reached the disk is
//! unknown, so it refuses writes until it is reopened, which recovers.

mod epoch_cache;
mod producer_state;
mod read;
pub(crate) mod recovery;
mod retention;
mod timestamp;
mod truncate;

pub use epoch_cache::LeaderEpochCache;
pub use read::ReadResult;
pub use retention::RetentionOutcome;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::BytesMut;
use glommio::sync::{Permit, Semaphore};

use crate::batch::{self, parse_marker, validate_producer_batch, RecordBatch, TimestampType};
use crate::cache::TailCache;
use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::{StorageError, StorageResult};
use crate::io::{write_small_file, Storage, StorageFile};
use crate::producers::{AbortedTxns, ProducerBatch, ProducerStates, TxnMarker, Verdict};
use crate::segment::scan::BatchInfo;
use crate::segment::Segment;
use crate::types::{LeaderEpoch, LogId, Offset};

/// File holding the leader-epoch cache.
const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// File holding the log start offset when it is inside the first segment.
const LOG_START_CHECKPOINT: &str = "log-start-offset";
/// File holding the offset below which the log has been compacted.
pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Marker left by a clean close: the last segment's exact length.
const CLEAN_SHUTDOWN: &str = "clean-shutdown";

/// What the shard gives every log it opens.
#[derive(Clone)]
pub struct LogContext {
    /// This log's key in the tail cache.
    pub id: LogId,
    /// The shard's tail cache.
    pub cache: Rc<TailCache>,
    /// The clock used for rolling, retention and tombstones.
    pub clock: Rc<dyn Clock>,
}

/// Where an appended batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: Offset,
    /// Offset of its last record.
    pub last_offset: Offset,
    /// Its largest timestamp.
    pub max_timestamp_ms: i64,
    /// The time a `LogAppendTime` log stamped on it; `None` under `CreateTime`.
    pub log_append_time_ms: Option<i64>,
}

/// Who assigns a batch's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A leader's append: the log assigns offsets and stamps the epoch.
    Leader(LeaderEpoch),
    /// A follower's append of a replicated batch: offsets are kept and must
    /// continue the log.
    Replica,
}

pub(crate) struct LogState<F: StorageFile> {
    /// Segments by base offset; the last one is active.
    pub(crate) segments: BTreeMap<Offset, Segment<F>>,
    pub(crate) log_start: Offset,
    /// Every offset below this is durable.
    pub(crate) durable_end: Offset,
    pub(crate) epochs: LeaderEpochCache,
    /// Offsets below this have been compacted.
    pub(crate) cleaned_end: Offset,
    pub(crate) poisoned: Option<(&'static str, String)>,
    pub(crate) closed: bool,
    pub(crate) next_generation: u64,
    /// Idempotent producers and open transactions.
    pub(crate) producers: ProducerStates,
    /// Transactions ended by an abort marker.
    pub(crate) aborted: AbortedTxns,
    /// Where the last rebuild of the producer state started replaying.
    pub(crate) producers_replayed_from: Offset,
}

impl<F: StorageFile> LogState<F> {
    pub(crate) fn active(&self) -> &Segment<F> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment<F> {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn log_end(&self) -> Offset {
        self.active().next_offset
    }
}

/// The log of one partition replica.
pub struct PartitionLog<S: Storage> {
    pub(crate) storage: S,
    pub(crate) dir: PathBuf,
    pub(crate) ctx: LogContext,
    pub(crate) config: RefCell<LogConfig>,
    pub(crate) state: RefCell<LogState<S::File>>,
    /// Serialises disk-changing operations.
    io_permit: Semaphore,
    /// Exclusive operations waiting for or holding the permit; while
    /// non-zero, appends may not take the fast path.
    queued: Cell<usize>,
    /// Keeps appends in call order.
    turns: crate::turns::Turns,
    /// A [`PartitionLog::write_ahead`] is waiting or running.
    writing_ahead: Cell<bool>,
}

/// How much of the buffered data a write-out takes.
#[derive(Clone, Copy)]
enum WriteScope {
    /// All of it, the partial last page included.
    Everything,
    /// Only the chunks filled to the brim.
    FullChunks,
}

/// Clears a flag when dropped, however the holder ends.
struct ResetOnDrop<'a>(&'a Cell<bool>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Holds the permit with fast appends stopped.
pub(crate) struct Exclusive<'a> {
    _permit: Permit<'a>,
    queued: &'a Cell<usize>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        self.queued.set(self.queued.get() - 1);
    }
}

impl<S: Storage> PartitionLog<S> {
    /// Opens (or creates) the log in `dir`, recovering after a crash.
    pub async fn open(
        storage: S,
        dir: &Path,
        config: LogConfig,
        ctx: LogContext,
    ) -> StorageResult<PartitionLog<S>> {
        let state = recovery::recover(&storage, dir, &config, ctx.clock.now().0).await?;
        // An earlier incarnation of this log may have cached batches that
        // recovery has since dropped.
        ctx.cache.remove_log(ctx.id);
        let log = PartitionLog {
            storage,
            dir: dir.to_path_buf(),
            ctx,
            config: RefCell::new(config),
            state: RefCell::new(state),
            io_permit: Semaphore::new(1),
            queued: Cell::new(0),
            turns: crate::turns::Turns::default(),
            writing_ahead: Cell::new(false),
        };
        log.rebuild_producer_state().await?;
        Ok(log)
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The offset of the first record that can be read.
    pub fn log_start_offset(&self) -> Offset {
        self.state.borrow().log_start
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> Offset {
        self.state.borrow().log_end()
    }

    /// Every offset below this is durable on disk.
    pub fn durable_end_offset(&self) -> Offset {
        self.state.borrow().durable_end
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.values().map(|s| s.size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.state.borrow().segments.keys().copied().collect()
    }

    /// The current configuration.
    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Replaces the configuration (a topic config was altered).
    pub fn set_config(&self, config: LogConfig) {
        *self.config.borrow_mut() = config;
    }

    /// The leader-epoch cache.
    pub fn epochs(&self) -> LeaderEpochCache {
        self.state.borrow().epochs.clone()
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and the
    /// offset where it ends, or `None` when unknown.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let state = self.state.borrow();
        state.epochs.end_offset_for(epoch, state.log_end())
    }

    /// Whether [`PartitionLog::close`] or [`PartitionLog::delete`] ran.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    /// Why the log refuses writes, if it does.
    pub fn poisoned(&self) -> Option<StorageError> {
        self.state
            .borrow()
            .poisoned
            .as_ref()
            .map(|(operation, reason)| StorageError::Poisoned {
                dir: self.dir.clone(),
                operation,
                reason: reason.clone(),
            })
    }

    fn check_writable(&self) -> StorageResult<()> {
        if let Some(error) = self.poisoned() {
            return Err(error);
        }
        if self.state.borrow().closed {
            return Err(StorageError::Poisoned {
                dir: self.dir.clone(),
                operation: "close",
                reason: "the log is closed".to_owned(),
            });
        }
        Ok(())
    }

    /// Marks the log poisoned after a failed `operation` and returns the error.
    pub(crate) fn poison(&self, operation: &'static str, error: StorageError) -> StorageError {
        tracing::error!(dir = %self.dir.display(), operation, %error, "log poisoned");
        self.state
            .borrow_mut()
            .poisoned
            .get_or_insert((operation, error.to_string()));
        error
    }

    /// Takes the permit with fast appends stopped.
    pub(crate) async fn exclusive(&self) -> Exclusive<'_> {
        self.queued.set(self.queued.get() + 1);
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self
            .io_permit
            .acquire_permit(1)
            .await
            .expect("the log's permit is never closed");
        Exclusive {
            _permit: permit,
            queued: &self.queued,
        }
    }

    /// Appends one batch and returns the offsets it got. The batch is
    /// validated (framing, magic, CRC, sizes); a leader's batch must be a
    /// fresh producer batch, and an idempotent producer's must follow its
    /// last one: a retry of one of its last five batches is not written
    /// again but answered with the offsets it got then. It is readable at
    /// once and durable after the next [`PartitionLog::flush`].
    pub async fn append(&self, batch: BytesMut, origin: AppendOrigin) -> StorageResult<AppendInfo> {
        self.append_batch(batch, origin, true).await
    }

    /// Appends a batch the broker itself wrote as leader (a coordinator's
    /// records), skipping the checks meant for clients' batches; its
    /// producer's epoch is still checked.
    pub async fn append_internal(
        &self,
        batch: BytesMut,
        epoch: LeaderEpoch,
    ) -> StorageResult<AppendInfo> {
        self.append_batch(batch, AppendOrigin::Leader(epoch), false)
            .await
    }

    /// Appends a transaction coordinator's commit or abort marker for
    /// `marker.producer_id`, ending its transaction on this partition.
    pub async fn append_marker(
        &self,
        marker: TxnMarker,
        epoch: LeaderEpoch,
    ) -> StorageResult<AppendInfo> {
        let batch = batch::build_marker(&marker, self.ctx.clock.now().0)?;
        self.append_batch(batch, AppendOrigin::Leader(epoch), false)
            .await
    }

    async fn append_batch(
        &self,
        batch: BytesMut,
        origin: AppendOrigin,
        from_client: bool,
    ) -> StorageResult<AppendInfo> {
        // Batches land in call order: an append that must wait (for the
        // permit, a roll) holds back the ones called after it.
        let turn = self.turns.take();
        turn.wait().await;
        let max = self.config.borrow().max_message_bytes;
        if batch.len() > max {
            return Err(StorageError::BatchTooLarge {
                size: batch.len(),
                max,
            });
        }
        let parsed = RecordBatch::parse(batch.freeze())?;
        if from_client && matches!(origin, AppendOrigin::Leader(_)) {
            validate_producer_batch(&parsed)?;
        }
        let info = BatchInfo::of(&parsed, 0);
        let Ok(mut bytes) = parsed.into_bytes().try_into_mut() else {
            unreachable!("the batch's bytes have one owner: the parsed view was consumed");
        };
        let mut log_append_time = None;
        if let AppendOrigin::Leader(epoch) = origin {
            batch::set_partition_leader_epoch(&mut bytes, epoch.0);
            if self.config.borrow().timestamp_type == TimestampType::LogAppendTime {
                let now = self.ctx.clock.now().0;
                batch::set_max_timestamp_log_append(&mut bytes, now);
                log_append_time = Some(now);
            }
        }
        if self.queued.get() == 0 && !self.needs_permit(&info, origin)? {
            return self.append_now(bytes, origin, from_client, log_append_time);
        }
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        let log_end = self.log_end_offset();
        if origin == AppendOrigin::Replica && info.base_offset < log_end {
            // Refused before its epoch could be recorded.
            return Err(StorageError::NonMonotonicOffset {
                base: info.base_offset,
                log_end,
            });
        }
        if self.needs_write(bytes.len()) {
            self.write_pending(false).await?;
        }
        if self.needs_roll(bytes.len()) {
            self.roll().await?;
        }
        let epoch = match origin {
            AppendOrigin::Leader(epoch) => epoch,
            AppendOrigin::Replica => info.leader_epoch,
        };
        let new_epoch_start = {
            let state = self.state.borrow();
            let start = match origin {
                AppendOrigin::Leader(_) => state.log_end(),
                AppendOrigin::Replica => info.base_offset,
            };
            state.epochs.would_change(epoch).then_some(start)
        };
        if let Some(start) = new_epoch_start {
            let mut epochs = self.state.borrow().epochs.clone();
            epochs.assign(epoch, start);
            self.persist_epochs(&epochs).await?;
            self.state.borrow_mut().epochs = epochs;
        }
        self.append_now(bytes, origin, from_client, log_append_time)
    }

    /// Whether an append must wait for the permit: to roll, to persist a new
    /// epoch, or to write out buffered data first.
    fn needs_permit(&self, info: &BatchInfo, origin: AppendOrigin) -> StorageResult<bool> {
        self.check_writable()?;
        let epoch = match origin {
            AppendOrigin::Leader(epoch) => epoch,
            AppendOrigin::Replica => info.leader_epoch,
        };
        let len = info.len as usize;
        Ok(self.state.borrow().epochs.would_change(epoch)
            || self.needs_roll(len)
            || self.needs_write(len))
    }

    fn needs_write(&self, len: usize) -> bool {
        let max = self.config.borrow().max_unwritten_bytes as u64;
        self.state.borrow().active().unwritten() + len as u64 > max
    }

    fn needs_roll(&self, len: usize) -> bool {
        let config = self.config.borrow();
        let state = self.state.borrow();
        let active = state.active();
        if active.is_empty() {
            return false;
        }
        let max_bytes = config.segment_bytes.min(u64::from(u32::MAX));
        let too_big = active.size + len as u64 > max_bytes;
        let too_old = self.ctx.clock.now().0 - active.rolling_base_ms >= config.segment_ms;
        // Relative offsets in the index are 32-bit.
        let too_many = state.log_end().0 - active.base_offset.0 > i64::from(i32::MAX);
        too_big || too_old || too_many
    }

    /// The append itself: no await, so nothing runs in between.
    fn append_now(
        &self,
        mut bytes: BytesMut,
        origin: AppendOrigin,
        from_client: bool,
        log_append_time_ms: Option<i64>,
    ) -> StorageResult<AppendInfo> {
        let interval = self.config.borrow().index_interval_bytes;
        let mut state = self.state.borrow_mut();
        let log_end = state.log_end();
        if origin != AppendOrigin::Replica {
            batch::set_base_offset(&mut bytes, log_end.0);
        }
        let bytes = bytes.freeze();
        let parsed = RecordBatch::parse_unvalidated(bytes.clone())?;
        let info = BatchInfo::of(&parsed, state.active().size);
        if info.base_offset < log_end {
            return Err(StorageError::NonMonotonicOffset {
                base: info.base_offset,
                log_end,
            });
        }
        // New epochs are persisted on the slow path before the append.
        assert!(
            origin != AppendOrigin::Replica || !state.epochs.would_change(info.leader_epoch),
            "a replica append reached the fast path with a new epoch"
        );
        if origin != AppendOrigin::Replica {
            // Checked here, with nothing awaited before the append, so no
            // other batch of the producer can land in between.
            let producer = ProducerBatch::of(&parsed);
            if let Some(marker) = parse_marker(&parsed) {
                state.producers.check_marker(&marker)?;
            } else if let Verdict::Duplicate {
                base_offset,
                last_offset,
            } = state.producers.check(&producer)?
            {
                return Ok(AppendInfo {
                    base_offset: Offset(base_offset),
                    last_offset: Offset(last_offset),
                    max_timestamp_ms: info.max_timestamp_ms,
                    log_append_time_ms,
                });
            } else if from_client || producer.transactional {
                // Clients' batches, and the group coordinator's offsets
                // written in a transaction (TxnOffsetCommit).
                state.producers.check_txn_start(&producer)?;
            }
        }
        state.active_mut().append(&bytes, &info, interval);
        let LogState {
            producers, aborted, ..
        } = &mut *state;
        producer_state::track(producers, aborted, &parsed);
        drop(state);
        self.ctx
            .cache
            .insert(self.ctx.id, info.base_offset, info.last_offset, bytes);
        Ok(AppendInfo {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            max_timestamp_ms: info.max_timestamp_ms,
            log_append_time_ms,
        })
    }

    /// Returns when everything appended before the call is durable. Flushes
    /// that overlap share one fsync.
    pub async fn flush(&self) -> StorageResult<()> {
        let target = self.log_end_offset();
        if self.durable_end_offset() >= target {
            return Ok(());
        }
        let _permit = self.shared_permit().await;
        self.check_writable()?;
        if self.durable_end_offset() >= target {
            return Ok(());
        }
        self.write_pending(true).await
    }

    /// The I/O permit, with fast appends going on beside it.
    async fn shared_permit(&self) -> Permit<'_> {
        // The semaphore is never closed, so acquiring cannot fail.
        self.io_permit
            .acquire_permit(1)
            .await
            .expect("the log's permit is never closed")
    }

    /// Whether chunks filled to the brim wait for a write and no write-ahead
    /// is under way; if so, one is now, and the caller runs
    /// [`PartitionLog::write_ahead`] in the background. Claimed at once, so
    /// appends before that task first runs do not start another.
    pub fn claim_write_ahead(&self) -> bool {
        let wanted = !self.writing_ahead.get() && self.state.borrow().active().has_full_chunks();
        if wanted {
            self.writing_ahead.set(true);
        }
        wanted
    }

    /// Writes the active segment's full chunks without waiting for a flush,
    /// while appends go on: data reaches the disk in the background instead
    /// of in one long write that an append must wait for.
    pub async fn write_ahead(&self) -> StorageResult<()> {
        self.writing_ahead.set(true);
        let _done = ResetOnDrop(&self.writing_ahead);
        let _permit = self.shared_permit().await;
        self.check_writable()?;
        self.write_out(false, WriteScope::FullChunks).await
    }

    /// Writes what the active segment has buffered and, if `sync`, makes it
    /// durable. The caller holds the permit.
    pub(crate) async fn write_pending(&self, sync: bool) -> StorageResult<()> {
        self.write_out(sync, WriteScope::Everything).await
    }

    /// Writes `scope` of the active segment's buffered data and, if `sync`,
    /// makes what is written durable. The caller holds the permit.
    async fn write_out(&self, sync: bool, scope: WriteScope) -> StorageResult<()> {
        let (writes, file, base, end_offset, synced_len, readable_end) = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            let writes = match scope {
                WriteScope::Everything => active.take_writes(),
                WriteScope::FullChunks => active.take_full_writes(),
            };
            (
                writes,
                Rc::clone(&active.file),
                active.base_offset,
                active.next_offset,
                active.synced_len(),
                active.readable_end(),
            )
        };
        let path = crate::segment::segment_path(&self.dir, base, crate::segment::LOG_EXT);
        let mut end = readable_end;
        if let Some(writes) = writes {
            end = match writes.run().await {
                Ok(end) => end,
                Err(e) => {
                    return Err(self.poison("write", StorageError::io("write segment", &path)(e)))
                }
            };
            if let Some(segment) = self.state.borrow_mut().segments.get_mut(&base) {
                segment.wrote(end);
            }
        }
        if sync && (end > synced_len || self.durable_end_offset() < end_offset) {
            if let Err(e) = file.sync().await {
                return Err(self.poison("fsync", StorageError::io("fsync segment", &path)(e)));
            }
            let mut state = self.state.borrow_mut();
            if let Some(segment) = state.segments.get_mut(&base) {
                segment.synced(end);
            }
            if state.durable_end < end_offset {
                state.durable_end = end_offset;
            }
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end. The
    /// caller holds the permit exclusively.
    pub(crate) async fn roll(&self) -> StorageResult<()> {
        let (work, log_end) = {
            let mut state = self.state.borrow_mut();
            let log_end = state.log_end();
            (state.active_mut().prepare_seal(), log_end)
        };
        if let Err(e) = work.run(&self.storage, &self.dir).await {
            return Err(self.poison("roll", e));
        }
        // Before the new segment exists, so the snapshot is never older
        // than the start of the active segment.
        self.write_producer_snapshot().await?;
        let now = self.ctx.clock.now().0;
        let config = self.config();
        let mut segment =
            match Segment::create(&self.storage, &self.dir, log_end, now, &config).await {
                Ok(segment) => segment,
                Err(e) => return Err(self.poison("roll", e)),
            };
        let mut state = self.state.borrow_mut();
        state.active_mut().finish_seal();
        segment.generation = state.next_generation;
        state.next_generation += 1;
        state.durable_end = log_end;
        state.segments.insert(log_end, segment);
        tracing::debug!(dir = %self.dir.display(), base = %log_end, "rolled segment");
        Ok(())
    }

    /// Seals the active segment now (if it holds data), as `segment.ms` would.
    pub async fn force_roll(&self) -> StorageResult<()> {
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        if self.state.borrow().active().is_empty() {
            return Ok(());
        }
        self.roll().await
    }

    async fn persist_epochs(&self, epochs: &LeaderEpochCache) -> StorageResult<()> {
        let path = self.dir.join(EPOCH_CHECKPOINT);
        write_small_file(&self.storage, &path, &epochs.encode())
            .await
            .map_err(|e| {
                self.poison(
                    "epoch checkpoint",
                    StorageError::io("write checkpoint", &path)(e),
                )
            })
    }

    /// Flushes everything, makes the index files exact and leaves a
    /// clean-shutdown marker so the next open skips recovery. The log refuses
    /// writes afterwards.
    pub async fn close(&self) -> StorageResult<()> {
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        self.write_pending(true).await?;
        let (base, size, offsets, times) = {
            let state = self.state.borrow();
            let active = state.active();
            (
                active.base_offset,
                active.size,
                active.offset_index.clone(),
                active.time_index.clone(),
            )
        };
        crate::segment::write_indexes(&self.storage, &self.dir, base, &offsets, &times).await?;
        self.write_producer_snapshot().await?;
        let mut marker = Vec::with_capacity(16);
        marker.extend_from_slice(&base.0.to_be_bytes());
        marker.extend_from_slice(&size.to_be_bytes());
        let path = self.dir.join(CLEAN_SHUTDOWN);
        write_small_file(&self.storage, &path, &marker)
            .await
            .map_err(StorageError::io("write marker", &path))?;
        self.state.borrow_mut().closed = true;
        self.ctx.cache.remove_log(self.ctx.id);
        Ok(())
    }

    /// Deletes the whole log: its cache entries, files and directory.
    pub async fn delete(self) -> StorageResult<()> {
        let _exclusive = self.exclusive().await;
        self.state.borrow_mut().closed = true;
        self.ctx.cache.remove_log(self.ctx.id);
        self.storage
            .remove_dir_all(&self.dir)
            .await
            .map_err(StorageError::io("remove log directory", &self.dir))
    }
}
