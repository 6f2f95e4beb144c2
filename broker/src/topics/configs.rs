//! Topic configs by their Kafka names: validation and how each one sets
//! the storage engine's [`LogConfig`].

use kelp_storage::{CleanupPolicy, LogConfig};

/// Topic configs Kelp knows, in Kafka's names.
pub const KNOWN: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| {
        format!("Invalid value {value} for configuration {name}: Not a number of the right type")
    })
}

fn at_least<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: T,
    min: T,
) -> Result<T, String> {
    if value < min {
        return Err(format!(
            "Invalid value {value} for configuration {name}: Value must be at least {min}"
        ));
    }
    Ok(value)
}

/// Validates `name = value` and applies it to `config`.
pub fn apply(config: &mut LogConfig, name: &str, value: &str) -> Result<(), String> {
    match name {
        "cleanup.policy" => {
            config.cleanup_policy = CleanupPolicy::parse(value)
                .ok_or_else(|| format!("Invalid value {value} for configuration cleanup.policy: String must be one of: compact, delete"))?;
        }
        "delete.retention.ms" => {
            config.delete_retention_ms = at_least(name, number(name, value)?, 0)?
        }
        "index.interval.bytes" => {
            let bytes: i64 = at_least(name, number(name, value)?, 0)?;
            config.index_interval_bytes = u64::try_from(bytes).map_err(|e| e.to_string())?;
        }
        "max.message.bytes" => {
            let max: i64 = at_least(name, number(name, value)?, 0)?;
            config.max_message_bytes = usize::try_from(max).map_err(|e| e.to_string())?;
        }
        "message.timestamp.type" => {
            if value != "CreateTime" && value != "LogAppendTime" {
                return Err(format!("Invalid value {value} for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"));
            }
        }
        "min.cleanable.dirty.ratio" => {
            let ratio: f64 = number(name, value)?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("Invalid value {value} for configuration min.cleanable.dirty.ratio: Value must be between 0 and 1"));
            }
            config.min_cleanable_dirty_ratio = ratio;
        }
        "retention.bytes" => config.retention_bytes = at_least(name, number(name, value)?, -1)?,
        "retention.ms" => config.retention_ms = at_least(name, number(name, value)?, -1)?,
        "segment.bytes" => {
            let bytes: i64 = at_least(name, number(name, value)?, 14)?;
            config.segment_bytes = u64::try_from(bytes).map_err(|e| e.to_string())?;
        }
        "segment.ms" => config.segment_ms = at_least(name, number(name, value)?, 1)?,
        _ => return Err(format!("Unknown topic config name: {name}")),
    }
    Ok(())
}

/// Kafka's config types (the DescribeConfigs `ConfigType` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// `BOOLEAN`.
    Boolean = 1,
    /// `STRING`.
    String = 2,
    /// `INT`.
    Int = 3,
    /// `LONG`.
    Long = 5,
    /// `DOUBLE`.
    Double = 6,
    /// `LIST`.
    List = 7,
}

/// The Kafka type of a known topic config (as Kafka's `LogConfig` declares it).
pub fn config_type(name: &str) -> ConfigType {
    match name {
        "cleanup.policy" => ConfigType::List,
        "index.interval.bytes" | "max.message.bytes" | "segment.bytes" => ConfigType::Int,
        "message.timestamp.type" => ConfigType::String,
        "min.cleanable.dirty.ratio" => ConfigType::Double,
        _ => ConfigType::Long,
    }
}

/// Whether a topic config is a list (so IncrementalAlterConfigs may APPEND
/// to it and SUBTRACT from it).
pub fn is_list(name: &str) -> bool {
    config_type(name) == ConfigType::List
}

/// The broker-level config (Kafka's `log.*` name) a topic config defaults
/// to, as DescribeConfigs names it among the synonyms.
pub fn broker_synonym(name: &str) -> Option<&'static str> {
    Some(match name {
        "cleanup.policy" => "log.cleanup.policy",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        "index.interval.bytes" => "log.index.interval.bytes",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "retention.bytes" => "log.retention.bytes",
        "retention.ms" => "log.retention.ms",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        _ => return None,
    })
}

/// The value of a known topic config in `config`, as Kafka writes it.
/// `message.timestamp.type` has no field yet and is always `CreateTime`.
pub fn value_of(config: &LogConfig, name: &str) -> Option<String> {
    Some(match name {
        "cleanup.policy" => match (config.cleanup_policy.compact, config.cleanup_policy.delete) {
            (true, true) => "compact,delete".to_owned(),
            (true, false) => "compact".to_owned(),
            _ => "delete".to_owned(),
        },
        "delete.retention.ms" => config.delete_retention_ms.to_string(),
        "index.interval.bytes" => config.index_interval_bytes.to_string(),
        "max.message.bytes" => config.max_message_bytes.to_string(),
        "message.timestamp.type" => "CreateTime".to_owned(),
        "min.cleanable.dirty.ratio" => config.min_cleanable_dirty_ratio.to_string(),
        "retention.bytes" => config.retention_bytes.to_string(),
        "retention.ms" => config.retention_ms.to_string(),
        "segment.bytes" => config.segment_bytes.to_string(),
        "segment.ms" => config.segment_ms.to_string(),
        _ => return None,
    })
}

/// Validates a whole override set (every name known, every value legal).
pub fn validate<'a>(
    overrides: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), String> {
    let mut check = LogConfig::default();
    for (name, value) in overrides {
        apply(&mut check, name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_configs_apply_and_bad_values_are_named() {
        let mut config = LogConfig::default();
        apply(&mut config, "retention.ms", "1000").unwrap();
        apply(&mut config, "cleanup.policy", "compact,delete").unwrap();
        assert_eq!(config.retention_ms, 1000);
        assert!(config.cleanup_policy.compact && config.cleanup_policy.delete);
        for name in KNOWN {
            assert!(apply(&mut config, name, "not-a-value").is_err(), "{name}");
        }
        let err = apply(&mut config, "retention.ms", "-5").unwrap_err();
        assert!(
            err.contains("retention.ms") && err.contains("at least -1"),
            "{err}"
        );
        assert!(apply(&mut config, "no.such.config", "1")
            .unwrap_err()
            .contains("Unknown"));
    }

    #[test]
    fn every_known_config_has_a_value_a_type_and_a_broker_synonym() {
        let config = LogConfig::default();
        for name in KNOWN {
            let value = value_of(&config, name).unwrap();
            let mut again = LogConfig::default();
            apply(&mut again, name, &value).unwrap();
            assert_eq!(again, config, "{name} = {value} round-trips");
            assert!(broker_synonym(name).is_some(), "{name}");
        }
        assert_eq!(config_type("retention.ms"), ConfigType::Long);
        assert!(is_list("cleanup.policy") && !is_list("segment.ms"));
        let mut compact = LogConfig::default();
        apply(&mut compact, "cleanup.policy", "delete, compact").unwrap();
        assert_eq!(
            value_of(&compact, "cleanup.policy").unwrap(),
            "compact,delete"
        );
        let bad = [("segment.bytes".to_owned(), "1".to_owned())];
        assert!(validate(bad.iter().map(|(k, v)| (k, v))).is_err());
    }
}
