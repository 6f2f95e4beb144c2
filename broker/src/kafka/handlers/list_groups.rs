//! ListGroups (key 16), v0-5: every group of every shard, filtered by
//! state (v4+) and type (v5+: "classic" or "consumer").

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::groups::coordinator::on_every_partition;
use crate::shard::Shard;

/// Answers a ListGroups request.
pub async fn handle(shard: &Rc<Shard>, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|t| t.trim().to_lowercase())
        .collect();
    let listed = on_every_partition(shard, |partition| async move { partition.list() }).await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(code) => return ListGroupsResponse::default().with_error_code(code.code()),
    };
    let groups = listed
        .into_iter()
        .flatten()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.kind))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(StrBytes::from_static_str(g.state))
                .with_group_type(StrBytes::from_static_str(g.kind))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
