//! Topic configs through librdkafka's admin client (DescribeConfigs,
//! AlterConfigs) and raw kafka-protocol requests (IncrementalAlterConfigs,
//! and the error messages librdkafka does not surface) against a real
//! `kelp` process: sources, overrides surviving a restart, validation.

mod common;

use std::time::Duration;

use common::raw::call;
use common::{admin, Broker};
use futures_executor::block_on;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

const DEFAULT_RETENTION_MS: &str = "604800000";

fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

fn describe(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<rdkafka::admin::ConfigResource, RDKafkaErrorCode> {
    let mut results =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options()))
            .expect("describe configs");
    results.remove(0)
}

/// One legacy AlterConfigs (v1) of a single config; (error code, message).
fn legacy_alter(broker: &Broker, topic: &str, name: &str, value: &str) -> (i16, Option<String>) {
    use kafka_protocol::messages::alter_configs_request;
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_owned()))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(name.to_owned()))
                .with_value(Some(StrBytes::from_string(value.to_owned())))]),
    ]);
    let response = call(broker, 1, &request);
    let result = &response.responses[0];
    (
        result.error_code,
        result.error_message.as_ref().map(ToString::to_string),
    )
}

fn op(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
    AlterableConfig::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_config_operation(operation)
        .with_value(value.map(|v| StrBytes::from_string(v.to_owned())))
}

fn incremental(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    ops: Vec<AlterableConfig>,
    validate_only: bool,
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configs(ops)]);
    let response = call(broker, 1, &request);
    let result = &response.responses[0];
    (
        result.error_code,
        result.error_message.as_ref().map(ToString::to_string),
    )
}

/// (value, source) of each named config of a topic, at `version`.
fn raw_describe(
    broker: &Broker,
    version: i16,
    topic: &str,
    keys: &[&str],
) -> Vec<(String, String, i8, i8)> {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_owned()))
            .with_configuration_keys(Some(
                keys.iter()
                    .map(|k| StrBytes::from_string((*k).to_owned()))
                    .collect(),
            ))]);
    let response = call(broker, version, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                c.config_source,
                c.config_type,
            )
        })
        .collect()
}

#[test]
fn topic_configs_describe_alter_and_survive_a_restart() {
    let mut broker = Broker::start();
    let client = admin(&broker);
    let topic = NewTopic::new("configs-a", 2, TopicReplication::Fixed(1));
    let created = block_on(client.create_topics([&topic], &options())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let described = describe(&client, "configs-a").expect("topic described");
    let retention = described.get("retention.ms").expect("retention.ms listed");
    assert_eq!(retention.value.as_deref(), Some(DEFAULT_RETENTION_MS));
    assert_eq!(retention.source, ConfigSource::Default);
    assert!(retention.is_default && !retention.is_read_only && !retention.is_sensitive);
    assert!(described.get("cleanup.policy").is_some());

    let alter = AlterConfig::new(ResourceSpecifier::Topic("configs-a"))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "compact");
    let altered = block_on(client.alter_configs([&alter], &options())).unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    let check = |client: &AdminClient<DefaultClientContext>| {
        let described = describe(client, "configs-a").expect("topic described");
        let retention = described.get("retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.source, ConfigSource::DynamicTopic);
        assert!(!retention.is_default);
        let cleanup = described.get("cleanup.policy").unwrap();
        assert_eq!(cleanup.value.as_deref(), Some("compact"));
        assert_eq!(cleanup.source, ConfigSource::DynamicTopic);
    };
    check(&client);
    drop(client);

    // The overrides are durable.
    let dir = broker.take_dir();
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    assert!(broker.stop().success());
    let broker = Broker::start_in(&data_dir, port);
    let client = admin(&broker);
    check(&client);

    // AlterConfigs replaces the whole set: cleanup.policy goes back to default.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("configs-a")).set("retention.ms", "1000");
    let altered = block_on(client.alter_configs([&alter], &options())).unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    let described = describe(&client, "configs-a").unwrap();
    let cleanup = described.get("cleanup.policy").unwrap();
    assert_eq!(
        (cleanup.value.as_deref(), &cleanup.source),
        (Some("delete"), &ConfigSource::Default)
    );

    // Bad values and unknown topics are refused. rdkafka 0.39 drops the
    // per-resource error of AlterConfigs, so the error codes and messages
    // are checked with raw requests, and the rdkafka call by its effect.
    let bad = AlterConfig::new(ResourceSpecifier::Topic("configs-a")).set("retention.ms", "soon");
    block_on(client.alter_configs([&bad], &options())).unwrap();
    let described = describe(&client, "configs-a").unwrap();
    assert_eq!(
        described.get("retention.ms").unwrap().value.as_deref(),
        Some("1000")
    );
    let (code, message) = legacy_alter(&broker, "configs-a", "retention.ms", "soon");
    assert_eq!(code, 40);
    let message = message.expect("a message");
    assert!(
        message.contains("retention.ms") && message.contains("soon"),
        "{message}"
    );
    let (code, message) = legacy_alter(&broker, "no-such-topic", "retention.ms", "1");
    assert_eq!(code, 3);
    assert!(message.unwrap().contains("no-such-topic"));
    // rdkafka 0.39 drops DescribeConfigs' per-resource error too: it shows
    // as no entries; the raw answer carries the code.
    assert!(describe(&client, "no-such-topic")
        .unwrap()
        .entries
        .is_empty());
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("no-such-topic"))]);
    let response = call(&broker, 4, &request);
    assert_eq!(response.results[0].error_code, 3);
    assert!(response.results[0].configs.is_empty());
    drop(dir);
}

