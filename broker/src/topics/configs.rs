//! Topic configs by their Kafka names: validation and how each one sets
//! the storage engine's [`LogConfig`].

use kelp_storage::{CleanupPolicy, LogConfig};

/// Topic configs Kelp knows, in Kafka's names.
pub const KNOWN: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
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
}
