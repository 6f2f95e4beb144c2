//! DescribeGroups (key 15), v0-5: a group's state, protocol and members
//! with their subscriptions and assignments. An unknown group is "Dead".

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::classic::GroupState;
use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// Kafka's "authorized operations not provided" value.
const OPERATIONS_NOT_PROVIDED: i32 = i32::MIN;
/// The group operations Kafka defines, as bits of their ACL codes: READ
/// (3), DELETE (6), DESCRIBE (8). With no authorizer all are allowed.
const GROUP_OPERATIONS: i32 = 1 << 3 | 1 << 6 | 1 << 8;

/// A described member: id, instance id, client id, host, metadata, assignment.
type Member = (
    String,
    Option<String>,
    String,
    String,
    bytes::Bytes,
    bytes::Bytes,
);

/// Answers a DescribeGroups request.
pub async fn handle(shard: &Rc<Shard>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let id = group_id.to_string();
        let asked = id.clone();
        let answer = on_coordinator(shard, &id, move |partition| async move {
            partition
                .with_group(&asked, |entry| {
                    if entry.kind_and_state().0 == "consumer" {
                        // Described by ConsumerGroupDescribe; here it is unknown, as in Kafka.
                        return None;
                    }
                    let group = &entry.group;
                    let stable = group.state() == GroupState::Stable;
                    let protocol = group.protocol().unwrap_or_default().to_owned();
                    let members: Vec<Member> = group
                        .members()
                        .map(|m| {
                            let metadata = if stable {
                                m.protocols
                                    .iter()
                                    .find(|p| p.name == protocol)
                                    .map(|p| p.metadata.clone())
                                    .unwrap_or_default()
                            } else {
                                bytes::Bytes::new()
                            };
                            (
                                m.id.clone(),
                                m.instance_id.clone(),
                                m.client_id.clone(),
                                m.client_host.clone(),
                                metadata,
                                m.assignment.clone(),
                            )
                        })
                        .collect();
                    Some((
                        group.state(),
                        group.protocol_type().unwrap_or_default().to_owned(),
                        if stable { protocol } else { String::new() },
                        members,
                    ))
                })
                .flatten()
        })
        .await;
        let described = DescribedGroup::default().with_group_id(group_id);
        groups.push(match answer {
            Err(code) => described.with_error_code(code.code()),
            Ok(None) => described
                .with_group_state(StrBytes::from_static_str(GroupState::Dead.name()))
                .with_authorized_operations(OPERATIONS_NOT_PROVIDED),
            Ok(Some((state, protocol_type, protocol, members))) => described
                .with_error_code(ErrorCode::None.code())
                .with_group_state(StrBytes::from_static_str(state.name()))
                .with_protocol_type(StrBytes::from_string(protocol_type))
                .with_protocol_data(StrBytes::from_string(protocol))
                .with_members(
                    members
                        .into_iter()
                        .map(|(id, instance, client, host, metadata, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(id))
                                .with_group_instance_id(instance.map(StrBytes::from_string))
                                .with_client_id(StrBytes::from_string(client))
                                .with_client_host(StrBytes::from_string(host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                )
                .with_authorized_operations(if request.include_authorized_operations {
                    GROUP_OPERATIONS
                } else {
                    OPERATIONS_NOT_PROVIDED
                }),
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
