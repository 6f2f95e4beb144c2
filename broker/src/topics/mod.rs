//! The topics this broker hosts: names, ids, partition counts and their
//! shard placement, and per-topic config overrides, persisted in the data
//! directory so a restart keeps every topic.
//!
//! Written only by shard 0 (the controller's shard); other shards get
//! immutable snapshots. Until the Raft controller lands, the store is a
//! JSON file replaced atomically.

pub mod configs;
pub mod internal;
pub mod name;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A shard's index within this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub usize);

/// One topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Its name.
    pub name: String,
    /// Its id (Kafka topic ids are UUIDs).
    pub id: Uuid,
    /// The owning shard of each partition, by partition index.
    pub partition_shards: Vec<ShardId>,
    /// Topic-level config overrides (`retention.ms` = ...).
    pub configs: BTreeMap<String, String>,
}

/// Everything persisted about topics, plus the cluster id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicStore {
    /// The cluster's id, made once.
    pub cluster_id: String,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// Dynamic broker configs (Kafka's broker-level names, `log.retention.ms`)
    /// by BROKER resource name: a node id, or "" for the cluster default.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
}

/// The BROKER resource name of the cluster-wide dynamic default.
pub const CLUSTER_DEFAULT: &str = "";

impl TopicStore {
    /// The topic-level overrides in force for `topic` on broker `node`, in
    /// topic-config names, lowest precedence first: the dynamic cluster
    /// default, this broker's dynamic configs, the topic's own overrides.
    pub fn effective_overrides(
        &self,
        node: i32,
        topic: Option<&TopicMeta>,
    ) -> BTreeMap<String, String> {
        let mut merged = BTreeMap::new();
        for layer in [CLUSTER_DEFAULT.to_owned(), node.to_string()] {
            for (broker_name, value) in self.broker_configs.get(&layer).into_iter().flatten() {
                if let Some(def) = configs::find_broker(broker_name) {
                    merged.insert(def.name.to_owned(), value.clone());
                }
            }
        }
        if let Some(topic) = topic {
            merged.extend(topic.configs.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        merged
    }

    /// The override in force for one config of `topic` on broker `node`,
    /// by the same precedence as [`TopicStore::effective_overrides`] but
    /// without building the whole set (the produce path asks per partition).
    pub fn override_of<'a>(
        &'a self,
        node: i32,
        topic: &'a TopicMeta,
        name: &str,
    ) -> Option<&'a str> {
        if let Some(value) = topic.configs.get(name) {
            return Some(value);
        }
        let broker_name = configs::find(name)?.broker_name?;
        let layer = |wanted: &dyn Fn(&str) -> bool| {
            self.broker_configs
                .iter()
                .find(|(resource, _)| wanted(resource))
                .and_then(|(_, layer)| layer.get(broker_name))
                .map(String::as_str)
        };
        layer(&|resource| resource.parse::<i32>() == Ok(node))
            .or_else(|| layer(&|resource| resource == CLUSTER_DEFAULT))
    }
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File I/O failed.
    #[error("topic metadata {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("topic metadata {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl TopicStore {
    /// The store's file in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("topics.json")
    }

    /// Loads the store, or starts an empty one with a new cluster id.
    pub fn load(data_dir: &Path) -> Result<TopicStore, StoreError> {
        let path = TopicStore::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Damaged {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TopicStore {
                cluster_id: cluster_id(Uuid::new_v4()),
                ..TopicStore::default()
            }),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Writes the store durably: a temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, data_dir: &Path) -> Result<(), StoreError> {
        let path = TopicStore::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }

    /// Places `partitions` new partitions on the least-loaded shards.
    pub fn place(&self, partitions: usize, shards: usize) -> Vec<ShardId> {
        let mut load = vec![0usize; shards.max(1)];
        for topic in self.topics.values() {
            for shard in &topic.partition_shards {
                if let Some(count) = load.get_mut(shard.0) {
                    *count += 1;
                }
            }
        }
        (0..partitions)
            .map(|_| {
                let (index, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, count)| (**count, *i))
                    .expect("at least one shard");
                load[index] += 1;
                ShardId(index)
            })
            .collect()
    }
}

/// Kafka cluster ids are 16 bytes in URL-safe base64 without padding.
fn cluster_id(uuid: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in uuid.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
        }
    }
    out
}

/// The directory of one partition, Kafka's `<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_balances_by_count_and_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TopicStore::load(dir.path()).unwrap();
        assert_eq!(store.cluster_id.len(), 22);
        let shards = store.place(5, 2);
        assert_eq!(shards.iter().filter(|s| s.0 == 0).count(), 3);
        store.topics.insert(
            "a".into(),
            TopicMeta {
                name: "a".into(),
                id: Uuid::new_v4(),
                partition_shards: shards,
                configs: BTreeMap::new(),
            },
        );
        // The next topic starts on the emptier shard.
        assert_eq!(store.place(1, 2), vec![ShardId(1)]);
        store.save(dir.path()).unwrap();
        assert_eq!(TopicStore::load(dir.path()).unwrap(), store);
    }
}
