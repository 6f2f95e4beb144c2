//! Topic configs by their Kafka names: validation and how each one sets
//! the storage engine's [`LogConfig`].

use kelp_storage::{CleanupPolicy, LogConfig, TimestampType};

/// What setting a topic config does in Kelp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Shapes the partition log ([`LogConfig`]).
    Log,
    /// Checked by the broker's request handlers (`min.insync.replicas`).
    Broker,
    /// Kept and reported; it changes nothing on a single node (replication
    /// throttles, unclean election) or names something Kelp does its own
    /// way (flush policy, preallocation, index sizing, delete delay).
    Recorded,
    /// Only Kafka's default is accepted: Kelp does not yet do what another
    /// value asks (broker-side recompression, tiered storage, timestamp
    /// bounds, minimum compaction lag), and says so instead of ignoring it.
    DefaultOnly,
}

/// One topic config Kelp knows, as Kafka 4 declares it.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    /// Kafka's topic-level name.
    pub name: &'static str,
    /// Kafka's type.
    pub kind: ConfigType,
    /// Kafka's default, for configs that are not [`Effect::Log`].
    pub default: &'static str,
    /// The broker-level config it defaults to.
    pub broker_name: Option<&'static str>,
    /// What setting it does.
    pub effect: Effect,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    broker_name: Option<&'static str>,
    effect: Effect,
) -> Def {
    Def {
        name,
        kind,
        default,
        broker_name,
        effect,
    }
}

/// Kafka's `Long.MAX_VALUE`, the default of several configs.
const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Kafka 4 has, in Kafka's names, sorted.
pub const DEFS: &[Def] = &[
    def(
        "cleanup.policy",
        ConfigType::List,
        "",
        Some("log.cleanup.policy"),
        Effect::Log,
    ),
    def(
        "compression.gzip.level",
        ConfigType::Int,
        "-1",
        Some("compression.gzip.level"),
        Effect::Recorded,
    ),
    def(
        "compression.lz4.level",
        ConfigType::Int,
        "9",
        Some("compression.lz4.level"),
        Effect::Recorded,
    ),
    def(
        "compression.type",
        ConfigType::String,
        "producer",
        Some("compression.type"),
        Effect::DefaultOnly,
    ),
    def(
        "compression.zstd.level",
        ConfigType::Int,
        "3",
        Some("compression.zstd.level"),
        Effect::Recorded,
    ),
    def(
        "delete.retention.ms",
        ConfigType::Long,
        "",
        Some("log.cleaner.delete.retention.ms"),
        Effect::Log,
    ),
    def(
        "file.delete.delay.ms",
        ConfigType::Long,
        "60000",
        Some("log.segment.delete.delay.ms"),
        Effect::Recorded,
    ),
    def(
        "flush.messages",
        ConfigType::Long,
        LONG_MAX,
        Some("log.flush.interval.messages"),
        Effect::Recorded,
    ),
    def(
        "flush.ms",
        ConfigType::Long,
        LONG_MAX,
        Some("log.flush.interval.ms"),
        Effect::Recorded,
    ),
    def(
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
        None,
        Effect::Recorded,
    ),
    def(
        "index.interval.bytes",
        ConfigType::Int,
        "",
        Some("log.index.interval.bytes"),
        Effect::Log,
    ),
    def(
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
        None,
        Effect::Recorded,
    ),
    def(
        "local.retention.bytes",
        ConfigType::Long,
        "-2",
        Some("log.local.retention.bytes"),
        Effect::Recorded,
    ),
    def(
        "local.retention.ms",
        ConfigType::Long,
        "-2",
        Some("log.local.retention.ms"),
        Effect::Recorded,
    ),
    def(
        "max.compaction.lag.ms",
        ConfigType::Long,
        LONG_MAX,
        Some("log.cleaner.max.compaction.lag.ms"),
        Effect::Recorded,
    ),
    def(
        "max.message.bytes",
        ConfigType::Int,
        "",
        Some("message.max.bytes"),
        Effect::Log,
    ),
    def(
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        LONG_MAX,
        Some("log.message.timestamp.after.max.ms"),
        Effect::DefaultOnly,
    ),
    def(
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        LONG_MAX,
        Some("log.message.timestamp.before.max.ms"),
        Effect::DefaultOnly,
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        "",
        Some("log.message.timestamp.type"),
        Effect::Log,
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        "",
        Some("log.cleaner.min.cleanable.ratio"),
        Effect::Log,
    ),
    def(
        "min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
        Effect::DefaultOnly,
    ),
    def(
        "min.insync.replicas",
        ConfigType::Int,
        "1",
        Some("min.insync.replicas"),
        Effect::Broker,
    ),
    def(
        "preallocate",
        ConfigType::Boolean,
        "false",
        Some("log.preallocate"),
        Effect::Recorded,
    ),
    def(
        "remote.storage.enable",
        ConfigType::Boolean,
        "false",
        None,
        Effect::DefaultOnly,
    ),
    def(
        "retention.bytes",
        ConfigType::Long,
        "",
        Some("log.retention.bytes"),
        Effect::Log,
    ),
    def(
        "retention.ms",
        ConfigType::Long,
        "",
        Some("log.retention.ms"),
        Effect::Log,
    ),
    def(
        "segment.bytes",
        ConfigType::Int,
        "",
        Some("log.segment.bytes"),
        Effect::Log,
    ),
    def(
        "segment.index.bytes",
        ConfigType::Int,
        "10485760",
        Some("log.index.size.max.bytes"),
        Effect::Recorded,
    ),
    def(
        "segment.jitter.ms",
        ConfigType::Long,
        "0",
        Some("log.roll.jitter.ms"),
        Effect::Recorded,
    ),
    def(
        "segment.ms",
        ConfigType::Long,
        "",
        Some("log.roll.ms"),
        Effect::Log,
    ),
    def(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
        Some("unclean.leader.election.enable"),
        Effect::Recorded,
    ),
];

