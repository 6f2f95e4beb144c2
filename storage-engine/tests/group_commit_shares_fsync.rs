//! Producers that flush at the same time share fsyncs (group commit), and
//! every one of them returns only once its batch is durable.

mod common;

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use common::{append, batch, open, run};
use glommio::sync::Semaphore;
use kelp_storage::io::MemoryStorage;
use kelp_storage::{LogConfig, ManualClock, Offset};

#[test]
fn concurrent_flushes_share_fsyncs() {
    run(async {
        let dir = Path::new("/data/g-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let log = Rc::new(open(&storage, dir, &LogConfig::default(), &clock).await);
        // The first append persists epoch 1; do it before counting.
        append(&log, batch("first", 1, 1, 0)).await;
        log.flush().await.unwrap();
        let (_, syncs_before) = storage.io_counts();
        let producers = 50u64;
        let go = Rc::new(Semaphore::new(0));
        let mut tasks = Vec::new();
        for p in 0..producers {
            let (log, go) = (Rc::clone(&log), Rc::clone(&go));
            tasks.push(glommio::spawn_local(async move {
                let info = append(&log, batch(&format!("p{p}"), 2, 1, 1)).await;
                go.acquire(1).await.unwrap();
                log.flush().await.unwrap();
                assert!(
                    log.durable_end_offset() > info.last_offset,
                    "durable when flush returns"
                );
            }));
        }
        // Release the flushes together once every producer has appended.
        while log.log_end_offset() < Offset(1 + 2 * producers as i64) {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        go.signal(producers);
        for task in tasks {
            task.await;
        }
        let (_, syncs_after) = storage.io_counts();
        let syncs = syncs_after - syncs_before;
        assert_eq!(
            syncs, 1,
            "{syncs} fsyncs for {producers} producers flushing together"
        );
    });
}
