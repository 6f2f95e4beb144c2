//! DescribeLogDirs (key 35), v1-4: the one log directory (the data
//! directory) with the size of each partition of every shard; offset lag 0 and no future
//! replicas; total and usable bytes of its file system from v4.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::shard::Shard;
use crate::topics::ShardId;

/// The first version with total and usable bytes per directory.
const SPACE_VERSION: i16 = 4;

/// Answers a DescribeLogDirs request, with the partitions of every shard.
pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    // None: every partition.
    let wanted: Option<HashSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (topic, partition, size) in all_partition_sizes(shard).await {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(&(topic.clone(), partition)))
        {
            continue;
        }
        by_topic.entry(topic).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition)
                .with_partition_size(size)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    let dir = std::path::absolute(&shard.config.data_dir)
        .unwrap_or_else(|_| shard.config.data_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if version >= SPACE_VERSION {
        if let Some((total, usable)) = space(&dir) {
            result = result.with_total_bytes(total).with_usable_bytes(usable);
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Every partition of every shard with its size in bytes.
async fn all_partition_sizes(shard: &Rc<Shard>) -> Vec<(String, i32, i64)> {
    let calls = (0..shard.shards()).map(|index| {
        shard.call(ShardId(index), |s| async move {
            s.logs()
                .into_iter()
                .map(|((topic, partition), log)| (topic, partition, log.size_bytes() as i64))
                .collect::<Vec<_>>()
        })
    });
    let mut sizes: Vec<(String, i32, i64)> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        // A stopped shard (shutdown) has nothing to report.
        .flat_map(Result::unwrap_or_default)
        .collect();
    sizes.sort();
    sizes
}

/// Total and usable bytes of the file system holding `dir` (statvfs), as
/// Java's FileStore getTotalSpace / getUsableSpace.
fn space(dir: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to
    // writable memory of the right size; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    let fragment = stat.f_frsize as u128;
    let clamp = |blocks: u128| i64::try_from(blocks * fragment).unwrap_or(i64::MAX);
    Some((clamp(stat.f_blocks as u128), clamp(stat.f_bavail as u128)))
}
