//! The `kelp` client commands, in the spirit of Redpanda's `rpk`: topics,
//! produce, consume, groups and cluster info against any Kafka-compatible
//! broker.
//!
//! Each command runs on one glommio `LocalExecutor` on the calling thread
//! (kelp-client must run inside glommio), and reports failures as one plain
//! sentence and exit code 1, never a panic or a debug dump.
//!
//! # Layout
//!
//! - [`topic`]: `kelp topic create|list|describe|delete|alter-config`.
//! - [`produce`]: `kelp produce`, one record per stdin line.
//! - [`consume`]: `kelp consume`, plain or JSON lines, optionally with
//!   committed group offsets.
//! - [`group`]: `kelp group list|describe|reset-offsets`.
//! - [`cluster`]: `kelp cluster info`.

pub mod cluster;
pub mod consume;
pub mod group;
pub mod produce;
pub mod topic;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kelp_client::{ClientConfig, Cluster, Connection, Error};

/// Bytes glommio sets aside for registered I/O buffers: the CLI does only
/// socket I/O, so the 10 MiB default (locked memory) is wasted.
const IO_MEMORY_BYTES: usize = 512 * 1024;

/// How long one request (and a TCP connect) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at FindCoordinator while the coordinator is still loading
/// (Kafka creates `__consumer_offsets` on the first request).
const FIND_COORDINATOR_ATTEMPTS: u32 = 20;

/// The pause between FindCoordinator attempts.
const FIND_COORDINATOR_BACKOFF: Duration = Duration::from_millis(250);

/// Where the cluster is; every client command takes it.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Brokers to bootstrap from (HOST:PORT[,HOST:PORT...]).
    #[arg(
        long,
        global = true,
        env = "KELP_BROKERS",
        default_value = "localhost:9092",
        value_name = "HOST:PORT[,HOST:PORT]"
    )]
    pub brokers: String,
}

impl BrokerArgs {
    /// The client configuration for these brokers.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            bootstrap: self.brokers.clone(),
            client_id: "kelp-cli".to_owned(),
            request_timeout: REQUEST_TIMEOUT,
        }
    }

    /// Connects to the cluster, failing at once if no bootstrap broker answers.
    pub async fn connect(&self) -> Result<Rc<Cluster>, CliError> {
        Ok(Cluster::connect(self.client_config()).await?)
    }
}

/// A command's failure: one sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        CliError(match error {
            Error::UnknownTopic(topic) => format!("topic '{topic}' does not exist"),
            Error::TopicExists(topic) => format!("topic '{topic}' already exists"),
            Error::UnknownPartition { topic, partition } => {
                format!("topic '{topic}' has no partition {partition}")
            }
            Error::UnsupportedApi { addr, api } => {
                format!("{api} is not supported by the broker at {addr}")
            }
            other => other.to_string(),
        })
    }
}

/// A failure of a consumer-group request, saying plainly when the broker serves no groups.
pub fn group_error(api: &str, error: Error) -> CliError {
    match error {
        Error::UnsupportedApi { addr, api: missing } => CliError(format!(
            "the broker does not support consumer groups ({api}): \
             {missing} is not supported by the broker at {addr}"
        )),
        other => CliError(format!("{api} failed: {}", CliError::from(other))),
    }
}

/// Runs `command` on a fresh glommio executor on this thread.
pub fn run<F, Fut>(command: F) -> Result<(), CliError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), CliError>>,
{
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("kelp-cli")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .map_err(|e| CliError(format!("cannot start the I/O runtime (glommio): {e}")))?;
    executor.run(command())
}

/// The Kafka error for `code`, `None` when it is 0.
pub fn kafka_error(code: i16, message: Option<&StrBytes>) -> Option<Error> {
    Error::from_code(code, message.map(|m| m.as_str()))
}

/// The Kafka error for a code known to be non-zero (a zero reads as an unnamed error, not success).
pub fn kafka_failure(code: i16, message: Option<&StrBytes>) -> Error {
    kafka_error(code, message).unwrap_or_else(|| Error::Kafka {
        code,
        name: "None".to_owned(),
        message: message.map(|m| m.as_str().to_owned()),
    })
}

/// A protocol string from a Rust one.
pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// A protocol topic name from a Rust string.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(str_bytes(name))
}

/// Splits `key=value`; clap calls it for every `-c`/`--set` value.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, got '{text}'")),
    }
}

/// The offsets of `partitions` of `topic` at `timestamp` (-2 earliest, -1 latest), one ListOffsets per leader.
pub async fn list_offsets(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let meta = cluster.refresh_topic(topic).await?;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &partition in partitions {
        by_leader
            .entry(meta.leader(partition)?)
            .or_default()
            .push(partition);
    }
    let mut offsets = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let response = cluster.node(leader).await?.call(request).await?;
        for answer in response.topics.iter().flat_map(|t| &t.partitions) {
            if let Some(error) = kafka_error(answer.error_code, None) {
                return Err(CliError(format!(
                    "cannot read the offsets of '{topic}' partition {}: {error}",
                    answer.partition_index
                )));
            }
            offsets.insert(answer.partition_index, answer.offset);
        }
    }
    Ok(offsets)
}

/// The group coordinator of `group` (FindCoordinator), connected.
///
/// Retries while the coordinator is loading or not yet available, as
/// Kafka answers while it creates its offsets topic.
pub async fn coordinator(cluster: &Cluster, group: &str) -> Result<Connection, CliError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let connection = cluster.any_connection().await?;
        let version = connection.version(ApiKey::FindCoordinator).unwrap_or(0);
        // v4+ asks for several keys at once; earlier versions for one.
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![str_bytes(group)])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_key(str_bytes(group))
        };
        let response = connection
            .call(request)
            .await
            .map_err(|e| group_error("FindCoordinator", e))?;
        let (code, message, host, port) = match response.coordinators.first() {
            Some(c) if version >= 4 => (
                c.error_code,
                c.error_message.clone(),
                c.host.clone(),
                c.port,
            ),
            _ => (
                response.error_code,
                response.error_message.clone(),
                response.host.clone(),
                response.port,
            ),
        };
        match kafka_error(code, message.as_ref()) {
            None => {
                let addr = format!("{}:{port}", host.as_str());
                return Ok(Connection::connect(&addr, cluster.config()).await?);
            }
            Some(error) if error.is_retriable() && attempt < FIND_COORDINATOR_ATTEMPTS => {
                glommio::timer::sleep(FIND_COORDINATOR_BACKOFF).await;
            }
            Some(error) => {
                return Err(CliError(format!(
                    "cannot find the coordinator of group '{group}': {error}"
                )))
            }
        }
    }
}

/// Prints rows as left-aligned columns separated by two spaces.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Node ids as `[0, 1, 2]`.
pub fn node_list(nodes: &[i32]) -> String {
    let ids: Vec<String> = nodes.iter().map(ToString::to_string).collect();
    format!("[{}]", ids.join(", "))
}
