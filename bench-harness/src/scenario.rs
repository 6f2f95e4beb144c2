//! A benchmark scenario: what to run, read from a TOML file in
//! `bench-harness/scenarios/`, with command-line overrides.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Producers only; latency is produce-to-acknowledgement.
    Produce,
    /// Consumers read a topic filled first; throughput only.
    Consume,
    /// Producers stamp each record with its send time; consumers record
    /// produce-to-consume latency.
    EndToEnd,
}

/// How fast producers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Rate {
    /// As fast as the broker takes it (closed loop).
    Max,
    /// A fixed target in messages per second over all producers (open
    /// loop: latency counts from when a message was due, not sent, so a
    /// stalled broker cannot hide its stall: no coordinated omission).
    PerSecond(u64),
    /// First a short run at full speed, then this scenario at half the rate
    /// it reached.
    HalfOfMax,
}

/// `rate = "max" | "half-of-max" | <messages per second>` in TOML.
#[derive(Deserialize)]
#[serde(untagged)]
enum RateText {
    Named(String),
    PerSecond(u64),
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        match RateText::deserialize(deserializer)? {
            RateText::PerSecond(0) => Ok(Rate::Max),
            RateText::PerSecond(n) => Ok(Rate::PerSecond(n)),
            RateText::Named(name) => match name.as_str() {
                "max" => Ok(Rate::Max),
                "half-of-max" => Ok(Rate::HalfOfMax),
                other => Err(serde::de::Error::custom(format!(
                    "rate must be \"max\", \"half-of-max\" or a number of messages per second, not {other:?}"
                ))),
            },
        }
    }
}

/// Which keys records get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keys {
    /// No key: producers spread records round-robin.
    None,
    /// `key-0`, `key-1`, ... cycling through `key_count`.
    Sequential,
    /// Uniformly random among `key_count` keys.
    Random,
}

/// One scenario.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name, as printed in results.
    pub name: String,
    /// What runs.
    pub workload: Workload,
    /// Topic to use (default `kelp-bench-<name>`); created if missing.
    #[serde(default)]
    pub topic: Option<String>,
    /// Bytes of each record's value.
    pub message_size: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Producer clients (spread over the harness cores).
    #[serde(default = "one")]
    pub producers: usize,
    /// Consumer clients.
    #[serde(default)]
    pub consumers: usize,
    /// Produce `acks`: 0, 1 or -1.
    #[serde(default = "one_i16")]
    pub acks: i16,
    /// Producer `batch.size` in bytes.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Producer `linger.ms`.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Key distribution.
    #[serde(default = "default_keys")]
    pub keys: Keys,
    /// Distinct keys for `sequential` and `random`.
    #[serde(default = "default_key_count")]
    pub key_count: u64,
    /// Seconds run before measuring.
    #[serde(default = "default_warmup")]
    pub warmup_seconds: u64,
    /// Seconds measured.
    pub duration_seconds: u64,
    /// Send rate.
    #[serde(default = "default_rate")]
    pub rate: Rate,
    /// Cores (executors) the harness itself uses.
    #[serde(default = "one")]
    pub harness_cores: usize,
    /// For `consume`: records written before reading starts.
    #[serde(default)]
    pub prefill_messages: u64,
}

fn one() -> usize {
    1
}
fn one_i16() -> i16 {
    1
}
fn default_batch_size() -> usize {
    64 << 10
}
fn default_linger_ms() -> u64 {
    5
}
fn default_compression() -> String {
    "none".to_owned()
}
fn default_keys() -> Keys {
    Keys::None
}
fn default_key_count() -> u64 {
    1000
}
fn default_warmup() -> u64 {
    2
}
fn default_rate() -> Rate {
    Rate::Max
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("scenario {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        scenario.check().map_err(|message| ScenarioError::Invalid {
            path: shown,
            message,
        })?;
        Ok(scenario)
    }

    /// The topic the run uses.
    pub fn topic(&self) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| format!("kelp-bench-{}", self.name))
    }

    /// Checks the settings fit together.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.acks, -1..=1) {
            return Err(format!("acks must be -1, 0 or 1, not {}", self.acks));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()) {
            return Err(format!(
                "compression must be none, gzip, snappy, lz4 or zstd, not {}",
                self.compression
            ));
        }
        if self.partitions < 1 || self.harness_cores < 1 || self.duration_seconds < 1 {
            return Err(
                "partitions, harness_cores and duration_seconds must be at least 1".to_owned(),
            );
        }
        let (needs_producers, needs_consumers) = match self.workload {
            Workload::Produce => (true, false),
            Workload::Consume => (false, true),
            Workload::EndToEnd => (true, true),
        };
        if needs_producers && self.producers == 0 || needs_consumers && self.consumers == 0 {
            return Err(format!(
                "a {:?} scenario needs producers: {} and consumers: {}",
                self.workload, needs_producers, needs_consumers
            ));
        }
        if self.workload == Workload::EndToEnd && self.message_size < 8 {
            return Err(
                "end-to-end records carry an 8-byte send time: message_size >= 8".to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_loads() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let scenario = Scenario::load(&entry.unwrap().path()).unwrap();
            names.push(scenario.name);
        }
        names.sort();
        assert_eq!(
            names,
            [
                "consume-100b",
                "e2e-latency",
                "produce-100b",
                "produce-1k-acks-all",
                "produce-3x-100b"
            ]
        );
    }

    #[test]
    fn rates_and_mistakes_are_read_as_meant() {
        let base = "name = \"t\"\nworkload = \"produce\"\nmessage_size = 10\npartitions = 1\nduration_seconds = 1\n";
        let parse = |extra: &str| toml::from_str::<Scenario>(&format!("{base}{extra}"));
        assert_eq!(parse("rate = 5000").unwrap().rate, Rate::PerSecond(5000));
        assert_eq!(
            parse("rate = \"half-of-max\"").unwrap().rate,
            Rate::HalfOfMax
        );
        assert_eq!(parse("").unwrap().rate, Rate::Max);
        assert!(parse("rate = \"fast\"").is_err());
        assert!(parse("acks = 2").unwrap().check().is_err());
        assert!(parse("no_such_key = 1").is_err());
        assert_eq!(parse("").unwrap().topic(), "kelp-bench-t");
    }
}
