//! Raw producer-id and transaction requests for integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, BrokerId, DescribeTransactionsRequest,
    EndTxnRequest, InitProducerIdRequest, ListOffsetsRequest, ProduceRequest, ProducerId,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::batch::{BatchBuilder, Compression};

use super::raw::{call, topic_name};
use super::Broker;

/// A transactional id as the protocol carries it.
pub fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_owned()))
}

/// InitProducerId of `id` (None: idempotent) expecting `expected` (pid, epoch).
pub fn init(id: Option<&str>, timeout_ms: i32, expected: (i64, i16)) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(id.map(txn_id))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(expected.0))
        .with_producer_epoch(expected.1)
}

/// InitProducerId at `version`: (error, producer id, epoch).
pub fn init_at(broker: &Broker, version: i16, request: &InitProducerIdRequest) -> (i16, i64, i16) {
    let r = call(broker, version, request);
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// AddPartitionsToTxn (v0-3 form) of `partitions` for `producer` (pid, epoch).
pub fn add(
    id: &str,
    producer: (i64, i16),
    partitions: &[(&str, i32)],
) -> AddPartitionsToTxnRequest {
    let topics = partitions
        .iter()
        .map(|(topic, index)| {
            AddPartitionsToTxnTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![*index])
        })
        .collect();
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(topics)
}

/// Every partition code of an AddPartitionsToTxn answer, in order.
pub fn codes(response: &AddPartitionsToTxnResponse) -> Vec<i16> {
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// EndTxn of `producer` (pid, epoch).
pub fn end(id: &str, producer: (i64, i16), commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit)
}

/// Produce v9 of one batch to partition 0 of `topic`; the partition's code.
pub fn produce(broker: &Broker, topic: &str, id: Option<&str>, batch: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_transactional_id(id.map(txn_id))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    call(broker, 9, &request).responses[0].partition_responses[0].error_code
}

/// A batch of one record from `producer` at sequence `seq`.
pub fn producer_batch(producer: (i64, i16), seq: i32, transactional: bool, control: bool) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(producer.0, producer.1, seq)
        .transactional(transactional)
        .control(control);
    builder.push(1_000, Some(b"\0\0\0\x01"), Some(b"\0\0\0\0\0\0"), &[]);
    builder.build(0).unwrap().freeze()
}

/// ListOffsets latest of partition 0 under `isolation`.
pub fn latest(broker: &Broker, topic: &str, isolation: i8) -> i64 {
    list_offset(broker, topic, isolation, -1)
}

/// ListOffsets of partition 0 for `timestamp` (-1 latest, -2 earliest, -3
/// max timestamp, or a time) under `isolation`.
pub fn list_offset(broker: &Broker, topic: &str, isolation: i8, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    call(broker, 5, &request).topics[0].partitions[0].offset
}

/// DescribeTransactions of one id: (error, state name, producer id, epoch).
pub fn describe(broker: &Broker, id: &str) -> (i16, String, i64, i16) {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]);
    let response = call(broker, 0, &request);
    let state = &response.transaction_states[0];
    (
        state.error_code,
        state.transaction_state.to_string(),
        state.producer_id.0,
        state.producer_epoch,
    )
}
