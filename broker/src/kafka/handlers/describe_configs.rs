//! DescribeConfigs (key 32), v1-4 (Kafka 4's range): the configs of a
//! topic (resource type 2) or of this broker (type 4, named by its node
//! id).
//!
//! A topic reports every topic config of Kafka 4, each with the sources it
//! has, highest first: the topic's override (DYNAMIC_TOPIC_CONFIG), this
//! broker's dynamic config (DYNAMIC_BROKER_CONFIG), the cluster-wide
//! dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG, the BROKER resource
//! named ""), the broker's config file (STATIC_BROKER_CONFIG) and the
//! built-in default (DEFAULT_CONFIG). A broker reports its topic-default
//! configs the same way (alterable) and its static settings read-only; the
//! "" resource reports the dynamic defaults that are set.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::TopicDefaults;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::configs::{self, ConfigType};
use crate::topics::{name, TopicMeta, TopicStore, CLUSTER_DEFAULT};

/// Resource type TOPIC.
pub const RESOURCE_TOPIC: i8 = 2;
/// Resource type BROKER.
pub const RESOURCE_BROKER: i8 = 4;

/// Config sources, as Kafka numbers them.
pub mod source {
    /// An override set on the topic.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// A dynamic config of this broker.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// The cluster-wide dynamic default.
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// Set in the broker's static configuration (Kelp's config file).
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// The built-in default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One described config before it is put on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Config name.
    pub name: String,
    /// Effective value.
    pub value: String,
    /// Where the value comes from.
    pub source: i8,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Kafka type.
    pub config_type: ConfigType,
    /// (name, value, source), highest precedence first.
    pub synonyms: Vec<(String, String, i8)>,
}

