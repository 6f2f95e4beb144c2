//! `kelp produce`: one record per stdin line, optionally keyed.
//!
//! Stdin is read on glommio's blocking thread pool, a chunk of lines at a
//! time (the chunk ends early when no more input is buffered, so a line
//! typed at a terminal goes out at once). Each chunk is sent through the
//! batching producer and its deliveries are awaited before the next chunk
//! is read: the memory held is bounded by one chunk.

use std::io::{BufRead, BufReader, Stdin};
use std::rc::Rc;

use bytes::Bytes;
use kelp_client::{Compression, Producer, ProducerConfig, ProducerRecord};

use super::{BrokerArgs, CliError};

/// Stdin, buffered here so a chunk can tell when no more input is waiting.
type Input = BufReader<Stdin>;

/// Bytes of stdin buffered.
const STDIN_BUFFER_BYTES: usize = 64 * 1024;

/// The most lines read and sent before their deliveries are awaited.
const CHUNK_LINES: usize = 1000;

/// How many failed records are reported one by one before only counting.
const ERRORS_SHOWN: usize = 5;

/// A compression codec as named on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionArg {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(arg: CompressionArg) -> Compression {
        match arg {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// `kelp produce TOPIC`.
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// Topic to produce to.
    pub topic: String,
    /// Split each line at the first SEP: the part before is the key, the rest the value.
    #[arg(short = 'k', long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Write every record to this partition (default: by key hash, round robin without a key).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for: -1 (all in-sync replicas), 0 (none), 1 (the leader).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub acks: i16,
    /// How batches are compressed.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
}

/// Produces stdin's lines; fails if any record failed.
pub async fn run(args: ProduceArgs) -> Result<(), CliError> {
    if let Some(separator) = &args.key_separator {
        if separator.is_empty() {
            return Err(CliError::new("the key separator must not be empty"));
        }
    }
    let cluster = args.brokers.connect().await?;
    // Check the topic (and partition) first: a typo should fail before stdin is read.
    let meta = cluster.refresh_topic(&args.topic).await?;
    if let Some(partition) = args.partition {
        meta.leader(partition)?;
    }
    let producer = Producer::with_cluster(
        cluster,
        ProducerConfig {
            acks: args.acks,
            compression: args.compression.into(),
            ..ProducerConfig::default()
        },
    )?;
    let topic: Rc<str> = Rc::from(args.topic.as_str());
    let mut stdin = Some(BufReader::with_capacity(
        STDIN_BUFFER_BYTES,
        std::io::stdin(),
    ));
    let mut produced = 0u64;
    let mut failed = 0u64;
    while let Some(reader) = stdin.take() {
        let (reader, lines) = glommio::executor()
            .spawn_blocking(move || read_chunk(reader))
            .await;
        let lines = lines.map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
        if lines.is_empty() {
            break;
        }
        stdin = Some(reader);
        let mut deliveries = Vec::with_capacity(lines.len());
        for line in lines {
            let record = record(&topic, line, args.key_separator.as_deref(), args.partition);
            deliveries.push(producer.send_async(record).await);
        }
        producer.flush().await;
        for delivery in deliveries {
            match delivery.await {
                Ok(_) => produced += 1,
                Err(error) => {
                    failed += 1;
                    if failed <= ERRORS_SHOWN as u64 {
                        eprintln!("kelp: record not produced: {}", CliError::from(error));
                    }
                }
            }
        }
    }
    producer.close().await;
    println!("Produced {produced} records to topic '{topic}', {failed} failed");
    if failed > 0 {
        return Err(CliError::new(format!("{failed} records were not produced")));
    }
    Ok(())
}

/// Reads up to `CHUNK_LINES` lines, stopping early when nothing more is buffered; empty at end of input.
fn read_chunk(mut reader: Input) -> (Input, std::io::Result<Vec<Vec<u8>>>) {
    let mut lines = Vec::new();
    while lines.len() < CHUNK_LINES {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                lines.push(line);
            }
            Err(error) => return (reader, Err(error)),
        }
        if reader.buffer().is_empty() {
            break;
        }
    }
    (reader, Ok(lines))
}

/// The record for one line: split at the first `separator` into key and value.
fn record(
    topic: &Rc<str>,
    line: Vec<u8>,
    separator: Option<&str>,
    partition: Option<i32>,
) -> ProducerRecord {
    let (key, value) = match separator.and_then(|sep| split_once(&line, sep.as_bytes())) {
        Some((key, value)) => (
            Some(Bytes::copy_from_slice(key)),
            Bytes::copy_from_slice(value),
        ),
        None => (None, Bytes::from(line)),
    };
    let mut record = ProducerRecord::new(topic.clone(), value);
    record.key = key;
    record.partition = partition;
    record
}

/// `line` split around the first `separator`.
fn split_once<'a>(line: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = line
        .windows(separator.len())
        .position(|window| window == separator)?;
    Some((&line[..at], &line[at + separator.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_once(b"k::v::w", b"::"),
            Some((&b"k"[..], &b"v::w"[..]))
        );
        assert_eq!(split_once(b"no separator", b"::"), None);
        assert_eq!(split_once(b"=v", b"="), Some((&b""[..], &b"v"[..])));
    }
}
