//! DescribeTransactions (key 65), v0: each transactional id's state, from
//! its coordinator.

use std::rc::Rc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::on_txn_coordinator;
use crate::txn::records::TxnStatus;
use crate::txn::state::TxnMetadata;

/// Answers a DescribeTransactions request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let name = id.0.to_string();
        let found = if name.is_empty() {
            Err(ErrorCode::InvalidRequest)
        } else {
            on_txn_coordinator(shard, &name.clone(), move |_, partition| async move {
                partition.get(&name)
            })
            .await
            .and_then(|m| {
                m.filter(|m| m.status != TxnStatus::Dead)
                    .ok_or(ErrorCode::TransactionalIdNotFound)
            })
        };
        states.push(match found {
            Ok(metadata) => described(id, &metadata),
            Err(code) => TransactionState::default()
                .with_transactional_id(id)
                .with_error_code(code.code()),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn described(id: TransactionalId, m: &TxnMetadata) -> TransactionState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, index) in &m.partitions {
        match topics.last_mut() {
            Some(last) if last.topic.0.as_str() == topic => last.partitions.push(*index),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*index]),
            ),
        }
    }
    TransactionState::default()
        .with_transactional_id(id)
        .with_transaction_state(StrBytes::from_static_str(m.status.name()))
        .with_transaction_timeout_ms(m.timeout_ms)
        .with_transaction_start_time_ms(m.start_ms)
        .with_producer_id(ProducerId(m.producer_id))
        .with_producer_epoch(m.epoch)
        .with_topics(topics)
}