/// Answers a DescribeConfigs request.
pub async fn handle(
    shard: &Shard,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            // As Kafka: no keys (null or empty) means every config.
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .filter(|keys| !keys.is_empty())
                .map(|keys| keys.iter().map(ToString::to_string).collect());
            match describe(shard, resource.resource_type, &name) {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                        .map(|e| wire(e, request.include_synonyms, version))
                        .collect(),
                ),
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The configs of one resource, or the error to answer with.
pub fn describe(
    shard: &Shard,
    resource_type: i8,
    name: &str,
) -> Result<Vec<Entry>, (ErrorCode, String)> {
    match resource_type {
        RESOURCE_TOPIC => {
            name::validate(name).map_err(|m| (ErrorCode::InvalidTopicException, m))?;
            let store = shard.topics();
            let meta = store.topics.get(name).ok_or_else(|| {
                (
                    ErrorCode::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                )
            })?;
            Ok(topic_entries(
                meta,
                &shard.config.topic_defaults,
                &store,
                shard.config.node_id,
            ))
        }
        RESOURCE_BROKER => {
            check_broker_name(shard, name)?;
            let store = shard.topics();
            if name == CLUSTER_DEFAULT {
                return Ok(cluster_default_entries(&store));
            }
            Ok(broker_entries(
                shard.config.node_id,
                &shard.config.topic_defaults,
                &store,
            ))
        }
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

/// Checks a BROKER resource name: this node's id, or "" (the cluster-wide
/// dynamic default).
pub fn check_broker_name(shard: &Shard, name: &str) -> Result<(), (ErrorCode, String)> {
    let node = shard.config.node_id;
    if name != node.to_string() && name != CLUSTER_DEFAULT {
        return Err((
            ErrorCode::InvalidRequest,
            format!("Unexpected broker id, expected {node}, but received {name}"),
        ));
    }
    Ok(())
}

/// The synonyms of a config, highest precedence first, from the dynamic
/// layers that set it, the broker's config file (when it differs from the
/// built-in default) and the built-in default.
fn layered(
    dynamic: Vec<(String, String, i8)>,
    broker_name: &str,
    static_value: String,
    default_value: String,
) -> Vec<(String, String, i8)> {
    let mut synonyms = dynamic;
    if static_value != default_value {
        synonyms.push((
            broker_name.to_owned(),
            static_value,
            source::STATIC_BROKER_CONFIG,
        ));
    }
    synonyms.push((
        broker_name.to_owned(),
        default_value,
        source::DEFAULT_CONFIG,
    ));
    synonyms
}

/// The dynamic broker-level values of `def` in force on `node`: this
/// broker's, then the cluster default.
fn dynamic_broker_values(
    def: &configs::Def,
    store: &TopicStore,
    node: i32,
) -> Vec<(String, String, i8)> {
    let Some(broker_name) = def.broker_name else {
        return Vec::new();
    };
    [
        (node.to_string(), source::DYNAMIC_BROKER_CONFIG),
        (
            CLUSTER_DEFAULT.to_owned(),
            source::DYNAMIC_DEFAULT_BROKER_CONFIG,
        ),
    ]
    .into_iter()
    .filter_map(|(layer, source)| {
        let value = store.broker_configs.get(&layer)?.get(broker_name)?;
        Some((broker_name.to_owned(), value.clone(), source))
    })
    .collect()
}

/// Every topic config of a topic.
pub fn topic_entries(
    meta: &TopicMeta,
    defaults: &TopicDefaults,
    store: &TopicStore,
    node: i32,
) -> Vec<Entry> {
    let effective = defaults.log_config();
    let builtin = TopicDefaults::default().log_config();
    configs::DEFS
        .iter()
        .map(|def| {
            let name = def.name;
            let mut dynamic = Vec::new();
            if let Some(value) = meta.configs.get(name) {
                dynamic.push((name.to_owned(), value.clone(), source::DYNAMIC_TOPIC_CONFIG));
            }
            dynamic.extend(dynamic_broker_values(def, store, node));
            let synonyms = layered(
                dynamic,
                def.broker_name.unwrap_or(name),
                configs::value_of(&effective, name).unwrap_or_default(),
                configs::value_of(&builtin, name).unwrap_or_default(),
            );
            let (_, value, source) = synonyms[0].clone();
            Entry {
                name: name.to_owned(),
                value,
                source,
                read_only: false,
                config_type: def.kind,
                synonyms,
            }
        })
        .collect()
}

/// The configs of this broker: its static settings (read-only) and the
/// topic defaults, which can be changed at run time.
pub fn broker_entries(node_id: i32, defaults: &TopicDefaults, store: &TopicStore) -> Vec<Entry> {
    let builtin = TopicDefaults::default();
    let mut entries = vec![entry(
        "node.id",
        node_id.to_string(),
        "0".to_owned(),
        ConfigType::Int,
    )];
    entries.push(entry(
        "num.partitions",
        defaults.num_partitions.to_string(),
        builtin.num_partitions.to_string(),
        ConfigType::Int,
    ));
    entries.push(entry(
        "auto.create.topics.enable",
        defaults.auto_create_topics.to_string(),
        builtin.auto_create_topics.to_string(),
        ConfigType::Boolean,
    ));
    let (effective, builtin) = (defaults.log_config(), builtin.log_config());
    for def in configs::DEFS {
        let Some(broker_name) = def.broker_name else {
            continue;
        };
        let synonyms = layered(
            dynamic_broker_values(def, store, node_id),
            broker_name,
            configs::value_of(&effective, def.name).unwrap_or_default(),
            configs::value_of(&builtin, def.name).unwrap_or_default(),
        );
        let (_, value, source) = synonyms[0].clone();
        entries.push(Entry {
            name: broker_name.to_owned(),
            value,
            source,
            read_only: false,
            config_type: def.kind,
            synonyms,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The cluster-wide dynamic defaults that are set.
pub fn cluster_default_entries(store: &TopicStore) -> Vec<Entry> {
    store
        .broker_configs
        .get(CLUSTER_DEFAULT)
        .into_iter()
        .flatten()
        .map(|(name, value)| Entry {
            name: name.clone(),
            value: value.clone(),
            source: source::DYNAMIC_DEFAULT_BROKER_CONFIG,
            read_only: false,
            config_type: configs::config_type(name),
            synonyms: vec![(
                name.clone(),
                value.clone(),
                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
            )],
        })
        .collect()
}

fn entry(name: &str, value: String, default: String, config_type: ConfigType) -> Entry {
    let source = if value == default {
        source::DEFAULT_CONFIG
    } else {
        source::STATIC_BROKER_CONFIG
    };
    let mut synonyms = vec![(name.to_owned(), value.clone(), source)];
    if source != source::DEFAULT_CONFIG {
        synonyms.push((name.to_owned(), default, source::DEFAULT_CONFIG));
    }
    Entry {
        name: name.to_owned(),
        value,
        source,
        read_only: true,
        config_type,
        synonyms,
    }
}

fn wire(entry: Entry, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_source(source)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(Some(StrBytes::from_string(entry.value)))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_documentation(None);
    // The config type exists from v3 on.
    if version >= 3 {
        result.config_type = entry.config_type as i8;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn topic(configs: &[(&str, &str)]) -> TopicMeta {
        TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partition_shards: vec![],
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn topic_sources_follow_kafka() {
        let defaults = TopicDefaults {
            segment_bytes: 1 << 20,
            ..TopicDefaults::default()
        };
        let entries = topic_entries(
            &topic(&[("retention.ms", "1000")]),
            &defaults,
            &TopicStore::default(),
            0,
        );
        assert_eq!(entries.len(), configs::DEFS.len());
        let retention = find(&entries, "retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("1000", source::DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(retention.synonyms.len(), 2);
        assert_eq!(retention.synonyms[1].0, "log.retention.ms");
        let segment = find(&entries, "segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("1048576", source::STATIC_BROKER_CONFIG)
        );
        let cleanup = find(&entries, "cleanup.policy");
        assert_eq!(
            (cleanup.value.as_str(), cleanup.source, cleanup.config_type),
            ("delete", source::DEFAULT_CONFIG, ConfigType::List)
        );
        assert!(entries.iter().all(|e| !e.read_only));
    }

    #[test]
    fn broker_entries_report_static_and_dynamic_sources() {
        let defaults = TopicDefaults {
            num_partitions: 3,
            ..TopicDefaults::default()
        };
        let entries = broker_entries(7, &defaults, &TopicStore::default());
        let partitions = find(&entries, "num.partitions");
        assert_eq!(
            (partitions.value.as_str(), partitions.source),
            ("3", source::STATIC_BROKER_CONFIG)
        );
        let retention = find(&entries, "log.retention.ms");
        assert_eq!(retention.source, source::DEFAULT_CONFIG);
        assert_eq!(find(&entries, "node.id").value, "7");
        assert!(find(&entries, "node.id").read_only);
        assert!(!retention.read_only, "topic defaults change at run time");
    }

    #[test]
    fn dynamic_broker_layers_rank_between_topic_and_static() {
        let mut store = TopicStore::default();
        let layer = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        store.broker_configs.insert(
            CLUSTER_DEFAULT.to_owned(),
            layer(&[
                ("log.retention.ms", "5000"),
                ("log.segment.bytes", "2000000"),
            ]),
        );
        store
            .broker_configs
            .insert("7".to_owned(), layer(&[("log.retention.ms", "6000")]));
        let defaults = TopicDefaults::default();
        let entries = topic_entries(
            &topic(&[("segment.bytes", "3000000")]),
            &defaults,
            &store,
            7,
        );
        let retention = find(&entries, "retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("6000", source::DYNAMIC_BROKER_CONFIG)
        );
        let sources: Vec<i8> = retention.synonyms.iter().map(|s| s.2).collect();
        assert_eq!(
            sources,
            vec![
                source::DYNAMIC_BROKER_CONFIG,
                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                source::DEFAULT_CONFIG
            ]
        );
        let segment = find(&entries, "segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("3000000", source::DYNAMIC_TOPIC_CONFIG)
        );
        // Another broker sees only the cluster default.
        let other = topic_entries(&topic(&[]), &defaults, &store, 8);
        assert_eq!(find(&other, "retention.ms").value, "5000");
        let broker = broker_entries(7, &defaults, &store);
        assert_eq!(find(&broker, "log.retention.ms").value, "6000");
        let cluster = cluster_default_entries(&store);
        assert_eq!(cluster.len(), 2);
        assert!(cluster
            .iter()
            .all(|e| e.source == source::DYNAMIC_DEFAULT_BROKER_CONFIG));
        // The log config follows the same layers.
        let overrides = store.effective_overrides(7, None);
        assert_eq!(overrides["retention.ms"], "6000");
        assert_eq!(overrides["segment.bytes"], "2000000");
        // One config at a time, with the same precedence.
        let plain = topic(&[("segment.bytes", "3000000")]);
        assert_eq!(store.override_of(7, &plain, "retention.ms"), Some("6000"));
        assert_eq!(store.override_of(8, &plain, "retention.ms"), Some("5000"));
        assert_eq!(
            store.override_of(7, &plain, "segment.bytes"),
            Some("3000000")
        );
        assert_eq!(store.override_of(7, &plain, "min.insync.replicas"), None);
    }

    #[test]
    fn config_type_is_set_only_from_v3() {
        use kafka_protocol::protocol::Encodable;
        let entries = topic_entries(
            &topic(&[]),
            &TopicDefaults::default(),
            &TopicStore::default(),
            0,
        );
        for version in 1..=4 {
            let result = wire(entries[0].clone(), true, version);
            assert_eq!(result.config_type != 0, version >= 3);
            let mut buf = bytes::BytesMut::new();
            result.encode(&mut buf, version).unwrap();
        }
    }
}