#[test]
fn incremental_alter_configs_over_the_wire() {
    let broker = Broker::start();
    let client = admin(&broker);
    let topic = NewTopic::new("configs-b", 1, TopicReplication::Fixed(1));
    let created = block_on(client.create_topics([&topic], &options())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    // v4 (flexible) and v1 describe, filtered by key, with the config type from v3.
    let described = raw_describe(&broker, 4, "configs-b", &["retention.ms"]);
    assert_eq!(
        described,
        vec![(
            "retention.ms".to_owned(),
            DEFAULT_RETENTION_MS.to_owned(),
            5,
            5
        )]
    );
    let described = raw_describe(&broker, 1, "configs-b", &["cleanup.policy"]);
    assert_eq!(described[0].3, 0, "no config type before v3");

    // validate_only changes nothing.
    let set = vec![op("retention.ms", 0, Some("5000"))];
    assert_eq!(
        incremental(&broker, 2, "configs-b", set.clone(), true),
        (0, None)
    );
    assert_eq!(
        raw_describe(&broker, 4, "configs-b", &["retention.ms"])[0].2,
        5
    );
    // SET, APPEND, then SUBTRACT and DELETE.
    let ops = vec![set[0].clone(), op("cleanup.policy", 2, Some("compact"))];
    assert_eq!(incremental(&broker, 2, "configs-b", ops, false), (0, None));
    let described = raw_describe(&broker, 4, "configs-b", &["cleanup.policy", "retention.ms"]);
    assert_eq!(
        described,
        vec![
            (
                "cleanup.policy".to_owned(),
                "delete,compact".to_owned(),
                1,
                7
            ),
            ("retention.ms".to_owned(), "5000".to_owned(), 1, 5),
        ]
    );
    let ops = vec![
        op("cleanup.policy", 3, Some("delete")),
        op("retention.ms", 1, None),
    ];
    assert_eq!(incremental(&broker, 2, "configs-b", ops, false), (0, None));
    let described = raw_describe(&broker, 4, "configs-b", &["cleanup.policy", "retention.ms"]);
    assert_eq!(described[0].1, "compact");
    assert_eq!(
        (described[1].1.as_str(), described[1].2),
        (DEFAULT_RETENTION_MS, 5)
    );

    // Errors carry a message.
    let (code, message) = incremental(
        &broker,
        2,
        "configs-b",
        vec![op("segment.bytes", 0, Some("x"))],
        false,
    );
    assert_eq!(code, 40);
    assert!(message.unwrap().contains("segment.bytes"));
    let (code, message) = incremental(
        &broker,
        2,
        "configs-b",
        vec![op("retention.ms", 2, Some("1"))],
        false,
    );
    assert_eq!(code, 40);
    assert!(message.unwrap().contains("LIST"));
    let (code, _) = incremental(
        &broker,
        2,
        "no-such-topic",
        vec![op("retention.ms", 0, Some("1"))],
        false,
    );
    assert_eq!(code, 3);
    // Static broker settings cannot change at run time.
    let (code, message) = incremental(&broker, 4, "0", vec![op("node.id", 0, Some("1"))], false);
    assert_eq!(code, 42);
    assert!(message.unwrap().contains("dynamically"));
    let (code, _) = incremental(&broker, 4, "7", vec![], false);
    assert_eq!(code, 42, "another broker's id");
    let (code, _) = incremental(&broker, 9, "x", vec![], false);
    assert_eq!(code, 42);

    // The broker's own configs are described; topic defaults can change.
    let broker_configs =
        block_on(client.describe_configs([&ResourceSpecifier::Broker(0)], &options())).unwrap();
    let resource = broker_configs[0].as_ref().expect("broker described");
    let retention = resource.get("log.retention.ms").expect("log.retention.ms");
    assert_eq!(retention.value.as_deref(), Some(DEFAULT_RETENTION_MS));
    assert!(!retention.is_read_only);
    assert!(resource.get("num.partitions").unwrap().is_read_only);
}

#[test]
fn dynamic_broker_configs_reach_topics_and_survive_a_restart() {
    let mut broker = Broker::start();
    let dir = broker.take_dir();
    let client = admin(&broker);
    let topic = NewTopic::new("plain", 1, TopicReplication::Fixed(1));
    assert!(block_on(client.create_topics([&topic], &options())).unwrap()[0].is_ok());
    // This broker's config, and the cluster-wide default ("").
    let set = |name: &str, key: &str, value: &str| {
        let (code, message) = incremental(&broker, 4, name, vec![op(key, 0, Some(value))], false);
        assert_eq!(code, 0, "{message:?}");
    };
    set("0", "log.retention.ms", "1234");
    set("", "log.segment.bytes", "2097152");
    let (code, message) = incremental(
        &broker,
        4,
        "0",
        vec![op("log.retention.ms", 0, Some("-7"))],
        false,
    );
    assert_eq!(code, 40, "{message:?}");
    let check = |broker: &Broker| {
        let got = raw_describe(broker, 4, "plain", &["retention.ms", "segment.bytes"]);
        assert_eq!(
            got,
            vec![
                ("retention.ms".to_owned(), "1234".to_owned(), 2, 5),
                ("segment.bytes".to_owned(), "2097152".to_owned(), 3, 3),
            ],
            "DYNAMIC_BROKER_CONFIG and DYNAMIC_DEFAULT_BROKER_CONFIG"
        );
    };
    check(&broker);
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    assert!(broker.stop().success());
    let mut broker = Broker::start_in(&data_dir, port);
    check(&broker);
    // Deleting the broker's config falls back to the static default.
    let (code, _) = incremental(
        &broker,
        4,
        "0",
        vec![op("log.retention.ms", 1, None)],
        false,
    );
    assert_eq!(code, 0);
    let got = raw_describe(&broker, 4, "plain", &["retention.ms"]);
    assert_eq!(got[0].1, DEFAULT_RETENTION_MS);
    assert_eq!(got[0].2, 5, "DEFAULT_CONFIG");
    assert!(broker.stop().success());
    drop(dir);
}
