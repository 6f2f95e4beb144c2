//! IncrementalAlterConfigs (key 44), v0-1 (Kafka 4's range): SET, DELETE,
//! APPEND and SUBTRACT on a topic's overrides or a broker's dynamic configs
//! (see [`super::alter_configs`]), with validate-only; the result is saved
//! and applied live to the partition logs it concerns.

use std::collections::BTreeMap;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kelp_storage::LogConfig;

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::alter_configs::{
    alter_resources, duplicate_keys, null_value, ConfigError,
};
use crate::shard::Shard;
use crate::topics::configs;

/// The operations, as Kafka numbers them.
pub mod op {
    /// Set the value.
    pub const SET: i8 = 0;
    /// Remove the override.
    pub const DELETE: i8 = 1;
    /// Add items to a list config.
    pub const APPEND: i8 = 2;
    /// Remove items from a list config.
    pub const SUBTRACT: i8 = 3;
}

/// Answers an IncrementalAlterConfigs request.
pub async fn handle(
    shard: &std::rc::Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let outcomes = alter_resources(
        shard,
        request.validate_only,
        &request.resources,
        |r| {
            let names = r.configs.iter().map(|c| c.name.to_string()).collect();
            (r.resource_type, r.resource_name.to_string(), names)
        },
        |resource, current, broker| apply_ops(current, broker, &resource.configs),
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies the operations in order to a copy of `current`; `broker` gives
/// the value APPEND and SUBTRACT start from when the topic has no override.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    broker: &LogConfig,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut names = std::collections::HashSet::new();
    if !ops.iter().all(|c| names.insert(c.name.to_string())) {
        return Err(duplicate_keys());
    }
    let mut result = current.clone();
    for config in ops {
        let name = config.name.to_string();
        let value = config.value.as_ref().map(ToString::to_string);
        match config.config_operation {
            op::SET => {
                let value = value.ok_or_else(|| null_value(&name))?;
                result.insert(name, value);
            }
            op::DELETE => {
                result.remove(&name);
            }
            op::APPEND | op::SUBTRACT => {
                let verb = if config.config_operation == op::APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                if configs::find_either(&name).is_none() {
                    return Err((
                        ErrorCode::InvalidConfig,
                        format!("Unknown topic config name: {name}"),
                    ));
                }
                if !configs::is_list(&name) {
                    return Err((
                        ErrorCode::InvalidConfig,
                        format!("Can't {verb} to key {name} because its type is not LIST."),
                    ));
                }
                let value = value.ok_or_else(|| null_value(&name))?;
                let start = match result.get(&name) {
                    Some(v) => v.clone(),
                    None => configs::value_of(broker, &name).unwrap_or_default(),
                };
                let mut items = parts(&start);
                for item in parts(&value) {
                    if config.config_operation == op::APPEND {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    } else {
                        items.retain(|i| *i != item);
                    }
                }
                result.insert(name, items.join(","));
            }
            other => {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!("Unknown config operation {other} for {name}"),
                ))
            }
        }
    }
    Ok(result)
}

fn parts(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn op(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.to_owned()))
            .with_config_operation(operation)
            .with_value(value.map(|v| StrBytes::from_string(v.to_owned())))
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn set_delete_append_subtract() {
        let broker = LogConfig::default();
        let current = map(&[("segment.ms", "5000")]);
        let ops = [
            op("retention.ms", op::SET, Some("1000")),
            op("segment.ms", op::DELETE, None),
            op("cleanup.policy", op::APPEND, Some("compact")),
        ];
        let result = apply_ops(&current, &broker, &ops).unwrap();
        assert_eq!(
            result,
            map(&[
                ("cleanup.policy", "delete,compact"),
                ("retention.ms", "1000")
            ])
        );
        let result = apply_ops(
            &result,
            &broker,
            &[op("cleanup.policy", op::SUBTRACT, Some("delete"))],
        )
        .unwrap();
        assert_eq!(result["cleanup.policy"], "compact");
    }

    #[test]
    fn bad_operations_say_why() {
        let broker = LogConfig::default();
        let empty = BTreeMap::new();
        let err = apply_ops(
            &empty,
            &broker,
            &[op("retention.ms", op::APPEND, Some("1"))],
        )
        .unwrap_err();
        assert_eq!(err.0, ErrorCode::InvalidConfig);
        assert!(err.1.contains("not LIST"), "{}", err.1);
        let dup = [
            op("retention.ms", op::SET, Some("1")),
            op("retention.ms", op::DELETE, None),
        ];
        assert_eq!(
            apply_ops(&empty, &broker, &dup).unwrap_err().0,
            ErrorCode::InvalidRequest
        );
        let null = [op("retention.ms", op::SET, None)];
        assert_eq!(
            apply_ops(&empty, &broker, &null).unwrap_err().0,
            ErrorCode::InvalidRequest
        );
        let unknown = [op("retention.ms", 9, Some("1"))];
        assert_eq!(
            apply_ops(&empty, &broker, &unknown).unwrap_err().0,
            ErrorCode::InvalidRequest
        );
    }
}
