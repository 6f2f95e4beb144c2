//! Broker configuration: command-line flags over an optional TOML file over
//! built-in defaults, so `kelp start` with no flags runs a working
//! single-node broker on localhost:9092 with data in `./kelp-data`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kelp_storage::{CleanupPolicy, LogConfig};
use serde::Deserialize;

use crate::groups::settings::GroupSettings;
use crate::txn::settings::TxnSettings;

/// Why a configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML file is not valid.
    #[error("config file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid setting {name} = {value}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Topic-config defaults at broker level (Kafka's `log.*` broker configs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TopicDefaults {
    /// `num.partitions` for auto-created topics.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `log.segment.bytes`.
    pub segment_bytes: u64,
    /// `log.roll.ms`.
    pub segment_ms: i64,
    /// `log.retention.ms`.
    pub retention_ms: i64,
    /// `log.retention.bytes`.
    pub retention_bytes: i64,
    /// `log.cleanup.policy`.
    pub cleanup_policy: String,
    /// `message.max.bytes`.
    pub max_message_bytes: usize,
    /// `log.cleaner.min.cleanable.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `log.cleaner.delete.retention.ms`.
    pub delete_retention_ms: i64,
}

impl Default for TopicDefaults {
    fn default() -> TopicDefaults {
        let log = LogConfig::default();
        TopicDefaults {
            num_partitions: 1,
            auto_create_topics: true,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            retention_ms: log.retention_ms,
            retention_bytes: log.retention_bytes,
            cleanup_policy: "delete".to_owned(),
            max_message_bytes: log.max_message_bytes,
            min_cleanable_dirty_ratio: log.min_cleanable_dirty_ratio,
            delete_retention_ms: log.delete_retention_ms,
        }
    }
}

impl TopicDefaults {
    /// The log configuration these defaults give a new topic.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            cleanup_policy: CleanupPolicy::parse(&self.cleanup_policy)
                .unwrap_or(CleanupPolicy::DELETE),
            max_message_bytes: self.max_message_bytes,
            min_cleanable_dirty_ratio: self.min_cleanable_dirty_ratio,
            delete_retention_ms: self.delete_retention_ms,
            ..LogConfig::default()
        }
    }
}

/// The TOML file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Broker id.
    pub node_id: Option<i32>,
    /// Where partitions live.
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    pub listen: Option<String>,
    /// Address clients are told to connect to.
    pub advertised: Option<String>,
    /// Number of shards.
    pub cores: Option<usize>,
    /// Largest request frame.
    pub max_frame_bytes: Option<usize>,
    /// Tail cache per shard.
    pub cache_bytes_per_shard: Option<usize>,
    /// Kafka's `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: Option<u64>,
    /// Kafka's `log.cleaner.backoff.ms`: how often the cleaner looks for logs to compact.
    pub log_cleaner_backoff_ms: Option<u64>,
    /// Kafka's `log.cleaner.io.max.bytes.per.second` (unset: unthrottled).
    pub log_cleaner_io_max_bytes_per_second: Option<u64>,
    /// Topic defaults.
    pub topic_defaults: Option<TopicDefaults>,
    /// Kafka's `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: Option<i32>,
    /// Kafka's `offsets.retention.minutes`.
    pub offsets_retention_minutes: Option<i64>,
    /// Kafka's `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: Option<i64>,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: Option<i64>,
    /// Kafka's `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: Option<i32>,
    /// Kafka's `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: Option<i32>,
    /// Kafka's `group.consumer.session.timeout.ms`.
    pub group_consumer_session_timeout_ms: Option<i32>,
    /// Kafka's `group.consumer.heartbeat.interval.ms`.
    pub group_consumer_heartbeat_interval_ms: Option<i32>,
    /// Kafka's `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: Option<i32>,
    /// Kafka's `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: Option<i32>,
    /// Kafka's `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: Option<i64>,
    /// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<i64>,
    /// Kafka's `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: Option<i64>,
    /// Kafka's `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: Option<i64>,
}

