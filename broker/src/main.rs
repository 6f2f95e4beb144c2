//! `kelp`: the Kelp broker binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Start {
            config,
            node_id,
            data_dir,
            listen,
            advertised,
            cores,
        } => {
            let overrides = Overrides {
                config_file: config,
                node_id,
                data_dir,
                listen,
                advertised,
                cores,
            };
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
    }
}
