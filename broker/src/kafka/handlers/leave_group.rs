//! LeaveGroup (key 13), v0-5: members leave (v3+: several at once, by
//! member id or `group.instance.id`).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The first version with a list of members.
const BATCH_VERSION: i16 = 3;

/// Answers a LeaveGroup request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = request.group_id.to_string();
    if group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(ErrorCode::InvalidGroupId.code());
    }
    let members: Vec<(String, Option<String>)> = if version >= BATCH_VERSION {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let asked = members.clone();
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        partition.leave(&id, &asked).await
    })
    .await;
    let results: Vec<ErrorCode> = match answer {
        Err(code) => return LeaveGroupResponse::default().with_error_code(code.code()),
        // An unknown group: every member is unknown.
        Ok(None) => vec![ErrorCode::UnknownMemberId; members.len()],
        Ok(Some(results)) => results.into_iter().map(ErrorCode::from).collect(),
    };
    if version < BATCH_VERSION {
        let code = results.first().copied().unwrap_or(ErrorCode::None);
        return LeaveGroupResponse::default().with_error_code(code.code());
    }
    LeaveGroupResponse::default().with_members(
        members
            .into_iter()
            .zip(results)
            .map(|((member_id, instance_id), code)| {
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_group_instance_id(instance_id.map(StrBytes::from_string))
                    .with_error_code(code.code())
            })
            .collect(),
    )
}
