//! Helpers shared by the storage-engine integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use bytes::BytesMut;
use kelp_storage::batch::{BatchBuilder, Compression, RecordBatch};
use kelp_storage::io::Storage;
use kelp_storage::log::{AppendOrigin, LogContext};
use kelp_storage::{LeaderEpoch, LogConfig, LogId, ManualClock, Offset, PartitionLog, TailCache};

/// Runs `f` on a fresh glommio executor.
pub fn run<T>(f: impl Future<Output = T>) -> T {
    glommio::LocalExecutor::default().run(f)
}

/// A batch of `records` records with values `"<tag>-<i>"`, keys `k<i % keys>`.
pub fn batch(tag: &str, records: usize, keys: usize, timestamp_ms: i64) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..records {
        let key = format!("k{}", i % keys.max(1));
        let value = format!("{tag}-{i}");
        builder.push(
            timestamp_ms + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[],
        );
    }
    builder.build(0).expect("test batches are valid")
}

/// A batch with one record of `value` under `key` (`None`: a tombstone).
pub fn keyed(key: &str, value: Option<&str>, timestamp_ms: i64) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(
        timestamp_ms,
        Some(key.as_bytes()),
        value.map(str::as_bytes),
        &[],
    );
    builder.build(0).expect("test batches are valid")
}

/// The context of a test log with its own cache.
pub fn context(clock: &Rc<ManualClock>, cache_bytes: usize) -> LogContext {
    LogContext {
        id: LogId(1),
        cache: Rc::new(TailCache::new(cache_bytes)),
        clock: Rc::clone(clock) as _,
    }
}

/// Opens the log in `dir`.
pub async fn open<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
    clock: &Rc<ManualClock>,
) -> PartitionLog<S> {
    PartitionLog::open(
        storage.clone(),
        dir,
        config.clone(),
        context(clock, 1 << 20),
    )
    .await
    .expect("log opens")
}

/// Appends as leader of epoch 1.
pub async fn append<S: Storage>(
    log: &PartitionLog<S>,
    batch: BytesMut,
) -> kelp_storage::log::AppendInfo {
    log.append(batch, AppendOrigin::Leader(LeaderEpoch(1)))
        .await
        .expect("append succeeds")
}

/// Every record from `from` to the end as (offset, key, value), checking
/// each batch's CRC and that offsets increase.
pub async fn read_all<S: Storage>(
    log: &PartitionLog<S>,
    from: Offset,
) -> Vec<(i64, Option<String>, Option<String>)> {
    let mut out: Vec<(i64, Option<String>, Option<String>)> = Vec::new();
    let mut next = from;
    loop {
        let result = log.read(next, 64 << 10).await.expect("read succeeds");
        if result.batches.is_empty() {
            return out;
        }
        for bytes in result.batches {
            let batch =
                RecordBatch::parse(bytes).expect("every batch read back is whole and valid");
            for record in batch.records(1 << 24).expect("records decode") {
                let record = record.expect("record decodes");
                let offset = record.offset(batch.base_offset());
                if offset < next.0 {
                    continue;
                }
                assert!(
                    out.last().is_none_or(|(last, _, _)| offset > *last),
                    "offsets increase"
                );
                let text = |b: Option<bytes::Bytes>| {
                    b.map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
                };
                out.push((offset, text(record.key), text(record.value)));
            }
            next = Offset(batch.last_offset() + 1);
        }
    }
}
