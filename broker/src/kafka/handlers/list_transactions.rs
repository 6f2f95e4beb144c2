//! ListTransactions (key 66), v0-1: the transactional ids this broker
//! coordinates, filtered by state, producer id and (v1) how long their
//! transaction has been open.

use std::rc::Rc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::groups::partition::now_ms;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::on_every_txn_partition;
use crate::txn::records::TxnStatus;

/// Answers a ListTransactions request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for name in &request.state_filters {
        match TxnStatus::from_name(name.as_str()) {
            Some(status) => states.push(status),
            None => unknown.push(name.clone()),
        }
    }
    let filtering_states = !request.state_filters.is_empty();
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = request.duration_filter;
    let now = now_ms();
    let all = match on_every_txn_partition(shard, |partition| async move { partition.all() }).await
    {
        Ok(all) => all,
        Err(code) => {
            return ListTransactionsResponse::default()
                .with_error_code(code.code())
                .with_unknown_state_filters(unknown)
        }
    };
    let listed = all
        .into_iter()
        .flatten()
        .filter(|(_, m)| {
            m.status != TxnStatus::Dead
                && (producers.is_empty() || producers.contains(&m.producer_id))
                && (!filtering_states || states.contains(&m.status))
                // As Kafka: an id with no open transaction passes any duration.
                && (duration < 0 || m.start_ms < 0 || now - m.start_ms > duration)
        })
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.status.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_error_code(ErrorCode::None.code())
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}
