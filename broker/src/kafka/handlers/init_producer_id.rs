//! InitProducerId (key 22), v0-5: a fresh producer id (epoch 0) for an
//! idempotent producer, from the controller's allocator on any shard; for a
//! transactional id, its coordinator's answer, which fences older
//! instances and aborts a transaction one of them left open.

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::{new_producer_id, on_txn_coordinator};

/// The first version that knows PRODUCER_FENCED.
const FENCED_VERSION: i16 = 4;

/// Answers an InitProducerId request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    match init(shard, request).await {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(code) => InitProducerIdResponse::default()
            .with_error_code(code.for_fenced_version(version, FENCED_VERSION).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

async fn init(shard: &Rc<Shard>, request: InitProducerIdRequest) -> Result<(i64, i16), ErrorCode> {
    let expected = match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => None,
        (-1, _) | (_, -1) => return Err(ErrorCode::InvalidRequest),
        (producer_id, epoch) => Some((producer_id, epoch)),
    };
    let Some(id) = request.transactional_id else {
        // Idempotent: always a fresh id; what the client had is ignored, as
        // in Kafka, and so is the timeout (clients send -1 or i32::MAX).
        return Ok((new_producer_id(shard).await?, 0));
    };
    let id = id.0.to_string();
    if id.is_empty() {
        return Err(ErrorCode::InvalidRequest);
    }
    let timeout_ms = request.transaction_timeout_ms;
    if timeout_ms <= 0 || timeout_ms > shard.config.txns.max_timeout_ms {
        return Err(ErrorCode::InvalidTransactionTimeout);
    }
    on_txn_coordinator(shard, &id.clone(), move |owner, partition| async move {
        partition
            .init_producer_id(&owner, &id, timeout_ms, expected)
            .await
    })
    .await?
}
