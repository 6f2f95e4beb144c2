//! AlterConfigs (key 33), v0-2 (Kafka 4's range; legacy): replaces the
//! whole override set of a topic or of a broker's dynamic configs (configs
//! not listed are deleted), with validate-only. Also the code
//! IncrementalAlterConfigs shares: resource checks, validation, and
//! persisting and applying the result.
//!
//! A BROKER resource (this node's id, or "" for the cluster-wide default)
//! takes the broker-level topic defaults (`log.retention.ms`,
//! `message.max.bytes`, `min.insync.replicas`, ...): they apply at once to
//! every topic without its own override. Static settings (`node.id`,
//! `num.partitions`) are refused as Kafka refuses configs it cannot update
//! dynamically.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::ChangeError;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::describe_configs::{
    check_broker_name, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use crate::shard::Shard;
use crate::topics::{configs, name};

/// An error code and its message.
pub type ConfigError = (ErrorCode, String);

/// Alters every resource of an AlterConfigs or IncrementalAlterConfigs
/// request: a resource named twice is refused, each other one gets its new
/// override set from `change(resource, current overrides, broker defaults)`.
/// `describe` gives a resource's type, name and config names. Returns the
/// error code and message of each resource, in request order. Runs on the
/// controller shard.
pub async fn alter_resources<R>(
    shard: &Rc<Shard>,
    validate_only: bool,
    resources: &[R],
    describe: impl Fn(&R) -> (i8, String, Vec<String>),
    change: impl Fn(
        &R,
        &BTreeMap<String, String>,
        &kelp_storage::LogConfig,
    ) -> Result<BTreeMap<String, String>, ConfigError>,
) -> Vec<(i16, Option<StrBytes>)> {
    let described: Vec<(i8, String, Vec<String>)> = resources.iter().map(&describe).collect();
    let keys: Vec<(i8, String)> = described.iter().map(|(t, n, _)| (*t, n.clone())).collect();
    let duplicates = duplicates(&keys);
    let mut outcomes = Vec::with_capacity(resources.len());
    for (resource, (resource_type, name, names)) in resources.iter().zip(described) {
        let outcome = if duplicates.contains(&(resource_type, name.clone())) {
            Err(duplicate_error())
        } else {
            alter(
                shard,
                resource_type,
                &name,
                &names,
                validate_only,
                |current, broker| change(resource, current, broker),
            )
            .await
        };
        outcomes.push(split(outcome));
    }
    outcomes
}

