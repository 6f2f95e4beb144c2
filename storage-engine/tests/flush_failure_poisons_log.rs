//! A failed write or fsync (ENOSPC, EIO) poisons the log: it refuses writes
//! and says so, and reopening recovers everything that was flushed.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{append, batch, open, read_all, run};
use kelp_storage::io::{Fault, MemoryStorage};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, LogConfig, ManualClock, Offset, StorageError};

fn poisoned_by(fault: Fault, operation: &str) {
    run(async {
        let dir = Path::new("/data/p-0");
        let clock = Rc::new(ManualClock::new(0));
        let config = LogConfig::default();
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &config, &clock).await;
        append(&log, batch("kept", 4, 2, 0)).await;
        log.flush().await.unwrap();
        let flushed = read_all(&log, Offset(0)).await;
        append(&log, batch("lost", 4, 2, 1)).await;
        storage.inject(fault);
        let error = log.flush().await.unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error}");
        let refused = log
            .append(
                batch("after", 1, 1, 2),
                AppendOrigin::Leader(LeaderEpoch(1)),
            )
            .await
            .unwrap_err();
        match &refused {
            StorageError::Poisoned { operation: op, .. } => assert_eq!(*op, operation),
            other => panic!("expected a poisoned log, got {other}"),
        }
        assert!(
            refused.to_string().contains("reopen"),
            "the error says how to recover: {refused}"
        );
        assert!(log.flush().await.is_err(), "flush refuses too");
        drop(log);
        storage.crash(|_, _| (0, None));
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(read_all(&log, Offset(0)).await, flushed);
        append(&log, batch("again", 1, 1, 3)).await;
        log.flush().await.unwrap();
    });
}

#[test]
fn enospc_on_write_poisons() {
    poisoned_by(Fault::WriteNoSpace, "write");
}

#[test]
fn eio_on_write_poisons() {
    poisoned_by(Fault::WriteIo, "write");
}

#[test]
fn eio_on_fsync_poisons() {
    poisoned_by(Fault::SyncIo, "fsync");
}
