//! Cutting the log: the suffix (a follower dropping a diverged tail) and
//! the prefix (DeleteRecords moving the log start offset).

use std::ops::ControlFlow;
use std::rc::Rc;

use super::{PartitionLog, CLEANER_CHECKPOINT, LOG_START_CHECKPOINT};
use crate::error::{StorageError, StorageResult};
use crate::io::{write_small_file, Storage};
use crate::segment::scan::{scan, ScanRange};
use crate::segment::{segment_path, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use crate::types::Offset;

impl<S: Storage> PartitionLog<S> {
    /// Removes every batch that holds an offset at or after `offset`; a
    /// batch straddling it goes whole. Returns the new log end offset.
    pub async fn truncate_suffix(&self, offset: Offset) -> StorageResult<Offset> {
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        if offset >= log_end {
            return Ok(log_end);
        }
        if offset < log_start {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        self.write_pending(false).await?;
        let (base, file, start, end) = {
            let state = self.state.borrow();
            let (base, segment) = state
                .segments
                .range(..=offset)
                .next_back()
                .expect("offset is at or above the first segment");
            (
                *base,
                Rc::clone(&segment.file),
                segment.floor_position(offset),
                segment.readable_end(),
            )
        };
        let mut cut = end;
        let range = ScanRange {
            start,
            end,
            verify: false,
            previous_last_offset: None,
        };
        let path = segment_path(&self.dir, base, LOG_EXT);
        scan(&*file, range, |info, _| {
            if info.last_offset >= offset {
                cut = info.position;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .await
        .map_err(StorageError::io("read segment", &path))?;
        // Later segments go first: a crash midway then leaves a prefix of
        // the log, never a cut segment followed by data from beyond the cut.
        let removed: Vec<Offset> = {
            let mut state = self.state.borrow_mut();
            let removed: Vec<Offset> = state
                .segments
                .range(base.next()..)
                .map(|(b, _)| *b)
                .collect();
            for b in &removed {
                state.segments.remove(b);
            }
            removed
        };
        for b in removed.into_iter().rev() {
            self.remove_segment_files(b).await?;
        }
        let config = self.config();
        let origin = self.state.borrow().segments[&base].truncate_origin();
        let truncated =
            match Segment::truncated(origin, &self.storage, &self.dir, cut, &config).await {
                Ok(segment) => segment,
                Err(e) => return Err(self.poison("truncate", e)),
            };
        let (new_end, log_start, cleaned_end) = {
            let mut state = self.state.borrow_mut();
            state.segments.insert(base, truncated);
            let new_end = state.log_end();
            // The truncated segment was synced whole, earlier ones are sealed.
            state.durable_end = new_end;
            // Records appended from here on are dirty again.
            state.cleaned_end = state.cleaned_end.min(new_end);
            // Cutting whole batches may go below the log start (the batch
            // holding it goes); the start follows, as Kafka's min(target, start).
            state.log_start = state.log_start.min(new_end);
            (new_end, state.log_start, state.cleaned_end)
        };
        self.write_checkpoint(CLEANER_CHECKPOINT, cleaned_end)
            .await?;
        if log_start == new_end {
            self.write_checkpoint(LOG_START_CHECKPOINT, log_start)
                .await?;
        }
        self.ctx.cache.invalidate_from(self.ctx.id, new_end);
        let mut epochs = self.state.borrow().epochs.clone();
        if epochs.truncate_from_end(new_end) {
            self.persist_epochs(&epochs).await?;
            self.state.borrow_mut().epochs = epochs;
        }
        // Producers' last batches may be gone: rebuild from what is left,
        // and save it, so no snapshot describes the cut-away tail.
        self.rebuild_producer_state().await?;
        self.write_producer_snapshot().await?;
        Ok(new_end)
    }

    /// Moves the log start offset up to `offset` (DeleteRecords): reads
    /// below it fail, and segments wholly below it are deleted. Returns the
    /// new log start offset.
    pub async fn truncate_prefix(&self, offset: Offset) -> StorageResult<Offset> {
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        if offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset <= log_start {
            return Ok(log_start);
        }
        self.write_checkpoint(LOG_START_CHECKPOINT, offset).await?;
        self.state.borrow_mut().log_start = offset;
        self.delete_segments_below(offset).await?;
        // A snapshot ending below the new start would leave a gap of
        // markers no rebuild could replay.
        self.write_producer_snapshot().await?;
        Ok(offset)
    }

    /// Deletes closed segments whose every offset is below `offset`, and
    /// drops cache entries and epochs below it.
    pub(crate) async fn delete_segments_below(&self, offset: Offset) -> StorageResult<()> {
        let doomed: Vec<Offset> = {
            let state = self.state.borrow();
            let bases: Vec<Offset> = state.segments.keys().copied().collect();
            bases
                .windows(2)
                .take_while(|pair| pair[1] <= offset)
                .map(|pair| pair[0])
                .collect()
        };
        self.delete_segments(&doomed).await?;
        self.forget_below(offset).await
    }

    /// Writes a checkpoint file holding one offset.
    pub(crate) async fn write_checkpoint(&self, name: &str, offset: Offset) -> StorageResult<()> {
        let path = self.dir.join(name);
        write_small_file(&self.storage, &path, &offset.0.to_be_bytes())
            .await
            .map_err(StorageError::io("write checkpoint", &path))
    }

    /// Drops cache entries and epochs below a new log start offset.
    pub(crate) async fn forget_below(&self, log_start: Offset) -> StorageResult<()> {
        self.ctx.cache.invalidate_below(self.ctx.id, log_start);
        self.state.borrow_mut().aborted.forget_below(log_start.0);
        let mut epochs = self.state.borrow().epochs.clone();
        if epochs.truncate_from_start(log_start) {
            self.persist_epochs(&epochs).await?;
            self.state.borrow_mut().epochs = epochs;
        }
        Ok(())
    }

    /// Removes closed segments from the log, then their files; the log start
    /// moves to the first remaining segment if it was below it.
    pub(crate) async fn delete_segments(&self, bases: &[Offset]) -> StorageResult<()> {
        {
            let mut state = self.state.borrow_mut();
            for base in bases {
                let segment: Option<Segment<S::File>> = state.segments.remove(base);
                assert!(
                    segment.is_some_and(|s| !s.is_active()),
                    "only closed segments are deleted"
                );
            }
            let first = *state
                .segments
                .keys()
                .next()
                .expect("the active segment remains");
            if state.log_start < first {
                state.log_start = first;
            }
        }
        for base in bases {
            self.remove_segment_files(*base).await?;
        }
        Ok(())
    }

    async fn remove_segment_files(&self, base: Offset) -> StorageResult<()> {
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            let path = segment_path(&self.dir, base, ext);
            match self.storage.remove(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove segment file", path)(e)),
            }
        }
        self.storage
            .sync_dir(&self.dir)
            .await
            .map_err(StorageError::io("sync directory", &self.dir))
    }
}
