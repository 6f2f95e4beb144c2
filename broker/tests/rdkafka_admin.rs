//! librdkafka's admin client (through the `rdkafka` crate) against a real
//! `kelp` process: CreatePartitions, DeleteRecords and DeleteTopics, with
//! the error codes Kafka answers for the usual mistakes.

mod common;

use std::time::{Duration, Instant};

use common::raw::call;
use common::{admin, Broker};
use futures_executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn create_topic(admin: &AdminClient<DefaultClientContext>, name: &str, partitions: i32) {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics(&[topic], &options())).expect("CreateTopics");
    assert_eq!(results, vec![Ok(name.to_owned())]);
}

/// Produces `count` records to `partition`, acknowledged by all replicas.
fn produce(broker: &Broker, topic: &str, partition: i32, count: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in 0..count {
        let value = format!("value-{i}");
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .payload(&value)
                    .partition(partition),
            )
            .expect("queued");
    }
    producer.flush(TIMEOUT).expect("every record acknowledged");
}

fn consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .set("group.id", "kelp-admin")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

/// The partition count of every topic in the cluster's metadata.
fn topics(broker: &Broker) -> Vec<(String, usize)> {
    let metadata = consumer(broker)
        .fetch_metadata(None, TIMEOUT)
        .expect("Metadata");
    metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect()
}

#[test]
fn create_partitions_grows_a_topic_and_refuses_a_decrease() {
    let broker = Broker::start();
    let admin = admin(&broker);
    create_topic(&admin, "grow", 3);
    produce(&broker, "grow", 0, 3);

    let results = block_on(admin.create_partitions(&[NewPartitions::new("grow", 5)], &options()))
        .expect("CreatePartitions");
    assert_eq!(results, vec![Ok("grow".to_owned())]);
    assert!(topics(&broker).contains(&("grow".to_owned(), 5)));
    // The new partitions take writes; the old ones kept their data.
    produce(&broker, "grow", 4, 2);
    let consumer = consumer(&broker);
    assert_eq!(
        consumer.fetch_watermarks("grow", 4, TIMEOUT).unwrap(),
        (0, 2)
    );
    assert_eq!(
        consumer.fetch_watermarks("grow", 0, TIMEOUT).unwrap(),
        (0, 3)
    );

    // validate_only checks without changing anything.
    let results = block_on(admin.create_partitions(
        &[NewPartitions::new("grow", 7)],
        &options().validate_only(true),
    ))
    .expect("CreatePartitions");
    assert_eq!(results, vec![Ok("grow".to_owned())]);
    assert!(topics(&broker).contains(&("grow".to_owned(), 5)));

    // Errors: a decrease, the same count, an unknown topic.
    let results = block_on(admin.create_partitions(
        &[
            NewPartitions::new("grow", 4),
            NewPartitions::new("no-such-topic", 2),
        ],
        &options(),
    ))
    .expect("CreatePartitions");
    assert_eq!(
        results,
        vec![
            Err(("grow".to_owned(), RDKafkaErrorCode::InvalidPartitions)),
            Err((
                "no-such-topic".to_owned(),
                RDKafkaErrorCode::UnknownTopicOrPartition
            )),
        ]
    );
    let results = block_on(admin.create_partitions(&[NewPartitions::new("grow", 5)], &options()))
        .expect("CreatePartitions");
    assert_eq!(
        results,
        vec![Err((
            "grow".to_owned(),
            RDKafkaErrorCode::InvalidPartitions
        ))]
    );
    assert!(topics(&broker).contains(&("grow".to_owned(), 5)));
}

#[test]
fn delete_records_moves_the_low_watermark() {
    let broker = Broker::start();
    let admin = admin(&broker);
    create_topic(&admin, "trim", 2);
    produce(&broker, "trim", 0, 10);

    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trim", 0, Offset::Offset(4))
        .unwrap();
    let result = block_on(admin.delete_records(&offsets, &options())).expect("DeleteRecords");
    let element = result
        .find_partition("trim", 0)
        .expect("partition 0 answered");
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(4), "new low watermark");

    let consumer = consumer(&broker);
    assert_eq!(
        consumer.fetch_watermarks("trim", 0, TIMEOUT).unwrap(),
        (4, 10)
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("trim", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let first = loop {
        assert!(Instant::now() < deadline, "nothing consumed");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            break message.expect("no consume error").offset();
        }
    };
    assert_eq!(first, 4);

    // Past the log end: OFFSET_OUT_OF_RANGE; an unknown partition fails.
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trim", 0, Offset::Offset(11))
        .unwrap();
    offsets
        .add_partition_offset("trim", 7, Offset::Offset(0))
        .unwrap();
    let result = block_on(admin.delete_records(&offsets, &options())).expect("DeleteRecords");
    let past_end = result.find_partition("trim", 0).unwrap();
    assert!(
        format!("{:?}", past_end.error()).contains("OffsetOutOfRange"),
        "{:?}",
        past_end.error()
    );
    // librdkafka refuses a partition its metadata lacks before sending.
    let unknown = result.find_partition("trim", 7).unwrap();
    assert!(
        format!("{:?}", unknown.error()).contains("UnknownPartition"),
        "{:?}",
        unknown.error()
    );

    // To the high watermark (-1): everything goes.
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trim", 0, Offset::End)
        .unwrap();
    let result = block_on(admin.delete_records(&offsets, &options())).expect("DeleteRecords");
    let element = result.find_partition("trim", 0).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(10));
    assert_eq!(
        consumer.fetch_watermarks("trim", 0, TIMEOUT).unwrap(),
        (10, 10)
    );
}

