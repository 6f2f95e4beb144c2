//! `kelp group`: list and describe consumer groups, reset their offsets.
//!
//! Everything goes through the group's coordinator (FindCoordinator), with
//! ListGroups asked of every broker. The offset helpers here
//! ([`fetch_committed`], [`commit`]) are also what `kelp consume --group`
//! uses. A broker that serves no groups (Kelp today) fails each command with
//! "the broker does not support consumer groups (...)".

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kelp_client::{Cluster, Connection};

use super::{
    coordinator, group_error, kafka_error, list_offsets, print_table, str_bytes, topic_name,
    BrokerArgs, CliError,
};

/// ListOffsets' timestamp for the earliest offset.
const EARLIEST: i64 = -2;
/// ListOffsets' timestamp for the latest offset.
const LATEST: i64 = -1;

/// `kelp group ...`.
#[derive(clap::Args, Debug)]
pub struct GroupArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub brokers: BrokerArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The group subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups (asks every broker).
    List,
    /// Show a group's state, members, committed offsets and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Commit new offsets for a group on one topic (the group must have no active members).
    #[command(group(
        clap::ArgGroup::new("target")
            .required(true)
            .args(["to_earliest", "to_latest", "to_offset"])
    ))]
    ResetOffsets {
        /// Group id.
        group: String,
        /// Topic whose offsets are reset.
        #[arg(long)]
        topic: String,
        /// Only these partitions (default: all), repeatable.
        #[arg(short, long = "partition")]
        partitions: Vec<i32>,
        /// Reset to the earliest offset still in the log.
        #[arg(long)]
        to_earliest: bool,
        /// Reset to the end of the log.
        #[arg(long)]
        to_latest: bool,
        /// Reset to this offset.
        #[arg(long, value_name = "N")]
        to_offset: Option<i64>,
    },
}

/// Runs a group subcommand.
pub async fn run(args: GroupArgs) -> Result<(), CliError> {
    let cluster = args.brokers.connect().await?;
    match args.command {
        GroupCommand::List => list(&cluster).await,
        GroupCommand::Describe { group } => describe(&cluster, &group).await,
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to_earliest: _,
            to_latest,
            to_offset,
        } => {
            let target = match (to_latest, to_offset) {
                (_, Some(offset)) => Target::Offset(offset),
                (true, None) => Target::Timestamp(LATEST),
                (false, None) => Target::Timestamp(EARLIEST),
            };
            reset_offsets(&cluster, &group, &topic, &partitions, target).await
        }
    }
}

/// Where `reset-offsets` moves the group.
enum Target {
    /// A ListOffsets timestamp (earliest or latest).
    Timestamp(i64),
    /// An explicit offset.
    Offset(i64),
}

async fn list(cluster: &Rc<Cluster>) -> Result<(), CliError> {
    let nodes: Vec<i32> = cluster.view().brokers.keys().copied().collect();
    let mut rows = Vec::new();
    for node in nodes {
        let connection = cluster.node(node).await?;
        let response = connection
            .call(ListGroupsRequest::default())
            .await
            .map_err(|e| group_error("ListGroups", e))?;
        if let Some(error) = kafka_error(response.error_code, None) {
            return Err(CliError::new(format!(
                "ListGroups failed on broker {node}: {error}"
            )));
        }
        for group in &response.groups {
            let state = group.group_state.as_str();
            rows.push(vec![
                group.group_id.0.as_str().to_owned(),
                if state.is_empty() { "-" } else { state }.to_owned(),
                node.to_string(),
                group.protocol_type.as_str().to_owned(),
            ]);
        }
    }
    rows.sort();
    print_table(&["GROUP", "STATE", "COORDINATOR", "PROTOCOL TYPE"], &rows);
    Ok(())
}

