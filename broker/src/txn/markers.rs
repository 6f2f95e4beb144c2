//! Writing a transaction's commit or abort markers to its partitions, each
//! on the shard that owns it: a data partition's log gets a control batch;
//! a `__consumer_offsets` partition gets it through its group coordinator,
//! which then applies or drops the transaction's offsets.

use std::collections::BTreeMap;
use std::rc::Rc;

use kelp_storage::producers::{ProducerError, TxnMarker};
use kelp_storage::StorageError;

use super::state::TxnPartition;
use crate::groups::coordinator::OFFSETS_TOPIC;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::Shard;
use crate::topics::ShardId;

/// How writing one partition's marker ended.
enum Written {
    /// Written, or never to be (the partition is gone, or its producer
    /// moved to a newer epoch, as Kafka gives up then).
    Done,
    /// Failed for now: retry.
    Retry,
}

/// Writes `marker` to every partition; returns those to retry.
pub async fn write(
    shard: &Rc<Shard>,
    marker: TxnMarker,
    partitions: Vec<TxnPartition>,
) -> Vec<TxnPartition> {
    let mut by_owner: BTreeMap<ShardId, Vec<TxnPartition>> = BTreeMap::new();
    for partition in partitions {
        match shard.owner(&partition.0, partition.1) {
            Some(owner) => by_owner.entry(owner).or_default().push(partition),
            None => {
                tracing::info!(
                    topic = partition.0,
                    partition = partition.1,
                    "no marker for a partition that no longer exists"
                );
            }
        }
    }
    let calls = by_owner.into_iter().map(|(owner, partitions)| {
        let copy = partitions.clone();
        let call = shard.call(owner, move |owner| async move {
            let mut left = Vec::new();
            for partition in partitions {
                if let Written::Retry = write_one(&owner, marker, &partition).await {
                    left.push(partition);
                }
            }
            owner.appended.notify();
            left
        });
        async move { call.await.unwrap_or(copy) }
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// On the owning shard: one partition's marker.
async fn write_one(shard: &Rc<Shard>, marker: TxnMarker, (topic, index): &TxnPartition) -> Written {
    if topic == OFFSETS_TOPIC {
        let partition = match shard.groups().partition(shard, *index).await {
            Ok(partition) => partition,
            Err(code) => {
                tracing::warn!(
                    partition = index,
                    ?code,
                    "offsets partition not loaded for a transaction marker"
                );
                return Written::Retry;
            }
        };
        return match partition.complete_txn(marker).await {
            Ok(()) | Err(ErrorCode::InvalidProducerEpoch) => Written::Done,
            Err(code) => {
                tracing::warn!(
                    partition = index,
                    ?code,
                    "transaction marker on __consumer_offsets failed"
                );
                Written::Retry
            }
        };
    }
    let Some(log) = shard.log(topic, *index) else {
        return Written::Done;
    };
    let appended = log.append_marker(marker, LEADER_EPOCH).await;
    let result = match appended {
        Ok(_) => log.flush().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Written::Done,
        Err(StorageError::Producer(ProducerError::InvalidProducerEpoch { .. })) => {
            tracing::warn!(
                topic,
                partition = index,
                producer_id = marker.producer_id,
                "a newer producer epoch is on the partition; its marker is dropped"
            );
            Written::Done
        }
        Err(e) => {
            tracing::warn!(topic, partition = index, error = %e, "transaction marker failed");
            Written::Retry
        }
    }
}
