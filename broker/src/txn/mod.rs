//! Transaction coordinator: transactional ids, their producer ids and the `__transaction_state` log.

pub mod coordinator;
pub mod markers;
pub mod partition;
pub mod producer_ids;
pub mod records;
pub mod settings;
pub mod state;
