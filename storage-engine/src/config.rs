//! Per-log settings: the topic configs that shape a log on disk, with
//! Kafka's names and defaults, and the engine's own I/O sizes.

use crate::batch::TimestampType;

/// What happens to old data: deleted by age or size, compacted by key, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: retention by time and size removes whole segments.
    pub delete: bool,
    /// `compact`: closed segments keep only the newest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact` alone.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };

    /// Parses Kafka's `cleanup.policy` value: `delete`, `compact`, or both
    /// separated by a comma.
    pub fn parse(text: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in text.split(',').map(str::trim) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }
}

/// Configuration of one partition log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete closed segments whose newest record is older (-1: never).
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger (-1: never).
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: compact when this share of closed bytes is uncompacted.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// `max.message.bytes`: the largest batch an append accepts.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: log bytes between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `message.timestamp.type`: under `LogAppendTime` a leader append
    /// stamps the batch with the log's clock.
    pub timestamp_type: TimestampType,
    /// Preallocation step for segment files, so appends do not change file metadata.
    pub preallocate_bytes: u64,
    /// Size of one aligned write buffer; a flush writes all full ones at once.
    pub write_chunk_bytes: usize,
    /// Bytes that may wait in memory for a write before an append waits for the disk.
    pub max_unwritten_bytes: usize,
    /// Limit on a decompressed batch, against compression bombs.
    pub max_decompressed_bytes: usize,
    /// Keys one compaction pass may map; segments past the budget wait for the next pass.
    pub compaction_max_keys: usize,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            timestamp_type: TimestampType::CreateTime,
            preallocate_bytes: 32 << 20,
            write_chunk_bytes: 1 << 20,
            max_unwritten_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
            compaction_max_keys: 4 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_parses_kafka_values() {
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
        assert_eq!(
            CleanupPolicy::parse("compact"),
            Some(CleanupPolicy::COMPACT)
        );
        let both = CleanupPolicy::parse("compact, delete").unwrap();
        assert!(both.compact && both.delete);
        assert_eq!(CleanupPolicy::parse("shred"), None);
        assert_eq!(CleanupPolicy::parse(""), None);
    }
}
