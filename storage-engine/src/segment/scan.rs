//! Reading whole batches out of a segment file: the one loop that reads,
//! recovery, index rebuilding, timestamp search and compaction share.

use std::io;
use std::ops::ControlFlow;

use bytes::Bytes;

use crate::batch::{peek_total_len, RecordBatch};
use crate::io::StorageFile;
use crate::types::{LeaderEpoch, Offset};

/// How much a scan reads at a time.
const READ_CHUNK_BYTES: usize = 256 << 10;

/// The header facts of one batch found by a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch in its file.
    pub position: u64,
    /// Total bytes of the batch.
    pub len: u32,
    /// Offset of its first record.
    pub base_offset: Offset,
    /// Offset of its last record.
    pub last_offset: Offset,
    /// Its largest timestamp.
    pub max_timestamp_ms: i64,
    /// The leader epoch stamped into it.
    pub leader_epoch: LeaderEpoch,
}

impl BatchInfo {
    /// The header facts of `batch`, found at `position`.
    pub fn of(batch: &RecordBatch, position: u64) -> BatchInfo {
        BatchInfo {
            position,
            len: u32::try_from(batch.total_len()).expect("a batch is smaller than 4 GiB"),
            base_offset: Offset(batch.base_offset()),
            last_offset: Offset(batch.last_offset()),
            max_timestamp_ms: batch.max_timestamp(),
            leader_epoch: LeaderEpoch(batch.partition_leader_epoch()),
        }
    }

    /// The position just past the batch.
    pub fn end(&self) -> u64 {
        self.position + u64::from(self.len)
    }
}

/// Why a scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// It reached the end of the range, or the visitor stopped it.
    Done,
    /// The bytes at `position` are not a valid batch (or not a whole one).
    Invalid {
        /// Where the bad bytes start.
        position: u64,
        /// What is wrong with them.
        reason: String,
    },
}

/// Where a scan stopped.
#[derive(Clone, Debug)]
pub struct ScanOutcome {
    /// Position after the last batch visited.
    pub next_position: u64,
    /// Last offset of the last batch visited.
    pub last_offset: Option<Offset>,
    /// Why it stopped.
    pub end: ScanEnd,
}

/// Options of a scan.
#[derive(Clone, Copy, Debug)]
pub struct ScanRange {
    /// Position of the first batch.
    pub start: u64,
    /// Position past which nothing is read.
    pub end: u64,
    /// Check each batch's CRC and fields (recovery), or only its framing.
    pub verify: bool,
    /// Last offset before `start`, if known: each batch must start after it.
    pub previous_last_offset: Option<Offset>,
}

/// Reads batches in `range` of `file`, handing each to `visit` until it
/// breaks, the range ends, or bytes that are not a batch are found.
pub async fn scan<F: StorageFile>(
    file: &F,
    range: ScanRange,
    mut visit: impl FnMut(&BatchInfo, Bytes) -> ControlFlow<()>,
) -> io::Result<ScanOutcome> {
    let mut position = range.start;
    let mut last_offset = range.previous_last_offset;
    let mut buffer = Bytes::new();
    let mut buffer_pos = position;
    let invalid = |position: u64, last_offset, reason: String| ScanOutcome {
        next_position: position,
        last_offset,
        end: ScanEnd::Invalid { position, reason },
    };
    while position < range.end {
        let at = usize::try_from(position - buffer_pos).unwrap_or(usize::MAX);
        let available = buffer.len().saturating_sub(at);
        let needed = match peek_total_len(&buffer[at.min(buffer.len())..]) {
            Some(Ok(len)) => len,
            Some(Err(e)) => return Ok(invalid(position, last_offset, e.to_string())),
            None => 12,
        };
        if position + needed as u64 > range.end {
            return Ok(invalid(
                position,
                last_offset,
                format!("batch of {needed} bytes runs past the end ({})", range.end),
            ));
        }
        if available < needed {
            let want = needed
                .max(READ_CHUNK_BYTES)
                .min(usize::try_from(range.end - position).unwrap_or(usize::MAX));
            buffer = file.read_at(position, want).await?;
            buffer_pos = position;
            if buffer.len() < needed {
                return Ok(invalid(
                    position,
                    last_offset,
                    "file ends inside a batch".to_owned(),
                ));
            }
            continue;
        }
        let bytes = buffer.slice(at..at + needed);
        let parsed = if range.verify {
            RecordBatch::parse(bytes.clone())
        } else {
            RecordBatch::parse_unvalidated(bytes.clone())
        };
        let batch = match parsed {
            Ok(batch) => batch,
            Err(e) => return Ok(invalid(position, last_offset, e.to_string())),
        };
        let info = BatchInfo::of(&batch, position);
        if info.last_offset < info.base_offset
            || last_offset.is_some_and(|last| info.base_offset <= last)
        {
            let reason = format!(
                "batch offsets {}..={} do not follow {:?}",
                info.base_offset, info.last_offset, last_offset
            );
            return Ok(invalid(position, last_offset, reason));
        }
        position = info.end();
        last_offset = Some(info.last_offset);
        if visit(&info, bytes).is_break() {
            break;
        }
    }
    Ok(ScanOutcome {
        next_position: position,
        last_offset,
        end: ScanEnd::Done,
    })
}
