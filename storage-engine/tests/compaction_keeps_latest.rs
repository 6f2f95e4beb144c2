//! Compaction keeps the newest record per key at its original offset,
//! drops tombstones after delete.retention.ms, runs by dirty ratio, and an
//! interrupted swap is finished or discarded on reopen.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::{keyed, open, read_all, run};
use kelp_storage::compaction::CompactionOptions;
use kelp_storage::io::{MemoryStorage, Storage};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{CleanupPolicy, LeaderEpoch, LogConfig, ManualClock, Offset};

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        cleanup_policy: CleanupPolicy::COMPACT,
        delete_retention_ms: 10_000,
        ..LogConfig::default()
    }
}

/// Writes 300 updates over 10 keys (key 3 deleted at the end) and returns
/// the newest (offset, value) per key.
async fn fill(
    log: &kelp_storage::PartitionLog<MemoryStorage>,
) -> BTreeMap<String, (i64, Option<String>)> {
    let mut newest = BTreeMap::new();
    for i in 0..300i64 {
        let key = format!("k{}", i % 10);
        let value = if i == 293 {
            None
        } else {
            Some(format!("v{i}"))
        };
        let info = log
            .append(
                keyed(&key, value.as_deref(), 1_000 + i),
                AppendOrigin::Leader(LeaderEpoch(1)),
            )
            .await
            .unwrap();
        newest.insert(key, (info.base_offset.0, value));
    }
    log.force_roll().await.unwrap();
    newest
}

