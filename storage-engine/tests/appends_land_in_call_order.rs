//! Pipelined producers: appends called one after another land in that
//! order, even when the first must wait (a new epoch to persist, a roll,
//! too much unwritten data) while a flush competes for the log's permit.

mod common;

use std::path::Path;
use std::rc::Rc;

use common::{batch, open, read_all, run};
use kelp_storage::io::MemoryStorage;
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, LogConfig, ManualClock, Offset};

#[test]
fn concurrent_appends_and_flushes_keep_call_order() {
    run(async {
        let dir = Path::new("/data/o-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        // Small segments and a small unwritten budget send many appends down
        // the slow path.
        let config = LogConfig {
            segment_bytes: 4096,
            max_unwritten_bytes: 2048,
            ..LogConfig::default()
        };
        let log = Rc::new(open(&storage, dir, &config, &clock).await);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let log = Rc::clone(&log);
            // Epochs rise now and then: each new one is persisted on the slow path.
            let epoch = LeaderEpoch(i / 40);
            tasks.push(glommio::spawn_local(async move {
                log.append(
                    batch(&format!("b{i}"), 1, 1, 0),
                    AppendOrigin::Leader(epoch),
                )
                .await
                .unwrap();
                log.flush().await.unwrap();
            }));
        }
        for task in tasks {
            task.await;
        }
        let values: Vec<String> = read_all(&log, Offset(0))
            .await
            .into_iter()
            .map(|(_, _, v)| v.unwrap())
            .collect();
        let expected: Vec<String> = (0..200).map(|i| format!("b{i}-0")).collect();
        assert_eq!(values, expected);
    });
}