/// Answers an AlterConfigs request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let outcomes = alter_resources(
        shard,
        request.validate_only,
        &request.resources,
        |r| {
            let names = r.configs.iter().map(|c| c.name.to_string()).collect();
            (r.resource_type, r.resource_name.to_string(), names)
        },
        |resource, _, _| {
            let mut replaced = BTreeMap::new();
            for config in &resource.configs {
                let name = config.name.to_string();
                let Some(value) = &config.value else {
                    return Err(null_value(&name));
                };
                if replaced.insert(name, value.to_string()).is_some() {
                    return Err(duplicate_keys());
                }
            }
            Ok(replaced)
        },
    )
    .await;
    let responses = request
        .resources
        .into_iter()
        .zip(outcomes)
        .map(|(resource, (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// The (type, name) pairs that occur more than once.
fn duplicates(keys: &[(i8, String)]) -> HashSet<(i8, String)> {
    let mut counts: HashMap<&(i8, String), usize> = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Kafka's answer for a resource named twice in one request.
fn duplicate_error() -> ConfigError {
    (
        ErrorCode::InvalidRequest,
        "Each resource must appear at most once.".to_owned(),
    )
}

/// Kafka's answer for a config key named twice in one resource.
pub fn duplicate_keys() -> ConfigError {
    (
        ErrorCode::InvalidRequest,
        "Error due to duplicate config keys".to_owned(),
    )
}

/// Kafka's answer for a null value where one is needed.
pub fn null_value(name: &str) -> ConfigError {
    (
        ErrorCode::InvalidRequest,
        format!("Null value not supported for : {name}"),
    )
}

/// A result as the response's error code and message.
fn split(outcome: Result<(), ConfigError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (ErrorCode::None.code(), None),
        Err((code, message)) => (code.code(), Some(StrBytes::from_string(message))),
    }
}

/// Alters one resource: `change` gets the topic's current overrides and the
/// broker-level log config, and returns the new override set, which is
/// validated, then (unless `validate_only`) saved and applied to the
/// topic's logs. `names` are the configs the request names (for the
/// message refusing broker configs).
async fn alter(
    shard: &Rc<Shard>,
    resource_type: i8,
    resource_name: &str,
    names: &[String],
    validate_only: bool,
    change: impl FnOnce(
        &BTreeMap<String, String>,
        &kelp_storage::LogConfig,
    ) -> Result<BTreeMap<String, String>, ConfigError>,
) -> Result<(), ConfigError> {
    match resource_type {
        RESOURCE_TOPIC => {
            name::validate(resource_name).map_err(|m| (ErrorCode::InvalidTopicException, m))?;
            let broker = shard.config.topic_defaults.log_config();
            let changed = shard
                .controller()
                .change(shard, |store| {
                    let meta = store.topics.get_mut(resource_name).ok_or_else(|| {
                        ChangeError::Refused(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("The topic '{resource_name}' does not exist."),
                        )
                    })?;
                    let new = change(&meta.configs, &broker)?;
                    configs::validate(&new).map_err(|m| (ErrorCode::InvalidConfig, m))?;
                    if validate_only || new == meta.configs {
                        return Ok(false);
                    }
                    meta.configs = new;
                    Ok(true)
                })
                .await
                .map_err(ChangeError::into_kafka)?;
            if changed {
                tracing::info!(topic = resource_name, "altered topic configs");
            }
            Ok(())
        }
        RESOURCE_BROKER => {
            check_broker_name(shard, resource_name)?;
            let static_level = shard.config.topic_defaults.log_config();
            let changed = shard
                .controller()
                .change(shard, |store| {
                    let current = store
                        .broker_configs
                        .get(resource_name)
                        .cloned()
                        .unwrap_or_default();
                    let new = change(&current, &static_level)?;
                    configs::validate_broker(&new).map_err(|(unknown, message)| {
                        if unknown {
                            static_config_error(names, &message)
                        } else {
                            (ErrorCode::InvalidConfig, message)
                        }
                    })?;
                    if validate_only || new == current {
                        return Ok(false);
                    }
                    if new.is_empty() {
                        store.broker_configs.remove(resource_name);
                    } else {
                        store.broker_configs.insert(resource_name.to_owned(), new);
                    }
                    Ok(true)
                })
                .await
                .map_err(ChangeError::into_kafka)?;
            if changed {
                tracing::info!(broker = resource_name, "altered dynamic broker configs");
            }
            Ok(())
        }
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

/// The answer for a broker config that cannot change at run time (or that
/// Kelp does not know), as Kafka words it.
fn static_config_error(names: &[String], name: &str) -> ConfigError {
    let listed = if names.iter().any(|n| n == name) {
        names
            .iter()
            .filter(|n| configs::find_broker(n).is_none())
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        name.to_owned()
    };
    (
        ErrorCode::InvalidRequest,
        format!(
            "Cannot update these configs dynamically: {listed} (set them in the broker's config file)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found() {
        let keys = vec![
            (2, "a".to_owned()),
            (2, "b".to_owned()),
            (2, "a".to_owned()),
            (4, "b".to_owned()),
        ];
        let found = duplicates(&keys);
        assert_eq!(found.len(), 1);
        assert!(found.contains(&(2, "a".to_owned())));
        assert_eq!(split(Ok(())), (0, None));
        assert_eq!(split(Err(duplicate_error())).0, 42);
    }
}