/// The broker's effective configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Broker id (`node.id`).
    pub node_id: i32,
    /// Directory holding every partition and the cluster metadata.
    pub data_dir: PathBuf,
    /// Socket address accepted on.
    pub listen: SocketAddr,
    /// Host and port clients are told to use.
    pub advertised_host: String,
    /// Port clients are told to use.
    pub advertised_port: u16,
    /// Number of shards (one executor each).
    pub cores: usize,
    /// Whether `--cores` or the file chose `cores` (else it is every CPU,
    /// and start-up may take fewer when `ulimit -l` has no room for all).
    pub cores_chosen: bool,
    /// Largest request frame accepted.
    pub max_frame_bytes: usize,
    /// Tail-cache bytes per shard.
    pub cache_bytes_per_shard: usize,
    /// How often retention runs over every log.
    pub retention_check_interval: Duration,
    /// How often the cleaner looks for logs to compact.
    pub cleaner_backoff: Duration,
    /// Compaction read limit per shard, bytes per second.
    pub cleaner_throttle_bytes_per_sec: Option<u64>,
    /// Topic-config defaults.
    pub topic_defaults: TopicDefaults,
    /// Consumer group settings.
    pub groups: GroupSettings,
    /// Transaction and producer-state settings.
    pub txns: TxnSettings,
}

