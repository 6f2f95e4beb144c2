//! The leader-epoch cache: for each leader epoch, the first offset written
//! in it. It answers OffsetForLeaderEpoch ("where does epoch E end?"), which
//! followers and consumers use to detect a diverged log (KIP-101, KIP-320).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::types::{LeaderEpoch, Offset};

/// Epochs and their start offsets, both strictly increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl LeaderEpochCache {
    /// Entries in order.
    pub fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    /// The newest epoch.
    pub fn latest(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Whether a batch of `epoch` starting at `offset` would add an entry.
    pub fn would_change(&self, epoch: LeaderEpoch) -> bool {
        epoch != LeaderEpoch::UNKNOWN && self.latest().is_none_or(|latest| epoch > latest)
    }

    /// Records that `epoch` starts at `offset`; returns whether that is new.
    /// Older epochs than the latest are ignored: a log never goes back.
    pub fn assign(&mut self, epoch: LeaderEpoch, offset: Offset) -> bool {
        if !self.would_change(epoch) {
            return false;
        }
        if let Some((_, last_start)) = self.entries.last() {
            assert!(
                offset >= *last_start,
                "epoch {epoch} starts at {offset}, before the previous epoch's start {last_start}"
            );
        }
        self.entries.push((epoch, offset));
        true
    }

    /// Kafka's `endOffsetFor`: the epoch and end offset of the largest epoch
    /// at or below `requested`, where an epoch ends where the next starts and
    /// the latest ends at `log_end`. `None` (Kafka's UNDEFINED) when
    /// `requested` is above every epoch known or there are none.
    pub fn end_offset_for(
        &self,
        requested: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let latest = self.latest()?;
        if requested == latest {
            return Some((latest, log_end));
        }
        let higher = self.entries.iter().find(|(e, _)| *e > requested)?;
        let floor = self.entries.iter().rev().find(|(e, _)| *e <= requested);
        Some((floor.map_or(requested, |(e, _)| *e), higher.1))
    }

    /// Drops epochs that start at or after `log_end` (the log was cut there).
    pub fn truncate_from_end(&mut self, log_end: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < log_end);
        self.entries.len() != before
    }

    /// Moves epochs that start below `log_start` up to it, keeping only the
    /// newest of them (the log's beginning was removed).
    pub fn truncate_from_start(&mut self, log_start: Offset) -> bool {
        let below = self
            .entries
            .partition_point(|(_, start)| *start < log_start);
        if below == 0 {
            return false;
        }
        let (epoch, start) = self.entries[below - 1];
        if below == 1 && start == log_start {
            return false;
        }
        self.entries.drain(..below);
        let keep = self.entries.first().is_none_or(|(_, s)| *s > log_start);
        if keep {
            self.entries.insert(0, (epoch, log_start));
        }
        true
    }

    /// The checkpoint file's payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + self.entries.len() * 12);
        out.put_u32(u32::try_from(self.entries.len()).expect("fewer than 2^32 epochs"));
        for (epoch, offset) in &self.entries {
            out.put_i32(epoch.0);
            out.put_i64(offset.0);
        }
        out.freeze()
    }

    /// Parses a checkpoint payload; `None` if it is malformed.
    pub fn decode(mut bytes: Bytes) -> Option<LeaderEpochCache> {
        if bytes.remaining() < 4 {
            return None;
        }
        let count = bytes.get_u32() as usize;
        if bytes.remaining() != count.checked_mul(12)? {
            return None;
        }
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let epoch = LeaderEpoch(bytes.get_i32());
            let offset = Offset(bytes.get_i64());
            if !cache.would_change(epoch) || cache.entries.last().is_some_and(|(_, s)| offset < *s)
            {
                return None;
            }
            cache.entries.push((epoch, offset));
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        assert!(cache.assign(LeaderEpoch(1), Offset(0)));
        assert!(!cache.assign(LeaderEpoch(1), Offset(5)));
        assert!(cache.assign(LeaderEpoch(3), Offset(10)));
        assert!(cache.assign(LeaderEpoch(4), Offset(20)));
        assert!(
            !cache.assign(LeaderEpoch(2), Offset(25)),
            "older epochs are ignored"
        );
        cache
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let cache = cache();
        let leo = Offset(30);
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(4), leo),
            Some((LeaderEpoch(4), leo))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(3), leo),
            Some((LeaderEpoch(3), Offset(20)))
        );
        // Epoch 2 was never used: answer with the epoch below it and where 3 starts.
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(2), leo),
            Some((LeaderEpoch(1), Offset(10)))
        );
        // Below every epoch: the requested epoch, ending where the first starts.
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(0), leo),
            Some((LeaderEpoch(0), Offset(0)))
        );
        assert_eq!(cache.end_offset_for(LeaderEpoch(9), leo), None);
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(LeaderEpoch(1), leo),
            None
        );
    }

    #[test]
    fn truncation_and_round_trip() {
        let mut cache = cache();
        assert!(cache.truncate_from_end(Offset(20)));
        assert_eq!(cache.latest(), Some(LeaderEpoch(3)));
        assert!(cache.truncate_from_start(Offset(12)));
        assert_eq!(cache.entries(), &[(LeaderEpoch(3), Offset(12))]);
        let decoded = LeaderEpochCache::decode(cache.encode()).unwrap();
        assert_eq!(decoded, cache);
        assert!(LeaderEpochCache::decode(Bytes::from_static(&[0, 0, 0, 9])).is_none());
    }
}
