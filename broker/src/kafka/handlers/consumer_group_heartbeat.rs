//! ConsumerGroupHeartbeat (key 68), v0-1: the KIP-848 consumer group
//! protocol. Members join, heartbeat and leave through it, and the broker
//! assigns their partitions (v1: the client chooses its member id).

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::consumer::{Heartbeat, Partitions};
use crate::groups::coordinator::{on_coordinator, OFFSETS_TOPIC};
use crate::groups::partition::HeartbeatRefusal;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The first version in which the client generates its member id.
const CLIENT_MEMBER_ID_VERSION: i16 = 1;

/// Answers a ConsumerGroupHeartbeat request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: Option<String>,
    client_host: Rc<str>,
) -> ConsumerGroupHeartbeatResponse {
    let refuse = |code: ErrorCode, message: Option<String>| {
        tracing::debug!(?code, ?message, "ConsumerGroupHeartbeat refused");
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code.code())
            .with_error_message(message.map(StrBytes::from_string))
            .with_member_epoch(-1)
    };
    let group_id = request.group_id.to_string();
    if group_id.is_empty() {
        return refuse(
            ErrorCode::InvalidRequest,
            Some("GroupId can't be empty.".to_owned()),
        );
    }
    if version >= CLIENT_MEMBER_ID_VERSION && request.member_id.is_empty() {
        return refuse(
            ErrorCode::InvalidRequest,
            Some("MemberId can't be empty.".to_owned()),
        );
    }
    if request.member_epoch == 0
        && request
            .topic_partitions
            .as_ref()
            .is_some_and(|list| !list.is_empty())
    {
        // Checked on the request as sent: unknown topic ids count too.
        return refuse(
            ErrorCode::InvalidRequest,
            Some("TopicPartitions must be empty when (re-)joining.".to_owned()),
        );
    }
    let topics = shard.topics();
    let owned = request.topic_partitions.as_ref().map(|list| {
        let mut owned = Partitions::new();
        for tp in list {
            // Partitions of a topic deleted meanwhile are simply not owned.
            if let Some(meta) = topics.topics.values().find(|m| m.id == tp.topic_id) {
                owned
                    .entry(meta.name.clone())
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
        }
        owned
    });
    let heartbeat = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(ToString::to_string),
        rack_id: request.rack_id.as_ref().map(ToString::to_string),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(ToString::to_string),
        assignor: request.server_assignor.as_ref().map(ToString::to_string),
        owned,
        client_id: client_id.unwrap_or_default(),
        client_host: client_host.to_string(),
    };
    // Every shard holds the same topics snapshot.
    let counts = partition_counts(&topics);
    let ids = topics
        .topics
        .values()
        .map(|m| (m.name.clone(), m.id))
        .collect();
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        partition
            .consumer_heartbeat(&id, heartbeat, &counts, ids)
            .await
    })
    .await;
    let answer = match answer {
        Err(code) | Ok(Err(HeartbeatRefusal::Coordinator(code))) => return refuse(code, None),
        Ok(Err(HeartbeatRefusal::GroupIdNotFound)) => {
            return refuse(
                ErrorCode::GroupIdNotFound,
                Some(format!("Group {group_id} is a classic group in use.")),
            )
        }
        Ok(Err(HeartbeatRefusal::Group(e))) => {
            return refuse(ErrorCode::from(&e), Some(e.to_string()))
        }
        Ok(Ok(answer)) => answer,
    };
    let assignment = answer.assignment.map(|assigned| {
        Assignment::default().with_topic_partitions(
            assigned
                .into_iter()
                .filter_map(|(topic, partitions)| {
                    let id = topics.topics.get(&topic)?.id;
                    Some(
                        TopicPartitions::default()
                            .with_topic_id(id)
                            .with_partitions(partitions.into_iter().collect()),
                    )
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(shard.config.groups.consumer_heartbeat_interval_ms)
        .with_assignment(assignment)
}

/// Every topic's partition count, internal topics left out.
fn partition_counts(store: &crate::topics::TopicStore) -> BTreeMap<String, i32> {
    store
        .topics
        .values()
        .filter(|m| m.name != OFFSETS_TOPIC)
        .map(|m| (m.name.clone(), m.partition_shards.len() as i32))
        .collect()
}
