//! Produce (key 0), v3-12 (v0-2 are advertised, as Kafka 4 does, and
//! refused): the request is split per owning shard; each shard validates
//! and appends its partitions' batches; `acks=-1` is answered only once the
//! batches are durable (a second pass, after the request has given up its
//! place in the connection's line), `acks=0` not at all.
//!
//! A producer's first transactional write to a partition is checked with
//! its transaction coordinator first (KIP-890): a partition the producer
//! never added to its transaction is refused, so no stray transaction can
//! hold the partition's last stable offset back.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kelp_storage::batch::{peek_total_len, BatchError, RecordBatch};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{LeaderEpoch, StorageError};

use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::create_topics::auto_create;
use crate::kafka::ConnectionTurn;
use crate::shard::scatter::{regroup, scatter, scatter_or};
use crate::shard::{Log, Shard};
use crate::topics::internal::is_internal;
use crate::topics::ShardId;
use crate::txn::coordinator::verify_in_transaction;

/// The leader epoch this single-node broker stamps into batches.
pub const LEADER_EPOCH: LeaderEpoch = LeaderEpoch(0);

/// What a Produce request asks of the connection.
pub enum ProduceOutcome {
    /// Send this response.
    Respond(ProduceResponse),
    /// `acks=0`: send nothing.
    NoResponse,
}

/// One partition's batches, on their way to the owning shard.
struct PartitionWrite {
    topic: String,
    index: i32,
    records: Bytes,
    transactional_id: Option<String>,
}

/// Answers a Produce request. `turn` is the request's place in its
/// connection's line: the appends wait for it, so the batches of pipelined
/// requests land in the order they were sent, and it is given up before
/// `acks=-1` waits for the disk, so those waits overlap.
pub async fn handle(
    shard: &Rc<Shard>,
    request: ProduceRequest,
    version: i16,
    turn: ConnectionTurn,
) -> ProduceOutcome {
    turn.wait().await;
    let acks = request.acks;
    let transactional_id = request.transactional_id.map(|id| id.0.to_string());
    let mut items = Vec::new();
    let mut targets = Vec::new();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let count = topic.partition_data.len();
        for data in topic.partition_data {
            let owner = if matches!(acks, -1..=1) {
                partition_owner(shard, &name, data.index, acks).await
            } else {
                Err(ErrorCode::InvalidRequiredAcks)
            };
            targets.push((owner.ok(), name.clone(), data.index));
            items.push(match owner {
                Err(ErrorCode::InvalidTopicException) => Err(failed(
                    data.index,
                    ErrorCode::InvalidTopicException,
                    Some(format!("Cannot append to internal topic {name}")),
                    version,
                )),
                Err(code) => Err(failed(data.index, code, None, version)),
                Ok(owner) => Ok((
                    owner,
                    PartitionWrite {
                        topic: name.clone(),
                        index: data.index,
                        records: data.records.unwrap_or_default(),
                        transactional_id: transactional_id.clone(),
                    },
                )),
            });
        }
        topics.push(((topic.name, topic.topic_id), count));
    }
    let mut answers = scatter_or(
        shard,
        items,
        move |owner, writes| async move { append_on_owner(&owner, writes, version).await },
        |position, e| failed(targets[position].2, e.into(), None, version),
    )
    .await;
    drop(turn);
    if acks == -1 {
        make_durable(shard, &targets, &mut answers).await;
    }
    if acks == 0 {
        return ProduceOutcome::NoResponse;
    }
    let responses = regroup(topics, answers)
        .into_iter()
        .map(|((name, topic_id), partitions)| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceOutcome::Respond(ProduceResponse::default().with_responses(responses))
}

/// On the owning shard: appends each partition's batches and wakes waiting
/// fetches.
async fn append_on_owner(
    shard: &Rc<Shard>,
    writes: Vec<PartitionWrite>,
    version: i16,
) -> Vec<PartitionProduceResponse> {
    let mut responses = Vec::with_capacity(writes.len());
    for write in writes {
        responses.push(match shard.log(&write.topic, write.index) {
            // Deleted since the request was routed.
            None => failed(
                write.index,
                ErrorCode::UnknownTopicOrPartition,
                None,
                version,
            ),
            Some(log) => {
                let response = append(shard, &log, write, version).await;
                start_write_ahead(&log);
                response
            }
        });
    }
    shard.appended.notify();
    responses
}

