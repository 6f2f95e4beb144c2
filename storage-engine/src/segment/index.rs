//! The sparse indexes of a segment, kept in memory and mirrored to files.
//!
//! The offset index maps a relative offset to the file position of the
//! batch starting there, one entry per `index.interval.bytes` of log. The
//! time index holds (largest timestamp so far, last offset of the batch that
//! first reached it), Kafka's layout, so a timestamp search starts scanning
//! at the last entry below the target. On disk entries are fixed-size
//! big-endian records; a file is trusted only as far as its entries keep
//! increasing, and the caller checks them against the log.

use crate::types::Offset;

/// Bytes of one offset-index entry on disk.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes of one time-index entry on disk.
pub const TIME_ENTRY_LEN: usize = 12;

/// One offset-index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset of the batch's first record, relative to the segment base.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment's log file.
    pub position: u32,
}

/// One time-index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// The largest timestamp in the segment up to this entry.
    pub timestamp_ms: i64,
    /// Last offset (relative) of the batch that first reached that timestamp.
    pub relative_offset: u32,
}

/// Sparse map from offset to file position.
#[derive(Clone, Debug, Default)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    /// Entries in order.
    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }

    /// Adds an entry; offsets and positions strictly increase.
    pub fn push(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "offset index must increase: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
    }

    /// The file position to start scanning from for `relative_offset`: the
    /// last entry at or below it, or the segment start.
    pub fn floor_position(&self, relative_offset: u32) -> u64 {
        let i = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 {
            0
        } else {
            u64::from(self.entries[i - 1].position)
        }
    }

    /// Drops entries at or after file position `position`.
    pub fn truncate_at_position(&mut self, position: u64) {
        let keep = self
            .entries
            .partition_point(|e| u64::from(e.position) < position);
        self.entries.truncate(keep);
    }

    /// Drops the entries from index `len` on.
    pub fn truncate_entries(&mut self, len: usize) {
        self.entries.truncate(len);
    }

    /// The on-disk form of `entry`.
    pub fn encode(entry: OffsetEntry) -> [u8; OFFSET_ENTRY_LEN] {
        let mut out = [0; OFFSET_ENTRY_LEN];
        out[..4].copy_from_slice(&entry.relative_offset.to_be_bytes());
        out[4..].copy_from_slice(&entry.position.to_be_bytes());
        out
    }

    /// Decodes a file's entries, stopping at the first that does not increase
    /// (zero padding, a torn write) or lies beyond `log_len`.
    pub fn decode(bytes: &[u8], log_len: u64) -> OffsetIndex {
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_LEN) {
            let entry = OffsetEntry {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            let increases = index.entries.last().is_none_or(|last| {
                entry.relative_offset > last.relative_offset && entry.position > last.position
            });
            let first_ok = !index.entries.is_empty() || entry.position == 0;
            if !increases || !first_ok || u64::from(entry.position) >= log_len {
                break;
            }
            index.entries.push(entry);
        }
        index
    }
}

/// Sparse map from timestamp to offset.
#[derive(Clone, Debug, Default)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    /// Entries in order.
    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    /// The newest entry.
    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// Adds an entry if it raises the largest timestamp; returns whether it did.
    pub fn maybe_push(&mut self, entry: TimeEntry) -> bool {
        if let Some(last) = self.entries.last() {
            if entry.timestamp_ms <= last.timestamp_ms {
                return false;
            }
            assert!(
                entry.relative_offset >= last.relative_offset,
                "time index offsets must not decrease"
            );
        }
        self.entries.push(entry);
        true
    }

    /// Where a search for the first record at or after `timestamp_ms` starts:
    /// the offset of the last entry below it (all records before that entry's
    /// batch are older), or `None` to start at the segment's beginning.
    pub fn search_start(&self, timestamp_ms: i64) -> Option<u32> {
        let i = self
            .entries
            .partition_point(|e| e.timestamp_ms < timestamp_ms);
        (i > 0).then(|| self.entries[i - 1].relative_offset)
    }

    /// Drops entries whose offset is at or after `relative_offset`.
    pub fn truncate_at_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        self.entries.truncate(keep);
    }

    /// The on-disk form of `entry`.
    pub fn encode(entry: TimeEntry) -> [u8; TIME_ENTRY_LEN] {
        let mut out = [0; TIME_ENTRY_LEN];
        out[..8].copy_from_slice(&entry.timestamp_ms.to_be_bytes());
        out[8..].copy_from_slice(&entry.relative_offset.to_be_bytes());
        out
    }

    /// Decodes a file's entries, stopping at the first that does not
    /// increase or points at or past `next_relative_offset`.
    pub fn decode(bytes: &[u8], next_relative_offset: u32) -> TimeIndex {
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0; 8];
            ts.copy_from_slice(&chunk[..8]);
            let entry = TimeEntry {
                timestamp_ms: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            };
            let increases = index.entries.last().is_none_or(|last| {
                entry.timestamp_ms > last.timestamp_ms
                    && entry.relative_offset >= last.relative_offset
            });
            if !increases
                || entry.relative_offset >= next_relative_offset
                || entry.timestamp_ms == 0
                    && entry.relative_offset == 0
                    && !index.entries.is_empty()
            {
                break;
            }
            index.entries.push(entry);
        }
        index
    }
}

/// `offset` relative to a segment's base, checked to fit.
pub fn relative(base: Offset, offset: Offset) -> u32 {
    u32::try_from(offset.0 - base.0).expect("a segment spans less than 2^32 offsets")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_and_decode_stop_at_padding() {
        let mut index = OffsetIndex::default();
        for i in 0..10u32 {
            index.push(OffsetEntry {
                relative_offset: i * 10,
                position: i * 4096,
            });
        }
        assert_eq!(index.floor_position(0), 0);
        assert_eq!(index.floor_position(15), 4096);
        assert_eq!(index.floor_position(95), 9 * 4096);
        let mut bytes: Vec<u8> = index
            .entries()
            .iter()
            .flat_map(|e| OffsetIndex::encode(*e))
            .collect();
        bytes.extend_from_slice(&[0; 64]);
        let decoded = OffsetIndex::decode(&bytes, 10 * 4096);
        assert_eq!(decoded.entries(), index.entries());
        // Entries that point past the log are dropped.
        assert_eq!(OffsetIndex::decode(&bytes, 5 * 4096).entries().len(), 5);
        index.truncate_at_position(4096 * 3);
        assert_eq!(index.entries().len(), 3);
    }

    #[test]
    fn time_index_search_starts_below_target() {
        let mut index = TimeIndex::default();
        assert!(index.maybe_push(TimeEntry {
            timestamp_ms: 100,
            relative_offset: 0
        }));
        assert!(!index.maybe_push(TimeEntry {
            timestamp_ms: 100,
            relative_offset: 5
        }));
        assert!(index.maybe_push(TimeEntry {
            timestamp_ms: 200,
            relative_offset: 9
        }));
        assert_eq!(index.search_start(50), None);
        assert_eq!(index.search_start(100), None);
        assert_eq!(index.search_start(150), Some(0));
        assert_eq!(index.search_start(1000), Some(9));
        let mut bytes: Vec<u8> = index
            .entries()
            .iter()
            .flat_map(|e| TimeIndex::encode(*e))
            .collect();
        bytes.extend_from_slice(&[0; 24]);
        assert_eq!(TimeIndex::decode(&bytes, 10).entries(), index.entries());
        assert_eq!(TimeIndex::decode(&bytes, 9).entries().len(), 1);
    }
}
