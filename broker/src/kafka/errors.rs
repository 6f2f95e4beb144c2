//! Kafka error codes: the one place where the broker's and the storage
//! engine's errors become the codes clients act on.

use kelp_storage::batch::BatchError;
use kelp_storage::producers::ProducerError;
use kelp_storage::StorageError;

use crate::groups::classic::GroupError;
use crate::groups::consumer::ConsumerGroupError;
use crate::shard::mesh::ShardUnreachable;

/// The Kafka error codes Kelp returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i16)]
pub enum ErrorCode {
    /// Success.
    None = 0,
    /// A fetch or list below the log start or past the log end.
    OffsetOutOfRange = 1,
    /// A batch failed its CRC or framing checks.
    CorruptMessage = 2,
    /// The topic or partition does not exist.
    UnknownTopicOrPartition = 3,
    /// The partition's shard is not serving it (shutting down): retry, as
    /// after a leader change.
    NotLeaderOrFollower = 6,
    /// The batch is larger than `max.message.bytes`.
    MessageTooLarge = 10,
    /// An offset commit's metadata is longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge = 12,
    /// The group coordinator cannot serve the group now (it was deleted,
    /// or its state could not be written): find the coordinator again.
    CoordinatorNotAvailable = 15,
    /// This broker is not the group's coordinator.
    NotCoordinator = 16,
    /// `acks=-1` on a topic whose `min.insync.replicas` exceeds its in-sync replicas.
    NotEnoughReplicas = 19,
    /// The topic name is not legal.
    InvalidTopicException = 17,
    /// `acks` is not -1, 0 or 1.
    InvalidRequiredAcks = 21,
    /// The member's generation is not the group's.
    IllegalGeneration = 22,
    /// The member's protocols share none with the group's.
    InconsistentGroupProtocol = 23,
    /// The group id is empty or not valid.
    InvalidGroupId = 24,
    /// The member is not (or no longer) in the group.
    UnknownMemberId = 25,
    /// The session timeout is outside the broker's bounds.
    InvalidSessionTimeout = 26,
    /// The group is rebalancing: rejoin.
    RebalanceInProgress = 27,
    /// The API or version is not supported.
    UnsupportedVersion = 35,
    /// CreateTopics for a name in use.
    TopicAlreadyExists = 36,
    /// A partition count that is not allowed.
    InvalidPartitions = 37,
    /// A replication factor this cluster cannot meet.
    InvalidReplicationFactor = 38,
    /// A manual replica assignment this cluster cannot follow.
    InvalidReplicaAssignment = 39,
    /// A config name or value is not valid.
    InvalidConfig = 40,
    /// The request is malformed.
    InvalidRequest = 42,
    /// The topic's policy forbids the request (DeleteRecords on a
    /// compact-only topic).
    PolicyViolation = 44,
    /// The disk failed; the log refuses writes until restart.
    KafkaStorageError = 56,
    /// DeleteGroups or OffsetDelete on a group that still has members.
    NonEmptyGroup = 68,
    /// The group does not exist.
    GroupIdNotFound = 69,
    /// The client's current leader epoch is older than the leader's.
    FencedLeaderEpoch = 74,
    /// The client's current leader epoch is newer than the leader's.
    UnknownLeaderEpoch = 75,
    /// A first JoinGroup without a member id: rejoin with the one given (KIP-394).
    MemberIdRequired = 79,
    /// Another member now holds this `group.instance.id`.
    FencedInstanceId = 82,
    /// OffsetDelete of a topic the group is subscribed to.
    GroupSubscribedToTopic = 86,
    /// A batch is well-formed but not acceptable (e.g. magic < 2).
    InvalidRecord = 87,
    /// OffsetFetch with `require_stable` on a partition a transaction has pending offsets for: retry.
    UnstableOffsetCommit = 88,
    /// No topic has this id.
    UnknownTopicId = 100,
    /// The member's epoch is not the one the group knows: rejoin (KIP-848).
    FencedMemberEpoch = 110,
    /// Another member still holds this `group.instance.id` (KIP-848).
    UnreleasedInstanceId = 111,
    /// The requested server assignor does not exist.
    UnsupportedAssignor = 112,
    /// An offset commit from an older member epoch (KIP-848).
    StaleMemberEpoch = 113,
    /// A subscription regex that does not compile (KIP-848).
    InvalidRegularExpression = 130,
    /// The request was sent to an endpoint of the wrong type.
    MismatchedEndpointType = 114,
    /// The endpoint type in the request is not known.
    UnsupportedEndpointType = 115,
    /// The coordinator is still loading its state: retry.
    CoordinatorLoadInProgress = 14,
    /// The batch does not follow its producer's last sequence here.
    OutOfOrderSequenceNumber = 45,
    /// The producer epoch is older than the partition's or coordinator's: a zombie.
    InvalidProducerEpoch = 47,
    /// The request does not fit the transaction's state.
    InvalidTxnState = 48,
    /// The producer id does not belong to the transactional id.
    InvalidProducerIdMapping = 49,
    /// `transaction.timeout.ms` is above `transaction.max.timeout.ms` or not positive.
    InvalidTransactionTimeout = 50,
    /// The transaction is completing: retry shortly.
    ConcurrentTransactions = 51,
    /// The producer was fenced by a newer instance with the same transactional id.
    ProducerFenced = 90,
    /// Writing to the topic is not allowed (internal topics in a transaction).
    TopicAuthorizationFailed = 29,
    /// A transactional batch in a Produce request without a transactional id.
    TransactionalIdAuthorizationFailed = 53,
    /// Another partition of the request failed, so this one was not tried.
    OperationNotAttempted = 55,
    /// No such transactional id (DescribeTransactions).
    TransactionalIdNotFound = 105,
    /// The transaction must be aborted (KIP-890).
    TransactionAbortable = 120,
    /// Anything else.
    UnknownServerError = -1,
}