/// Writes the log's full chunks in the background, so that no append waits
/// for one long write of everything buffered (a stall of tens of ms every
/// few MiB, the end-to-end p99 before this).
fn start_write_ahead(log: &Log) {
    if !log.claim_write_ahead() {
        return;
    }
    let log = Rc::clone(log);
    glommio::spawn_local(async move {
        // A failed write poisons the log, and the next append or flush
        // reports it to its client; here it is only logged.
        if let Err(e) = log.write_ahead().await {
            tracing::error!(dir = %log.dir().display(), error = %e, "write-ahead failed");
        }
    })
    .detach();
}

/// `acks=-1`: flushes every partition appended to without error, on its
/// shard (concurrent producers' flushes share fsyncs), and turns a failed
/// flush into that partition's error.
async fn make_durable(
    shard: &Rc<Shard>,
    targets: &[(Option<ShardId>, String, i32)],
    answers: &mut [PartitionProduceResponse],
) {
    let mut flushes = Vec::new();
    let mut positions = Vec::new();
    for (position, ((owner, topic, index), answer)) in
        targets.iter().zip(answers.iter()).enumerate()
    {
        if let (Some(owner), 0) = (owner, answer.error_code) {
            flushes.push((*owner, (topic.clone(), *index)));
            positions.push(position);
        }
    }
    let results = scatter(shard, flushes, |owner, partitions| async move {
        let flushes = partitions.into_iter().map(|(topic, index)| {
            let log = owner.log(&topic, index);
            async move {
                let Some(log) = log else {
                    return Err(ErrorCode::UnknownTopicOrPartition);
                };
                log.flush().await.map_err(|e| {
                    tracing::error!(dir = %log.dir().display(), error = %e, "flush failed");
                    ErrorCode::from_storage(&e)
                })
            }
        });
        futures_util::future::join_all(flushes).await
    })
    .await;
    for (position, result) in positions.into_iter().zip(results) {
        if let Err(code) = result.unwrap_or_else(|e| Err(e.into())) {
            answers[position].error_code = code.code();
            answers[position].base_offset = -1;
        }
    }
}

/// The shard owning a partition, creating its topic first when allowed.
/// `acks=-1` on a topic whose `min.insync.replicas` is more than the one
/// replica a single node has is refused, as Kafka refuses it when the ISR
/// is too small.
async fn partition_owner(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    acks: i16,
) -> Result<ShardId, ErrorCode> {
    if is_internal(topic) {
        // Only its coordinator writes there.
        return Err(ErrorCode::InvalidTopicException);
    }
    if !shard.topics().topics.contains_key(topic) {
        if !shard.config.topic_defaults.auto_create_topics {
            return Err(ErrorCode::UnknownTopicOrPartition);
        }
        auto_create(shard, topic).await?;
    }
    let owner = shard
        .owner(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if acks == -1 {
        let topics = shard.topics();
        let min_insync = topics
            .topics
            .get(topic)
            .and_then(|meta| topics.override_of(shard.config.node_id, meta, "min.insync.replicas"))
            // Validated when set.
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(1);
        if min_insync > IN_SYNC_REPLICAS {
            return Err(ErrorCode::NotEnoughReplicas);
        }
    }
    Ok(owner)
}

/// The first Produce version told TRANSACTION_ABORTABLE.
const TRANSACTION_ABORTABLE_VERSION: i16 = 11;

/// KIP-890 verification: a transactional batch of a producer with no open
/// transaction on this partition must belong to a partition its
/// coordinator has in the transaction.
async fn verify_transaction(
    shard: &Rc<Shard>,
    log: &Log,
    topic: &str,
    index: i32,
    transactional_id: Option<String>,
    batches: &[Bytes],
    version: i16,
) -> Result<(), (ErrorCode, String)> {
    let Some((producer_id, epoch)) = batches.iter().find_map(|b| {
        let batch = RecordBatch::parse_unvalidated(b.clone()).ok()?;
        batch
            .is_transactional()
            .then(|| (batch.producer_id(), batch.producer_epoch()))
    }) else {
        return Ok(());
    };
    if log.has_open_txn(producer_id, epoch) {
        return Ok(());
    }
    let Some(id) = transactional_id else {
        return Err((
            ErrorCode::TransactionalIdAuthorizationFailed,
            "a transactional batch needs the request's transactional id".to_owned(),
        ));
    };
    // Noted before the coordinator is asked: a marker that arrives while it
    // is withdraws the permission, and the append then refuses the batch.
    log.begin_txn_verification(producer_id, epoch);
    let verdict =
        verify_in_transaction(shard, &id, producer_id, epoch, (topic.to_owned(), index)).await;
    let Err(code) = verdict else {
        return Ok(());
    };
    let code = match code {
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        ErrorCode::InvalidTxnState if version >= TRANSACTION_ABORTABLE_VERSION => {
            ErrorCode::TransactionAbortable
        }
        ErrorCode::InvalidTxnState | ErrorCode::InvalidProducerIdMapping => code,
        // Retriable without a metadata refresh, as Kafka answers.
        _ => ErrorCode::NotEnoughReplicas,
    };
    let message = match code {
        ErrorCode::InvalidTxnState | ErrorCode::TransactionAbortable => {
            format!("Partition {topic}-{index} was not added to the transaction")
        }
        _ => format!("the transaction coordinator could not check {topic}-{index}: {code:?}"),
    };
    Err((code, message))
}

/// The in-sync replicas of every partition on a single node: the leader.
const IN_SYNC_REPLICAS: i32 = 1;

/// The first Produce version with an error message per partition.
const ERROR_MESSAGE_VERSION: i16 = 8;
/// The first Produce version with the log start offset.
const LOG_START_VERSION: i16 = 5;

fn failed(
    index: i32,
    code: ErrorCode,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1);
    if version >= ERROR_MESSAGE_VERSION {
        response.with_error_message(message.map(StrBytes::from_string))
    } else {
        response
    }
}

