//! After a crash that loses unsynced data (a torn last write, garbage past
//! the end), reopening keeps every flushed batch, cuts at the first invalid
//! byte and never returns a torn batch.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{append, batch, open, read_all, run};
use kelp_storage::io::{MemoryStorage, Storage};
use kelp_storage::{LogConfig, ManualClock, Offset};

fn last_log_file(storage: &MemoryStorage, dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = storage
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn torn_unsynced_tail_is_cut_and_flushed_data_survives() {
    run(async {
        let dir = Path::new("/data/t-0");
        let clock = Rc::new(ManualClock::new(0));
        let config = LogConfig {
            segment_bytes: 16 << 10,
            index_interval_bytes: 256,
            ..LogConfig::default()
        };
        for cut in [None, Some(1), Some(100), Some(4095)] {
            let storage = MemoryStorage::new();
            let log = open(&storage, dir, &config, &clock).await;
            for i in 0..60 {
                append(&log, batch(&format!("f{i}"), 3, 2, i)).await;
            }
            log.flush().await.unwrap();
            let flushed = read_all(&log, Offset(0)).await;
            let durable = log.durable_end_offset();
            for i in 0..20 {
                append(&log, batch(&format!("u{i}"), 5, 2, 100 + i)).await;
            }
            // Write (no fsync) so unsynced pages exist that a crash may tear.
            log.read(Offset(0), 1).await.unwrap();
            drop(log);
            storage.crash(|_, pending| (pending, cut));
            let log = open(&storage, dir, &config, &clock).await;
            assert!(
                log.log_end_offset() >= durable,
                "cut {cut:?}: flushed data kept"
            );
            let after = read_all(&log, Offset(0)).await;
            assert_eq!(&after[..flushed.len()], &flushed[..], "cut {cut:?}");
            // What survived past the flush point is whole batches only.
            assert!(after[flushed.len()..]
                .iter()
                .all(|(_, _, v)| v.as_deref().is_some_and(|v| v.starts_with('u'))));
        }
    });
}

#[test]
fn garbage_after_the_end_and_damaged_index_are_recovered() {
    run(async {
        let dir = Path::new("/data/t-1");
        let clock = Rc::new(ManualClock::new(0));
        let config = LogConfig {
            index_interval_bytes: 256,
            ..LogConfig::default()
        };
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &config, &clock).await;
        for i in 0..40 {
            append(&log, batch(&format!("v{i}"), 2, 2, i)).await;
            log.flush().await.unwrap();
        }
        let expected = read_all(&log, Offset(0)).await;
        let end = log.log_end_offset();
        drop(log);
        storage.crash(|_, pending| (pending, None));
        let log_file = last_log_file(&storage, dir);
        let size = storage
            .contents(&log_file)
            .unwrap()
            .iter()
            .rposition(|b| *b != 0)
            .unwrap()
            + 1;
        // A plausible-looking header (length 200) followed by junk.
        storage.corrupt(
            &log_file,
            size,
            &[0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 200, 1, 2, 3],
        );
        // Index entries that point into the middle of batches.
        let index = log_file.with_extension("index");
        storage.corrupt(&index, 8, &[0, 0, 0, 3, 0, 0, 0, 17]);
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(read_all(&log, Offset(0)).await, expected);
        assert_eq!(read_all(&log, Offset(31)).await, expected[31..].to_vec());
    });
}

#[test]
fn corruption_inside_synced_data_cuts_there() {
    run(async {
        let dir = Path::new("/data/t-2");
        let clock = Rc::new(ManualClock::new(0));
        let config = LogConfig::default();
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &config, &clock).await;
        let mut infos = Vec::new();
        for i in 0..10 {
            infos.push(append(&log, batch(&format!("v{i}"), 1, 1, i)).await);
        }
        log.flush().await.unwrap();
        drop(log);
        storage.crash(|_, pending| (pending, None));
        // Flip a CRC-covered byte of the 6th batch: recovery must stop there.
        let log_file = last_log_file(&storage, dir);
        let data = storage.contents(&log_file).unwrap();
        let mut pos = 0;
        for _ in 0..5 {
            pos += 12 + u32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
        }
        storage.corrupt(&log_file, pos + 70, &[data[pos + 70] ^ 0xff]);
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(log.log_end_offset(), infos[5].base_offset);
        assert_eq!(read_all(&log, Offset(0)).await.len(), 5);
    });
}
