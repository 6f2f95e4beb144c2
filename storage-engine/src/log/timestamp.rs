//! Timestamp lookups for ListOffsets: the first record at or after a time,
//! and the record with the largest timestamp.

use std::ops::ControlFlow;
use std::rc::Rc;

use bytes::Bytes;

use super::PartitionLog;
use crate::batch::RecordBatch;
use crate::error::{StorageError, StorageResult};
use crate::io::Storage;
use crate::segment::scan::{scan, ScanRange};
use crate::types::Offset;

impl<S: Storage> PartitionLog<S> {
    /// The offset and timestamp of the first record whose timestamp is at or
    /// after `timestamp_ms`, or `None` when every record is older.
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> StorageResult<Option<(Offset, i64)>> {
        // Segments from the first whose largest timestamp reaches the target.
        // Usually the first holds the answer; a later one may when the
        // record that held the maximum is gone (compaction keeps batch
        // headers, DeleteRecords hides records below the start).
        let candidates: Vec<(Offset, Offset)> = {
            let state = self.state.borrow();
            state
                .segments
                .values()
                .skip_while(|s| s.max_timestamp_ms < timestamp_ms)
                .map(|segment| {
                    let start_offset = segment
                        .time_index
                        .search_start(timestamp_ms)
                        .map_or(segment.base_offset, |rel| {
                            segment.base_offset.plus(i64::from(rel))
                        })
                        .max(state.log_start);
                    (segment.base_offset, start_offset)
                })
                .collect()
        };
        let log_start = self.log_start_offset();
        for (base, start_offset) in candidates {
            let found = self
                .find_record(base, start_offset, |_, record_offset, record_ts| {
                    record_offset >= log_start.0 && record_ts >= timestamp_ms
                })
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp
    /// (the first such record) at or after the log start, or `None` for an
    /// empty log.
    pub async fn max_timestamp(&self) -> StorageResult<Option<(Offset, i64)>> {
        let (best, bases, log_start) = {
            let state = self.state.borrow();
            let mut best: Option<(i64, Offset, Offset)> = None;
            for segment in state.segments.values() {
                if segment.max_timestamp_ms >= 0
                    && best.is_none_or(|(ts, _, _)| segment.max_timestamp_ms > ts)
                {
                    best = Some((
                        segment.max_timestamp_ms,
                        segment.base_offset,
                        segment.max_timestamp_offset,
                    ));
                }
            }
            (
                best,
                state.segments.keys().copied().collect::<Vec<_>>(),
                state.log_start,
            )
        };
        let Some((max_ts, base, batch_last_offset)) = best else {
            return Ok(None);
        };
        // Fast path: the batch the segment metadata names.
        let found = self
            .find_record(base, batch_last_offset, |batch, offset, record_ts| {
                batch.last_offset() >= batch_last_offset.0
                    && offset >= log_start.0
                    && record_ts == max_ts
            })
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        // That record is gone (compacted, or below the start): scan for the
        // maximum among the records that remain.
        let mut max: Option<(Offset, i64)> = None;
        for base in bases {
            self.find_record(base, log_start, |_, offset, record_ts| {
                if offset >= log_start.0 && max.is_none_or(|(_, ts)| record_ts > ts) {
                    max = Some((Offset(offset), record_ts));
                }
                false
            })
            .await?;
        }
        Ok(max)
    }

    /// Scans segment `base` from the batch that may hold `from` for the
    /// first record that `matches(batch, offset, timestamp)`.
    async fn find_record(
        &self,
        base: Offset,
        from: Offset,
        mut matches: impl FnMut(&RecordBatch, i64, i64) -> bool,
    ) -> StorageResult<Option<(Offset, i64)>> {
        if self
            .state
            .borrow()
            .segments
            .get(&base)
            .is_some_and(|s| s.unwritten() > 0)
        {
            let _permit = self.exclusive().await;
            self.write_pending(false).await?;
        }
        let (file, start, end) = {
            let state = self.state.borrow();
            let Some(segment) = state.segments.get(&base) else {
                return Ok(None);
            };
            (
                Rc::clone(&segment.file),
                segment.floor_position(from),
                segment.readable_end(),
            )
        };
        let max_decompressed = self.config.borrow().max_decompressed_bytes;
        let mut result: StorageResult<Option<(Offset, i64)>> = Ok(None);
        let range = ScanRange {
            start,
            end,
            verify: false,
            previous_last_offset: None,
        };
        let path = crate::segment::segment_path(&self.dir, base, crate::segment::LOG_EXT);
        scan(&*file, range, |info, bytes: Bytes| {
            if info.last_offset < from {
                return ControlFlow::Continue(());
            }
            match first_match(bytes, max_decompressed, &mut matches) {
                Ok(None) => ControlFlow::Continue(()),
                other => {
                    result = other;
                    ControlFlow::Break(())
                }
            }
        })
        .await
        .map_err(StorageError::io("read segment", path))?;
        result
    }
}

fn first_match(
    bytes: Bytes,
    max_decompressed: usize,
    matches: &mut impl FnMut(&RecordBatch, i64, i64) -> bool,
) -> StorageResult<Option<(Offset, i64)>> {
    let batch = RecordBatch::parse_unvalidated(bytes)?;
    if batch.is_control() {
        return Ok(None);
    }
    for record in batch.records(max_decompressed)? {
        let record = record?;
        let offset = record.offset(batch.base_offset());
        let timestamp = batch.record_timestamp(&record);
        if matches(&batch, offset, timestamp) {
            return Ok(Some((Offset(offset), timestamp)));
        }
    }
    Ok(None)
}
