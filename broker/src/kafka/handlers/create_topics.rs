//! CreateTopics (key 19), v2-7: partitions, replication factor 1 (one
//! node), configs, validate-only; and the auto-creation used by Metadata
//! and Produce. Runs on the controller shard.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::LogConfig;
use uuid::Uuid;

use crate::controller::ChangeError;
use crate::kafka::errors::ErrorCode;
use crate::shard::{Shard, CONTROLLER_SHARD};
use crate::topics::{configs, name, TopicMeta};

/// The most partitions one topic may have on this broker.
pub const MAX_PARTITIONS: i32 = 10_000;

/// Answers a CreateTopics request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let mut seen = std::collections::HashSet::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        if !seen.insert(name.clone()) {
            results.push(
                result
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(msg("Duplicate topic name in the request"))),
            );
            continue;
        }
        match create(shard, &name, &topic, request.validate_only).await {
            // Partition count and replication factor are in the response
            // from v5, the topic id from v7.
            Ok(meta) => {
                if version >= 5 {
                    result = result
                        .with_num_partitions(meta.partition_shards.len() as i32)
                        .with_replication_factor(1);
                }
                if version >= 7 {
                    result = result.with_topic_id(meta.id);
                }
            }
            Err((code, message)) => {
                result = result
                    .with_error_code(code.code())
                    .with_error_message(Some(msg(&message)));
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn msg(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

async fn create(
    shard: &Rc<Shard>,
    name: &str,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<TopicMeta, (ErrorCode, String)> {
    name::validate(name).map_err(|m| (ErrorCode::InvalidTopicException, m))?;
    if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err((ErrorCode::InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".to_owned()));
        }
        let node = shard.config.node_id;
        if topic
            .assignments
            .iter()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1)
        {
            return Err((
                ErrorCode::InvalidReplicationFactor,
                format!("Replica assignments must name exactly this broker ({node})"),
            ));
        }
    }
    let partitions = match (topic.num_partitions, topic.assignments.len()) {
        (-1, 0) => shard.config.topic_defaults.num_partitions,
        (-1, n) => n as i32,
        (n, _) => n,
    };
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err((
            ErrorCode::InvalidPartitions,
            format!("Number of partitions must be between 1 and {MAX_PARTITIONS}: {partitions}"),
        ));
    }
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err((
            ErrorCode::InvalidReplicationFactor,
            format!(
                "Replication factor: {} larger than available brokers: 1.",
                topic.replication_factor
            ),
        ));
    }
    let mut overrides = BTreeMap::new();
    let mut check = LogConfig::default();
    for config in &topic.configs {
        let key = config.name.to_string();
        let Some(value) = config.value.as_ref().map(ToString::to_string) else {
            return Err((
                ErrorCode::InvalidConfig,
                format!("Null value not supported for topic configs: {key}"),
            ));
        };
        configs::apply(&mut check, &key, &value).map_err(|m| (ErrorCode::InvalidConfig, m))?;
        overrides.insert(key, value);
    }
    let shards = shard.shards();
    let meta = shard
        .controller()
        .change(shard, |store| {
            if store.topics.contains_key(name) {
                return Err(ChangeError::Refused(
                    ErrorCode::TopicAlreadyExists,
                    format!("Topic '{name}' already exists."),
                ));
            }
            let meta = TopicMeta {
                name: name.to_owned(),
                id: Uuid::new_v4(),
                partition_shards: store.place(partitions as usize, shards),
                configs: overrides,
            };
            if !validate_only {
                store.topics.insert(name.to_owned(), meta.clone());
            }
            Ok(meta)
        })
        .await
        .map_err(ChangeError::into_kafka)?;
    if !validate_only {
        tracing::info!(topic = name, partitions, "created topic");
    }
    Ok(meta)
}

/// Creates `name` with the broker's defaults (auto-creation) on the
/// controller shard, or says why not. A topic that exists by then is fine.
pub async fn auto_create(shard: &Rc<Shard>, name: &str) -> Result<TopicMeta, ErrorCode> {
    if let Some(meta) = shard.topics().topics.get(name) {
        return Ok(meta.clone());
    }
    let name = name.to_owned();
    shard
        .call(CONTROLLER_SHARD, move |controller| async move {
            let topic = CreatableTopic::default()
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            match create(&controller, &name, &topic, false).await {
                Err((ErrorCode::TopicAlreadyExists, _)) => controller
                    .controller()
                    .store()
                    .topics
                    .get(&name)
                    .cloned()
                    .ok_or(ErrorCode::UnknownTopicOrPartition),
                other => other.map_err(|(code, _)| code),
            }
        })
        .await?
}

/// Creates an internal topic (`__consumer_offsets`) with its own partition
/// count and configs on the controller shard, unless it exists.
pub async fn ensure_internal(
    shard: &Rc<Shard>,
    name: &'static str,
    partitions: i32,
    configs: &'static [(&'static str, &'static str)],
) -> Result<TopicMeta, ErrorCode> {
    if let Some(meta) = shard.topics().topics.get(name) {
        return Ok(meta.clone());
    }
    shard
        .call(CONTROLLER_SHARD, move |controller| async move {
            let topic = CreatableTopic::default()
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(key, value)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_static_str(key))
                                .with_value(Some(StrBytes::from_static_str(value)))
                        })
                        .collect(),
                );
            match create(&controller, name, &topic, false).await {
                Err((ErrorCode::TopicAlreadyExists, _)) => controller
                    .controller()
                    .store()
                    .topics
                    .get(name)
                    .cloned()
                    .ok_or(ErrorCode::UnknownTopicOrPartition),
                other => other.map_err(|(code, message)| {
                    tracing::error!(
                        topic = name,
                        ?code,
                        message,
                        "creating an internal topic failed"
                    );
                    code
                }),
            }
        })
        .await?
}
