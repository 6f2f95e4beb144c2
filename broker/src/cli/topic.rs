//! `kelp topic`: create, list, describe, delete and alter the configs of topics.

use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kelp_client::{Admin, Cluster, Error};

use super::{
    kafka_error, kafka_failure, node_list, print_table, str_bytes, topic_name, BrokerArgs, CliError,
};

/// Kafka's resource type TOPIC.
const RESOURCE_TOPIC: i8 = 2;

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// DescribeConfigs' source DEFAULT_CONFIG: the built-in default.
const SOURCE_DEFAULT: i8 = 5;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
/// Removes the topic's override, back to the default.
const OP_DELETE: i8 = 1;

/// How long `create` waits for every partition to have a leader.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// How often `create` re-reads metadata while waiting.
const LEADER_POLL: Duration = Duration::from_millis(50);

/// `kelp topic ...`.
#[derive(clap::Args, Debug)]
pub struct TopicArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The topic subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(short, long, default_value_t = 1)]
        partitions: i32,
        /// Replication factor (default: the broker's).
        #[arg(short, long)]
        replicas: Option<i16>,
        /// Topic config, repeatable (e.g. -c cleanup.policy=compact).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List,
    /// Show a topic's partitions and its non-default configs.
    Describe {
        /// Topic name.
        name: String,
        /// Show every config, defaults included.
        #[arg(short, long)]
        all_configs: bool,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs (IncrementalAlterConfigs).
    AlterConfig {
        /// Topic name.
        name: String,
        /// Config to set, repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        set: Vec<(String, String)>,
        /// Config to reset to its default, repeatable.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

/// Runs a topic subcommand.
pub async fn run(args: TopicArgs) -> Result<(), CliError> {
    let cluster = args.brokers.connect().await?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replicas,
            configs,
        } => create(&cluster, &name, partitions, replicas, &configs).await,
        TopicCommand::List => list(&cluster).await,
        TopicCommand::Describe { name, all_configs } => {
            describe(&cluster, &name, all_configs).await
        }
        TopicCommand::Delete { names } => delete(&cluster, &names).await,
        TopicCommand::AlterConfig { name, set, delete } => {
            alter_config(&cluster, &name, &set, &delete).await
        }
    }
}

async fn create(
    cluster: &Rc<Cluster>,
    name: &str,
    partitions: i32,
    replicas: Option<i16>,
    configs: &[(String, String)],
) -> Result<(), CliError> {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        // -1 asks for the broker's default.
        .with_replication_factor(replicas.unwrap_or(-1))
        .with_configs(
            configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(str_bytes(key))
                        .with_value(Some(str_bytes(value)))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(millis(LEADER_WAIT));
    let response = cluster.controller().await?.call(request).await?;
    let result = response
        .topics
        .iter()
        .find(|t| t.name.as_str() == name)
        .ok_or_else(|| CliError::new(format!("the broker did not answer for topic '{name}'")))?;
    match result.error_code {
        0 => {}
        TOPIC_ALREADY_EXISTS => {
            return Err(CliError::new(format!("topic '{name}' already exists")))
        }
        code => {
            let error = kafka_failure(code, result.error_message.as_ref());
            return Err(CliError::new(format!(
                "cannot create topic '{name}': {error}"
            )));
        }
    }
    // Creation spreads asynchronously; wait so that producing right after works.
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        match cluster.refresh_topic(name).await {
            Ok(topic) if topic.partitions.iter().all(|p| p.leader >= 0) => break,
            Ok(_) | Err(Error::UnknownTopic(_)) if Instant::now() < deadline => {
                glommio::timer::sleep(LEADER_POLL).await;
            }
            Ok(_) => {
                return Err(CliError::new(format!(
                    "topic '{name}' was created but not every partition has a leader after {LEADER_WAIT:?}"
                )))
            }
            Err(error) => return Err(error.into()),
        }
    }
    println!("Created topic '{name}' ({partitions} partitions)");
    Ok(())
}

