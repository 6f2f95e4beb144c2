//! ConsumerGroupDescribe (key 69), v0-1: a KIP-848 group's epochs,
//! assignor, and each member's subscription, assignment and target.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::groups::consumer::Partitions;
use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::TopicStore;

/// Kafka's "authorized operations not provided" value.
const OPERATIONS_NOT_PROVIDED: i32 = i32::MIN;
/// READ (3), DELETE (6), DESCRIBE (8): all allowed without an authorizer.
const GROUP_OPERATIONS: i32 = 1 << 3 | 1 << 6 | 1 << 8;
/// Member type: a member of the consumer protocol (not a classic one).
const CONSUMER_MEMBER: i8 = 1;

/// A described member, ready to be sent between shards.
type Described = (
    String,
    Option<String>,
    Option<String>,
    i32,
    String,
    String,
    Vec<String>,
    Option<String>,
    Partitions,
    Partitions,
);

/// Answers a ConsumerGroupDescribe request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = shard.topics();
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
        let id = group_id.to_string();
        let described = DescribedGroup::default().with_group_id(group_id.clone());
        if id.is_empty() {
            groups.push(described.with_error_code(ErrorCode::InvalidGroupId.code()));
            continue;
        }
        let asked = id.clone();
        let answer = on_coordinator(shard, &id, move |partition| async move {
            partition
                .with_group(&asked, |entry| {
                    let consumer = entry.consumer.as_ref()?;
                    let members: Vec<Described> = consumer
                        .members()
                        .map(|m| {
                            (
                                m.id.clone(),
                                m.instance_id.clone(),
                                m.rack_id.clone(),
                                m.epoch,
                                m.client_id.clone(),
                                m.client_host.clone(),
                                m.subscribed_names.iter().cloned().collect(),
                                m.subscribed_regex.clone(),
                                m.assigned.clone(),
                                consumer.target.get(&m.id).cloned().unwrap_or_default(),
                            )
                        })
                        .collect();
                    Some((
                        consumer.state_name(),
                        consumer.group_epoch,
                        consumer.assignment_epoch,
                        consumer.assignor().name(),
                        members,
                    ))
                })
                .flatten()
        })
        .await;
        groups.push(match answer {
            Err(code) => described.with_error_code(code.code()),
            Ok(None) => described
                .with_error_code(ErrorCode::GroupIdNotFound.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Group {id} not found."
                )))),
            Ok(Some((state, group_epoch, assignment_epoch, assignor, members))) => described
                .with_group_state(StrBytes::from_static_str(state))
                .with_group_epoch(group_epoch)
                .with_assignment_epoch(assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str(assignor))
                .with_members(
                    members
                        .into_iter()
                        .map(
                            |(
                                id,
                                instance,
                                rack,
                                epoch,
                                client,
                                host,
                                subscribed,
                                pattern,
                                assigned,
                                target,
                            )| {
                                Member::default()
                                    .with_member_id(StrBytes::from_string(id))
                                    .with_instance_id(instance.map(StrBytes::from_string))
                                    .with_rack_id(rack.map(StrBytes::from_string))
                                    .with_member_epoch(epoch)
                                    .with_client_id(StrBytes::from_string(client))
                                    .with_client_host(StrBytes::from_string(host))
                                    .with_subscribed_topic_names(
                                        subscribed
                                            .into_iter()
                                            .map(|t| TopicName(StrBytes::from_string(t)))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(pattern.map(StrBytes::from_string))
                                    .with_assignment(assignment(&topics, assigned))
                                    .with_target_assignment(assignment(&topics, target))
                                    .with_member_type(CONSUMER_MEMBER)
                            },
                        )
                        .collect(),
                )
                .with_authorized_operations(if request.include_authorized_operations {
                    GROUP_OPERATIONS
                } else {
                    OPERATIONS_NOT_PROVIDED
                }),
        });
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

/// Partitions by topic id and name.
fn assignment(topics: &TopicStore, partitions: Partitions) -> Assignment {
    Assignment::default().with_topic_partitions(
        partitions
            .into_iter()
            .filter_map(|(topic, p)| {
                let meta = topics.topics.get(&topic)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(meta.id)
                        .with_topic_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(p.into_iter().collect()),
                )
            })
            .collect(),
    )
}
