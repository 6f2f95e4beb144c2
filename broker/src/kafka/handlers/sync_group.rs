//! SyncGroup (key 14), v0-5: the leader hands out the assignment; every
//! member waits for its share.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The first version carrying protocol type and name.
const PROTOCOL_VERSION: i16 = 5;

/// Answers a SyncGroup request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.to_string();
    let refuse = |code: ErrorCode| SyncGroupResponse::default().with_error_code(code.code());
    if group_id.is_empty() {
        return refuse(ErrorCode::InvalidGroupId);
    }
    let (protocol_type, protocol) = (
        request.protocol_type.as_ref().map(ToString::to_string),
        request.protocol_name.as_ref().map(ToString::to_string),
    );
    if version >= PROTOCOL_VERSION && (protocol_type.is_none() || protocol.is_none()) {
        return refuse(ErrorCode::InconsistentGroupProtocol);
    }
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(ToString::to_string);
    let generation = request.generation_id;
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        let matches = partition
            .with_group(&id, |entry| {
                let group = &entry.group;
                protocol_type
                    .as_deref()
                    .is_none_or(|t| Some(t) == group.protocol_type())
                    && protocol
                        .as_deref()
                        .is_none_or(|p| Some(p) == group.protocol())
                    || !group.has_member(&member_id)
            })
            .unwrap_or(true);
        if !matches {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        let response = partition
            .sync(
                &id,
                &member_id,
                instance_id.as_deref(),
                generation,
                assignments,
            )
            .await;
        let names = partition
            .with_group(&id, |e| {
                (
                    e.group.protocol_type().map(str::to_owned),
                    e.group.protocol().map(str::to_owned),
                )
            })
            .unwrap_or_default();
        Ok((response, names))
    })
    .await;
    match answer.and_then(|inner| inner) {
        Err(code) => refuse(code),
        Ok((response, (protocol_type, protocol))) => {
            let mut out = SyncGroupResponse::default()
                .with_error_code(response.error.map_or(0, |e| ErrorCode::from(e).code()))
                .with_assignment(response.assignment);
            if version >= PROTOCOL_VERSION && response.error.is_none() {
                out = out
                    .with_protocol_type(protocol_type.map(StrBytes::from_string))
                    .with_protocol_name(protocol.map(StrBytes::from_string));
            }
            out
        }
    }
}