#[test]
fn delete_topics_removes_logs_and_metadata_durably() {
    let mut broker = Broker::start();
    let admin = admin(&broker);
    create_topic(&admin, "doomed", 2);
    create_topic(&admin, "kept", 1);
    produce(&broker, "doomed", 1, 5);
    assert!(broker.data_dir.join("doomed-1").is_dir());

    let results = block_on(admin.delete_topics(&["doomed", "no-such-topic"], &options()))
        .expect("DeleteTopics");
    assert_eq!(
        results,
        vec![
            Ok("doomed".to_owned()),
            Err((
                "no-such-topic".to_owned(),
                RDKafkaErrorCode::UnknownTopicOrPartition
            )),
        ]
    );
    let listed = topics(&broker);
    assert!(
        !listed.iter().any(|(name, _)| name == "doomed"),
        "{listed:?}"
    );
    assert!(listed.contains(&("kept".to_owned(), 1)));
    assert!(!broker.data_dir.join("doomed-0").exists());
    assert!(!broker.data_dir.join("doomed-1").exists());

    // The deletion survives a restart, and the name can be used again,
    // empty.
    let dir = broker.take_dir();
    broker.stop();
    let broker = Broker::start_in(&broker.data_dir, common::free_port());
    let listed = topics(&broker);
    assert!(
        !listed.iter().any(|(name, _)| name == "doomed"),
        "{listed:?}"
    );
    assert!(listed.contains(&("kept".to_owned(), 1)));
    let admin = self::admin(&broker);
    create_topic(&admin, "doomed", 2);
    assert_eq!(
        consumer(&broker)
            .fetch_watermarks("doomed", 1, TIMEOUT)
            .unwrap(),
        (0, 0)
    );
    drop(broker);
    drop(dir);
}