impl ErrorCode {
    /// The wire value.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// PRODUCER_FENCED as a request `version` older than `fenced_since`
    /// knows it: INVALID_PRODUCER_EPOCH, as Kafka answers such clients.
    pub fn for_fenced_version(self, version: i16, fenced_since: i16) -> ErrorCode {
        if self == ErrorCode::ProducerFenced && version < fenced_since {
            ErrorCode::InvalidProducerEpoch
        } else {
            self
        }
    }

    /// The code a storage error maps to.
    pub fn from_storage(error: &StorageError) -> ErrorCode {
        match error {
            StorageError::InvalidBatch(batch) => ErrorCode::from_batch(batch),
            StorageError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            StorageError::NonMonotonicOffset { .. } => ErrorCode::InvalidRecord,
            StorageError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
                ErrorCode::InvalidProducerEpoch
            }
            StorageError::Producer(ProducerError::OutOfOrderSequence { .. }) => {
                ErrorCode::OutOfOrderSequenceNumber
            }
            StorageError::Producer(
                ProducerError::InvalidTxnState { .. } | ProducerError::NotInTransaction { .. },
            ) => ErrorCode::InvalidTxnState,
            StorageError::Poisoned { .. }
            | StorageError::Io { .. }
            | StorageError::Corrupt { .. } => ErrorCode::KafkaStorageError,
        }
    }

    /// The code a batch validation failure maps to: CRC and framing faults
    /// are corruption; well-formed but unacceptable batches are invalid.
    pub fn from_batch(error: &BatchError) -> ErrorCode {
        match error {
            BatchError::UnsupportedMagic(_)
            | BatchError::ProducerRecordCountMismatch { .. }
            | BatchError::EmptyBatch
            | BatchError::UnknownCompression(_)
            | BatchError::ControlFromClient
            | BatchError::InvalidProducerFields { .. } => ErrorCode::InvalidRecord,
            _ => ErrorCode::CorruptMessage,
        }
    }
}

impl From<ShardUnreachable> for ErrorCode {
    /// A partition whose shard has stopped is, to a client, a partition
    /// whose leader moved: it refreshes metadata and retries.
    fn from(_: ShardUnreachable) -> Self {
        ErrorCode::NotLeaderOrFollower
    }
}

impl From<GroupError> for ErrorCode {
    fn from(error: GroupError) -> Self {
        match error {
            GroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
            GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
            GroupError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
            GroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
            GroupError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ErrorCode::NotCoordinator,
        }
    }
}

impl From<&ConsumerGroupError> for ErrorCode {
    fn from(error: &ConsumerGroupError) -> Self {
        match error {
            ConsumerGroupError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ConsumerGroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
            ConsumerGroupError::FencedMemberEpoch => ErrorCode::FencedMemberEpoch,
            ConsumerGroupError::UnreleasedInstanceId => ErrorCode::UnreleasedInstanceId,
            ConsumerGroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
            ConsumerGroupError::UnsupportedAssignor => ErrorCode::UnsupportedAssignor,
            ConsumerGroupError::InvalidRegex(_) => ErrorCode::InvalidRegularExpression,
        }
    }
}

impl From<Result<(), GroupError>> for ErrorCode {
    /// A group call's outcome as one member's error code.
    fn from(result: Result<(), GroupError>) -> Self {
        result.map_or_else(ErrorCode::from, |()| ErrorCode::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelp_storage::Offset;

    #[test]
    fn group_errors_have_kafkas_codes() {
        assert_eq!(ErrorCode::from(GroupError::MemberIdRequired).code(), 79);
        assert_eq!(ErrorCode::from(GroupError::FencedInstanceId).code(), 82);
        assert_eq!(ErrorCode::from(GroupError::IllegalGeneration).code(), 22);
        assert_eq!(ErrorCode::from(GroupError::RebalanceInProgress).code(), 27);
    }

    #[test]
    fn storage_errors_map_to_what_clients_expect() {
        let out_of_range = StorageError::OffsetOutOfRange {
            requested: Offset(9),
            log_start: Offset(0),
            log_end: Offset(5),
        };
        assert_eq!(ErrorCode::from_storage(&out_of_range).code(), 1);
        let crc = StorageError::InvalidBatch(BatchError::CrcMismatch {
            stored: 1,
            computed: 2,
        });
        assert_eq!(ErrorCode::from_storage(&crc).code(), 2);
        let too_large = StorageError::BatchTooLarge { size: 10, max: 5 };
        assert_eq!(ErrorCode::from_storage(&too_large).code(), 10);
        assert_eq!(
            ErrorCode::from_batch(&BatchError::UnsupportedMagic(1)).code(),
            87
        );
    }
}
