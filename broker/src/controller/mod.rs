//! The controller: the one writer of topic metadata, on shard 0.
//!
//! Admin requests are forwarded here. A change is made to a copy of the
//! topic store, saved durably, then sent to every shard as its new
//! snapshot; the request is answered only when every shard has applied it,
//! so whatever connection a client uses next sees the change. Changes run
//! one at a time. Until the Raft controller lands, the store is a file.

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use glommio::sync::Semaphore;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::{ShardId, StoreError, TopicStore};
use crate::txn::producer_ids::ProducerIds;

/// Why a metadata change did not happen (or did not reach every shard).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change is not allowed; the client gets this code and message.
    #[error("{1}")]
    Refused(ErrorCode, String),
    /// The store could not be saved; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change is saved, but a shard failed to apply it (a partition
    /// could not be opened or removed).
    #[error("{0}")]
    Apply(String),
}

impl ChangeError {
    /// The Kafka error code and message for the client.
    pub fn into_kafka(self) -> (ErrorCode, String) {
        match self {
            ChangeError::Refused(code, message) => (code, message),
            other => {
                tracing::error!(error = %other, "topic metadata change failed");
                (ErrorCode::KafkaStorageError, other.to_string())
            }
        }
    }
}

impl From<(ErrorCode, String)> for ChangeError {
    fn from((code, message): (ErrorCode, String)) -> Self {
        ChangeError::Refused(code, message)
    }
}

/// The topic metadata writer, and the allocator of producer ids.
pub struct Controller {
    store: RefCell<TopicStore>,
    one_at_a_time: Semaphore,
    producer_ids: ProducerIds,
}

impl Controller {
    /// A controller over the store and producer-id block loaded at start-up.
    pub fn new(store: TopicStore, producer_ids: ProducerIds) -> Controller {
        Controller {
            store: RefCell::new(store),
            one_at_a_time: Semaphore::new(1),
            producer_ids,
        }
    }

    /// The producer id allocator.
    pub fn producer_ids(&self) -> &ProducerIds {
        &self.producer_ids
    }

    /// The current store (what every shard has applied, or is applying).
    pub fn store(&self) -> Ref<'_, TopicStore> {
        self.store.borrow()
    }

    /// Runs `edit` on a copy of the store. If it succeeds and changed
    /// something, the copy is saved durably, becomes the store, and every
    /// shard applies it before this returns.
    pub async fn change<T>(
        &self,
        shard: &Rc<Shard>,
        edit: impl FnOnce(&mut TopicStore) -> Result<T, ChangeError>,
    ) -> Result<T, ChangeError> {
        let _turn = self
            .one_at_a_time
            .acquire_permit(1)
            .await
            .expect("the semaphore is never closed");
        let mut next = self.store.borrow().clone();
        let result = edit(&mut next)?;
        if next == *self.store.borrow() {
            return Ok(result);
        }
        next.save(&shard.config.data_dir)?;
        *self.store.borrow_mut() = next.clone();
        broadcast(shard, next).await?;
        Ok(result)
    }
}

/// Sends `store` to every shard and waits until all have applied it.
async fn broadcast(shard: &Rc<Shard>, store: TopicStore) -> Result<(), ChangeError> {
    let calls = (0..shard.shards()).map(|index| {
        let snapshot = store.clone();
        shard.call(ShardId(index), move |target| async move {
            target
                .apply_topics(snapshot)
                .await
                .map_err(|e| e.to_string())
        })
    });
    let mut failures = Vec::new();
    for result in futures_util::future::join_all(calls).await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(message)) => failures.push(message),
            Err(unreachable) => failures.push(unreachable.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ChangeError::Apply(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, Overrides};
    use crate::shard::mesh::{Envelope, Mesh};
    use crate::shard::CONTROLLER_SHARD;
    use crate::topics::{partition_dir, TopicMeta};
    use glommio::channels::channel_mesh::{Full, MeshBuilder};
    use std::collections::BTreeMap;

    #[test]
    fn changes_are_saved_then_applied_to_the_shard_logs() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap();
        executor.run(async move {
            let overrides = Overrides {
                data_dir: Some(data_dir.clone()),
                cores: Some(1),
                listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            };
            let config = Rc::new(BrokerConfig::build(&overrides).unwrap());
            let mesh: MeshBuilder<Envelope, Full> = MeshBuilder::full(1, 4);
            let (senders, _receivers) = mesh.join().await.unwrap();
            let store = TopicStore::default();
            let shard = Shard::new(
                CONTROLLER_SHARD,
                config,
                Some(Controller::new(
                    store.clone(),
                    ProducerIds::load(&data_dir).unwrap(),
                )),
                Mesh::new(senders),
            );
            shard.apply_topics(store).await.unwrap();
            let controller = shard.controller();
            let meta = TopicMeta {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                partition_shards: vec![CONTROLLER_SHARD; 2],
                configs: BTreeMap::new(),
            };
            controller
                .change(&shard, |store| {
                    store.topics.insert("t".into(), meta.clone());
                    Ok(())
                })
                .await
                .unwrap();
            assert!(shard.log("t", 1).is_some());
            let configs = BTreeMap::from([("retention.ms".to_owned(), "1234".to_owned())]);
            controller
                .change(&shard, |store| {
                    store.topics.get_mut("t").unwrap().configs = configs.clone();
                    Ok(())
                })
                .await
                .unwrap();
            for partition in 0..2 {
                assert_eq!(
                    shard.log("t", partition).unwrap().config().retention_ms,
                    1234
                );
            }
            assert_eq!(
                TopicStore::load(&data_dir).unwrap().topics["t"].configs,
                configs
            );
            // A refused change leaves everything as it was.
            let refused = controller
                .change(&shard, |store| {
                    store.topics.clear();
                    Err::<(), _>(ChangeError::Refused(ErrorCode::InvalidRequest, "no".into()))
                })
                .await;
            assert!(matches!(refused, Err(ChangeError::Refused(..))));
            assert!(shard.log("t", 0).is_some());
            controller
                .change(&shard, |store| {
                    store.topics.remove("t");
                    Ok(())
                })
                .await
                .unwrap();
            assert!(shard.log("t", 0).is_none());
            assert!(!partition_dir(&data_dir, "t", 0).exists());
            assert!(TopicStore::load(&data_dir).unwrap().topics.is_empty());
            shard.close().await;
        });
    }
}
