//! The registry of implemented Kafka APIs and their version ranges: what
//! ApiVersions advertises and what the dispatcher accepts.

/// One implemented API.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    /// Kafka API key.
    pub key: i16,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

/// Every API this broker serves, with Kafka 4's ranges where they are
/// implemented in full. Produce advertises v3+ only in behaviour: v0-2 are
/// advertised as Kafka 4 does (KAFKA-18659, for librdkafka) and refused.
pub const IMPLEMENTED: &[Api] = &[
    Api {
        key: 0,
        min: 0,
        max: 12,
    }, // Produce (v0-2 refused)
    Api {
        key: 1,
        min: 4,
        max: 17,
    }, // Fetch
    Api {
        key: 2,
        min: 1,
        max: 9,
    }, // ListOffsets
    Api {
        key: 3,
        min: 0,
        max: 12,
    }, // Metadata
    Api {
        key: 8,
        min: 0,
        max: 9,
    }, // OffsetCommit
    Api {
        key: 9,
        min: 0,
        max: 9,
    }, // OffsetFetch
    Api {
        key: 10,
        min: 0,
        max: 6,
    }, // FindCoordinator
    Api {
        key: 11,
        min: 0,
        max: 9,
    }, // JoinGroup
    Api {
        key: 12,
        min: 0,
        max: 4,
    }, // Heartbeat
    Api {
        key: 13,
        min: 0,
        max: 5,
    }, // LeaveGroup
    Api {
        key: 14,
        min: 0,
        max: 5,
    }, // SyncGroup
    Api {
        key: 15,
        min: 0,
        max: 5,
    }, // DescribeGroups
    Api {
        key: 16,
        min: 0,
        max: 5,
    }, // ListGroups
    Api {
        key: 18,
        min: 0,
        max: 4,
    }, // ApiVersions
    Api {
        key: 19,
        min: 2,
        max: 7,
    }, // CreateTopics
    Api {
        key: 20,
        min: 1,
        max: 6,
    }, // DeleteTopics
    Api {
        key: 21,
        min: 0,
        max: 2,
    }, // DeleteRecords
    Api {
        key: 22,
        min: 0,
        max: 5,
    }, // InitProducerId
    Api {
        key: 23,
        min: 2,
        max: 4,
    }, // OffsetForLeaderEpoch
    Api {
        key: 24,
        min: 0,
        max: 3,
    }, // AddPartitionsToTxn (v4+ are between brokers)
    Api {
        key: 25,
        min: 0,
        max: 4,
    }, // AddOffsetsToTxn
    Api {
        key: 26,
        min: 0,
        max: 4,
    }, // EndTxn (v5 needs transaction.version 2)
    Api {
        key: 28,
        min: 0,
        max: 4,
    }, // TxnOffsetCommit (v5 needs transaction.version 2)
    Api {
        key: 32,
        min: 1,
        max: 4,
    }, // DescribeConfigs
    Api {
        key: 33,
        min: 0,
        max: 2,
    }, // AlterConfigs
    Api {
        key: 35,
        min: 1,
        max: 4,
    }, // DescribeLogDirs
    Api {
        key: 37,
        min: 0,
        max: 3,
    }, // CreatePartitions
    Api {
        key: 42,
        min: 0,
        max: 2,
    }, // DeleteGroups
    Api {
        key: 44,
        min: 0,
        max: 1,
    }, // IncrementalAlterConfigs
    Api {
        key: 47,
        min: 0,
        max: 0,
    }, // OffsetDelete
    Api {
        key: 60,
        min: 0,
        max: 2,
    }, // DescribeCluster
    Api {
        key: 61,
        min: 0,
        max: 0,
    }, // DescribeProducers
    Api {
        key: 65,
        min: 0,
        max: 0,
    }, // DescribeTransactions
    Api {
        key: 66,
        min: 0,
        max: 1,
    }, // ListTransactions
    Api {
        key: 68,
        min: 0,
        max: 1,
    }, // ConsumerGroupHeartbeat
    Api {
        key: 69,
        min: 0,
        max: 1,
    }, // ConsumerGroupDescribe
    Api {
        key: 75,
        min: 0,
        max: 0,
    }, // DescribeTopicPartitions
];

/// The served range of `key`, if implemented.
pub fn find(key: i16) -> Option<Api> {
    IMPLEMENTED.iter().copied().find(|api| api.key == key)
}

/// The lowest Produce version accepted (record batch v2).
pub const PRODUCE_MIN_ACCEPTED: i16 = 3;

/// Whether `key` at `version` is served.
pub fn supports(key: i16, version: i16) -> bool {
    find(key).is_some_and(|api| (api.min..=api.max).contains(&version))
}
