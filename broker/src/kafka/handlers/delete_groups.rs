//! DeleteGroups (key 42), v0-2: deletes empty groups and their offsets.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::groups::coordinator::on_coordinator;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// Answers a DeleteGroups request.
pub async fn handle(shard: &Rc<Shard>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    let mut seen = std::collections::HashSet::new();
    for group_id in request.groups_names {
        let id = group_id.to_string();
        if !seen.insert(id.clone()) {
            continue;
        }
        let asked = id.clone();
        let code = on_coordinator(shard, &id, move |partition| async move {
            partition.delete_group(&asked).await
        })
        .await
        .and_then(|inner| inner)
        .err()
        .unwrap_or(ErrorCode::None);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(code.code()),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
