//! DescribeTopicPartitions (key 75), v0 (KIP-966, Kafka 3.8+): topics and
//! their partitions with leader, replicas and ISR, paged: at most
//! `response_partition_limit` partitions (capped at Kafka's default 2000)
//! per response, in topic-name order, continuing from a cursor.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_topic_partitions_request::Cursor as RequestCursor;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::TopicMeta;

/// Kafka's `max.request.partition.size.limit` default.
const MAX_PARTITIONS_PER_RESPONSE: usize = 2000;
/// "Authorized operations not provided".
const OPERATIONS_NOT_PROVIDED: i32 = i32::MIN;

/// Answers a DescribeTopicPartitions request.
pub fn handle(
    shard: &Shard,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let snapshot = shard.topics();
    let node = BrokerId(shard.config.node_id);
    // No names: every topic.
    let wanted: Option<Vec<String>> = (!request.topics.is_empty()).then(|| {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    });
    if let Some(message) = bad_cursor(request.cursor.as_ref(), wanted.as_deref()) {
        tracing::debug!(message, "DescribeTopicPartitions refused");
        let topics = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|name| error_topic(name, ErrorCode::InvalidRequest))
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }
    // In name order, as Kafka pages them.
    let names: BTreeMap<String, Option<&TopicMeta>> = match &wanted {
        Some(names) => names
            .iter()
            .map(|n| (n.clone(), snapshot.topics.get(n)))
            .collect(),
        None => snapshot
            .topics
            .iter()
            .map(|(n, meta)| (n.clone(), Some(meta)))
            .collect(),
    };
    let (start_topic, start_partition) = request.cursor.as_ref().map_or((String::new(), 0), |c| {
        (c.topic_name.0.to_string(), c.partition_index)
    });
    let mut budget = usize::try_from(request.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for (name, meta) in names.range(start_topic.clone()..) {
        let Some(meta) = meta else {
            topics.push(error_topic(
                name.clone(),
                ErrorCode::UnknownTopicOrPartition,
            ));
            continue;
        };
        if budget == 0 {
            next_cursor = Some(cursor(name, 0));
            break;
        }
        let first = if *name == start_topic {
            start_partition
        } else {
            0
        };
        let count = meta.partition_shards.len() as i32;
        let last = first
            .saturating_add(i32::try_from(budget).unwrap_or(i32::MAX))
            .min(count)
            .max(first);
        let partitions = (first..last)
            .map(|index| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect::<Vec<_>>();
        budget -= partitions.len();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(meta.id)
                .with_is_internal(name.starts_with("__"))
                .with_partitions(partitions)
                .with_topic_authorized_operations(OPERATIONS_NOT_PROVIDED),
        );
        if last < count {
            next_cursor = Some(cursor(name, last));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// Why a cursor is refused, as Kafka words it.
fn bad_cursor(cursor: Option<&RequestCursor>, wanted: Option<&[String]>) -> Option<String> {
    let cursor = cursor?;
    let topic = cursor.topic_name.0.to_string();
    if wanted.is_some_and(|names| !names.contains(&topic)) {
        return Some(format!(
            "DescribeTopicPartitionsRequest topic list should contain the cursor topic: {topic}"
        ));
    }
    (cursor.partition_index < 0).then(|| {
        format!(
            "DescribeTopicPartitionsRequest cursor partition must be valid: {}",
            cursor.partition_index
        )
    })
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_index(partition)
}

fn error_topic(name: String, code: ErrorCode) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code.code())
        .with_name(Some(TopicName(StrBytes::from_string(name))))
        .with_topic_authorized_operations(OPERATIONS_NOT_PROVIDED)
}
