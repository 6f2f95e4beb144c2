//! OffsetFetch (key 9), v0-9: a group's committed offsets; from v8 for
//! several groups at once. A partition with no commit reads as offset -1.
//! From v7 a client may ask for stable offsets only: a partition with
//! offsets pending in a transaction then answers UNSTABLE_OFFSET_COMMIT,
//! and the client asks again once the transaction ended.

use std::collections::BTreeSet;
use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The first version asking for several groups.
const MULTI_GROUP_VERSION: i16 = 8;
/// The first version with a top-level error code.
const TOP_LEVEL_ERROR_VERSION: i16 = 2;
/// The first version with `require_stable`.
const REQUIRE_STABLE_VERSION: i16 = 7;

/// One committed offset as the response shows it.
struct Fetched {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    /// UNSTABLE_OFFSET_COMMIT for a partition a transaction holds.
    error: ErrorCode,
}

impl Fetched {
    /// A partition with no commit.
    fn none(partition: i32) -> Fetched {
        Fetched {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: ErrorCode::None,
        }
    }

    /// A partition whose offset a transaction may yet change: Kafka
    /// answers as if nothing were committed, with a retriable error.
    fn unstable(partition: i32) -> Fetched {
        Fetched {
            error: ErrorCode::UnstableOffsetCommit,
            ..Fetched::none(partition)
        }
    }
}

/// Topics and their partitions, or `None` for every committed partition.
type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// Answers an OffsetFetch request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    // Clients below v7 cannot ask; they see the last committed offsets.
    let require_stable = version >= REQUIRE_STABLE_VERSION && request.require_stable;
    if version >= MULTI_GROUP_VERSION {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let wanted = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let (code, topics) =
                fetch(shard, group.group_id.to_string(), wanted, require_stable).await;
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_error_code(code.code())
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(StrBytes::from_string(name)))
                                    .with_partitions(
                                        partitions
                                            .into_iter()
                                            .map(|f| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(f.partition)
                                                    .with_committed_offset(f.offset)
                                                    .with_committed_leader_epoch(f.leader_epoch)
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        f.metadata,
                                                    )))
                                                    .with_error_code(f.error.code())
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let (code, topics) = fetch(shard, request.group_id.to_string(), wanted, require_stable).await;
    // Below v2 a group error is told in every partition.
    let partition_code = if version < TOP_LEVEL_ERROR_VERSION {
        code
    } else {
        ErrorCode::None
    };
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|f| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_committed_leader_epoch(f.leader_epoch)
                                .with_metadata(Some(StrBytes::from_string(f.metadata)))
                                .with_error_code(if f.error == ErrorCode::None {
                                    partition_code.code()
                                } else {
                                    f.error.code()
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= TOP_LEVEL_ERROR_VERSION {
        response.with_error_code(code.code())
    } else {
        response
    }
}

/// One group's committed offsets, grouped by topic in request order (or
/// by name when every partition is asked for). With `require_stable`,
/// partitions with offsets pending in a transaction answer
/// UNSTABLE_OFFSET_COMMIT.
async fn fetch(
    shard: &Rc<Shard>,
    group_id: String,
    wanted: Wanted,
    require_stable: bool,
) -> (ErrorCode, Vec<(String, Vec<Fetched>)>) {
    let asked = wanted.clone();
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        let unstable = if require_stable {
            partition.pending_partitions(&id)
        } else {
            BTreeSet::new()
        };
        partition
            .with_group(&id, |entry| {
                let found = |topic: &str, p: i32| {
                    let key = (topic.to_owned(), p);
                    if unstable.contains(&key) {
                        return Fetched::unstable(p);
                    }
                    match entry.offsets.get(&key) {
                        Some(c) => Fetched {
                            partition: p,
                            offset: c.value.offset,
                            leader_epoch: c.value.leader_epoch,
                            metadata: c.value.metadata.clone(),
                            error: ErrorCode::None,
                        },
                        None => Fetched::none(p),
                    }
                };
                match &asked {
                    None => {
                        let mut topics: Vec<(String, Vec<Fetched>)> = Vec::new();
                        for (topic, p) in entry.offsets.keys() {
                            if topics.last().is_none_or(|(t, _)| t != topic) {
                                topics.push((topic.clone(), Vec::new()));
                            }
                            if let Some((_, list)) = topics.last_mut() {
                                list.push(found(topic, *p));
                            }
                        }
                        topics
                    }
                    Some(asked) => asked
                        .iter()
                        .map(|(topic, partitions)| {
                            (
                                topic.clone(),
                                partitions.iter().map(|p| found(topic, *p)).collect(),
                            )
                        })
                        .collect(),
                }
            })
            .unwrap_or_default()
    })
    .await;
    match answer {
        Ok(topics) if !topics.is_empty() || wanted.is_none() => (ErrorCode::None, topics),
        // An unknown group: no commits, so -1 for every partition asked for.
        Ok(_) => (ErrorCode::None, unknown(wanted)),
        Err(code) => (code, unknown(wanted)),
    }
}

/// Offset -1 for every partition asked for.
fn unknown(wanted: Wanted) -> Vec<(String, Vec<Fetched>)> {
    wanted
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partitions)| {
            let fetched = partitions.into_iter().map(Fetched::none).collect();
            (topic, fetched)
        })
        .collect()
}
