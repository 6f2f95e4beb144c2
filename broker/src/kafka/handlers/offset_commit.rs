//! OffsetCommit (key 8), v0-9: stores a group's consumed positions in
//! `__consumer_offsets`, durably, after checking the member's generation.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::groups::coordinator::on_coordinator;
use crate::groups::partition::{now_ms, CommitEntry};
use crate::groups::records::OffsetValue;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// One partition of an OffsetCommit or TxnOffsetCommit request.
pub(crate) struct PartitionCommit {
    /// Partition index.
    pub index: i32,
    /// The offset to commit.
    pub offset: i64,
    /// Its leader epoch (-1: unknown).
    pub leader_epoch: i32,
    /// Its metadata.
    pub metadata: Option<String>,
}

/// Per partition of `topics`, in request order: an error decided before the
/// coordinator is asked (an unknown partition) or the partition's place
/// among the entries for the coordinator; and those entries.
pub(crate) fn route_commits(
    shard: &Shard,
    topics: impl Iterator<Item = (String, Vec<PartitionCommit>)>,
    now: i64,
    expire: Option<i64>,
) -> (Vec<Vec<Result<usize, ErrorCode>>>, Vec<CommitEntry>) {
    let store = shard.topics();
    let mut verdicts = Vec::new();
    let mut entries = Vec::new();
    for (name, partitions) in topics {
        let count = store.topics.get(&name).map(|m| m.partition_shards.len());
        let mut verdict = Vec::with_capacity(partitions.len());
        for p in partitions {
            let known = count.is_some_and(|n| usize::try_from(p.index).is_ok_and(|i| i < n));
            if !known {
                verdict.push(Err(ErrorCode::UnknownTopicOrPartition));
                continue;
            }
            verdict.push(Ok(entries.len()));
            entries.push(CommitEntry {
                topic: name.clone(),
                partition: p.index,
                value: OffsetValue {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.unwrap_or_default(),
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: expire,
                },
            });
        }
        verdicts.push(verdict);
    }
    (verdicts, entries)
}

/// Versions with a retention time of their own (v2-4).
const RETENTION_VERSIONS: std::ops::RangeInclusive<i16> = 2..=4;

/// Answers an OffsetCommit request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = request.group_id.to_string();
    let now = now_ms();
    let expire = (RETENTION_VERSIONS.contains(&version) && request.retention_time_ms >= 0)
        .then(|| now.saturating_add(request.retention_time_ms));
    let (verdicts, entries) = route_commits(
        shard,
        request.topics.iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|p| PartitionCommit {
                index: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(ToString::to_string),
            });
            (topic.name.to_string(), partitions.collect())
        }),
        now,
        expire,
    );
    let outcome: Result<Vec<Result<(), ErrorCode>>, ErrorCode> =
        if group_id.is_empty() && version == 0 {
            Err(ErrorCode::InvalidGroupId)
        } else if entries.is_empty() {
            Ok(Vec::new())
        } else {
            // v0 has no generation: a commit from outside the group.
            let generation = if version >= 1 {
                request.generation_id_or_member_epoch
            } else {
                -1
            };
            let member_id = request.member_id.to_string();
            let instance_id = request.group_instance_id.as_ref().map(ToString::to_string);
            let id = group_id.clone();
            on_coordinator(shard, &group_id, move |partition| async move {
                partition
                    .commit(&id, &member_id, instance_id.as_deref(), generation, entries)
                    .await
            })
            .await
            .and_then(|inner| inner)
        };
    let topics = request
        .topics
        .into_iter()
        .zip(verdicts)
        .map(|(topic, verdict)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(verdict)
                .map(|(p, verdict)| {
                    let code = match (verdict, &outcome) {
                        (Err(code), _) => code,
                        (Ok(_), Err(code)) => *code,
                        (Ok(i), Ok(results)) => results
                            .get(i)
                            .copied()
                            .unwrap_or(Ok(()))
                            .err()
                            .unwrap_or(ErrorCode::None),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
