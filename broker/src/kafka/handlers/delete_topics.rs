//! DeleteTopics (key 20), v1-6: by name, and by topic id from v6. Runs on
//! the controller shard: the topic leaves the store durably, and every
//! shard has deleted its partition logs before the answer. (A crash in
//! between leaves directories no topic owns; start-up removes them.)

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::controller::ChangeError;
use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;
use crate::topics::internal::is_internal;

/// The first version that names topics by `topics` (name or id).
const TOPIC_STATE_VERSION: i16 = 6;
/// The first version with an error message per topic.
const ERROR_MESSAGE_VERSION: i16 = 5;

/// Answers a DeleteTopics request.
pub async fn handle(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // (name, id) as the client named them.
    let wanted: Vec<(Option<String>, Uuid)> = if version >= TOPIC_STATE_VERSION {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut seen_names = HashSet::new();
    let mut seen_ids = HashSet::new();
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let outcome = match (&name, id.is_nil()) {
            (None, true) => Err((
                ErrorCode::InvalidRequest,
                "Neither topic name nor id were specified.".to_owned(),
            )),
            (Some(_), false) => Err((
                ErrorCode::InvalidRequest,
                "You may not specify both topic name and topic id.".to_owned(),
            )),
            (Some(n), true) if !seen_names.insert(n.clone()) => Err((
                ErrorCode::InvalidRequest,
                "Duplicate topic name.".to_owned(),
            )),
            (None, false) if !seen_ids.insert(id) => {
                Err((ErrorCode::InvalidRequest, "Duplicate topic id.".to_owned()))
            }
            (Some(n), true) => delete(shard, n).await,
            (None, false) => {
                let found = shard
                    .controller()
                    .store()
                    .topics
                    .values()
                    .find(|t| t.id == id)
                    .map(|t| t.name.clone());
                match found {
                    Some(n) => delete(shard, &n).await,
                    None => Err((
                        ErrorCode::UnknownTopicId,
                        "This server does not host this topic ID.".to_owned(),
                    )),
                }
            }
        };
        responses.push(result(name, id, outcome, version));
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete(shard: &Rc<Shard>, name: &str) -> Result<(String, Uuid), (ErrorCode, String)> {
    if is_internal(name) {
        // Deleting it would drop every group and committed offset, or
        // every transactional id.
        return Err((
            ErrorCode::InvalidTopicException,
            format!("Topic {name} is internal and cannot be deleted."),
        ));
    }
    let meta = shard
        .controller()
        .change(shard, |store| {
            store.topics.remove(name).ok_or_else(|| {
                ChangeError::Refused(
                    ErrorCode::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.".to_owned(),
                )
            })
        })
        .await
        .map_err(ChangeError::into_kafka)?;
    tracing::info!(topic = name, "deleted topic");
    Ok((meta.name, meta.id))
}

fn result(
    name: Option<String>,
    id: Uuid,
    outcome: Result<(String, Uuid), (ErrorCode, String)>,
    version: i16,
) -> DeletableTopicResult {
    let (name, id, code, message) = match outcome {
        Ok((name, id)) => (Some(name), id, ErrorCode::None, None),
        Err((code, message)) => (name, id, code, Some(message)),
    };
    let mut result = DeletableTopicResult::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_error_code(code.code());
    if version >= ERROR_MESSAGE_VERSION {
        result.error_message = message.map(StrBytes::from_string);
    }
    if version >= TOPIC_STATE_VERSION {
        result.topic_id = id;
    }
    result
}
