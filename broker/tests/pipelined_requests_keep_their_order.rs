//! Clients pipeline requests on one connection (librdkafka and the Java
//! producer keep up to 5 in flight) and Kafka applies them in the order
//! sent. Kelp handles them concurrently, so this checks that the batches of
//! pipelined produce requests still land in send order in every partition,
//! including the first writes to new partitions on several shards, when
//! each request lists the partitions in another order (the Java producer
//! rotates them): an append that waits must not let a later request's
//! batch for another partition go first.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::raw::{batch, call, create_topic, records, topic_name as name, Raw};
use common::Broker;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest};

const PARTITIONS: i32 = 6;
const REQUESTS: usize = 200;

/// A batch of `count` records valued `<request>.<i>.xxx…`; big enough
/// that appends sometimes have to wait (segment files are created, chunks
/// fill).
fn request_batch(request: usize, count: usize) -> bytes::Bytes {
    let values: Vec<String> = (0..count)
        .map(|i| format!("{request}.{i}.{}", "x".repeat(200)))
        .collect();
    batch(&values, 1_700_000_000_000)
}

/// One batch for every partition, starting at a different partition each
/// time, as the Java producer's drain rotates.
fn produce_request(topic: &str, request: usize, acks: i16) -> ProduceRequest {
    let data = (0..PARTITIONS)
        .map(|i| (i + request as i32) % PARTITIONS)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(request_batch(request, 20)))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(data)])
}

/// Every record value of `topic`, per partition, in log order.
fn read_all(broker: &Broker, topic: &str) -> BTreeMap<i32, Vec<usize>> {
    let mut offsets: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut requests: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    loop {
        let partitions = offsets
            .iter()
            .map(|(p, offset)| {
                FetchPartition::default()
                    .with_partition(*p)
                    .with_fetch_offset(*offset)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(partitions)]);
        let response = call(broker, 12, &request);
        let mut progress = false;
        for p in &response.responses[0].partitions {
            assert_eq!(p.error_code, 0);
            for record in records(p.records.clone().unwrap_or_default()) {
                let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
                let (request, rest) = value.split_once('.').unwrap();
                if rest.starts_with("0.") {
                    requests
                        .entry(p.partition_index)
                        .or_default()
                        .push(request.parse().unwrap());
                }
                offsets.insert(p.partition_index, record.offset + 1);
                progress = true;
            }
        }
        if !progress {
            return requests;
        }
    }
}

fn check_pipelined_order(broker: &Broker, topic: &str, acks: i16) {
    assert_eq!(create_topic(broker, topic, PARTITIONS, &[]).0, 0);
    let mut raw = Raw::connect(broker, Duration::from_secs(60));
    // Everything is sent before any response is read: up to the
    // connection's in-flight limit run at once.
    let sent: Vec<i32> = (0..REQUESTS)
        .map(|r| raw.send(9, &produce_request(topic, r, acks)))
        .collect();
    for id in sent {
        let response = raw
            .receive::<ProduceRequest>(9, id)
            .expect("every produce is answered");
        for p in &response.responses[0].partition_responses {
            assert_eq!(p.error_code, 0, "{p:?}");
        }
    }
    let expected: Vec<usize> = (0..REQUESTS).collect();
    for (partition, order) in read_all(broker, topic) {
        assert_eq!(
            order, expected,
            "partition {partition}: batches of pipelined requests out of send order"
        );
    }
}

#[test]
fn pipelined_produce_requests_land_in_send_order() {
    let broker = Broker::start_with(&["--cores", "2"]);
    check_pipelined_order(&broker, "ordered-acks1", 1);
    check_pipelined_order(&broker, "ordered-acks-all", -1);
}
