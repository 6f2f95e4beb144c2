//! CreatePartitions (key 37), v0-3: raises a topic's partition count; the
//! new partitions are placed on this node's shards; validate-only checks
//! without changing anything. Runs on the controller shard.

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::ChangeError;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::MAX_PARTITIONS;
use crate::shard::Shard;

/// Answers a CreatePartitions request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    let mut answered_duplicates = HashSet::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        // As Kafka: a name given twice gets one INVALID_REQUEST answer and
        // is not acted on.
        let outcome = if duplicates.contains(&name) {
            if !answered_duplicates.insert(name) {
                continue;
            }
            Err((
                ErrorCode::InvalidRequest,
                "Duplicate topic name.".to_owned(),
            ))
        } else {
            create(shard, &name, &topic, request.validate_only).await
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn create(
    shard: &Rc<Shard>,
    name: &str,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    let Some(current) = shard
        .controller()
        .store()
        .topics
        .get(name)
        .map(|t| t.partition_shards.len() as i32)
    else {
        return Err((
            ErrorCode::UnknownTopicOrPartition,
            format!("Unable to locate topic {name}"),
        ));
    };
    let count = topic.count;
    if count < current {
        return Err((
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {count} would not be an increase."
            ),
        ));
    }
    if count == current {
        return Err((
            ErrorCode::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if count > MAX_PARTITIONS {
        return Err((
            ErrorCode::InvalidPartitions,
            format!("Number of partitions must be between 1 and {MAX_PARTITIONS}: {count}"),
        ));
    }
    if let Some(assignments) = &topic.assignments {
        let added = count - current;
        if assignments.len() as i32 != added {
            return Err((
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                    assignments.len()
                ),
            ));
        }
        let node = shard.config.node_id;
        for assignment in assignments {
            if assignment.broker_ids.len() != 1 {
                return Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have 1 replica(s).",
                        assignment.broker_ids.len()
                    ),
                ));
            }
            if let Some(broker) = assignment.broker_ids.iter().find(|b| b.0 != node) {
                return Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes broker {}, but no such broker is registered.",
                        broker.0
                    ),
                ));
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    let shards = shard.shards();
    shard
        .controller()
        .change(shard, |store| {
            let added = store.place((count - current) as usize, shards);
            let meta = store.topics.get_mut(name).ok_or_else(|| {
                ChangeError::Refused(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("Unable to locate topic {name}"),
                )
            })?;
            // Another request may have changed the count since the checks.
            if meta.partition_shards.len() != current as usize {
                return Err(ChangeError::Refused(
                    ErrorCode::InvalidPartitions,
                    format!("The partition count of {name} changed during the request; retry."),
                ));
            }
            meta.partition_shards.extend(added);
            Ok(())
        })
        .await
        .map_err(ChangeError::into_kafka)?;
    tracing::info!(topic = name, from = current, to = count, "added partitions");
    Ok(())
}
