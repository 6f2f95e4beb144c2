//! AddOffsetsToTxn (key 25), v0-4: adds the `__consumer_offsets` partition
//! of a group to the producer's open transaction, so its TxnOffsetCommit
//! offsets commit or abort with it.

use std::rc::Rc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::groups::coordinator::{offsets_topic, partition_for, OFFSETS_TOPIC};
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::txn::coordinator::on_txn_coordinator;

/// The first version that knows PRODUCER_FENCED.
const FENCED_VERSION: i16 = 2;

/// Answers an AddOffsetsToTxn request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let code = match add(shard, request).await {
        Ok(()) => ErrorCode::None,
        Err(code) => code.for_fenced_version(version, FENCED_VERSION),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code.code())
}

async fn add(shard: &Rc<Shard>, request: AddOffsetsToTxnRequest) -> Result<(), ErrorCode> {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    if id.is_empty() {
        return Err(ErrorCode::InvalidRequest);
    }
    if group.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let offsets = offsets_topic(shard).await?;
    let index = partition_for(&group, offsets.partition_shards.len() as i32);
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    on_txn_coordinator(shard, &id.clone(), move |_, partition| async move {
        partition
            .add_partitions(
                &id,
                producer_id,
                epoch,
                &[(OFFSETS_TOPIC.to_owned(), index)],
            )
            .await
    })
    .await?
}