async fn list(cluster: &Rc<Cluster>) -> Result<(), CliError> {
    let admin = Admin::with_cluster(cluster.clone());
    let topics = admin.list_topics().await?;
    let view = cluster.view();
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            let replicas = view
                .topics
                .get(&t.name)
                .and_then(|meta| meta.partitions.first())
                .map_or(0, |p| p.replicas.len());
            vec![
                t.name.clone(),
                t.partitions.to_string(),
                replicas.to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
    Ok(())
}

async fn describe(cluster: &Rc<Cluster>, name: &str, all_configs: bool) -> Result<(), CliError> {
    let admin = Admin::with_cluster(cluster.clone());
    let topic = admin.describe_topic(name).await?;
    println!("NAME        {}", topic.name);
    println!("INTERNAL    {}", topic.is_internal);
    println!("PARTITIONS  {}", topic.partitions.len());
    println!();

    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None)]);
    let response = cluster.any_connection().await?.call(request).await?;
    let result = response
        .results
        .first()
        .ok_or_else(|| CliError::new(format!("DescribeConfigs of '{name}' returned nothing")))?;
    if let Some(error) = kafka_error(result.error_code, result.error_message.as_ref()) {
        return Err(CliError::new(format!(
            "cannot describe the configs of '{name}': {error}"
        )));
    }
    let mut rows: Vec<Vec<String>> = result
        .configs
        .iter()
        .filter(|c| all_configs || c.config_source != SOURCE_DEFAULT)
        .map(|c| {
            let value = if c.is_sensitive {
                "(sensitive)".to_owned()
            } else {
                c.value
                    .as_ref()
                    .map_or_else(|| "(null)".to_owned(), |v| v.as_str().to_owned())
            };
            vec![
                c.name.as_str().to_owned(),
                value,
                source_name(c.config_source).to_owned(),
            ]
        })
        .collect();
    rows.sort();
    if rows.is_empty() {
        println!("CONFIGS     (all defaults)");
    } else {
        print_table(&["KEY", "VALUE", "SOURCE"], &rows);
    }
    println!();

    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                if p.leader < 0 {
                    "none".to_owned()
                } else {
                    p.leader.to_string()
                },
                node_list(&p.replicas),
                node_list(&p.isr),
            ]
        })
        .collect();
    print_table(&["PARTITION", "LEADER", "REPLICAS", "ISR"], &rows);
    Ok(())
}

/// Deletes each topic; one failure does not stop the others, but fails the command.
async fn delete(cluster: &Rc<Cluster>, names: &[String]) -> Result<(), CliError> {
    let admin = Admin::with_cluster(cluster.clone());
    let mut failed = Vec::new();
    for name in names {
        match admin.delete_topic(name).await {
            Ok(()) => println!("Deleted topic '{name}'"),
            Err(error) => {
                let error = CliError::from(error);
                eprintln!("kelp: cannot delete topic '{name}': {error}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{} of {} topics not deleted",
            failed.len(),
            names.len()
        )))
    }
}

async fn alter_config(
    cluster: &Rc<Cluster>,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), CliError> {
    if set.is_empty() && delete.is_empty() {
        return Err(CliError::new(
            "nothing to alter: give --set KEY=VALUE or --delete KEY",
        ));
    }
    let mut configs: Vec<AlterableConfig> = set
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(str_bytes(key))
                .with_config_operation(OP_SET)
                .with_value(Some(str_bytes(value)))
        })
        .collect();
    configs.extend(delete.iter().map(|key| {
        AlterableConfig::default()
            .with_name(str_bytes(key))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    }));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(name))
            .with_configs(configs),
    ]);
    let response = cluster.controller().await?.call(request).await?;
    let result = response.responses.first().ok_or_else(|| {
        CliError::new(format!(
            "IncrementalAlterConfigs of '{name}' returned nothing"
        ))
    })?;
    match result.error_code {
        0 => {}
        UNKNOWN_TOPIC_OR_PARTITION => {
            return Err(CliError::new(format!("topic '{name}' does not exist")))
        }
        code => {
            let error = kafka_failure(code, result.error_message.as_ref());
            return Err(CliError::new(format!(
                "cannot alter the configs of '{name}': {error}"
            )));
        }
    }
    for (key, value) in set {
        println!("Set {key}={value} on topic '{name}'");
    }
    for key in delete {
        println!("Reset {key} to its default on topic '{name}'");
    }
    Ok(())
}

/// Kafka's name for a config source.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// A duration as Kafka's i32 milliseconds, saturating.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
