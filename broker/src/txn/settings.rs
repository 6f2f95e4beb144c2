//! The broker's transaction settings; each default is Kafka's.

/// Transaction and producer-state settings of the broker (`deploy/kelp.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnSettings {
    /// Kafka's `transaction.state.log.num.partitions`.
    pub state_log_partitions: i32,
    /// Kafka's `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` accepted.
    pub max_timeout_ms: i32,
    /// Kafka's `transactional.id.expiration.ms`: idle transactional ids are forgotten after it.
    pub id_expiration_ms: i64,
    /// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_check_interval_ms: i64,
    /// Kafka's `producer.id.expiration.ms`: silent producers' sequence state is dropped after it.
    pub producer_id_expiration_ms: i64,
    /// Kafka's `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_ms: i64,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            state_log_partitions: 50,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_check_interval_ms: 10_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_ms: 600_000,
        }
    }
}

impl TxnSettings {
    /// Why the settings cannot work together, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.state_log_partitions) {
            return Err(
                "transaction_state_log_num_partitions must be between 1 and 10000".to_owned(),
            );
        }
        if self.max_timeout_ms <= 0
            || self.id_expiration_ms <= 0
            || self.abort_check_interval_ms <= 0
            || self.producer_id_expiration_ms <= 0
            || self.producer_id_expiration_check_ms <= 0
        {
            return Err(
                "transaction timeouts, intervals and expirations must be positive".to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_defaults_work_and_nonsense_does_not() {
        TxnSettings::default().check().unwrap();
        for bad in [
            TxnSettings {
                state_log_partitions: 0,
                ..TxnSettings::default()
            },
            TxnSettings {
                max_timeout_ms: 0,
                ..TxnSettings::default()
            },
            TxnSettings {
                abort_check_interval_ms: -1,
                ..TxnSettings::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
