//! The tail cache: recently appended batches of every log on a shard, kept
//! in memory up to a byte budget, so consumers that keep up are served
//! without touching the disk (direct I/O bypasses the page cache).
//!
//! One cache per shard, shared by that shard's logs through `Rc`; the
//! oldest batches of the shard are evicted first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::types::{LogId, Offset};

/// A cached batch.
#[derive(Clone, Debug)]
struct CachedBatch {
    base_offset: Offset,
    last_offset: Offset,
    bytes: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    logs: HashMap<LogId, VecDeque<CachedBatch>>,
    /// Insertion order across logs, for eviction; entries whose batch was
    /// already dropped are skipped.
    order: VecDeque<(LogId, Offset)>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

/// Bounded cache of the newest batches of a shard's logs.
#[derive(Debug)]
pub struct TailCache {
    capacity_bytes: usize,
    inner: RefCell<Inner>,
}

/// Hit and miss counters of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from memory.
    pub hits: u64,
    /// Reads that went to disk.
    pub misses: u64,
    /// Bytes held.
    pub bytes: usize,
}

impl TailCache {
    /// A cache holding at most `capacity_bytes` of batches.
    #[must_use]
    pub fn new(capacity_bytes: usize) -> TailCache {
        TailCache {
            capacity_bytes,
            inner: RefCell::new(Inner::default()),
        }
    }

    /// Adds a batch just appended to `log`; it must follow the log's cached
    /// batches, or the log's cached run restarts at it.
    pub fn insert(&self, log: LogId, base_offset: Offset, last_offset: Offset, bytes: Bytes) {
        if bytes.len() > self.capacity_bytes {
            self.invalidate_from(log, Offset(i64::MIN));
            return;
        }
        let mut inner = self.inner.borrow_mut();
        let run = inner.logs.entry(log).or_default();
        if run.back().is_some_and(|b| b.last_offset >= base_offset) {
            run.clear();
        }
        inner.bytes += bytes.len();
        let run = inner.logs.entry(log).or_default();
        run.push_back(CachedBatch {
            base_offset,
            last_offset,
            bytes,
        });
        inner.order.push_back((log, base_offset));
        while inner.bytes > self.capacity_bytes {
            let Some((victim, base)) = inner.order.pop_front() else {
                break;
            };
            let Some(run) = inner.logs.get_mut(&victim) else {
                continue;
            };
            if run.front().is_some_and(|b| b.base_offset == base) {
                let evicted = run.pop_front().expect("front was just checked");
                inner.bytes -= evicted.bytes.len();
            }
        }
        // Stale order entries (of invalidated batches) are bounded by
        // compacting the queue when they outnumber live ones.
        if inner.order.len() > 64
            && inner.order.len() > 2 * inner.logs.values().map(VecDeque::len).sum::<usize>()
        {
            let live: Vec<(LogId, Offset)> = inner
                .order
                .iter()
                .copied()
                .filter(|(log, base)| {
                    inner
                        .logs
                        .get(log)
                        .is_some_and(|run| run.iter().any(|b| b.base_offset == *base))
                })
                .collect();
            inner.order = live.into();
        }
    }

    /// Whole batches of `log` starting with the one that holds `offset`, up
    /// to `max_bytes` (at least one batch), if the cache holds that batch.
    /// `None` means the caller must read from disk.
    pub fn read(&self, log: LogId, offset: Offset, max_bytes: usize) -> Option<Vec<Bytes>> {
        let mut inner = self.inner.borrow_mut();
        let found = inner.logs.get(&log).and_then(|run| {
            let first = run.front()?;
            if offset < first.base_offset {
                return None;
            }
            let start = run.partition_point(|b| b.last_offset < offset);
            let mut out = Vec::new();
            let mut total = 0;
            for batch in run.iter().skip(start) {
                if !out.is_empty() && total + batch.bytes.len() > max_bytes {
                    break;
                }
                total += batch.bytes.len();
                out.push(batch.bytes.clone());
            }
            Some(out)
        });
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    /// Drops the batches of `log` whose last offset is at or after `offset`.
    pub fn invalidate_from(&self, log: LogId, offset: Offset) {
        let mut inner = self.inner.borrow_mut();
        let mut dropped = 0;
        if let Some(run) = inner.logs.get_mut(&log) {
            while run.back().is_some_and(|b| b.last_offset >= offset) {
                dropped += run.pop_back().map_or(0, |b| b.bytes.len());
            }
        }
        inner.bytes -= dropped;
    }

    /// Drops the batches of `log` that start below `offset`.
    pub fn invalidate_below(&self, log: LogId, offset: Offset) {
        let mut inner = self.inner.borrow_mut();
        let mut dropped = 0;
        if let Some(run) = inner.logs.get_mut(&log) {
            while run.front().is_some_and(|b| b.base_offset < offset) {
                dropped += run.pop_front().map_or(0, |b| b.bytes.len());
            }
        }
        inner.bytes -= dropped;
    }

    /// Forgets `log` entirely (the log was closed or deleted).
    pub fn remove_log(&self, log: LogId) {
        self.invalidate_from(log, Offset(i64::MIN));
        self.inner.borrow_mut().logs.remove(&log);
    }

    /// Hit and miss counts so far.
    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.borrow();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            bytes: inner.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Bytes {
        Bytes::from(vec![1u8; n])
    }

    #[test]
    fn serves_from_the_batch_holding_the_offset_and_evicts_oldest() {
        let cache = TailCache::new(1000);
        let (a, b) = (LogId(1), LogId(2));
        cache.insert(a, Offset(0), Offset(9), batch(300));
        cache.insert(b, Offset(0), Offset(0), batch(300));
        cache.insert(a, Offset(10), Offset(19), batch(300));
        assert_eq!(cache.read(a, Offset(5), 10_000).unwrap().len(), 2);
        assert_eq!(
            cache.read(a, Offset(15), 1).unwrap().len(),
            1,
            "at least one batch"
        );
        cache.insert(a, Offset(20), Offset(29), batch(300));
        // The oldest batch of the shard (log a, offset 0) was evicted.
        assert!(cache.read(a, Offset(5), 10_000).is_none());
        assert_eq!(cache.read(b, Offset(0), 10_000).unwrap().len(), 1);
        assert!(cache.stats().bytes <= 1000);
        cache.invalidate_from(a, Offset(25));
        assert_eq!(cache.read(a, Offset(10), 10_000).unwrap().len(), 1);
        // A batch that does not follow restarts the run.
        cache.insert(a, Offset(15), Offset(16), batch(10));
        assert!(cache.read(a, Offset(10), 10_000).is_none());
        assert_eq!(cache.stats().misses, 2);
    }
}
