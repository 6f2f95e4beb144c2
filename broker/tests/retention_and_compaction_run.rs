//! The broker applies retention and compaction by itself: a topic whose
//! records are older than `retention.ms` loses them (its log start offset
//! moves to the end), and a compacted topic keeps only the newest record
//! of each key in its closed segments. The check intervals are shortened
//! in the broker's config file.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::raw::{batch, call, keyed_batch, records, topic_name as name};
use common::Broker;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest};

/// How long the broker gets to do its background work.
const PATIENCE: Duration = Duration::from_secs(60);

fn produce(broker: &Broker, topic: &str, records: bytes::Bytes) {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response = call(broker, 9, &request);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn create(broker: &Broker, topic: &str, configs: &[(&str, &str)]) {
    assert_eq!(common::raw::create_topic(broker, topic, 1, configs).0, 0);
}

fn earliest(broker: &Broker, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    call(broker, 7, &request).topics[0].partitions[0].offset
}

/// Every (key, value) of the partition from its start.
fn read(broker: &Broker, topic: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut offset = earliest(broker, topic);
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let response = call(broker, 12, &request);
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let found = records(partition.records.clone().unwrap_or_default());
        if found.is_empty() {
            return out;
        }
        for record in found {
            let text = |b: Option<bytes::Bytes>| {
                String::from_utf8(b.unwrap_or_default().to_vec()).unwrap()
            };
            offset = record.offset + 1;
            out.push((text(record.key), text(record.value)));
        }
    }
}

fn broker_with_fast_maintenance() -> (Broker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kelp.toml");
    std::fs::write(
        &config,
        "log_retention_check_interval_ms = 100\nlog_cleaner_backoff_ms = 100\n",
    )
    .unwrap();
    let broker = Broker::start_with(&["--config", config.to_str().unwrap()]);
    (broker, dir)
}

#[test]
fn records_past_retention_ms_are_deleted() {
    let (broker, _config) = broker_with_fast_maintenance();
    create(&broker, "aged", &[("retention.ms", "3600000")]);
    // Two years old: past the hour of retention at once.
    let old = 1_700_000_000_000;
    for i in 0..3 {
        produce(&broker, "aged", batch(&[format!("v{i}")], old));
    }
    create(&broker, "fresh", &[("retention.ms", "3600000")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce(&broker, "fresh", batch(&["new"], now));
    let deadline = Instant::now() + PATIENCE;
    while earliest(&broker, "aged") < 3 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(read(&broker, "aged").is_empty());
    // Records inside retention stay.
    assert_eq!(earliest(&broker, "fresh"), 0);
    assert_eq!(read(&broker, "fresh").len(), 1);
}

#[test]
fn a_compacted_topic_keeps_the_newest_record_per_key() {
    let (broker, _config) = broker_with_fast_maintenance();
    create(
        &broker,
        "latest",
        &[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("segment.bytes", "1024"),
        ],
    );
    let mut newest = BTreeMap::new();
    for i in 0..200 {
        let key = format!("k{}", i % 5);
        let value = format!("v{i}");
        produce(
            &broker,
            "latest",
            keyed_batch(&[(Some(&key), &value)], 1_700_000_000_000),
        );
        newest.insert(key, value);
    }
    let deadline = Instant::now() + PATIENCE;
    let remaining = loop {
        let remaining = read(&broker, "latest");
        // Compacted: far fewer records than written (the active segment
        // is never compacted, so some duplicates stay there).
        if remaining.len() < 100 {
            break remaining;
        }
        assert!(Instant::now() < deadline, "compaction never ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in remaining {
        last.insert(key, value);
    }
    assert_eq!(last, newest, "the newest value of every key survives");
}
