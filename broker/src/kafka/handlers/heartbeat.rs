//! Heartbeat (key 12), v0-4: keeps a member's session alive and tells it
//! when to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// Answers a Heartbeat request.
pub async fn handle(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.to_string();
    let code = if group_id.is_empty() {
        ErrorCode::InvalidGroupId
    } else {
        let member_id = request.member_id.to_string();
        let instance_id = request.group_instance_id.as_ref().map(ToString::to_string);
        let generation = request.generation_id;
        let id = group_id.clone();
        let answer = on_coordinator(shard, &group_id, move |partition| async move {
            partition.heartbeat(&id, &member_id, instance_id.as_deref(), generation)
        })
        .await;
        match answer {
            Ok(Ok(())) => ErrorCode::None,
            Ok(Err(e)) => ErrorCode::from(e),
            Err(code) => code,
        }
    };
    HeartbeatResponse::default().with_error_code(code.code())
}
