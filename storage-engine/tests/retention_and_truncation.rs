//! Retention deletes whole old segments by time and by size, DeleteRecords
//! moves the log start, truncation drops a suffix; reads below the start
//! get "offset out of range"; timestamps and epochs are answered right.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{append, batch, open, read_all, run};
use kelp_storage::io::MemoryStorage;
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, LogConfig, ManualClock, Offset, StorageError};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

#[test]
fn retention_by_time_and_size() {
    run(async {
        let dir = Path::new("/data/r-0");
        let clock = Rc::new(ManualClock::new(1_000_000));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &small_segments(), &clock).await;
        for i in 0..100 {
            append(&log, batch(&format!("v{i}"), 2, 2, 1_000 * i)).await;
        }
        let segments = log.segment_count();
        assert!(segments > 5);
        // By time: records older than 50 s (timestamps below 50_000 ms) go.
        clock.set(100_000);
        log.set_config(LogConfig {
            retention_ms: 50_000,
            ..small_segments()
        });
        let outcome = log.apply_retention().await.unwrap();
        assert!(outcome.segments_deleted > 0);
        let start = log.log_start_offset();
        assert_eq!(start, outcome.log_start);
        let err = log.read(Offset(0), 1 << 20).await.unwrap_err();
        assert!(
            matches!(err, StorageError::OffsetOutOfRange { .. }),
            "{err}"
        );
        let remaining = read_all(&log, start).await;
        assert_eq!(remaining.first().unwrap().0, start.0);
        assert!(
            remaining
                .iter()
                .all(|(o, _, _)| o / 2 * 1_000 + 1 >= 40_000),
            "only whole old segments went"
        );
        // By size: keep at most ~3 segments' worth.
        log.set_config(LogConfig {
            retention_bytes: 3 * 1024,
            ..small_segments()
        });
        log.apply_retention().await.unwrap();
        assert!(
            log.size_bytes() <= 3 * 1024 + 1024,
            "size {}",
            log.size_bytes()
        );
        assert!(log.segment_count() < segments);
        // Everything expired: even the active segment is rolled and deleted.
        clock.set(10_000_000);
        log.set_config(LogConfig {
            retention_ms: 1_000,
            ..small_segments()
        });
        log.apply_retention().await.unwrap();
        assert_eq!(log.log_start_offset(), log.log_end_offset());
        assert_eq!(log.size_bytes(), 0);
        // The log keeps going at the same offsets after a reopen.
        let end = log.log_end_offset();
        log.close().await.unwrap();
        let log = open(&storage, dir, &small_segments(), &clock).await;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (end, end));
        assert_eq!(append(&log, batch("new", 1, 1, 0)).await.base_offset, end);
    });
}

#[test]
fn delete_records_and_truncate_suffix() {
    run(async {
        let dir = Path::new("/data/r-1");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &small_segments(), &clock).await;
        for i in 0..60 {
            let epoch = LeaderEpoch(1 + i / 20);
            log.append(
                batch(&format!("v{i}"), 3, 3, i as i64),
                AppendOrigin::Leader(epoch),
            )
            .await
            .unwrap();
        }
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(1)),
            Some((LeaderEpoch(1), Offset(60)))
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(3)),
            Some((LeaderEpoch(3), Offset(180)))
        );
        // DeleteRecords inside a segment: the start moves exactly there.
        assert_eq!(log.truncate_prefix(Offset(70)).await.unwrap(), Offset(70));
        assert!(log.read(Offset(69), 100).await.is_err());
        assert_eq!(read_all(&log, Offset(70)).await.first().unwrap().0, 70);
        assert!(
            log.truncate_prefix(Offset(1_000)).await.is_err(),
            "beyond the end"
        );
        // Truncating mid-batch removes the whole batch.
        assert_eq!(log.truncate_suffix(Offset(121)).await.unwrap(), Offset(120));
        assert_eq!(log.log_end_offset(), Offset(120));
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(3)),
            None,
            "epoch 3 started at 120 and is gone"
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(2)),
            Some((LeaderEpoch(2), Offset(120)))
        );
        let info = append(&log, batch("after", 1, 1, 99)).await;
        assert_eq!(info.base_offset, Offset(120));
        // Both survive a crash after flush.
        log.flush().await.unwrap();
        drop(log);
        storage.crash(|_, _| (0, None));
        let log = open(&storage, dir, &small_segments(), &clock).await;
        assert_eq!(log.log_start_offset(), Offset(70));
        assert_eq!(log.log_end_offset(), Offset(121));
        assert_eq!(
            read_all(&log, Offset(118))
                .await
                .last()
                .unwrap()
                .2
                .as_deref(),
            Some("after-0")
        );
    });
}

#[test]
fn offsets_for_timestamps() {
    run(async {
        let dir = Path::new("/data/r-2");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &small_segments(), &clock).await;
        // Batch i holds records at 10*i, 10*i+1, 10*i+2 — except batch 30,
        // which jumps far ahead, the maximum.
        for i in 0..60i64 {
            let ts = if i == 30 { 1_000_000 } else { 10 * i };
            append(&log, batch(&format!("v{i}"), 3, 3, ts)).await;
        }
        assert_eq!(
            log.offset_for_timestamp(0).await.unwrap(),
            Some((Offset(0), 0))
        );
        assert_eq!(
            log.offset_for_timestamp(101).await.unwrap(),
            Some((Offset(31), 101))
        );
        assert_eq!(
            log.offset_for_timestamp(103).await.unwrap(),
            Some((Offset(33), 110))
        );
        assert_eq!(log.offset_for_timestamp(2_000_000).await.unwrap(), None);
        assert_eq!(
            log.max_timestamp().await.unwrap(),
            Some((Offset(92), 1_000_002))
        );
        log.close().await.unwrap();
        let log = open(&storage, dir, &small_segments(), &clock).await;
        assert_eq!(
            log.offset_for_timestamp(305).await.unwrap(),
            Some((Offset(90), 1_000_000)),
            "batch 30 holds the first record at or after 305"
        );
        assert_eq!(
            log.offset_for_timestamp(1_000_001).await.unwrap(),
            Some((Offset(91), 1_000_001))
        );
        assert_eq!(
            log.max_timestamp().await.unwrap(),
            Some((Offset(92), 1_000_002))
        );
    });
}

#[test]
fn segment_ms_rolls_an_old_segment() {
    run(async {
        let dir = Path::new("/data/r-3");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let config = LogConfig {
            segment_ms: 60_000,
            ..LogConfig::default()
        };
        let log = open(&storage, dir, &config, &clock).await;
        append(&log, batch("a", 1, 1, 0)).await;
        clock.advance(59_999);
        append(&log, batch("b", 1, 1, 0)).await;
        assert_eq!(log.segment_count(), 1);
        clock.advance(1);
        append(&log, batch("c", 1, 1, 0)).await;
        assert_eq!(log.segment_bases(), vec![Offset(0), Offset(2)]);
    });
}
