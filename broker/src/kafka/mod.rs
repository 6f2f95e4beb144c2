//! The Kafka API edge: the registry of implemented APIs, the error-code
//! mapping, and the dispatcher that decodes a request, runs its handler
//! and encodes the response. Handlers run on the connection's shard and
//! split partition work per owning shard; admin requests that change topic
//! metadata run on the controller shard.

pub mod errors;
pub mod handlers;
pub mod registry;

use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use kelp_net::codec::{decode_request, encode_response};
use kelp_net::connection::HandlerOutcome;
use kelp_net::header::RequestHeader;
use kelp_net::versions::{encode_api_versions_fallback, ApiRange};

use crate::shard::{Shard, CONTROLLER_SHARD};
use handlers::produce::ProduceOutcome;
use kelp_storage::turns::{Turn, Turns};

/// The ApiVersions API key.
const API_VERSIONS: i16 = 18;

/// The value, or (the controller shard has stopped: shutdown) a closed
/// connection, which clients answer by reconnecting and retrying.
macro_rules! try_or_close {
    ($answer:expr) => {
        match $answer {
            Some(response) => response,
            None => return HandlerOutcome::Close,
        }
    };
}

/// Runs an admin handler on the controller shard; `None` if it has stopped.
async fn on_controller<T, F, Fut>(shard: &Rc<Shard>, handler: F) -> Option<T>
where
    F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    match shard.call(CONTROLLER_SHARD, handler).await {
        Ok(response) => Some(response),
        Err(e) => {
            tracing::debug!(error = %e, "admin request during shutdown; closing the connection");
            None
        }
    }
}

/// A request's place in its connection's line. Kafka handles one request
/// of a connection at a time; Kelp handles them concurrently, but each
/// waits for its turn before it reads or changes anything, so their effects
/// keep the order they were sent in. Produce gives its turn up once its
/// batches are appended, before waiting for the disk; Fetch after its first
/// read, before waiting for data.
pub type ConnectionTurn = Turn<Rc<Turns>>;

