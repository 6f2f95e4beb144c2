//! Full chunks are written ahead of any flush while appends go on, and
//! what was written ahead survives a process crash that loses the rest.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{append, batch, open, read_all, run};
use kelp_storage::io::MemoryStorage;
use kelp_storage::{LogConfig, ManualClock, Offset};

#[test]
fn full_chunks_are_written_ahead_and_read_back() {
    run(async {
        let dir = Path::new("/data/w-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let config = LogConfig {
            write_chunk_bytes: 8192,
            ..LogConfig::default()
        };
        let log = Rc::new(open(&storage, dir, &config, &clock).await);
        let mut appended = 0;
        while !log.claim_write_ahead() {
            append(&log, batch(&format!("b{appended}"), 20, 20, 0)).await;
            appended += 1;
            assert!(appended < 100, "a chunk of 8 KiB fills up");
        }
        assert!(
            !log.claim_write_ahead(),
            "claimed at once, before the task runs"
        );
        let (writes_before, _) = storage.io_counts();
        let ahead = glommio::spawn_local({
            let log = Rc::clone(&log);
            async move { log.write_ahead().await }
        });
        // Appends go on while the write-ahead waits or runs, and a second
        // one is not wanted while it does.
        append(&log, batch("during", 20, 20, 0)).await;
        assert!(!log.claim_write_ahead(), "one write-ahead at a time");
        ahead.await.unwrap();
        let (writes_after, _) = storage.io_counts();
        assert!(writes_after > writes_before, "the full chunk was written");
        assert!(!log.claim_write_ahead());
        let everything = read_all(&log, Offset(0)).await;
        assert_eq!(everything.len(), (appended + 1) * 20);
        // A process crash: the kernel keeps every write that was issued,
        // and nothing is flushed on the way down.
        drop(log);
        storage.crash(|_, pending| (pending, None));
        let reopened = open(&storage, dir, &config, &clock).await;
        let recovered = read_all(&reopened, Offset(0)).await;
        assert!(
            recovered.len() * 8 > everything.len(),
            "the chunk written ahead holds {} of {} records",
            recovered.len(),
            everything.len()
        );
        assert_eq!(recovered, everything[..recovered.len()]);
    });
}
