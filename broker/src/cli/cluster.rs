//! `kelp cluster info`: the brokers, the controller, the cluster id and the topic count.

use super::{print_table, BrokerArgs, CliError};

/// `kelp cluster ...`.
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the brokers, the controller, the cluster id and the topic count.
    Info,
}

/// Runs a cluster subcommand.
pub async fn run(args: ClusterArgs) -> Result<(), CliError> {
    match args.command {
        ClusterCommand::Info => info(&args.brokers).await,
    }
}

async fn info(brokers: &BrokerArgs) -> Result<(), CliError> {
    let cluster = brokers.connect().await?;
    // All topics: the same request also carries the cluster id, which the client's view drops.
    let response = cluster.refresh(None).await?;
    let cluster_id = response
        .cluster_id
        .as_ref()
        .map_or("(none)", |id| id.as_str());
    let controller = response.controller_id.0;
    println!("CLUSTER ID  {cluster_id}");
    println!(
        "CONTROLLER  {}",
        if controller < 0 {
            "none".to_owned()
        } else {
            controller.to_string()
        }
    );
    println!("TOPICS      {}", response.topics.len());
    println!();
    let mut brokers: Vec<(i32, String, String)> = response
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                format!("{}:{}", b.host.as_str(), b.port),
                b.rack
                    .as_ref()
                    .map_or(String::new(), |r| r.as_str().to_owned()),
            )
        })
        .collect();
    brokers.sort();
    let rows: Vec<Vec<String>> = brokers
        .into_iter()
        .map(|(id, addr, rack)| {
            let id = if id == controller {
                format!("{id}*")
            } else {
                id.to_string()
            };
            vec![id, addr, rack]
        })
        .collect();
    print_table(&["ID", "ADDRESS", "RACK"], &rows);
    Ok(())
}
