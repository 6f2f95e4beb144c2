//! Topic configs do what Kafka documents, or are refused: LogAppendTime
//! stamps the broker's time (seen by a librdkafka consumer),
//! `min.insync.replicas` above the single node's one replica refuses
//! `acks=-1`, and a config Kelp does not act on yet (`compression.type`
//! other than `producer`) is refused with a message instead of ignored.
//! DescribeConfigs lists every topic config Kafka 4 has.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::raw::{batch, call, create_topic, topic_name as name};
use common::Broker;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{DescribeConfigsRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Produces one record with `acks`; the partition's error code.
fn produce(broker: &Broker, topic: &str, acks: i16) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&["v"], 1_000)))])]);
    call(broker, 9, &request).responses[0].partition_responses[0].error_code
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn log_append_time_is_stamped_by_the_broker() {
    let broker = Broker::start();
    assert_eq!(
        create_topic(
            &broker,
            "stamped",
            1,
            &[("message.timestamp.type", "LogAppendTime")]
        )
        .0,
        0
    );
    let before = now_ms();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .unwrap();
    producer
        .send(
            BaseRecord::<(), str>::to("stamped")
                .partition(0)
                .payload("p")
                .timestamp(1_000),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", "unused")
        // No group coordinator yet (issue 6): nothing to commit on close.
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("stamped", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let message = loop {
        if let Some(message) = consumer.poll(Duration::from_secs(10)) {
            break message.unwrap().detach();
        }
    };
    let after = now_ms();
    match message.timestamp() {
        Timestamp::LogAppendTime(t) => {
            assert!((before..=after).contains(&t), "{before} <= {t} <= {after}")
        }
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
}

#[test]
fn min_insync_replicas_and_unsupported_configs_are_enforced() {
    let broker = Broker::start();
    assert_eq!(
        create_topic(&broker, "safe", 1, &[("min.insync.replicas", "2")]).0,
        0
    );
    // One node has one in-sync replica: acks=-1 is refused, acks=1 is not.
    assert_eq!(produce(&broker, "safe", -1), 19, "NOT_ENOUGH_REPLICAS");
    assert_eq!(produce(&broker, "safe", 1), 0);

    let (code, message) = create_topic(&broker, "squeezed", 1, &[("compression.type", "gzip")]);
    assert_eq!(code, 40, "INVALID_CONFIG");
    assert!(
        message
            .as_deref()
            .unwrap_or("")
            .contains("compression.type"),
        "{message:?}"
    );
    assert_eq!(
        create_topic(&broker, "as-sent", 1, &[("compression.type", "producer")]).0,
        0
    );

    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("safe"))]);
    let response = call(&broker, 4, &request);
    let configs = &response.results[0].configs;
    // Every topic config of Kafka 4.
    assert_eq!(configs.len(), 31, "{configs:?}");
    let min_insync = configs
        .iter()
        .find(|c| c.name.as_str() == "min.insync.replicas")
        .unwrap();
    assert_eq!(
        min_insync.value.as_ref().map(ToString::to_string),
        Some("2".to_owned())
    );
    assert_eq!(min_insync.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
}
