//! Thread-per-core for real: a broker with several shards spreads a topic's
//! partitions over them, and one request touching partitions on every
//! shard (Produce, Fetch, ListOffsets) is served by all of them, whichever
//! shard the connection landed on. A fetch waiting on partitions of two
//! shards wakes when either grows. Shutdown answers requests in flight.
//! Restarting with another shard count keeps every record.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::raw::{batch, call, create_topic, records, topic_name as name, Raw};
use common::Broker;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, ProduceRequest};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

/// The shard of each partition of `topic`, as the broker recorded it.
fn placement(broker: &Broker, topic: &str) -> Vec<u64> {
    let store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(broker.data_dir.join("topics.json")).unwrap())
            .unwrap();
    store["topics"][topic]["partition_shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

/// One Produce request (acks=-1) with one record for each of `partitions`.
fn produce(broker: &Broker, topic: &str, partitions: &[i32], value: &str) -> Vec<(i32, i16, i64)> {
    let data = partitions
        .iter()
        .map(|p| {
            PartitionProduceData::default()
                .with_index(*p)
                .with_records(Some(batch(&[format!("{value}-{p}")], 1_700_000_000_000)))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(data)]);
    let response = call(broker, PRODUCE_VERSION, &request);
    response.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, p.error_code, p.base_offset))
        .collect()
}

fn fetch_request(topic: &str, offsets: &[(i32, i64)], max_wait_ms: i32) -> FetchRequest {
    let partitions = offsets
        .iter()
        .map(|(p, offset)| {
            FetchPartition::default()
                .with_partition(*p)
                .with_fetch_offset(*offset)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(partitions)])
}

/// The record values per partition in a fetch response.
fn values(response: &FetchResponse) -> BTreeMap<i32, Vec<String>> {
    let mut found = BTreeMap::new();
    for topic in &response.responses {
        for p in &topic.partitions {
            assert_eq!(p.error_code, 0, "partition {}: {p:?}", p.partition_index);
            let values: &mut Vec<String> = found.entry(p.partition_index).or_default();
            for record in records(p.records.clone().unwrap_or_default()) {
                values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    found
}

#[test]
fn a_two_shard_broker_serves_a_topic_on_both_shards() {
    let broker = Broker::start_with(&["--cores", "2"]);
    assert_eq!(create_topic(&broker, "spread", 6, &[]).0, 0);
    let shards = placement(&broker, "spread");
    assert_eq!(shards.iter().filter(|s| **s == 0).count(), 3, "{shards:?}");
    assert_eq!(shards.iter().filter(|s| **s == 1).count(), 3, "{shards:?}");

    // One produce request for partitions on both shards.
    let all: Vec<i32> = (0..6).collect();
    for round in 0..3 {
        let answers = produce(&broker, "spread", &all, &format!("r{round}"));
        for (partition, error, base) in answers {
            assert_eq!(error, 0, "partition {partition}");
            assert_eq!(base, round, "partition {partition}");
        }
    }

    // One fetch for every partition returns each partition's records, in order.
    let offsets: Vec<(i32, i64)> = all.iter().map(|p| (*p, 0)).collect();
    let response = call(
        &broker,
        FETCH_VERSION,
        &fetch_request("spread", &offsets, 0),
    );
    for (partition, values) in values(&response) {
        let expected: Vec<String> = (0..3).map(|r| format!("r{r}-{partition}")).collect();
        assert_eq!(values, expected, "partition {partition}");
    }

    // ListOffsets for every partition at once.
    let topic = ListOffsetsTopic::default()
        .with_name(name("spread"))
        .with_partitions(
            all.iter()
                .map(|p| {
                    ListOffsetsPartition::default()
                        .with_partition_index(*p)
                        .with_timestamp(-1)
                })
                .collect(),
        );
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![topic]);
    let response = call(&broker, 7, &request);
    let ends: Vec<(i32, i16, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.offset))
        .collect();
    assert_eq!(ends, all.iter().map(|p| (*p, 0, 3)).collect::<Vec<_>>());

    // A fetch waiting at the end of every partition wakes when a partition
    // of either shard grows, long before its 20 s wait is over.
    let mut ends: Vec<(i32, i64)> = all.iter().map(|p| (*p, 3)).collect();
    for shard in [0, 1] {
        let partition = shards.iter().position(|s| *s == shard).unwrap() as i32;
        let mut waiting = Raw::connect(&broker, Duration::from_secs(30));
        let id = waiting.send(FETCH_VERSION, &fetch_request("spread", &ends, 20_000));
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(200));
        let answers = produce(&broker, "spread", &[partition], "late");
        assert_eq!(answers[0].1, 0);
        let response = waiting
            .receive::<FetchRequest>(FETCH_VERSION, id)
            .expect("the fetch is answered");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the fetch was not woken by the append on shard {shard}"
        );
        let found = values(&response);
        assert_eq!(found[&partition], vec![format!("late-{partition}")]);
        ends[partition as usize].1 += 1;
    }
}

#[test]
fn shutdown_answers_a_waiting_fetch_and_exits_cleanly() {
    let mut broker = Broker::start_with(&["--cores", "2"]);
    assert_eq!(create_topic(&broker, "quiet", 2, &[]).0, 0);
    let mut waiting = Raw::connect(&broker, Duration::from_secs(30));
    let id = waiting.send(
        FETCH_VERSION,
        &fetch_request("quiet", &[(0, 0), (1, 0)], 25_000),
    );
    std::thread::sleep(Duration::from_millis(300));
    broker.terminate();
    let response = waiting
        .receive::<FetchRequest>(FETCH_VERSION, id)
        .expect("a request in flight is answered before the connection closes");
    assert!(values(&response).values().all(Vec::is_empty));
    assert!(broker.wait().success());
}

#[test]
fn restarting_with_another_shard_count_keeps_every_record() {
    let mut broker = Broker::start_with(&["--cores", "4"]);
    let port = broker.addr.port();
    let dir = broker.take_dir().unwrap();
    let data_dir = broker.data_dir.clone();
    assert_eq!(create_topic(&broker, "moved", 8, &[]).0, 0);
    let mut shards = placement(&broker, "moved");
    shards.sort();
    assert_eq!(shards, vec![0, 0, 1, 1, 2, 2, 3, 3]);
    let all: Vec<i32> = (0..8).collect();
    assert!(produce(&broker, "moved", &all, "before")
        .iter()
        .all(|a| a.1 == 0));
    assert!(broker.stop().success());

    for cores in ["1", "2"] {
        let mut broker = Broker::start_in_with(&data_dir, port, &["--cores", cores]);
        let limit: u64 = cores.parse().unwrap();
        assert!(placement(&broker, "moved").iter().all(|s| *s < limit));
        let offsets: Vec<(i32, i64)> = all.iter().map(|p| (*p, 0)).collect();
        let response = call(&broker, FETCH_VERSION, &fetch_request("moved", &offsets, 0));
        let found = values(&response);
        for partition in &all {
            assert_eq!(found[partition], vec![format!("before-{partition}")]);
        }
        assert!(broker.stop().success());
    }
    drop(dir);
}
