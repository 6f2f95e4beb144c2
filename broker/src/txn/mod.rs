//! Transaction coordinator: transactional ids, their producer ids and the `__transaction_state` log.

pub mod records;
