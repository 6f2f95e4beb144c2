//! EndTxn (key 26), v0-4: commits or aborts a producer's open transaction.
//! Answered once the decision is durable; the markers reach the
//! transaction's partitions afterwards, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::on_txn_coordinator;

/// The first version that knows PRODUCER_FENCED.
const FENCED_VERSION: i16 = 2;

/// Answers an EndTxn request.
pub async fn handle(shard: &Rc<Shard>, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let id = request.transactional_id.0.to_string();
    let (producer_id, epoch, commit) = (
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    let result = if id.is_empty() {
        Err(ErrorCode::InvalidRequest)
    } else {
        on_txn_coordinator(shard, &id.clone(), move |owner, partition| async move {
            partition
                .end_txn(&owner, &id, producer_id, epoch, commit)
                .await
        })
        .await
        .and_then(|r| r)
    };
    let code = match result {
        Ok(()) => ErrorCode::None,
        Err(code) => code.for_fenced_version(version, FENCED_VERSION),
    };
    EndTxnResponse::default().with_error_code(code.code())
}