#[test]
fn keeps_newest_per_key_at_original_offsets() {
    run(async {
        let dir = Path::new("/data/c-0");
        let clock = Rc::new(ManualClock::new(5_000));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &compacted(), &clock).await;
        let newest = fill(&log).await;
        assert!(
            log.needs_compaction(),
            "everything is dirty: ratio {}",
            log.dirty_ratio()
        );
        let before = log.size_bytes();
        let outcome = log.compact(CompactionOptions::default()).await.unwrap();
        assert!(outcome.records_removed >= 290 - 10, "{outcome:?}");
        assert!(log.size_bytes() < before / 5);
        assert_eq!(log.dirty_ratio(), 0.0);
        assert!(!log.needs_compaction());
        let survivors = read_all(&log, Offset(0)).await;
        let expected: Vec<(i64, Option<String>, Option<String>)> = {
            let mut v: Vec<_> = newest
                .iter()
                .map(|(k, (o, val))| (*o, Some(k.clone()), val.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            survivors, expected,
            "newest per key, tombstone still inside delete.retention.ms"
        );
        // Reads at a removed offset start at the next surviving record.
        let next = log.read(Offset(5), 1 << 20).await.unwrap();
        assert!(!next.batches.is_empty());
        // After delete.retention.ms the tombstone goes too, once more data
        // makes the log dirty again.
        clock.set(1_000_000);
        log.append(
            keyed("k0", Some("fresh"), 1_000_000),
            AppendOrigin::Leader(LeaderEpoch(1)),
        )
        .await
        .unwrap();
        log.force_roll().await.unwrap();
        log.compact(CompactionOptions::default()).await.unwrap();
        let keys: Vec<_> = read_all(&log, Offset(0))
            .await
            .into_iter()
            .map(|(_, k, v)| (k.unwrap(), v))
            .collect();
        assert!(
            !keys.iter().any(|(k, _)| k == "k3"),
            "expired tombstone removed: {keys:?}"
        );
        assert_eq!(keys.iter().filter(|(k, _)| k == "k0").count(), 1);
        assert_eq!(keys.last().unwrap().1.as_deref(), Some("fresh"));
        // The compacted log reopens the same.
        let all = read_all(&log, Offset(0)).await;
        log.close().await.unwrap();
        let log = open(&storage, dir, &compacted(), &clock).await;
        assert_eq!(read_all(&log, Offset(0)).await, all);
    });
}

fn paths_with(storage: &MemoryStorage, dir: &Path, suffix: &str) -> Vec<PathBuf> {
    storage
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

#[test]
fn interrupted_swap_is_finished_or_discarded() {
    run(async {
        let dir = Path::new("/data/c-1");
        let clock = Rc::new(ManualClock::new(5_000));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &compacted(), &clock).await;
        fill(&log).await;
        let original = read_all(&log, Offset(0)).await;
        log.close().await.unwrap();
        drop(log);

        // A crash before the commit point: a half-written .cleaned file is
        // thrown away and the original segment stays.
        let first = storage
            .list(dir)
            .unwrap()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .min()
            .unwrap();
        let cleaned = PathBuf::from(format!("{}.cleaned", first.display()));
        storage.put(&cleaned, vec![1, 2, 3]);
        let log = open(&storage, dir, &compacted(), &clock).await;
        assert!(paths_with(&storage, dir, ".cleaned").is_empty());
        assert_eq!(read_all(&log, Offset(0)).await, original);

        // A crash after the commit point: the swap is finished on open.
        log.compact(CompactionOptions::default()).await.unwrap();
        let compacted_view = read_all(&log, Offset(0)).await;
        log.close().await.unwrap();
        drop(log);
        let compacted_first = storage.contents(&first).unwrap();
        // The original is still in place (zeros stand in for it: the swap replaces it).
        storage.put(&first, vec![0; 4096]);
        let swap = PathBuf::from(format!("{}.swap", first.display()));
        storage.put(&swap, compacted_first);
        let log = open(&storage, dir, &compacted(), &clock).await;
        assert!(paths_with(&storage, dir, ".swap").is_empty());
        assert_eq!(read_all(&log, Offset(0)).await, compacted_view);
    });
}

#[test]
fn key_budget_defers_segments_and_windows_bound_memory() {
    run(async {
        let dir = Path::new("/data/c-2");
        let clock = Rc::new(ManualClock::new(5_000));
        let storage = MemoryStorage::new();
        // Tiny write windows and a key budget that one segment exhausts.
        let config = LogConfig {
            segment_bytes: 16 << 10,
            write_chunk_bytes: 4096,
            compaction_max_keys: 5,
            ..compacted()
        };
        let log = open(&storage, dir, &config, &clock).await;
        let newest = fill(&log).await;
        let segments = log.segment_count();
        assert!(segments > 2);
        let first = log.compact(CompactionOptions::default()).await.unwrap();
        assert!(first.records_removed > 0);
        assert!(log.dirty_ratio() > 0.0, "later segments are still dirty");
        for _ in 0..segments {
            log.compact(CompactionOptions::default()).await.unwrap();
        }
        assert_eq!(log.dirty_ratio(), 0.0);
        // Later segments were mapped alone, so an older segment may keep a
        // record its successor superseded; but every newest record survives
        // and nothing else changed.
        let survivors = read_all(&log, Offset(0)).await;
        for (key, (offset, value)) in &newest {
            assert!(
                survivors.contains(&(*offset, Some(key.clone()), value.clone())),
                "newest {key} kept"
            );
        }
        assert!(survivors.len() < 100, "{} records left", survivors.len());
    });
}

#[test]
fn background_cleaner_compacts_when_dirty_and_stops_on_close() {
    run(async {
        let dir = Path::new("/data/c-3");
        let clock = Rc::new(ManualClock::new(5_000));
        let storage = MemoryStorage::new();
        let log = Rc::new(open(&storage, dir, &compacted(), &clock).await);
        let cleaner = glommio::spawn_local(kelp_storage::compaction::clean_in_background(
            Rc::clone(&log),
            std::time::Duration::from_millis(5),
            CompactionOptions {
                throttle_bytes_per_sec: Some(64 << 20),
            },
        ));
        fill(&log).await;
        let before = log.size_bytes();
        for _ in 0..2_000 {
            if !log.needs_compaction() {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            !log.needs_compaction(),
            "the cleaner ran (dirty ratio {})",
            log.dirty_ratio()
        );
        assert!(log.size_bytes() < before / 5);
        log.close().await.unwrap();
        cleaner.await.unwrap();
    });
}
