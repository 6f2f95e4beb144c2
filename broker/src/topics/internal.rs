//! The coordinators' internal topics, which only their coordinator writes
//! and nobody may delete.

use crate::groups::coordinator::OFFSETS_TOPIC;
use crate::txn::coordinator::TRANSACTION_TOPIC;

/// Whether `topic` is a coordinator's internal topic.
pub fn is_internal(topic: &str) -> bool {
    topic == OFFSETS_TOPIC || topic == TRANSACTION_TOPIC
}
