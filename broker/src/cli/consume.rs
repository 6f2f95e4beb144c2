//! `kelp consume`: prints a topic's records, as plain lines or JSON lines.
//!
//! Without `-n` it follows the topic until Ctrl-C (SIGINT sets a flag that
//! is checked after every poll, at most `fetch_max_wait` apart); with `-n`
//! it stops after that many records.
//!
//! With `--group` it is a simple group-offset consumer, not a group member:
//! it asks the group's coordinator (FindCoordinator) for the committed
//! offsets (OffsetFetch) to resume from, and commits what it printed
//! (OffsetCommit) after each poll. It never joins the group (no JoinGroup,
//! no partition assignment), so Kafka refuses its commits while the group
//! has active members.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kelp_client::{ConsumedRecord, Consumer, ConsumerConfig, StartOffset};

use super::group::{commit, fetch_committed};
use super::{coordinator, BrokerArgs, CliError};

/// How long a fetch may wait for records: also how long Ctrl-C may take to be noticed.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(250);

/// How records are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The value, or `key<TAB>value` when the record has a key.
    Plain,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    Json,
}

/// `kelp consume TOPIC`.
#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// Topic to read.
    pub topic: String,
    /// Read only these partitions (default: all), repeatable.
    #[arg(short, long = "partition")]
    pub partitions: Vec<i32>,
    /// Where to start: start, end or an offset (with --group: where nothing is committed).
    #[arg(short, long, default_value = "start", value_parser = parse_offset)]
    pub offset: StartOffset,
    /// Stop after this many records (default: follow until Ctrl-C).
    #[arg(short, long)]
    pub num: Option<u64>,
    /// How records are printed.
    #[arg(short, long, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
    /// Resume from and commit to this group's offsets (a simple committer, not a group member).
    #[arg(short, long)]
    pub group: Option<String>,
}

/// `start`, `end` or an offset.
fn parse_offset(text: &str) -> Result<StartOffset, String> {
    match text {
        "start" | "earliest" | "oldest" => Ok(StartOffset::Earliest),
        "end" | "latest" | "newest" => Ok(StartOffset::Latest),
        number => match number.parse::<i64>() {
            Ok(offset) if offset >= 0 => Ok(StartOffset::At(offset)),
            _ => Err(format!(
                "expected start, end or an offset (0 or more), got '{text}'"
            )),
        },
    }
}

/// Prints records until `-n` is reached or SIGINT.
pub async fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted))
        .map_err(|e| CliError::new(format!("cannot handle Ctrl-C: {e}")))?;

    let cluster = args.brokers.connect().await?;
    let topic = &args.topic;
    let meta = cluster.refresh_topic(topic).await?;
    let partitions: Vec<i32> = if args.partitions.is_empty() {
        meta.partitions.iter().map(|p| p.partition).collect()
    } else {
        for &partition in &args.partitions {
            if usize::try_from(partition).map_or(true, |p| p >= meta.partitions.len()) {
                return Err(CliError::new(format!(
                    "topic '{topic}' has no partition {partition}"
                )));
            }
        }
        args.partitions.clone()
    };

    let group = match &args.group {
        Some(group) => {
            let connection = coordinator(&cluster, group).await?;
            let committed = fetch_committed(&connection, group, Some((topic, &partitions))).await?;
            Some((group.as_str(), connection, committed))
        }
        None => None,
    };

    let mut consumer = Consumer::with_cluster(
        cluster,
        ConsumerConfig {
            fetch_max_wait: FETCH_MAX_WAIT,
            ..ConsumerConfig::default()
        },
    );
    for &partition in &partitions {
        let start = group
            .as_ref()
            .and_then(|(_, _, committed)| committed.get(&(topic.clone(), partition)))
            .map_or(args.offset, |&offset| StartOffset::At(offset));
        consumer.assign(topic, &[partition], start);
    }

    let mut printed = 0u64;
    let limit = args.num.unwrap_or(u64::MAX);
    while printed < limit && !interrupted.load(Ordering::Relaxed) {
        let records = consumer.poll().await?;
        // Next offset to read per partition, for what was printed (not all of the batch with -n).
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let take = usize::try_from(limit - printed).unwrap_or(usize::MAX);
        let shown = &records[..records.len().min(take)];
        let written = print(shown, args.format);
        for record in shown {
            next.insert(record.partition, record.offset + 1);
        }
        printed += shown.len() as u64;
        if let Some((group, connection, _)) = &group {
            commit(connection, group, topic, &next).await?;
        }
        match written {
            Ok(()) => {}
            // The reader went away (`| head`): stop quietly, as other tools do.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => break,
            Err(error) => return Err(CliError::new(format!("cannot write to stdout: {error}"))),
        }
    }
    Ok(())
}

/// Writes `records` to stdout in `format`, flushed.
fn print(records: &[ConsumedRecord], format: Format) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for record in records {
        match format {
            Format::Plain => {
                if let Some(key) = &record.key {
                    out.write_all(key)?;
                    out.write_all(b"\t")?;
                }
                out.write_all(record.value.as_deref().unwrap_or_default())?;
                out.write_all(b"\n")?;
            }
            Format::Json => {
                serde_json::to_writer(&mut out, &json(record))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}

/// A record as printed by `--format json`; a struct so the fields keep this order.
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader<'a>>,
}

/// One record header in JSON.
#[derive(serde::Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Option<String>,
}

/// A record as JSON; keys and values as text (invalid UTF-8 replaced), null when absent.
fn json(record: &ConsumedRecord) -> JsonRecord<'_> {
    let text = |bytes: &Option<bytes::Bytes>| {
        bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    JsonRecord {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp_ms,
        key: text(&record.key),
        value: text(&record.value),
        headers: record
            .headers
            .iter()
            .map(|(key, value)| JsonHeader {
                key,
                value: text(value),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_from_words_and_numbers() {
        assert_eq!(parse_offset("start"), Ok(StartOffset::Earliest));
        assert_eq!(parse_offset("end"), Ok(StartOffset::Latest));
        assert_eq!(parse_offset("42"), Ok(StartOffset::At(42)));
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("middle").is_err());
    }
}