/// Settings given on the command line (each overrides the file).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--config`.
    pub config_file: Option<PathBuf>,
    /// `--node-id`.
    pub node_id: Option<i32>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--advertised`.
    pub advertised: Option<String>,
    /// `--cores`.
    pub cores: Option<usize>,
}

impl BrokerConfig {
    /// Builds the configuration: flags, then the file, then defaults.
    pub fn build(overrides: &Overrides) -> Result<BrokerConfig, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = overrides
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "0.0.0.0:9092".to_owned());
        let listen: SocketAddr =
            listen_text
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    name: "listen",
                    value: listen_text.clone(),
                    reason: format!("{e}; expected IP:PORT such as 0.0.0.0:9092"),
                })?;
        let advertised_text = overrides
            .advertised
            .clone()
            .or(file.advertised)
            .unwrap_or_else(|| format!("localhost:{}", listen.port()));
        let (host, port) =
            advertised_text
                .rsplit_once(':')
                .ok_or_else(|| ConfigError::Invalid {
                    name: "advertised",
                    value: advertised_text.clone(),
                    reason: "expected HOST:PORT".to_owned(),
                })?;
        let advertised_port: u16 = port.parse().map_err(|_| ConfigError::Invalid {
            name: "advertised",
            value: advertised_text.clone(),
            reason: "the port is not a number from 1 to 65535".to_owned(),
        })?;
        let available = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let chosen = overrides.cores.or(file.cores);
        let cores = chosen.unwrap_or(available);
        if cores == 0 || cores > 1024 {
            return Err(ConfigError::Invalid {
                name: "cores",
                value: cores.to_string(),
                reason: "must be between 1 and 1024".to_owned(),
            });
        }
        let kafka = GroupSettings::default();
        let groups = GroupSettings {
            offsets_topic_partitions: file
                .offsets_topic_num_partitions
                .unwrap_or(kafka.offsets_topic_partitions),
            offsets_retention_ms: file
                .offsets_retention_minutes
                .map_or(kafka.offsets_retention_ms, |m| m.saturating_mul(60_000)),
            offsets_retention_check_ms: file
                .offsets_retention_check_interval_ms
                .unwrap_or(kafka.offsets_retention_check_ms),
            initial_rebalance_delay_ms: file
                .group_initial_rebalance_delay_ms
                .unwrap_or(kafka.initial_rebalance_delay_ms),
            min_session_timeout_ms: file
                .group_min_session_timeout_ms
                .unwrap_or(kafka.min_session_timeout_ms),
            max_session_timeout_ms: file
                .group_max_session_timeout_ms
                .unwrap_or(kafka.max_session_timeout_ms),
            consumer_session_timeout_ms: file
                .group_consumer_session_timeout_ms
                .unwrap_or(kafka.consumer_session_timeout_ms),
            consumer_heartbeat_interval_ms: file
                .group_consumer_heartbeat_interval_ms
                .unwrap_or(kafka.consumer_heartbeat_interval_ms),
        };
        if let Err(reason) = groups.check() {
            return Err(ConfigError::Invalid {
                name: "group settings",
                value: format!("{groups:?}"),
                reason,
            });
        }
        let kafka = TxnSettings::default();
        let txns = TxnSettings {
            state_log_partitions: file
                .transaction_state_log_num_partitions
                .unwrap_or(kafka.state_log_partitions),
            max_timeout_ms: file
                .transaction_max_timeout_ms
                .unwrap_or(kafka.max_timeout_ms),
            id_expiration_ms: file
                .transactional_id_expiration_ms
                .unwrap_or(kafka.id_expiration_ms),
            abort_check_interval_ms: file
                .transaction_abort_timed_out_transaction_cleanup_interval_ms
                .unwrap_or(kafka.abort_check_interval_ms),
            producer_id_expiration_ms: file
                .producer_id_expiration_ms
                .unwrap_or(kafka.producer_id_expiration_ms),
            producer_id_expiration_check_ms: file
                .producer_id_expiration_check_interval_ms
                .unwrap_or(kafka.producer_id_expiration_check_ms),
        };
        if let Err(reason) = txns.check() {
            return Err(ConfigError::Invalid {
                name: "transaction settings",
                value: format!("{txns:?}"),
                reason,
            });
        }
        let topic_defaults = file.topic_defaults.unwrap_or_default();
        if CleanupPolicy::parse(&topic_defaults.cleanup_policy).is_none() {
            return Err(ConfigError::Invalid {
                name: "topic_defaults.cleanup_policy",
                value: topic_defaults.cleanup_policy.clone(),
                reason: "expected delete, compact or compact,delete".to_owned(),
            });
        }
        Ok(BrokerConfig {
            node_id: overrides.node_id.or(file.node_id).unwrap_or(0),
            data_dir: overrides
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("kelp-data")),
            listen,
            advertised_host: host.to_owned(),
            advertised_port,
            cores,
            cores_chosen: chosen.is_some(),
            max_frame_bytes: file
                .max_frame_bytes
                .unwrap_or(kelp_net::frame::DEFAULT_MAX_FRAME_BYTES),
            cache_bytes_per_shard: file.cache_bytes_per_shard.unwrap_or(256 << 20),
            retention_check_interval: Duration::from_millis(
                file.log_retention_check_interval_ms
                    .unwrap_or(300_000)
                    .max(1),
            ),
            cleaner_backoff: Duration::from_millis(
                file.log_cleaner_backoff_ms.unwrap_or(15_000).max(1),
            ),
            cleaner_throttle_bytes_per_sec: file.log_cleaner_io_max_bytes_per_second,
            topic_defaults,
            groups,
            txns,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_file_lists_the_built_in_defaults() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kelp.toml");
        let overrides = Overrides {
            config_file: Some(PathBuf::from(sample)),
            cores: Some(2),
            ..Overrides::default()
        };
        let from_file = BrokerConfig::build(&overrides).unwrap();
        let built_in = BrokerConfig::build(&Overrides {
            cores: Some(2),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
    }

    #[test]
    fn no_flags_gives_a_local_single_node_broker() {
        let config = BrokerConfig::build(&Overrides::default()).unwrap();
        assert_eq!(config.listen.port(), 9092);
        assert_eq!(
            (config.advertised_host.as_str(), config.advertised_port),
            ("localhost", 9092)
        );
        assert_eq!(config.data_dir, PathBuf::from("kelp-data"));
        assert!(config.topic_defaults.auto_create_topics);
    }

    #[test]
    fn flags_override_the_file_and_bad_values_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kelp.toml");
        std::fs::write(
            &path,
            "node_id = 3\nlisten = \"127.0.0.1:19092\"\n[topic_defaults]\nnum_partitions = 6\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(path.clone()),
            node_id: Some(7),
            ..Overrides::default()
        };
        let config = BrokerConfig::build(&overrides).unwrap();
        assert_eq!(config.node_id, 7);
        assert_eq!(config.listen.port(), 19092);
        assert_eq!(config.advertised_port, 19092);
        assert_eq!(config.topic_defaults.num_partitions, 6);
        let bad = Overrides {
            listen: Some("localhost".into()),
            ..Overrides::default()
        };
        let err = BrokerConfig::build(&bad).unwrap_err().to_string();
        assert!(err.contains("listen") && err.contains("IP:PORT"), "{err}");
        std::fs::write(&path, "nodeid = 3\n").unwrap();
        let err = BrokerConfig::build(&Overrides {
            config_file: Some(path),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("nodeid"), "{err}");
    }
}