/// Handles one request on `shard`, in its turn; `client_host` is the
/// peer's address as Kafka shows it (`/127.0.0.1`).
pub async fn dispatch(
    shard: &Rc<Shard>,
    header: RequestHeader,
    body: Bytes,
    turn: ConnectionTurn,
    client_host: Rc<str>,
) -> HandlerOutcome {
    let (key, version) = (header.api_key, header.api_version);
    if !registry::supports(key, version) || (key == 0 && version < registry::PRODUCE_MIN_ACCEPTED) {
        if key == API_VERSIONS {
            // KIP-511: an ApiVersions version we do not know gets the v0
            // body with UNSUPPORTED_VERSION and our ranges.
            let ranges: Vec<ApiRange> = registry::IMPLEMENTED
                .iter()
                .map(|a| ApiRange {
                    api_key: a.key,
                    min: a.min,
                    max: a.max,
                })
                .collect();
            return HandlerOutcome::Respond(encode_api_versions_fallback(
                header.correlation_id,
                &ranges,
            ));
        }
        tracing::debug!(key, version, client = ?header.client_id, "unsupported API or version; closing the connection");
        return HandlerOutcome::Close;
    }
    // Kept only to describe a malformed request when debug logging is on.
    let raw = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| body.clone())
        .unwrap_or_default();
    let request = match decode_request(&header, body) {
        Ok(request) => request,
        Err(e) => {
            tracing::debug!(key, version, error = %e, client = ?header.client_id, header_version = header.header_version, body = ?&raw[..raw.len().min(200)], "malformed request; closing the connection");
            return HandlerOutcome::Close;
        }
    };
    // Produce and Fetch take their turn along; every other request waits
    // for it here and holds it until its response is built.
    if !matches!(request, RequestKind::Produce(_) | RequestKind::Fetch(_)) {
        turn.wait().await;
    }
    let response = match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(handlers::api_versions::handle(r)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(handlers::metadata::handle(shard, r, version).await)
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(try_or_close!(
            on_controller(shard, move |s| async move {
                handlers::create_topics::handle(&s, r, version).await
            })
            .await
        )),
        RequestKind::Produce(r) => match handlers::produce::handle(shard, r, version, turn).await {
            ProduceOutcome::Respond(r) => ResponseKind::Produce(r),
            ProduceOutcome::NoResponse => return HandlerOutcome::NoResponse,
        },
        RequestKind::Fetch(r) => {
            ResponseKind::Fetch(handlers::fetch::handle(shard, r, version, turn).await)
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(handlers::list_offsets::handle(shard, r, version).await)
        }
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(try_or_close!(
            on_controller(shard, move |s| async move {
                handlers::delete_topics::handle(&s, r, version).await
            })
            .await
        )),
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(handlers::delete_records::handle(shard, r).await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
            handlers::offset_for_leader_epoch::handle(shard, r).await,
        ),
        RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(
            handlers::describe_log_dirs::handle(shard, r, version).await,
        ),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(try_or_close!(
            on_controller(shard, move |s| async move {
                handlers::create_partitions::handle(&s, r).await
            })
            .await
        )),
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(handlers::describe_cluster::handle(shard, r, version))
        }
        RequestKind::DescribeTopicPartitions(r) => ResponseKind::DescribeTopicPartitions(
            handlers::describe_topic_partitions::handle(shard, r),
        ),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(
            handlers::describe_configs::handle(shard, r, version).await,
        ),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(try_or_close!(
            on_controller(shard, move |s| async move {
                handlers::alter_configs::handle(&s, r, version).await
            })
            .await
        )),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(try_or_close!(
                on_controller(shard, move |s| async move {
                    handlers::incremental_alter_configs::handle(&s, r, version).await
                })
                .await
            ))
        }
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(
            handlers::find_coordinator::handle(shard, r, version).await,
        ),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
            handlers::join_group::handle(shard, r, version, header.client_id.clone(), client_host)
                .await,
        ),
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(handlers::sync_group::handle(shard, r, version).await)
        }
        RequestKind::Heartbeat(r) => {
            ResponseKind::Heartbeat(handlers::heartbeat::handle(shard, r).await)
        }
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(handlers::leave_group::handle(shard, r, version).await)
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(handlers::offset_commit::handle(shard, r, version).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(handlers::offset_fetch::handle(shard, r, version).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(handlers::offset_delete::handle(shard, r).await)
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(handlers::list_groups::handle(shard, r).await)
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(handlers::describe_groups::handle(shard, r).await)
        }
        RequestKind::ConsumerGroupHeartbeat(r) => ResponseKind::ConsumerGroupHeartbeat(
            handlers::consumer_group_heartbeat::handle(
                shard,
                r,
                version,
                header.client_id.clone(),
                client_host,
            )
            .await,
        ),
        RequestKind::ConsumerGroupDescribe(r) => ResponseKind::ConsumerGroupDescribe(
            handlers::consumer_group_describe::handle(shard, r).await,
        ),
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(handlers::delete_groups::handle(shard, r).await)
        }
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(
            handlers::init_producer_id::handle(shard, r, version).await,
        ),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
            handlers::add_partitions_to_txn::handle(shard, r, version).await,
        ),
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(
            handlers::add_offsets_to_txn::handle(shard, r, version).await,
        ),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            handlers::txn_offset_commit::handle(shard, r, version).await,
        ),
        RequestKind::EndTxn(r) => {
            ResponseKind::EndTxn(handlers::end_txn::handle(shard, r, version).await)
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(handlers::describe_producers::handle(shard, r).await)
        }
        RequestKind::DescribeTransactions(r) => ResponseKind::DescribeTransactions(
            handlers::describe_transactions::handle(shard, r).await,
        ),
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(handlers::list_transactions::handle(shard, r).await)
        }
        other => {
            // The registry and this match list the same APIs; a mismatch is
            // a bug, answered by closing this connection only.
            tracing::error!(
                key,
                "registry lists an API the dispatcher does not handle: {:?}",
                std::mem::discriminant(&other)
            );
            return HandlerOutcome::Close;
        }
    };
    match encode_response(&header, &response) {
        Ok(bytes) => HandlerOutcome::Respond(bytes),
        Err(e) => {
            tracing::error!(key, version, error = %e, "encoding a response failed");
            HandlerOutcome::Close
        }
    }
}