/// The definition of a topic config, if Kelp knows it.
pub fn find(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// The topic config a broker-level config (`log.retention.ms`) sets the
/// default of; these are the broker configs that can be changed at run time.
pub fn find_broker(broker_name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.broker_name == Some(broker_name))
}

/// A config by its topic-level or broker-level name, for what the two
/// share (type, default).
pub fn find_either(name: &str) -> Option<&'static Def> {
    find(name).or_else(|| find_broker(name))
}

/// Validates a dynamic broker config set (broker-level names).
pub fn validate_broker<'a>(
    configs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), (bool, String)> {
    let mut check = LogConfig::default();
    for (name, value) in configs {
        match find_broker(name) {
            Some(def) => apply(&mut check, def.name, value).map_err(|m| (false, m))?,
            None => return Err((true, name.clone())),
        }
    }
    Ok(())
}

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
            config.timestamp_type = TimestampType::parse(value).ok_or_else(|| format!("Invalid value {value} for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"))?;
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
        _ => {
            let def = find(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
            check_other(def, value)?;
        }
    }
    Ok(())
}

/// Validates a config that does not shape the log.
fn check_other(def: &Def, value: &str) -> Result<(), String> {
    let name = def.name;
    match def.kind {
        ConfigType::Boolean => {
            if !matches!(value.trim(), "true" | "false") {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Expected value to be either true or false"
                ));
            }
        }
        ConfigType::Int => {
            let (min, max) = match name {
                "compression.gzip.level" => (-1, 9),
                "compression.lz4.level" => (1, 17),
                "compression.zstd.level" => (-131_072, 22),
                "min.insync.replicas" => (1, i32::MAX),
                _ => (4, i32::MAX),
            };
            let n: i32 = number(name, value)?;
            if !(min..=max).contains(&n) || (name == "compression.gzip.level" && n == 0) {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Value must be between {min} and {max}"
                ));
            }
        }
        ConfigType::Long => {
            let min = match name {
                "local.retention.bytes" | "local.retention.ms" => -2,
                "flush.messages" | "max.compaction.lag.ms" => 1,
                _ => 0,
            };
            at_least(name, number::<i64>(name, value)?, min)?;
        }
        ConfigType::String => {
            const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
            if name == "compression.type" && !CODECS.contains(&value) {
                return Err(format!(
                    "Invalid value {value} for configuration compression.type: String must be one of: {}",
                    CODECS.join(", ")
                ));
            }
        }
        ConfigType::List => {
            // `*`, or partition:broker pairs.
            let valid = value.trim() == "*"
                || value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .all(|e| {
                        e.split_once(':').is_some_and(|(p, b)| {
                            p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok()
                        })
                    });
            if !valid {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                ));
            }
        }
        ConfigType::Double => {}
    }
    if def.effect == Effect::DefaultOnly && value.trim() != def.default {
        return Err(format!(
            "Invalid value {value} for configuration {name}: Kelp supports only {} (its default) so far",
            def.default
        ));
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
    find_either(name).map_or(ConfigType::String, |d| d.kind)
}