#[test]
fn offset_for_leader_epoch_describe_cluster_and_log_dirs_answer_as_kafka() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    let broker = Broker::start();
    let admin = admin(&broker);
    create_topic(&admin, "epochs", 1);
    produce(&broker, "epochs", 0, 6);
    let name = TopicName(StrBytes::from_static_str("epochs"));

    // (current_leader_epoch, leader_epoch) -> (error, epoch, end offset).
    let cases = [
        ((-1, 0), (0, 0, 6)),
        ((0, 0), (0, 0, 6)),
        ((-1, 5), (0, -1, -1)),
        ((-1, -1), (0, -1, -1)),
        ((1, 0), (75, -1, -1)),
        ((-2, 0), (74, -1, -1)),
    ];
    for version in [2, 4] {
        let partitions = cases
            .iter()
            .map(|((current, epoch), _)| {
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(*current)
                    .with_leader_epoch(*epoch)
            })
            .chain([OffsetForLeaderPartition::default().with_partition(3)])
            .collect();
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name.clone())
                .with_partitions(partitions),
        ]);
        let response: OffsetForLeaderEpochResponse = call(&broker, version, &request);
        let got: Vec<(i16, i32, i64)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        let mut expected: Vec<(i16, i32, i64)> = cases.iter().map(|(_, e)| *e).collect();
        expected.push((3, -1, -1));
        assert_eq!(got, expected, "version {version}");
    }

    for version in [0, 1, 2] {
        let response: DescribeClusterResponse =
            call(&broker, version, &DescribeClusterRequest::default());
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_id.len(), 22);
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.controller_id, response.brokers[0].broker_id);
        assert_eq!(response.brokers[0].port, i32::from(broker.addr.port()));
        assert_eq!(response.cluster_authorized_operations, i32::MIN);
    }
    let asked = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let response: DescribeClusterResponse = call(&broker, 1, &asked);
    assert_eq!(response.cluster_authorized_operations, 8096);
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let response: DescribeClusterResponse = call(&broker, 1, &controllers);
    assert_eq!(response.error_code, 114);

    for version in [1, 3, 4] {
        let response: DescribeLogDirsResponse = call(
            &broker,
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        );
        assert_eq!(response.results.len(), 1, "version {version}");
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0);
        assert!(std::path::Path::new(dir.log_dir.as_str()).is_absolute());
        let topic = dir.topics.iter().find(|t| t.name == name).expect("listed");
        assert_eq!(topic.partitions.len(), 1);
        assert!(topic.partitions[0].partition_size > 0);
        assert_eq!(topic.partitions[0].offset_lag, 0);
        assert!(!topic.partitions[0].is_future_key);
        if version >= 4 {
            assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0);
            assert!(dir.usable_bytes <= dir.total_bytes);
        } else {
            assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1));
        }
    }
    // Only what was asked for.
    let request =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("other")))
                .with_partitions(vec![0])]));
    let response: DescribeLogDirsResponse = call(&broker, 4, &request);
    assert!(response.results[0].topics.is_empty());

    // DeleteTopics v6 by topic id: unknown id, name and id both, a known id.
    let metadata: MetadataResponse = call(
        &broker,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name.clone())),
        ])),
    );
    let id = metadata.topics[0].topic_id;
    assert!(!id.is_nil());
    // Metadata by topic id: the id decides, even with an empty name (as the
    // Java admin client sends); an unknown id is UNKNOWN_TOPIC_ID.
    let by_id = |id: uuid::Uuid| {
        metadata_request::MetadataRequestTopic::default()
            .with_topic_id(id)
            .with_name(Some(TopicName(StrBytes::from_static_str(""))))
    };
    let metadata: MetadataResponse = call(
        &broker,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![by_id(id), by_id(uuid::Uuid::from_u128(42))])),
    );
    let got: Vec<(i16, Option<TopicName>, usize)> = metadata
        .topics
        .iter()
        .map(|t| (t.error_code, t.name.clone(), t.partitions.len()))
        .collect();
    assert_eq!(got, vec![(0, Some(name.clone()), 1), (100, None, 0)]);
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let request = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_topic_id(uuid::Uuid::from_u128(42)),
        DeleteTopicState::default()
            .with_name(Some(name.clone()))
            .with_topic_id(id),
        DeleteTopicState::default().with_topic_id(id),
    ]);
    let response: DeleteTopicsResponse = call(&broker, 6, &request);
    let got: Vec<(i16, Option<TopicName>)> = response
        .responses
        .iter()
        .map(|r| (r.error_code, r.name.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (100, None),
            (42, Some(name.clone())),
            (0, Some(name.clone()))
        ]
    );
    assert_eq!(response.responses[2].topic_id, id);
    assert!(!broker.data_dir.join("epochs-0").exists());
}

#[test]
fn describe_topic_partitions_pages_with_a_cursor() {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    use kafka_protocol::messages::{DescribeTopicPartitionsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start();
    let admin = admin(&broker);
    create_topic(&admin, "pages-a", 3);
    create_topic(&admin, "pages-b", 2);
    let topic = |name: &str| TopicName(StrBytes::from_string(name.to_owned()));
    let request = |cursor: Option<(&str, i32)>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                ["pages-b", "pages-zz", "pages-a"]
                    .iter()
                    .map(|n| TopicRequest::default().with_name(topic(n)))
                    .collect(),
            )
            .with_response_partition_limit(4)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(topic(t))
                    .with_partition_index(p)
            }))
    };
    let summary = |response: &kafka_protocol::messages::DescribeTopicPartitionsResponse| {
        response
            .topics
            .iter()
            .map(|t| {
                let partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
                (
                    t.name.as_ref().unwrap().0.to_string(),
                    t.error_code,
                    partitions,
                )
            })
            .collect::<Vec<_>>()
    };
    // In name order, four partitions, then a cursor to the rest.
    let first = call(&broker, 0, &request(None));
    assert_eq!(
        summary(&first),
        vec![
            ("pages-a".to_owned(), 0, vec![0, 1, 2]),
            ("pages-b".to_owned(), 0, vec![0]),
        ]
    );
    let next = first.next_cursor.expect("more to come");
    assert_eq!(
        (next.topic_name.0.as_str(), next.partition_index),
        ("pages-b", 1)
    );
    let rest = call(&broker, 0, &request(Some(("pages-b", 1))));
    assert_eq!(
        summary(&rest),
        vec![
            ("pages-b".to_owned(), 0, vec![1]),
            ("pages-zz".to_owned(), 3, vec![]),
        ]
    );
    assert!(rest.next_cursor.is_none());
    assert!(!rest.topics[0].topic_id.is_nil());
    // A cursor past the last partition answers no partitions of that topic.
    let past = call(&broker, 0, &request(Some(("pages-b", i32::MAX))));
    assert_eq!(
        summary(&past),
        vec![
            ("pages-b".to_owned(), 0, vec![]),
            ("pages-zz".to_owned(), 3, vec![]),
        ]
    );
    // A cursor on a topic not asked for is refused.
    let refused = call(&broker, 0, &request(Some(("other", 0))));
    assert!(refused.topics.iter().all(|t| t.error_code == 42));
}
