//! TxnOffsetCommit (key 28), v0-5: a transactional producer's consumed
//! positions for a group (`send_offsets_to_transaction`, KIP-98/KIP-447).
//! They are written to `__consumer_offsets` inside the producer's
//! transaction and count as committed only once its commit marker lands,
//! so consume-transform-produce happens exactly once.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::groups::coordinator::{offsets_topic, OFFSETS_TOPIC};
use crate::groups::partition::OffsetsPartition;
use crate::groups::partition::{now_ms, Committer, TxnProducer};
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::offset_commit::{route_commits, PartitionCommit};
use crate::shard::loaded::on_partition_of;
use crate::shard::Shard;
use crate::txn::coordinator::verify_in_transaction;

/// The first version told TRANSACTION_ABORTABLE.
const TRANSACTION_ABORTABLE_VERSION: i16 = 4;

/// Asks the transaction coordinator whether the offsets partition `index`
/// is in the producer's open transaction (AddOffsetsToTxn came first), as
/// Kafka verifies a transactional offset commit (KIP-890). Runs on the
/// shard owning the partition, after its guard was noted there.
async fn verify_offsets_partition(
    owner: &Rc<Shard>,
    transactional_id: &str,
    index: i32,
    producer: TxnProducer,
    version: i16,
) -> Result<(), ErrorCode> {
    let partition = (OFFSETS_TOPIC.to_owned(), index);
    let verdict = verify_in_transaction(
        owner,
        transactional_id,
        producer.id,
        producer.epoch,
        partition,
    )
    .await;
    match verdict {
        Ok(()) => Ok(()),
        // Kafka never sends PRODUCER_FENCED on this API.
        Err(ErrorCode::ProducerFenced) => Err(ErrorCode::InvalidProducerEpoch),
        Err(ErrorCode::InvalidTxnState) if version >= TRANSACTION_ABORTABLE_VERSION => {
            Err(ErrorCode::TransactionAbortable)
        }
        Err(code) => Err(code),
    }
}

/// Runs `f` on the group's coordinator partition, with the shard owning it.
async fn commit_on_coordinator<T, F, Fut>(
    shard: &Rc<Shard>,
    group_id: &str,
    f: F,
) -> Result<T, ErrorCode>
where
    F: FnOnce(Rc<Shard>, Rc<OffsetsPartition>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let meta = offsets_topic(shard).await?;
    on_partition_of(shard, meta, group_id, f).await
}

/// The first version with the committed leader epoch.
const LEADER_EPOCH_VERSION: i16 = 2;
/// The first version carrying the member (generation, member and instance id).
const MEMBER_VERSION: i16 = 3;

/// Answers a TxnOffsetCommit request: one code per partition asked for.
pub async fn handle(
    shard: &Rc<Shard>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.to_string();
    let now = now_ms();
    let (verdicts, entries) = route_commits(
        shard,
        request.topics.iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|p| PartitionCommit {
                index: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= LEADER_EPOCH_VERSION {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(ToString::to_string),
            });
            (topic.name.to_string(), partitions.collect())
        }),
        now,
        // Transactional commits have no retention of their own.
        None,
    );
    // As in Kafka, unknown partitions are answered before the group is
    // looked at, and alone when no partition is left.
    let outcome: Result<Vec<Result<(), ErrorCode>>, ErrorCode> = if entries.is_empty() {
        Ok(Vec::new())
    } else if group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        let producer = TxnProducer {
            id: request.producer_id.0,
            epoch: request.producer_epoch,
        };
        // v0-2 carry no member: a commit from outside the group.
        let (member_id, instance_id, generation) = if version >= MEMBER_VERSION {
            (
                request.member_id.to_string(),
                request.group_instance_id.as_ref().map(ToString::to_string),
                request.generation_id,
            )
        } else {
            (String::new(), None, -1)
        };
        let id = group_id.clone();
        let transactional_id = request.transactional_id.to_string();
        if transactional_id.is_empty() {
            Err(ErrorCode::InvalidRequest)
        } else {
            commit_on_coordinator(shard, &group_id, move |owner, partition| async move {
                // The guard first, then the coordinator's word: a marker
                // landing in between withdraws the guard and the write is
                // refused, not left pending for good.
                partition.begin_txn_verification(producer);
                verify_offsets_partition(
                    &owner,
                    &transactional_id,
                    partition.index,
                    producer,
                    version,
                )
                .await?;
                let committer = Committer {
                    member_id: &member_id,
                    instance_id: instance_id.as_deref(),
                    generation,
                };
                partition
                    .txn_commit(&id, producer, committer, entries)
                    .await
            })
            .await
            .and_then(|inner| inner)
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(verdicts)
        .map(|(topic, verdict)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(verdict)
                .map(|(p, verdict)| {
                    let code = partition_code(verdict, &outcome, version);
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// One partition's code: its own refusal, else the group's, else the
/// coordinator's verdict on its entry.
fn partition_code(
    verdict: Result<usize, ErrorCode>,
    outcome: &Result<Vec<Result<(), ErrorCode>>, ErrorCode>,
    version: i16,
) -> ErrorCode {
    let code = match (verdict, outcome) {
        (Err(code), _) => code,
        (Ok(_), Err(code)) => *code,
        (Ok(i), Ok(results)) => results
            .get(i)
            .copied()
            .unwrap_or(Ok(()))
            .err()
            .unwrap_or(ErrorCode::None),
    };
    // Producers before Kafka 2.3 (v0-1) fail on a loading coordinator
    // (KAFKA-7296), so Kafka tells them it is not available.
    if version < LEADER_EPOCH_VERSION && code == ErrorCode::CoordinatorLoadInProgress {
        ErrorCode::CoordinatorNotAvailable
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_keeps_its_own_refusal_over_the_groups() {
        let group_failed = Err(ErrorCode::InvalidGroupId);
        assert_eq!(
            partition_code(Err(ErrorCode::UnknownTopicOrPartition), &group_failed, 4),
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            partition_code(Ok(0), &group_failed, 4),
            ErrorCode::InvalidGroupId
        );
        let per_entry = Ok(vec![Ok(()), Err(ErrorCode::OffsetMetadataTooLarge)]);
        assert_eq!(partition_code(Ok(0), &per_entry, 4), ErrorCode::None);
        assert_eq!(
            partition_code(Ok(1), &per_entry, 4),
            ErrorCode::OffsetMetadataTooLarge
        );
    }

    #[test]
    fn old_producers_never_see_a_loading_coordinator() {
        let loading = Err(ErrorCode::CoordinatorLoadInProgress);
        assert_eq!(
            partition_code(Ok(0), &loading, 1),
            ErrorCode::CoordinatorNotAvailable
        );
        assert_eq!(
            partition_code(Ok(0), &loading, 2),
            ErrorCode::CoordinatorLoadInProgress
        );
    }
}
