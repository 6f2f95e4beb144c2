//! JoinGroup (key 11), v0-9: joins a classic group and waits for the
//! rebalance to complete (KIP-394 member ids from v4, static members from v5).

use std::rc::Rc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::classic::{self, Protocol};
use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// The first version that requires a member id from the coordinator (KIP-394).
const KNOWN_MEMBER_ID_VERSION: i16 = 4;
/// The first version with nullable protocol type and name.
const NULLABLE_PROTOCOL_VERSION: i16 = 7;

/// Answers a JoinGroup request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: Option<String>,
    client_host: Rc<str>,
) -> JoinGroupResponse {
    let group_id = request.group_id.to_string();
    let refuse = |code: ErrorCode| {
        JoinGroupResponse::default()
            .with_error_code(code.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id.clone())
            .with_protocol_name(nullable_protocol(None, version))
    };
    if group_id.is_empty() {
        return refuse(ErrorCode::InvalidGroupId);
    }
    let join = classic::JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        client_id: client_id.unwrap_or_default(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        requires_known_member_id: version >= KNOWN_MEMBER_ID_VERSION,
    };
    let id = group_id.clone();
    let answer = on_coordinator(shard, &group_id, move |partition| async move {
        partition.join(&id, join).await
    })
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(code) => return refuse(code),
    };
    JoinGroupResponse::default()
        .with_error_code(response.error.map_or(0, |e| ErrorCode::from(e).code()))
        .with_generation_id(response.generation)
        .with_protocol_type(if version >= NULLABLE_PROTOCOL_VERSION {
            response.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(nullable_protocol(response.protocol, version))
        .with_leader(StrBytes::from_string(response.leader))
        .with_member_id(StrBytes::from_string(response.member_id))
        .with_members(
            response
                .members
                .into_iter()
                .map(|(member_id, instance_id, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(member_id))
                        .with_group_instance_id(instance_id.map(StrBytes::from_string))
                        .with_metadata(metadata)
                })
                .collect(),
        )
}

/// Below v7 the protocol name is never null (`""` instead); from v7 an
/// empty one is sent as null.
fn nullable_protocol(protocol: Option<String>, version: i16) -> Option<StrBytes> {
    let protocol = protocol.filter(|p| !p.is_empty());
    if version >= NULLABLE_PROTOCOL_VERSION {
        protocol.map(StrBytes::from_string)
    } else {
        Some(StrBytes::from_string(protocol.unwrap_or_default()))
    }
}
