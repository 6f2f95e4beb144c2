//! `kelp`: the Kelp broker binary, and its client commands (`kelp topic`,
//! `produce`, `consume`, `group`, `cluster`; see `kelp_broker::cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kelp_broker::cli;
use kelp_broker::config::{BrokerConfig, Overrides};

#[derive(Parser)]
#[command(
    name = "kelp",
    version,
    about = "Kelp: a Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (no flags: single node on localhost:9092, data in ./kelp-data).
    Start {
        /// TOML file with broker settings; flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Broker id.
        #[arg(long)]
        node_id: Option<i32>,
        /// Directory for partitions and metadata.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to accept Kafka clients on (IP:PORT).
        #[arg(long)]
        listen: Option<String>,
        /// Address clients are told to connect to (HOST:PORT).
        #[arg(long)]
        advertised: Option<String>,
        /// Shards (one executor per core).
        #[arg(long)]
        cores: Option<usize>,
    },
    /// Create, list, describe, delete topics and alter their configs.
    Topic(cli::topic::TopicArgs),
    /// Produce stdin's lines to a topic, one record per line.
    Produce(cli::produce::ProduceArgs),
    /// Print a topic's records.
    Consume(cli::consume::ConsumeArgs),
    /// List and describe consumer groups, reset their offsets.
    Group(cli::group::GroupArgs),
    /// Show the cluster's brokers, controller and id.
    Cluster(cli::cluster::ClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start {
            config,
            node_id,
            data_dir,
            listen,
            advertised,
            cores,
        } => start(Overrides {
            config_file: config,
            node_id,
            data_dir,
            listen,
            advertised,
            cores,
        }),
        Command::Topic(args) => client_command(|| cli::topic::run(args)),
        Command::Produce(args) => client_command(|| cli::produce::run(args)),
        Command::Consume(args) => client_command(|| cli::consume::run(args)),
        Command::Group(args) => client_command(|| cli::group::run(args)),
        Command::Cluster(args) => client_command(|| cli::cluster::run(args)),
    }
}

/// `kelp start`: runs the broker until SIGTERM or SIGINT.
fn start(overrides: Overrides) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match BrokerConfig::build(&overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kelp: {e}");
            return ExitCode::from(2);
        }
    };
    match kelp_broker::app::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kelp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command; its failure is one line on stderr and exit code 1.
fn client_command<F, Fut>(command: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), cli::CliError>>,
{
    // Logs go to stderr, warnings only by default: stdout is the command's output.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match cli::run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kelp: {error}");
            ExitCode::FAILURE
        }
    }
}