async fn describe(cluster: &Rc<Cluster>, group: &str) -> Result<(), CliError> {
    let connection = coordinator(cluster, group).await?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let response = connection
        .call(request)
        .await
        .map_err(|e| group_error("DescribeGroups", e))?;
    let described = response
        .groups
        .first()
        .ok_or_else(|| CliError::new(format!("DescribeGroups of '{group}' returned nothing")))?;
    if let Some(error) = kafka_error(described.error_code, described.error_message.as_ref()) {
        return Err(CliError::new(format!(
            "cannot describe group '{group}': {error}"
        )));
    }
    println!("GROUP         {group}");
    println!("COORDINATOR   {}", connection.addr());
    println!("STATE         {}", described.group_state.as_str());
    println!("PROTOCOL TYPE {}", described.protocol_type.as_str());
    println!("PROTOCOL      {}", described.protocol_data.as_str());
    println!("MEMBERS       {}", described.members.len());
    if !described.members.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = described
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.as_str().to_owned(),
                    m.client_id.as_str().to_owned(),
                    m.client_host.as_str().to_owned(),
                ]
            })
            .collect();
        print_table(&["MEMBER", "CLIENT ID", "HOST"], &rows);
    }

    let committed = fetch_committed(&connection, group, None).await?;
    println!();
    if committed.is_empty() {
        println!("(no committed offsets)");
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in committed.keys() {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut rows = Vec::new();
    for (topic, partitions) in by_topic {
        // A deleted topic keeps its committed offsets; show them without an end.
        let ends = list_offsets(cluster, topic, &partitions, LATEST)
            .await
            .unwrap_or_default();
        for partition in partitions {
            let offset = committed[&(topic.to_owned(), partition)];
            let (end, lag) = match ends.get(&partition) {
                Some(&end) if offset >= 0 => (end.to_string(), (end - offset).max(0).to_string()),
                Some(&end) => (end.to_string(), "-".to_owned()),
                None => ("-".to_owned(), "-".to_owned()),
            };
            rows.push(vec![
                topic.to_owned(),
                partition.to_string(),
                offset.to_string(),
                end,
                lag,
            ]);
        }
    }
    print_table(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"], &rows);
    Ok(())
}

async fn reset_offsets(
    cluster: &Rc<Cluster>,
    group: &str,
    topic: &str,
    partitions: &[i32],
    target: Target,
) -> Result<(), CliError> {
    let meta = cluster.refresh_topic(topic).await?;
    let partitions: Vec<i32> = if partitions.is_empty() {
        meta.partitions.iter().map(|p| p.partition).collect()
    } else {
        for &partition in partitions {
            if usize::try_from(partition).map_or(true, |p| p >= meta.partitions.len()) {
                return Err(CliError::new(format!(
                    "topic '{topic}' has no partition {partition}"
                )));
            }
        }
        partitions.to_vec()
    };
    let connection = coordinator(cluster, group).await?;
    let offsets: BTreeMap<i32, i64> = match target {
        Target::Timestamp(timestamp) => {
            list_offsets(cluster, topic, &partitions, timestamp).await?
        }
        Target::Offset(offset) => partitions.iter().map(|&p| (p, offset)).collect(),
    };
    commit(&connection, group, topic, &offsets).await?;
    let rows: Vec<Vec<String>> = offsets
        .iter()
        .map(|(p, o)| vec![topic.to_owned(), p.to_string(), o.to_string()])
        .collect();
    println!("Reset the offsets of group '{group}':");
    print_table(&["TOPIC", "PARTITION", "NEW OFFSET"], &rows);
    Ok(())
}

/// The group's committed offsets by (topic, partition): of `topic`'s `partitions`, or of every topic when `None`.
///
/// Partitions without a committed offset are left out.
pub async fn fetch_committed(
    coordinator: &Connection,
    group: &str,
    topic: Option<(&str, &[i32])>,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let version = coordinator.version(ApiKey::OffsetFetch).unwrap_or(0);
    // v8+ asks for several groups at once; earlier versions for one.
    let request = if version >= 8 {
        let topics = topic.map(|(name, partitions)| {
            vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(name))
                .with_partition_indexes(partitions.to_vec())]
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(topics)])
    } else {
        let topics = topic.map(|(name, partitions)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(name))
                .with_partition_indexes(partitions.to_vec())]
        });
        OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(topics)
    };
    let response = coordinator
        .call(request)
        .await
        .map_err(|e| group_error("OffsetFetch", e))?;
    let fail = |error| {
        CliError::new(format!(
            "cannot read the offsets of group '{group}': {error}"
        ))
    };
    // (topic, partition, committed offset, error code), whichever shape the version answers in.
    let mut answers: Vec<(String, i32, i64, i16)> = Vec::new();
    let mut take = |topic: &str, partition: i32, offset: i64, error: i16| {
        answers.push((topic.to_owned(), partition, offset, error));
    };
    if version >= 8 {
        for answer in &response.groups {
            if let Some(error) = kafka_error(answer.error_code, None) {
                return Err(fail(error));
            }
            for t in &answer.topics {
                for p in &t.partitions {
                    take(
                        t.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    );
                }
            }
        }
    } else {
        if let Some(error) = kafka_error(response.error_code, None) {
            return Err(fail(error));
        }
        for t in &response.topics {
            for p in &t.partitions {
                take(
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                );
            }
        }
    }
    let mut committed = BTreeMap::new();
    for (topic, partition, offset, code) in answers {
        if let Some(error) = kafka_error(code, None) {
            return Err(fail(error));
        }
        // -1: nothing committed for this partition.
        if offset >= 0 {
            committed.insert((topic, partition), offset);
        }
    }
    Ok(committed)
}

/// Commits `offsets` (partition to next offset to read) of `topic` for `group`, as a standalone (non-member) commit.
pub async fn commit(
    coordinator: &Connection,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), CliError> {
    if offsets.is_empty() {
        return Ok(());
    }
    // Generation -1 and no member id: Kafka accepts this only while the group has no active members.
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(str_bytes(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(&partition, &offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                    })
                    .collect(),
            )]);
    let response = coordinator
        .call(request)
        .await
        .map_err(|e| group_error("OffsetCommit", e))?;
    for t in &response.topics {
        for p in &t.partitions {
            if let Some(error) = kafka_error(p.error_code, None) {
                return Err(CliError::new(format!(
                    "cannot commit the offset of '{topic}' partition {} for group '{group}': {error}",
                    p.partition_index
                )));
            }
        }
    }
    Ok(())
}
