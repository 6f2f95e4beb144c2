//! DescribeProducers (key 61), v0: each partition's active idempotent and
//! transactional producers, from its owning shard's producer state.

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::kafka::errors::ErrorCode;
use crate::shard::scatter::{regroup, scatter_or};
use crate::shard::Shard;

/// Answers a DescribeProducers request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut items = Vec::new();
    let mut indexes = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        topics.push((topic.name, topic.partition_indexes.len()));
        for index in topic.partition_indexes {
            indexes.push(index);
            items.push(match shard.owner(&name, index) {
                Some(owner) => Ok((owner, (name.clone(), index))),
                None => Err(failed(index, ErrorCode::UnknownTopicOrPartition)),
            });
        }
    }
    let answers = scatter_or(
        shard,
        items,
        |owner, partitions| async move {
            partitions
                .into_iter()
                .map(|(topic, index)| match owner.log(&topic, index) {
                    None => failed(index, ErrorCode::UnknownTopicOrPartition),
                    Some(log) => PartitionResponse::default()
                        .with_partition_index(index)
                        .with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp_ms)
                                        .with_coordinator_epoch(p.coordinator_epoch)
                                        .with_current_txn_start_offset(p.txn_start_offset)
                                })
                                .collect(),
                        ),
                })
                .collect()
        },
        |position, e| failed(indexes[position], ErrorCode::from(e)),
    )
    .await;
    let topics = regroup(topics, answers)
        .into_iter()
        .map(|(name, partitions)| {
            TopicResponse::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn failed(index: i32, code: ErrorCode) -> PartitionResponse {
    PartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(code.code())
}