/// Whether a topic config is a list (so IncrementalAlterConfigs may APPEND
/// to it and SUBTRACT from it).
pub fn is_list(name: &str) -> bool {
    config_type(name) == ConfigType::List
}

/// The broker-level config (Kafka's `log.*` name) a topic config defaults
/// to, as DescribeConfigs names it among the synonyms.
pub fn broker_synonym(name: &str) -> Option<&'static str> {
    find(name)?.broker_name
}

/// The value a topic without an override of `name` has, where `config` is
/// the broker-level log configuration, as Kafka writes it.
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
        "message.timestamp.type" => config.timestamp_type.name().to_owned(),
        "min.cleanable.dirty.ratio" => config.min_cleanable_dirty_ratio.to_string(),
        "retention.bytes" => config.retention_bytes.to_string(),
        "retention.ms" => config.retention_ms.to_string(),
        "segment.bytes" => config.segment_bytes.to_string(),
        "segment.ms" => config.segment_ms.to_string(),
        other => {
            let def = find_either(other)?;
            if def.name != other {
                // A broker-level name: the value of its topic config.
                return value_of(config, def.name);
            }
            def.default.to_owned()
        }
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
        for def in DEFS {
            assert!(
                apply(&mut config, def.name, "not-a-value").is_err(),
                "{}",
                def.name
            );
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
        for def in DEFS {
            let name = def.name;
            let value = value_of(&config, name).unwrap();
            let mut again = LogConfig::default();
            apply(&mut again, name, &value).unwrap();
            assert_eq!(again, config, "{name} = {value} round-trips");
            assert!(
                broker_synonym(name).is_some() || def.effect != Effect::Log,
                "{name}"
            );
        }
        assert!(DEFS.windows(2).all(|w| w[0].name < w[1].name), "sorted");
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

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn configs_kelp_does_not_act_on_accept_only_their_default() {
        let mut config = LogConfig::default();
        apply(&mut config, "compression.type", "producer").unwrap();
        let err = apply(&mut config, "compression.type", "gzip").unwrap_err();
        assert!(err.contains("Kelp supports only producer"), "{err}");
        assert!(apply(&mut config, "compression.type", "brotli")
            .unwrap_err()
            .contains("String must be one of"));
        assert!(apply(&mut config, "remote.storage.enable", "true").is_err());
        apply(&mut config, "min.insync.replicas", "2").unwrap();
        assert!(apply(&mut config, "min.insync.replicas", "0").is_err());
        apply(&mut config, "unclean.leader.election.enable", "true").unwrap();
        apply(
            &mut config,
            "leader.replication.throttled.replicas",
            "0:1,1:1",
        )
        .unwrap();
        apply(&mut config, "leader.replication.throttled.replicas", "*").unwrap();
        apply(&mut config, "message.timestamp.type", "LogAppendTime").unwrap();
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
    }
}
