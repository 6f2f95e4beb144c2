//! OffsetDelete (key 47), v0: removes a group's commits for topics its
//! members do not consume.

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// Answers an OffsetDelete request.
pub async fn handle(shard: &Rc<Shard>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.to_string();
    if group_id.is_empty() {
        return OffsetDeleteResponse::default().with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let store = shard.topics();
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for topic in request.topics {
        let name = topic.name.to_string();
        let count = store.topics.get(&name).map(|m| m.partition_shards.len());
        let (good, bad): (Vec<i32>, Vec<i32>) = topic
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .partition(|p| count.is_some_and(|n| usize::try_from(*p).is_ok_and(|i| i < n)));
        if !good.is_empty() {
            known.push((name.clone(), good));
        }
        if !bad.is_empty() {
            unknown.push((name, bad));
        }
    }
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        partition.delete_offsets(&id, known).await
    })
    .await
    .and_then(|inner| inner);
    let mut answers = match answer {
        Ok(answers) => answers,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
    };
    answers.extend(unknown.into_iter().map(|(topic, partitions)| {
        let codes = partitions
            .into_iter()
            .map(|p| (p, ErrorCode::UnknownTopicOrPartition))
            .collect();
        (topic, codes)
    }));
    OffsetDeleteResponse::default().with_topics(
        answers
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, code)| {
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