/// Appends every batch in `records` (a producer normally sends one).
async fn append(
    shard: &Rc<Shard>,
    log: &Log,
    write: PartitionWrite,
    version: i16,
) -> PartitionProduceResponse {
    let index = write.index;
    let mut batches = Vec::new();
    let mut rest = write.records;
    while !rest.is_empty() {
        match peek_total_len(&rest) {
            Some(Ok(len)) if len <= rest.len() => batches.push(rest.split_to(len)),
            Some(Err(e)) => {
                return failed(
                    index,
                    ErrorCode::CorruptMessage,
                    Some(e.to_string()),
                    version,
                )
            }
            _ => {
                let e = BatchError::TooShort { len: rest.len() };
                return failed(
                    index,
                    ErrorCode::CorruptMessage,
                    Some(e.to_string()),
                    version,
                );
            }
        }
    }
    if batches.is_empty() {
        return failed(
            index,
            ErrorCode::InvalidRecord,
            Some("the request holds no record batch".to_owned()),
            version,
        );
    }
    if let Err((code, message)) = verify_transaction(
        shard,
        log,
        &write.topic,
        index,
        write.transactional_id,
        &batches,
        version,
    )
    .await
    {
        return failed(index, code, Some(message), version);
    }
    let mut base_offset = None;
    let mut log_append_time = None;
    for bytes in batches {
        // The request frame is shared; the log needs the batch to itself to
        // stamp offsets, so it gets its own copy.
        let batch = bytes::BytesMut::from(&bytes[..]);
        match log.append(batch, AppendOrigin::Leader(LEADER_EPOCH)).await {
            Ok(info) => {
                base_offset.get_or_insert(info.base_offset.0);
                log_append_time = log_append_time.or(info.log_append_time_ms);
            }
            Err(e) => {
                let code = ErrorCode::from_storage(&e);
                if matches!(e, StorageError::Io { .. } | StorageError::Poisoned { .. }) {
                    tracing::error!(dir = %log.dir().display(), error = %e, "append failed");
                }
                return failed(index, code, Some(e.to_string()), version);
            }
        }
    }
    let mut response = PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(base_offset.unwrap_or(-1));
    // The append time exists from v2 (every version served); -1 under CreateTime.
    response.log_append_time_ms = log_append_time.unwrap_or(-1);
    if version >= LOG_START_VERSION {
        response.with_log_start_offset(log.log_start_offset().0)
    } else {
        response
    }
}
