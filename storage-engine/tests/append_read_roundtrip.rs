//! Appended batches come back whole, from the cache and from disk, across
//! segment rolls and a clean reopen, on both storage backends.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{append, batch, open, read_all, run};
use kelp_storage::io::{DmaStorage, MemoryStorage, Storage};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, LogConfig, ManualClock, Offset, StorageError};

async fn roundtrip<S: Storage>(storage: S, dir: &Path) {
    let clock = Rc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    let log = open(&storage, dir, &config, &clock).await;
    let mut expected = Vec::new();
    for i in 0..200 {
        let records = 1 + i % 7;
        let info = append(&log, batch(&format!("b{i}"), records, 3, 1_000 + i as i64)).await;
        assert_eq!(info.last_offset.0 - info.base_offset.0 + 1, records as i64);
        for r in 0..records {
            expected.push((
                info.base_offset.0 + r as i64,
                Some(format!("k{}", r % 3)),
                Some(format!("b{i}-{r}")),
            ));
        }
        if i % 10 == 0 {
            log.flush().await.unwrap();
        }
    }
    assert!(
        log.segment_count() > 3,
        "4 KiB segments roll: {}",
        log.segment_count()
    );
    assert_eq!(log.log_end_offset().0, expected.len() as i64);
    assert_eq!(read_all(&log, Offset(0)).await, expected);
    // A read in the middle starts with the batch that holds the offset.
    let middle = log.read(Offset(301), 1).await.unwrap();
    assert_eq!(
        middle.batches.len(),
        1,
        "at least one batch even past max_bytes"
    );
    let first = kelp_storage::batch::RecordBatch::parse(middle.batches[0].clone()).unwrap();
    assert!(first.base_offset() <= 301 && first.last_offset() >= 301);
    // At the end: nothing; past it: out of range.
    assert!(log
        .read(log.log_end_offset(), 1 << 20)
        .await
        .unwrap()
        .batches
        .is_empty());
    let past = log.read(log.log_end_offset().next(), 1 << 20).await;
    assert!(
        matches!(past, Err(StorageError::OffsetOutOfRange { .. })),
        "{past:?}"
    );

    log.close().await.unwrap();
    let closed = log
        .append(batch("x", 1, 1, 0), AppendOrigin::Leader(LeaderEpoch(1)))
        .await;
    assert!(
        matches!(closed, Err(StorageError::Poisoned { .. })),
        "a closed log refuses appends"
    );
    let reopened = open(&storage, dir, &config, &clock).await;
    assert_eq!(reopened.log_end_offset().0, expected.len() as i64);
    // The reopened log has an empty cache: everything comes from disk.
    let disk = reopened.read(Offset(0), 1 << 20).await.unwrap();
    assert!(!disk.from_cache);
    assert_eq!(read_all(&reopened, Offset(0)).await, expected);
    let info = append(&reopened, batch("after", 2, 1, 5_000)).await;
    assert_eq!(info.base_offset.0, expected.len() as i64);
}

#[test]
fn roundtrip_on_memory_storage() {
    run(async {
        let storage = MemoryStorage::new();
        roundtrip(storage, Path::new("/data/topic-0")).await;
    });
}

#[test]
fn roundtrip_on_direct_io() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("topic-0");
    run(async move {
        roundtrip(DmaStorage, &path).await;
    });
}

#[test]
fn log_append_time_stamps_leader_batches_with_the_log_clock() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let storage = MemoryStorage::new();
        let clock = Rc::new(ManualClock::new(5_000_000));
        let config = LogConfig {
            timestamp_type: kelp_storage::TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let log = open(&storage, dir.path(), &config, &clock).await;
        let info = append(&log, batch("a", 3, 3, 1_000)).await;
        assert_eq!(info.log_append_time_ms, Some(5_000_000));
        assert_eq!(info.max_timestamp_ms, 5_000_000);
        let read = log.read(Offset(0), 1 << 20).await.unwrap();
        // Parsing checks the CRC, which must cover the new fields.
        let stored = kelp_storage::batch::RecordBatch::parse(read.batches[0].clone()).unwrap();
        assert_eq!(stored.max_timestamp(), 5_000_000);
        assert_eq!(
            stored.timestamp_type(),
            kelp_storage::TimestampType::LogAppendTime
        );
        // The time index follows the stamped time.
        assert_eq!(
            log.offset_for_timestamp(4_000_000)
                .await
                .unwrap()
                .map(|f| f.0),
            Some(Offset(0))
        );
        // Under CreateTime the producer's time is kept.
        log.set_config(LogConfig::default());
        let info = append(&log, batch("b", 1, 1, 1_234)).await;
        assert_eq!(
            (info.log_append_time_ms, info.max_timestamp_ms),
            (None, 1_234)
        );
    });
}
