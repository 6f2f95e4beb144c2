//! Metadata (key 3), v0-12: brokers, topics, partitions with leader,
//! replicas and ISR (this node, until replication lands), topic ids, and
//! topic auto-creation when allowed.

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::auto_create;
use crate::shard::Shard;
use crate::topics::TopicMeta;

/// Kafka's "authorized operations not provided" value.
const OPERATIONS_NOT_PROVIDED: i32 = i32::MIN;

/// Answers a Metadata request.
pub async fn handle(shard: &Rc<Shard>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node = BrokerId(shard.config.node_id);
    let broker = MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(StrBytes::from_string(shard.config.advertised_host.clone()))
        .with_port(i32::from(shard.config.advertised_port));
    // Metadata v0 has no way to ask for "all topics" but an empty list.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let may_create =
        request.allow_auto_topic_creation && shard.config.topic_defaults.auto_create_topics;
    let mut topics = Vec::new();
    match wanted {
        None => {
            let store = shard.topics();
            topics.extend(
                store
                    .topics
                    .values()
                    .map(|meta| topic_entry(meta, node, version)),
            );
        }
        Some(list) => {
            for (name, id) in list {
                // As Kafka: a topic id, when given, decides, whatever the
                // name (the Java admin client sends "" with an id).
                let by_id = !id.is_nil();
                let found = {
                    let store = shard.topics();
                    if by_id {
                        store.topics.values().find(|t| t.id == id).cloned()
                    } else {
                        name.as_ref().and_then(|n| store.topics.get(n).cloned())
                    }
                };
                let entry = match (found, name) {
                    (Some(meta), _) => topic_entry(&meta, node, version),
                    (None, _) if by_id => error_entry(None, id, ErrorCode::UnknownTopicId, version),
                    (None, Some(name)) if may_create => match auto_create(shard, &name).await {
                        Ok(meta) => topic_entry(&meta, node, version),
                        Err(code) => error_entry(Some(name), id, code, version),
                    },
                    (None, name) => {
                        error_entry(name, id, ErrorCode::UnknownTopicOrPartition, version)
                    }
                };
                topics.push(entry);
            }
        }
    }
    let cluster_id = shard.topics().cluster_id.clone();
    // Fields are set only from the version that has them: kafka-protocol
    // refuses to encode a non-default value in a field a version lacks.
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = node;
    }
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(cluster_id));
    }
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = OPERATIONS_NOT_PROVIDED;
    }
    response
}

fn topic_entry(meta: &TopicMeta, node: BrokerId, version: i16) -> MetadataResponseTopic {
    let partitions = (0..meta.partition_shards.len() as i32)
        .map(|index| {
            // The partition leader epoch field exists from v7 (default -1 before).
            let epoch = if version >= 7 { 0 } else { -1 };
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    let mut topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
        .with_partitions(partitions);
    set_versioned(&mut topic, meta.id, meta.name.starts_with("__"), version);
    topic
}

/// Sets the topic fields that exist only from some version on.
fn set_versioned(topic: &mut MetadataResponseTopic, id: uuid::Uuid, internal: bool, version: i16) {
    if version >= 1 {
        topic.is_internal = internal;
    }
    if version >= 8 {
        topic.topic_authorized_operations = OPERATIONS_NOT_PROVIDED;
    }
    if version >= 10 {
        topic.topic_id = id;
    }
}

fn error_entry(
    name: Option<String>,
    id: uuid::Uuid,
    code: ErrorCode,
    version: i16,
) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))));
    set_versioned(&mut topic, id, false, version);
    topic
}
