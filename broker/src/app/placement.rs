//! Start-up tidying of the topic store and data directory: partitions
//! recorded on shards that no longer exist (the broker restarted with fewer
//! `--cores`) are placed again, and partition directories that no topic
//! owns (a topic deleted while the broker crashed) are removed so that a
//! new topic of the same name starts empty.

use std::path::Path;

use crate::app::AppError;
use crate::topics::{partition_dir, ShardId, TopicStore};

/// Moves partitions whose shard is `>= shards` to the least-loaded shards.
/// Returns whether anything moved. A partition's data is in a directory of
/// its own, so moving it is only a change of owner.
pub fn fit_to_shards(store: &mut TopicStore, shards: usize) -> bool {
    let mut moved = false;
    let names: Vec<String> = store.topics.keys().cloned().collect();
    for name in names {
        let count = store.topics[&name].partition_shards.len();
        for partition in 0..count {
            if store.topics[&name].partition_shards[partition].0 < shards {
                continue;
            }
            // Count the orphan as placed nowhere while choosing.
            store
                .topics
                .get_mut(&name)
                .expect("names come from the map")
                .partition_shards[partition] = ShardId(usize::MAX);
            let new = store.place(1, shards)[0];
            store
                .topics
                .get_mut(&name)
                .expect("names come from the map")
                .partition_shards[partition] = new;
            moved = true;
        }
    }
    moved
}

/// Removes every `<topic>-<partition>` directory in `data_dir` that is not
/// a partition of a topic in `store`.
pub fn remove_orphans(data_dir: &Path, store: &TopicStore) -> Result<(), AppError> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AppError::DataDir { path, source }
    };
    for entry in std::fs::read_dir(data_dir).map_err(error(data_dir))? {
        let entry = entry.map_err(error(data_dir))?;
        if !entry.file_type().map_err(error(&entry.path()))?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some((topic, partition)) = name.to_str().and_then(split_partition_dir) else {
            continue;
        };
        let owned = store.topics.get(topic).is_some_and(|t| {
            usize::try_from(partition).is_ok_and(|p| p < t.partition_shards.len())
        });
        if !owned {
            let path = partition_dir(data_dir, topic, partition);
            tracing::warn!(dir = %path.display(), "removing a partition directory no topic owns (a topic deleted before a crash)");
            std::fs::remove_dir_all(&path).map_err(error(&path))?;
        }
    }
    Ok(())
}

/// `orders-3` → (`orders`, 3); `None` for names that are not partition
/// directories.
fn split_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::TopicMeta;
    use std::collections::BTreeMap;

    fn topic(name: &str, shards: &[usize]) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partition_shards: shards.iter().map(|s| ShardId(*s)).collect(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn partitions_on_missing_shards_are_placed_again_evenly() {
        let mut store = TopicStore::default();
        store.topics.insert("a".into(), topic("a", &[0, 1, 2, 3]));
        assert!(!fit_to_shards(&mut store, 4));
        assert!(fit_to_shards(&mut store, 2));
        let shards: Vec<usize> = store.topics["a"]
            .partition_shards
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(shards, vec![0, 1, 0, 1]);
    }

    #[test]
    fn only_directories_no_topic_owns_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TopicStore::default();
        store
            .topics
            .insert("my-topic".into(), topic("my-topic", &[0, 0]));
        for name in [
            "my-topic-0",
            "my-topic-1",
            "my-topic-2",
            "gone-0",
            "not_a_partition",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("other-7"), b"a file, not a partition").unwrap();
        remove_orphans(dir.path(), &store).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["my-topic-0", "my-topic-1", "not_a_partition", "other-7"]
        );
    }

    #[test]
    fn partition_directory_names_split_at_the_last_dash() {
        assert_eq!(split_partition_dir("a-b-12"), Some(("a-b", 12)));
        assert_eq!(split_partition_dir("a-"), None);
        assert_eq!(split_partition_dir("-1"), None);
        assert_eq!(split_partition_dir("a-1x"), None);
    }
}
