//! AddPartitionsToTxn (key 24), v0-3 (the client versions; v4+ are sent
//! between brokers): adds partitions to a producer's open transaction,
//! opening one if none is.

use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::internal::is_internal;
use crate::txn::coordinator::on_txn_coordinator;
use crate::txn::state::TxnPartition;

/// The first version that knows PRODUCER_FENCED.
const FENCED_VERSION: i16 = 2;

/// Answers an AddPartitionsToTxn request: one code for every partition,
/// or per-partition codes when some partitions cannot be added.
pub async fn handle(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let producer_id = request.v3_and_below_producer_id.0;
    let epoch = request.v3_and_below_producer_epoch;
    let mut partitions: Vec<(TxnPartition, ErrorCode)> = Vec::new();
    for topic in &request.v3_and_below_topics {
        let name = topic.name.0.to_string();
        for &index in &topic.partitions {
            let check = if is_internal(&name) {
                ErrorCode::TopicAuthorizationFailed
            } else if shard.owner(&name, index).is_none() {
                ErrorCode::UnknownTopicOrPartition
            } else {
                ErrorCode::None
            };
            partitions.push(((name.clone(), index), check));
        }
    }
    let any_bad = partitions.iter().any(|(_, code)| *code != ErrorCode::None);
    let outcome = if any_bad {
        None
    } else if id.is_empty() {
        Some(ErrorCode::InvalidRequest)
    } else {
        let adding: Vec<TxnPartition> = partitions.iter().map(|(p, _)| p.clone()).collect();
        let result = on_txn_coordinator(shard, &id.clone(), move |_, partition| async move {
            partition
                .add_partitions(&id, producer_id, epoch, &adding)
                .await
        })
        .await;
        Some(match result {
            Ok(Ok(())) => ErrorCode::None,
            Ok(Err(code)) | Err(code) => code.for_fenced_version(version, FENCED_VERSION),
        })
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, index), check) in partitions {
        let code = match outcome {
            Some(code) => code,
            None if check == ErrorCode::None => ErrorCode::OperationNotAttempted,
            None => check,
        };
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(index)
            .with_partition_error_code(code.code());
        match topics.last_mut() {
            Some(last) if last.name.0.as_str() == topic => last.results_by_partition.push(result),
            _ => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(kafka_protocol::messages::TopicName(topic.into()))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}
