//! FindCoordinator (key 10), v0-6: this broker coordinates every group and
//! every transactional id, on the shard owning its `__consumer_offsets` or
//! `__transaction_state` partition. The topic is created on the first
//! lookup.

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::offsets_topic;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::transaction_topic;

/// Key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// Key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;
/// The first version asking for several keys at once.
const BATCHED_VERSION: i16 = 4;

/// Answers a FindCoordinator request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let answer = match request.key_type {
        KEY_TYPE_GROUP => offsets_topic(shard)
            .await
            .map(|_| ())
            .map_err(|code| (code, "The coordinator is not available.".to_owned())),
        KEY_TYPE_TRANSACTION => transaction_topic(shard)
            .await
            .map(|_| ())
            .map_err(|code| (code, "The coordinator is not available.".to_owned())),
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unknown key type {other}"),
        )),
    };
    let node = BrokerId(shard.config.node_id);
    let host = StrBytes::from_string(shard.config.advertised_host.clone());
    let port = i32::from(shard.config.advertised_port);
    if version >= BATCHED_VERSION {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = Coordinator::default().with_key(key);
                match &answer {
                    Ok(()) => found
                        .with_node_id(node)
                        .with_host(host.clone())
                        .with_port(port),
                    Err((code, message)) => found
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message.clone()))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer {
        Ok(()) => FindCoordinatorResponse::default()
            .with_error_message(Some(StrBytes::from_static_str("NONE")))
            .with_node_id(node)
            .with_host(host)
            .with_port(port),
        Err((code, message)) => FindCoordinatorResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
