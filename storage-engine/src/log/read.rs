//! Reading whole batches: from the tail cache when it holds them, else
//! from the segment files with direct I/O.

use std::ops::ControlFlow;
use std::rc::Rc;

use bytes::Bytes;

use super::PartitionLog;
use crate::error::{StorageError, StorageResult};
use crate::io::Storage;
use crate::segment::scan::{scan, ScanRange};
use crate::types::Offset;

/// Batches returned by a read.
#[derive(Clone, Debug, Default)]
pub struct ReadResult {
    /// Whole batches in offset order, the first holding the requested offset
    /// (or the first offset after it, where compaction left a gap).
    pub batches: Vec<Bytes>,
    /// Whether they came from the tail cache.
    pub from_cache: bool,
}

impl ReadResult {
    /// Total bytes read.
    pub fn len_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

impl<S: Storage> PartitionLog<S> {
    /// Whole batches starting with the one that holds `offset`, up to
    /// `max_bytes` but always at least one batch. Reading at the log end
    /// returns nothing; outside `[log start, log end]` is an error.
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> StorageResult<ReadResult> {
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        if offset < log_start || offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset == log_end {
            return Ok(ReadResult::default());
        }
        if let Some(batches) = self.ctx.cache.read(self.ctx.id, offset, max_bytes) {
            if !batches.is_empty() {
                return Ok(ReadResult {
                    batches,
                    from_cache: true,
                });
            }
        }
        let mut base = {
            let state = self.state.borrow();
            let Some((base, _)) = state.segments.range(..=offset).next_back() else {
                return Ok(ReadResult::default());
            };
            *base
        };
        loop {
            let (file, start, end, unwritten) = {
                let state = self.state.borrow();
                let Some(segment) = state.segments.get(&base) else {
                    // Deleted meanwhile (retention): the offset is gone.
                    return Err(StorageError::OffsetOutOfRange {
                        requested: offset,
                        log_start: state.log_start,
                        log_end: state.log_end(),
                    });
                };
                (
                    Rc::clone(&segment.file),
                    segment.floor_position(offset),
                    segment.readable_end(),
                    segment.unwritten(),
                )
            };
            let mut batches = Vec::new();
            let mut total = 0;
            let range = ScanRange {
                start,
                end,
                verify: false,
                previous_last_offset: None,
            };
            let path = crate::segment::segment_path(&self.dir, base, crate::segment::LOG_EXT);
            scan(&*file, range, |info, bytes| {
                if info.last_offset < offset {
                    return ControlFlow::Continue(());
                }
                if !batches.is_empty() && total + bytes.len() > max_bytes {
                    return ControlFlow::Break(());
                }
                total += bytes.len();
                batches.push(bytes);
                ControlFlow::Continue(())
            })
            .await
            .map_err(StorageError::io("read segment", path))?;
            if !batches.is_empty() {
                return Ok(ReadResult {
                    batches,
                    from_cache: false,
                });
            }
            if unwritten > 0 {
                // The batch is still in the appender's buffer (and was
                // evicted from the cache): write it out, then read it.
                let _permit = self.exclusive().await;
                self.write_pending(false).await?;
                continue;
            }
            let next = self
                .state
                .borrow()
                .segments
                .range(base.next()..)
                .next()
                .map(|(b, _)| *b);
            match next {
                Some(next) => base = next,
                None => return Ok(ReadResult::default()),
            }
        }
    }
}
