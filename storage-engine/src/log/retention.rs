//! Retention: deleting whole segments by age (`retention.ms`) and by total
//! size (`retention.bytes`), oldest first, as Kafka does.

use super::PartitionLog;
use crate::error::StorageResult;
use crate::io::Storage;
use crate::types::Offset;

/// What a retention pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start: Offset,
}

impl<S: Storage> PartitionLog<S> {
    /// Applies `retention.ms` and `retention.bytes` (for the `delete`
    /// policy): deletes the oldest segments that are past either limit. An
    /// active segment that is wholly expired is rolled first, so a quiet
    /// topic still ages out.
    pub async fn apply_retention(&self) -> StorageResult<RetentionOutcome> {
        let config = self.config();
        let mut outcome = RetentionOutcome {
            log_start: self.log_start_offset(),
            ..RetentionOutcome::default()
        };
        if !config.cleanup_policy.delete {
            return Ok(outcome);
        }
        let _exclusive = self.exclusive().await;
        self.check_writable()?;
        let now_ms = self.ctx.clock.now().0;
        let expired =
            |max_ts: i64| config.retention_ms >= 0 && max_ts < now_ms - config.retention_ms;
        let active_expired = {
            let state = self.state.borrow();
            let active = state.active();
            !active.is_empty()
                && expired(active.max_timestamp_ms)
                && state.segments.values().all(|s| expired(s.max_timestamp_ms))
        };
        if active_expired {
            self.roll().await?;
        }
        let doomed: Vec<(crate::types::Offset, u64)> = {
            let state = self.state.borrow();
            let mut excess = if config.retention_bytes >= 0 {
                i128::from(state.segments.values().map(|s| s.size).sum::<u64>())
                    - i128::from(config.retention_bytes)
            } else {
                0
            };
            let mut doomed = Vec::new();
            for segment in state.segments.values().filter(|s| !s.is_active()) {
                let by_size = excess - i128::from(segment.size) >= 0;
                if !(by_size && excess > 0 || expired(segment.max_timestamp_ms)) {
                    break;
                }
                excess -= i128::from(segment.size);
                doomed.push((segment.base_offset, segment.size));
            }
            doomed
        };
        if doomed.is_empty() {
            return Ok(outcome);
        }
        let bases: Vec<_> = doomed.iter().map(|(b, _)| *b).collect();
        self.delete_segments(&bases).await?;
        let log_start = self.log_start_offset();
        self.forget_below(log_start).await?;
        outcome.segments_deleted = doomed.len();
        outcome.bytes_deleted = doomed.iter().map(|(_, size)| size).sum();
        outcome.log_start = log_start;
        tracing::info!(dir = %self.dir.display(), segments = outcome.segments_deleted, bytes = outcome.bytes_deleted, log_start = %log_start, "retention deleted segments");
        Ok(outcome)
    }
}
