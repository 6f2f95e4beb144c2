//! The sender task: drains ready batches into ProduceRequests, one per broker, and completes them.
//!
//! It sleeps until woken (a batch opened or closed, a request finished, a
//! flush started) or until the oldest open batch's linger runs out. Each
//! request runs in its own task so up to `max_in_flight` share a
//! connection; they are spawned in drain order after the connection is
//! open, so they reach the connection's write lock, and the wire, in that
//! order: a partition's batches are written in order.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::future::or;
use glommio::timer::Timer;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::accumulator::{Drained, ReadyBatch};
use super::Shared;
use crate::admin::millis;
use crate::connection::Connection;
use crate::error::Error;
use crate::metadata::topic_name;

/// Runs until the producer is dropped (which cancels it).
pub(crate) async fn run(shared: Rc<Shared>) {
    loop {
        let seen = shared.work.generation();
        // Taken out first: the borrow must end before the lookups run.
        let to_resolve = shared.accumulator.borrow_mut().topics_to_resolve();
        for topic in to_resolve {
            glommio::spawn_local(resolve(shared.clone(), topic)).detach();
        }
        let now = Instant::now();
        let flushing = shared.flushing.get() > 0;
        let max_in_flight = shared.config.max_in_flight;
        let (requests, stale) = {
            let in_flight = shared.in_flight.borrow();
            shared.accumulator.borrow_mut().drain(
                now,
                flushing,
                shared.config.max_request_bytes,
                |leader| in_flight.get(&leader).copied().unwrap_or(0) < max_in_flight,
            )
        };
        if !stale.is_empty() {
            // Batches failed for want of a leader: buffer bytes were given back.
            shared.progress.notify();
        }
        for topic in stale {
            glommio::spawn_local(refresh(shared.clone(), topic)).detach();
        }
        let sent_any = !requests.is_empty();
        for request in requests {
            *shared
                .in_flight
                .borrow_mut()
                .entry(request.leader)
                .or_insert(0) += 1;
            match shared.cluster.node(request.leader).await {
                Ok(connection) => {
                    glommio::spawn_local(produce(shared.clone(), connection, request)).detach();
                }
                Err(error) => finish(&shared, request.leader, &request.batches, &Err(error)),
            }
        }
        if sent_any {
            // More may be ready (a partition with several batches, or a request cut short).
            continue;
        }
        let deadline = if flushing {
            None
        } else {
            shared.accumulator.borrow().next_deadline()
        };
        match deadline {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                or(shared.work.changed(seen), async {
                    Timer::new(wait).await;
                })
                .await;
            }
            None => shared.work.changed(seen).await,
        }
    }
}

/// Looks up a topic whose records are parked, then lets them join batches.
async fn resolve(shared: Rc<Shared>, topic: Rc<str>) {
    let meta = shared.cluster.topic(&topic).await;
    shared.accumulator.borrow_mut().resolve(&topic, meta);
    shared.progress.notify();
    shared.work.notify();
}

/// Re-reads a topic's metadata after a failure that says its leaders moved.
async fn refresh(shared: Rc<Shared>, topic: Rc<str>) {
    if let Ok(meta) = shared.cluster.refresh_topic(&topic).await {
        shared
            .accumulator
            .borrow_mut()
            .update_metadata(&topic, meta);
    }
}

/// Sends one ProduceRequest and completes its batches.
async fn produce(shared: Rc<Shared>, connection: Connection, request: Drained) {
    let Drained { leader, batches } = request;
    let acks = shared.config.acks;
    let mut sendable = Vec::with_capacity(batches.len());
    let mut topic_data: Vec<TopicProduceData> = Vec::new();
    for batch in batches {
        let records = match batch.builder.build(0) {
            Ok(records) => records.freeze(),
            Err(error) => {
                // Only this batch is unencodable (a record too large); the others go.
                finish(
                    &shared,
                    leader,
                    std::slice::from_ref(&batch),
                    &Err(Error::Encode(error.to_string())),
                );
                continue;
            }
        };
        let partition = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(records));
        match topic_data
            .iter_mut()
            .find(|t| t.name.as_str() == &*batch.topic)
        {
            Some(topic) => topic.partition_data.push(partition),
            None => topic_data.push(
                TopicProduceData::default()
                    .with_name(topic_name(&batch.topic))
                    .with_partition_data(vec![partition]),
            ),
        }
        sendable.push(batch);
    }
    if sendable.is_empty() {
        release_slot(&shared, leader);
        return;
    }
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(millis(shared.cluster.config().request_timeout))
        .with_topic_data(topic_data);
    if acks == 0 {
        // The broker does not answer acks=0: the records are delivered once written.
        let written = connection.send_without_response(request).await;
        finish(&shared, leader, &sendable, &written.map(|()| None));
        return;
    }
    let response = connection.call(request).await;
    finish(&shared, leader, &sendable, &response.map(Some));
}

/// Completes `batches` from the response (or the request's failure), gives back their buffer
/// bytes and their in-flight slot, and wakes the sender and flushers.
fn finish(
    shared: &Rc<Shared>,
    leader: i32,
    batches: &[ReadyBatch],
    response: &Result<Option<ProduceResponse>, Error>,
) {
    let mut stale: Vec<Rc<str>> = Vec::new();
    let mut released = 0;
    let offsets = match response {
        Ok(Some(response)) => Some(base_offsets(response)),
        _ => None,
    };
    for batch in batches {
        released += batch.bytes;
        let outcome = match response {
            Err(error) => Err(error.clone()),
            Ok(None) => Ok(-1),
            Ok(Some(_)) => offsets
                .as_ref()
                .and_then(|offsets| offsets.get(&(&*batch.topic, batch.partition)))
                .cloned()
                .unwrap_or_else(|| {
                    Err(Error::Protocol {
                        addr: format!("node {leader}"),
                        reason: format!(
                            "the produce response does not mention {} partition {}",
                            batch.topic, batch.partition
                        ),
                    })
                }),
        };
        if let Err(error) = &outcome {
            if error.invalidates_metadata() && !stale.contains(&batch.topic) {
                stale.push(batch.topic.clone());
            }
        }
        batch.state.complete(outcome);
    }
    for topic in stale {
        shared.cluster.invalidate_topic(&topic);
        glommio::spawn_local(refresh(shared.clone(), topic)).detach();
    }
    shared.accumulator.borrow_mut().release(released);
    release_slot(shared, leader);
}

/// Gives back one in-flight slot of `leader` and wakes whoever waits on progress.
fn release_slot(shared: &Shared, leader: i32) {
    if let Some(count) = shared.in_flight.borrow_mut().get_mut(&leader) {
        *count = count.saturating_sub(1);
    }
    shared.progress.notify();
    shared.work.notify();
}

/// Each partition's base offset or error, keyed by (topic, partition).
fn base_offsets(response: &ProduceResponse) -> HashMap<(&str, i32), Result<i64, Error>> {
    let mut offsets = HashMap::new();
    for topic in &response.responses {
        for partition in &topic.partition_responses {
            let message = partition.error_message.as_ref().map(|m| m.as_str());
            let outcome = match Error::from_code(partition.error_code, message) {
                Some(error) => Err(error),
                None => Ok(partition.base_offset),
            };
            offsets.insert((topic.name.as_str(), partition.index), outcome);
        }
    }
    offsets
}
