//! Bringing a shard in line with a new topics snapshot from the controller:
//! logs of deleted topics are removed, partitions this shard now owns are
//! opened, and changed topic or dynamic broker configs reach the open logs. The controller
//! sends snapshots one at a time and waits for every shard, so a shard
//! never applies two at once.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;

use super::{Log, OwnedLog, Shard, ShardError};
use crate::topics::TopicStore;

/// Logs a shard opens or closes at once.
pub(crate) const CONCURRENT_LOG_OPS: usize = 64;

/// What to do with a log the new snapshot no longer gives this shard.
enum Stale {
    /// Its topic is gone (or is another topic of the same name): delete it.
    Delete,
    /// Another shard owns it now (placement changed at start-up): close it.
    Close,
}

impl Shard {
    /// Installs `next` as this shard's topics snapshot and opens, closes,
    /// deletes and reconfigures logs to match it. Every step is attempted;
    /// the first failure is returned.
    pub async fn apply_topics(&self, next: TopicStore) -> Result<(), ShardError> {
        let next = Rc::new(next);
        *self.topics.borrow_mut() = Rc::clone(&next);
        let stale = self.take_stale_logs(&next);
        let first_error = RefCell::new(None);
        let fail = |e: ShardError| {
            tracing::error!(error = %e, "applying topic metadata failed");
            first_error.borrow_mut().get_or_insert(e);
        };
        let fail = &fail;
        // Many partitions open and close at once (a restart, a big topic):
        // their small reads, writes and fsyncs overlap.
        futures_util::stream::iter(stale)
            .for_each_concurrent(
                CONCURRENT_LOG_OPS,
                |((topic, partition), stale, log)| async move {
                    if let Err(source) = remove_log(log, &stale).await {
                        fail(ShardError::Storage {
                            topic,
                            partition,
                            source,
                        });
                    }
                },
            )
            .await;
        let mut to_open = Vec::new();
        for topic in next.topics.values() {
            // Topic overrides or dynamic broker configs may have changed.
            let config = self.log_config_under(&next, topic);
            for (index, owner) in topic.partition_shards.iter().enumerate() {
                if *owner != self.id {
                    continue;
                }
                let partition =
                    i32::try_from(index).expect("partition counts are capped far below i32::MAX");
                match self.log(&topic.name, partition) {
                    Some(log) if log.config() != config => log.set_config(config.clone()),
                    Some(_) => {}
                    None => to_open.push((topic, partition, config.clone())),
                }
            }
        }
        futures_util::stream::iter(to_open)
            .for_each_concurrent(
                CONCURRENT_LOG_OPS,
                |(topic, partition, config)| async move {
                    if let Err(e) = self.open_log(topic, partition, config).await {
                        fail(e);
                    }
                },
            )
            .await;
        let first_error = first_error.into_inner();
        first_error.map_or(Ok(()), Err)
    }

    /// Takes out of the log map every log `next` no longer gives this shard.
    fn take_stale_logs(&self, next: &TopicStore) -> Vec<((String, i32), Stale, Log)> {
        let mut logs = self.logs.borrow_mut();
        let keys: Vec<((String, i32), Stale)> = logs
            .iter()
            .filter_map(|((topic, partition), owned)| {
                let same_topic = next.topics.get(topic).filter(|t| t.id == owned.topic_id);
                let owner = same_topic.and_then(|t| {
                    usize::try_from(*partition)
                        .ok()
                        .and_then(|i| t.partition_shards.get(i))
                });
                match owner {
                    Some(owner) if *owner == self.id => None,
                    Some(_) => Some(((topic.clone(), *partition), Stale::Close)),
                    None => Some(((topic.clone(), *partition), Stale::Delete)),
                }
            })
            .collect();
        keys.into_iter()
            .filter_map(|(key, stale)| {
                let OwnedLog { log, .. } = logs.remove(&key)?;
                Some((key, stale, log))
            })
            .collect()
    }
}

/// Closes a log, or deletes its files and directory.
async fn remove_log(log: Log, stale: &Stale) -> Result<(), kelp_storage::StorageError> {
    match (stale, Rc::try_unwrap(log)) {
        (Stale::Close, Ok(log)) => log.close().await,
        (Stale::Close, Err(log)) => log.close().await,
        (Stale::Delete, Ok(log)) => log.delete().await,
        // A request in flight still holds the log: close it so it takes no
        // more writes, then remove its directory.
        (Stale::Delete, Err(log)) => {
            // Closing may fail on a poisoned log; the directory goes anyway.
            let _ = log.close().await;
            std::fs::remove_dir_all(log.dir())
                .map_err(|e| kelp_storage::StorageError::io("remove log directory", log.dir())(e))
        }
    }
}
