//! A shard's background log work: retention (`retention.ms`,
//! `retention.bytes`) every `log_retention_check_interval_ms`, and
//! compaction of `cleanup.policy=compact` logs past their
//! `min.cleanable.dirty.ratio`, checked every `log_cleaner_backoff_ms` on a
//! low-priority task queue so it yields to requests; and expiry of silent
//! producers' sequence state every `producer_id_expiration_check_interval_ms`.
//! All stop at shutdown;
//! a compaction cut short by a log closing leaves files that the next open
//! throws away.

use std::rc::Rc;
use std::time::Duration;

use glommio::{Latency, Shares, Task};
use kelp_storage::compaction::CompactionOptions;

use super::Shard;

/// The background loops of a shard.
pub struct Maintenance {
    _retention: Task<()>,
    _cleaner: Task<()>,
    _producer_expiry: Task<()>,
}

/// Starts `shard`'s retention and cleaner loops.
pub fn start(shard: &Rc<Shard>) -> Maintenance {
    let retention = {
        let shard = Rc::clone(shard);
        glommio::spawn_local(async move { retention_loop(&shard).await })
    };
    let low_priority = glommio::executor().create_task_queue(
        Shares::Static(100),
        Latency::NotImportant,
        "kelp-cleaner",
    );
    let cleaner = {
        let shard = Rc::clone(shard);
        glommio::spawn_local_into(async move { cleaner_loop(&shard).await }, low_priority)
            // Fails only for a task queue of another executor.
            .expect("the task queue was just made on this executor")
    };
    let producer_expiry = {
        let shard = Rc::clone(shard);
        glommio::spawn_local(async move { producer_expiry_loop(&shard).await })
    };
    Maintenance {
        _retention: retention,
        _cleaner: cleaner,
        _producer_expiry: producer_expiry,
    }
}

/// Forgets producers silent for `producer.id.expiration.ms` (those with an
/// open transaction stay), as Kafka's `producer.id.expiration.check.interval.ms` task.
async fn producer_expiry_loop(shard: &Shard) {
    let txns = shard.config.txns;
    let every = Duration::from_millis(
        u64::try_from(txns.producer_id_expiration_check_ms).unwrap_or(600_000),
    );
    while pause(shard, every).await {
        for ((topic, partition), log) in shard.logs() {
            let expired = log.expire_producers(txns.producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!(topic, partition, expired, "expired silent producers");
            }
        }
    }
}

/// Sleeps `period`; false once the shard is stopping.
async fn pause(shard: &Shard, period: Duration) -> bool {
    let timer = std::pin::pin!(glommio::timer::sleep(period));
    let stopping = std::pin::pin!(shard.stopping.triggered());
    futures_util::future::select(timer, stopping).await;
    !shard.stopping.is_triggered()
}

async fn retention_loop(shard: &Shard) {
    while pause(shard, shard.config.retention_check_interval).await {
        for ((topic, partition), log) in shard.logs() {
            if shard.stopping.is_triggered() {
                return;
            }
            match log.apply_retention().await {
                Ok(outcome) if outcome.segments_deleted > 0 => tracing::info!(
                    topic,
                    partition,
                    segments = outcome.segments_deleted,
                    bytes = outcome.bytes_deleted,
                    log_start = outcome.log_start.0,
                    "retention deleted old segments"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(topic, partition, error = %e, "retention failed"),
            }
        }
    }
}

async fn cleaner_loop(shard: &Shard) {
    let options = CompactionOptions {
        throttle_bytes_per_sec: shard.config.cleaner_throttle_bytes_per_sec,
    };
    while pause(shard, shard.config.cleaner_backoff).await {
        for ((topic, partition), log) in shard.logs() {
            if shard.stopping.is_triggered() {
                return;
            }
            if log.is_closed() || !log.needs_compaction() {
                continue;
            }
            match log.compact(options).await {
                Ok(outcome) => tracing::info!(
                    topic,
                    partition,
                    segments = outcome.segments_rewritten,
                    records_removed = outcome.records_removed,
                    bytes_before = outcome.bytes_before,
                    bytes_after = outcome.bytes_after,
                    "compacted"
                ),
                // A log closed or deleted under the pass is not a failure.
                Err(_) if log.is_closed() => {}
                Err(e) => tracing::warn!(topic, partition, error = %e, "compaction failed"),
            }
        }
    }
}
