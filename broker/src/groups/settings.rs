//! The broker's consumer group settings; each default is Kafka's.

use super::classic::Millis;

/// Consumer group settings of the broker (`deploy/kelp.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    /// Kafka's `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// Kafka's `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: Millis,
    /// Kafka's `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_ms: Millis,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: Millis,
    /// Kafka's `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// Kafka's `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// Kafka's `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout_ms: i32,
    /// Kafka's `group.consumer.heartbeat.interval.ms` (KIP-848 groups).
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            offsets_topic_partitions: 50,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_ms: 600_000,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

impl GroupSettings {
    /// Why the settings cannot work together, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.offsets_topic_partitions) {
            return Err("offsets_topic_num_partitions must be between 1 and 10000".to_owned());
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(
                "group_min_session_timeout_ms is above group_max_session_timeout_ms".to_owned(),
            );
        }
        if self.consumer_heartbeat_interval_ms >= self.consumer_session_timeout_ms {
            return Err(
                "group_consumer_heartbeat_interval_ms must be below group_consumer_session_timeout_ms"
                    .to_owned(),
            );
        }
        if self.consumer_heartbeat_interval_ms <= 0 || self.offsets_retention_ms <= 0 {
            return Err("group intervals and retention must be positive".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_defaults_work_and_contradictions_do_not() {
        GroupSettings::default().check().unwrap();
        let upside_down = GroupSettings {
            min_session_timeout_ms: 10_000,
            max_session_timeout_ms: 5_000,
            ..GroupSettings::default()
        };
        assert!(upside_down.check().is_err());
        let heartbeat_too_slow = GroupSettings {
            consumer_heartbeat_interval_ms: 45_000,
            ..GroupSettings::default()
        };
        assert!(heartbeat_too_slow.check().is_err());
        let no_partitions = GroupSettings {
            offsets_topic_partitions: 0,
            ..GroupSettings::default()
        };
        assert!(no_partitions.check().is_err());
    }
}
