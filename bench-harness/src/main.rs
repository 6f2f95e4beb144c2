//! `kelp-bench`: runs a scenario against a Kafka-compatible broker.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kelp_bench::run::{run, Client, Options};
use kelp_bench::scenario::{Rate, Scenario};

/// Load generator and latency recorder for Kafka-compatible brokers.
#[derive(Debug, Parser)]
#[command(name = "kelp-bench", version)]
struct Args {
    /// The broker's address, HOST:PORT.
    #[arg(long, default_value = "localhost:9092")]
    bootstrap: String,
    /// The scenario file (bench-harness/scenarios/NAME.toml).
    #[arg(long)]
    scenario: PathBuf,
    /// Seconds to measure (overrides the scenario).
    #[arg(long)]
    duration: Option<u64>,
    /// Seconds of warm-up before measuring.
    #[arg(long)]
    warmup: Option<u64>,
    /// Partitions of the topic.
    #[arg(long)]
    partitions: Option<i32>,
    /// Producer clients.
    #[arg(long)]
    producers: Option<usize>,
    /// Consumer clients.
    #[arg(long)]
    consumers: Option<usize>,
    /// Bytes per record value.
    #[arg(long)]
    message_size: Option<usize>,
    /// Produce acks: -1, 0 or 1.
    #[arg(long, allow_hyphen_values = true)]
    acks: Option<i16>,
    /// Producer batch size in bytes.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Producer linger in milliseconds.
    #[arg(long)]
    linger_ms: Option<u64>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long)]
    compression: Option<String>,
    /// Target messages per second (open loop); 0 for as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Cores (executors) for the harness itself.
    #[arg(long)]
    harness_cores: Option<usize>,
    /// Topic name (default kelp-bench-<scenario>).
    #[arg(long)]
    topic: Option<String>,
    /// Records written before a consume run reads.
    #[arg(long)]
    prefill: Option<u64>,
    /// Where result files go.
    #[arg(long, default_value = "target/kelp-bench")]
    out: PathBuf,
    /// The producers' client: kelp (kelp-client), rdkafka (librdkafka, a
    /// cross-check) or rdkafka-idempotent (librdkafka with
    /// `enable.idempotence`, which implies acks=-1).
    #[arg(long, default_value = "kelp", value_parser = ["kelp", "rdkafka", "rdkafka-idempotent"])]
    client: String,
    /// librdkafka's `max.in.flight.requests.per.connection` (rdkafka clients;
    /// an idempotent producer allows at most 5).
    #[arg(long)]
    max_in_flight: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut scenario = match Scenario::load(&args.scenario) {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("kelp-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    apply(&mut scenario, &args);
    if let Err(e) = scenario.check() {
        eprintln!("kelp-bench: {e}");
        return ExitCode::FAILURE;
    }
    // A cross-check run keeps its files apart from the kelp-client run's.
    let out_dir = if args.client == "kelp" {
        args.out.clone()
    } else {
        args.out.join(&args.client)
    };
    let options = Options {
        bootstrap: args.bootstrap.clone(),
        out_dir,
        client: match args.client.as_str() {
            "rdkafka" => Client::Rdkafka {
                idempotent: false,
                max_in_flight: args.max_in_flight,
            },
            "rdkafka-idempotent" => Client::Rdkafka {
                idempotent: true,
                max_in_flight: args.max_in_flight,
            },
            _ => Client::Kelp,
        },
    };
    match run(&scenario, &options) {
        Ok(report) => {
            println!("{}", report.result_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kelp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line overrides of the scenario file.
fn apply(scenario: &mut Scenario, args: &Args) {
    macro_rules! set {
        ($($field:ident <- $arg:expr),* $(,)?) => {
            $(if let Some(value) = $arg.clone() { scenario.$field = value; })*
        };
    }
    set!(
        duration_seconds <- args.duration,
        warmup_seconds <- args.warmup,
        partitions <- args.partitions,
        producers <- args.producers,
        consumers <- args.consumers,
        message_size <- args.message_size,
        acks <- args.acks,
        batch_size <- args.batch_size,
        linger_ms <- args.linger_ms,
        compression <- args.compression,
        harness_cores <- args.harness_cores,
        prefill_messages <- args.prefill,
    );
    if let Some(topic) = &args.topic {
        scenario.topic = Some(topic.clone());
    }
    if let Some(rate) = args.rate {
        scenario.rate = if rate == 0 {
            Rate::Max
        } else {
            Rate::PerSecond(rate)
        };
    }
}
