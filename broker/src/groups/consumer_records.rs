//! Kafka byte formats of the KIP-848 ("consumer" protocol) group records.
//!
//! Kafka's new group coordinator writes these into `__consumer_offsets` with
//! key versions 3 to 8 (schemas `ConsumerGroup*Key`/`*Value` in
//! `group-coordinator/src/main/resources/common/message/`). A key is
//! `int16 version` + a non-flexible key struct (plain `int16`-length
//! strings); the version names the record type. A value is `int16 version`
//! (always 0) + a flexible struct: compact strings and arrays
//! (`uvarint(len + 1)`, 0 for null), a 16-byte UUID (most significant half
//! first), and a tagged-field section (`uvarint` count) after every struct,
//! nested ones included. Encoders write no tagged fields; decoders skip every
//! tagged field, known or not. A null value (tombstone) never reaches these
//! decoders. Decoders check each length against the remaining input before
//! allocating and reject trailing bytes, as [`super::records`] does.

use bytes::{BufMut, Bytes};
use uuid::Uuid;

use super::records::{Reader, RecordError, Writer};

/// Why a `__consumer_offsets` key is not a KIP-848 consumer group record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerKeyError {
    /// Key versions 0-2: a classic record, for [`super::records::RecordKey::decode`].
    #[error("key version {0} is a classic record (offset commit or group metadata)")]
    ClassicRecord(i16),
    /// A key version past 8 or negative (share or streams groups, or unknown): a loader skips it.
    #[error("key version {0} is an unknown record type")]
    UnknownRecordType(i16),
    /// The key has a consumer group version but its fields are malformed.
    #[error(transparent)]
    Malformed(#[from] RecordError),
}

impl ConsumerKeyError {
    /// True when the key is of a record type a loader skips (Kafka's `UnknownRecordTypeException`).
    pub fn is_unknown_record_type(&self) -> bool {
        matches!(self, ConsumerKeyError::UnknownRecordType(_))
    }

    /// True when the key is a classic record (key versions 0-2).
    pub fn is_classic_record(&self) -> bool {
        matches!(self, ConsumerKeyError::ClassicRecord(_))
    }
}

/// The key of a KIP-848 consumer group record; its variant is its key version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConsumerRecordKey {
    /// The group's epoch (key version 3, `ConsumerGroupMetadataKey`).
    GroupMetadata {
        /// The group id.
        group: String,
    },
    /// The subscribed topics' metadata (key version 4, `ConsumerGroupPartitionMetadataKey`).
    PartitionMetadata {
        /// The group id.
        group: String,
    },
    /// One member's subscription (key version 5, `ConsumerGroupMemberMetadataKey`).
    MemberMetadata {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
    /// The target assignment's epoch (key version 6, `ConsumerGroupTargetAssignmentMetadataKey`).
    TargetAssignmentMetadata {
        /// The group id.
        group: String,
    },
    /// One member's target assignment (key version 7, `ConsumerGroupTargetAssignmentMemberKey`).
    TargetAssignmentMember {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
    /// One member's current assignment (key version 8, `ConsumerGroupCurrentMemberAssignmentKey`).
    CurrentMemberAssignment {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
}

impl ConsumerRecordKey {
    /// The key version, which names the record type (3..=8).
    pub fn version(&self) -> i16 {
        match self {
            ConsumerRecordKey::GroupMetadata { .. } => 3,
            ConsumerRecordKey::PartitionMetadata { .. } => 4,
            ConsumerRecordKey::MemberMetadata { .. } => 5,
            ConsumerRecordKey::TargetAssignmentMetadata { .. } => 6,
            ConsumerRecordKey::TargetAssignmentMember { .. } => 7,
            ConsumerRecordKey::CurrentMemberAssignment { .. } => 8,
        }
    }

    /// The group id.
    pub fn group(&self) -> &str {
        match self {
            ConsumerRecordKey::GroupMetadata { group }
            | ConsumerRecordKey::PartitionMetadata { group }
            | ConsumerRecordKey::MemberMetadata { group, .. }
            | ConsumerRecordKey::TargetAssignmentMetadata { group }
            | ConsumerRecordKey::TargetAssignmentMember { group, .. }
            | ConsumerRecordKey::CurrentMemberAssignment { group, .. } => group,
        }
    }

    /// Encodes as Kafka does: the key version, the group id, then the member id if any.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(self.version(), false);
        w.string(Some(self.group()));
        match self {
            ConsumerRecordKey::MemberMetadata { member, .. }
            | ConsumerRecordKey::TargetAssignmentMember { member, .. }
            | ConsumerRecordKey::CurrentMemberAssignment { member, .. } => {
                w.string(Some(member));
            }
            _ => {}
        }
        w.finish()
    }

    /// Decodes a key; versions 0-2 give [`ConsumerKeyError::ClassicRecord`], others past 8 or negative [`ConsumerKeyError::UnknownRecordType`].
    pub fn decode(input: &[u8]) -> Result<ConsumerRecordKey, ConsumerKeyError> {
        let mut r = Reader::new(input);
        let key = match r.i16("key version")? {
            version @ 0..=2 => return Err(ConsumerKeyError::ClassicRecord(version)),
            3 => ConsumerRecordKey::GroupMetadata {
                group: r.string("group")?,
            },
            4 => ConsumerRecordKey::PartitionMetadata {
                group: r.string("group")?,
            },
            5 => ConsumerRecordKey::MemberMetadata {
                group: r.string("group")?,
                member: r.string("member id")?,
            },
            6 => ConsumerRecordKey::TargetAssignmentMetadata {
                group: r.string("group")?,
            },
            7 => ConsumerRecordKey::TargetAssignmentMember {
                group: r.string("group")?,
                member: r.string("member id")?,
            },
            8 => ConsumerRecordKey::CurrentMemberAssignment {
                group: r.string("group")?,
                member: r.string("member id")?,
            },
            version => return Err(ConsumerKeyError::UnknownRecordType(version)),
        };
        r.finish("consumer record key")?;
        Ok(key)
    }
}

/// Starts a flexible value of version 0, the only version of every consumer group value.
fn value_writer() -> Writer {
    Writer::new(0, true)
}

/// Reads a value's version, which must be 0, and switches to flexible decoding.
fn value_reader<'a>(input: &'a [u8], record: &'static str) -> Result<Reader<'a>, RecordError> {
    let mut r = Reader::new(input);
    match r.i16("value version")? {
        0 => {
            r.flexible = true;
            Ok(r)
        }
        version => Err(RecordError::UnknownValueVersion(record, version)),
    }
}

/// Ends a value: its top-level tagged fields, then no trailing bytes.
fn finish_value(mut r: Reader<'_>, record: &'static str) -> Result<(), RecordError> {
    r.tagged_fields()?;
    r.finish(record)
}

/// Reads the count of a non-nullable array; the caller reads (never pre-allocates) the elements.
fn array_len(r: &mut Reader<'_>, field: &'static str) -> Result<usize, RecordError> {
    r.length(field, true)?
        .ok_or(RecordError::UnexpectedNull(field))
}

/// Writes a `[]string` array.
fn write_strings(w: &mut Writer, values: &[String]) {
    w.array_len(values.len());
    for value in values {
        w.string(Some(value));
    }
}

/// Reads a non-nullable `[]string` array.
fn read_strings(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, RecordError> {
    let count = array_len(r, field)?;
    let mut values = Vec::new();
    for _ in 0..count {
        values.push(r.string(field)?);
    }
    Ok(values)
}

/// Writes a `[]int32` array.
fn write_i32s(w: &mut Writer, values: &[i32]) {
    w.array_len(values.len());
    for &value in values {
        w.out.put_i32(value);
    }
}

/// Reads a non-nullable `[]int32` array.
fn read_i32s(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<i32>, RecordError> {
    let count = array_len(r, field)?;
    let mut values = Vec::new();
    for _ in 0..count {
        values.push(r.i32(field)?);
    }
    Ok(values)
}

/// Reads a `uuid`: 16 bytes, most significant half first.
fn read_uuid(r: &mut Reader<'_>, field: &'static str) -> Result<Uuid, RecordError> {
    let raw = r.take(16, field)?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(raw);
    Ok(Uuid::from_bytes(bytes))
}

/// Writes a `[]{uuid TopicId, []int32 Partitions}` array, each element with empty tagged fields.
fn write_topic_partitions(w: &mut Writer, topics: &[(Uuid, Vec<i32>)]) {
    w.array_len(topics.len());
    for (topic_id, partitions) in topics {
        w.out.put_slice(topic_id.as_bytes());
        write_i32s(w, partitions);
        w.tagged_fields();
    }
}

/// Reads a non-nullable `[]{uuid TopicId, []int32 Partitions}` array, skipping each element's tagged fields.
fn read_topic_partitions(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<(Uuid, Vec<i32>)>, RecordError> {
    let count = array_len(r, field)?;
    let mut topics = Vec::new();
    for _ in 0..count {
        let topic_id = read_uuid(r, "topic id")?;
        let partitions = read_i32s(r, "partitions")?;
        r.tagged_fields()?;
        topics.push((topic_id, partitions));
    }
    Ok(topics)
}

/// The value of a `ConsumerGroupMetadata` record (key version 3): the group epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerGroupMetadataValue {
    /// The group epoch.
    pub epoch: i32,
}

impl ConsumerGroupMetadataValue {
    /// Encodes as version 0 with no tagged fields.
    pub fn encode(&self) -> Bytes {
        let mut w = value_writer();
        w.out.put_i32(self.epoch);
        w.tagged_fields();
        w.finish()
    }

    /// Decodes version 0, skipping tagged fields.
    pub fn decode(input: &[u8]) -> Result<ConsumerGroupMetadataValue, RecordError> {
        const RECORD: &str = "consumer group metadata";
        let mut r = value_reader(input, RECORD)?;
        let epoch = r.i32("epoch")?;
        finish_value(r, RECORD)?;
        Ok(ConsumerGroupMetadataValue { epoch })
    }
}

/// The value of a `ConsumerGroupPartitionMetadata` record (key version 4), decoded only to be ignored.
///
/// It caches the subscribed topics' names, partition counts and racks, which
/// Kelp recomputes from its own metadata; Kelp writes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMetadataValue;

impl PartitionMetadataValue {
    /// Checks that the input is a well-formed version 0 value and discards its contents.
    pub fn decode(input: &[u8]) -> Result<PartitionMetadataValue, RecordError> {
        const RECORD: &str = "consumer group partition metadata";
        let mut r = value_reader(input, RECORD)?;
        for _ in 0..array_len(&mut r, "topics")? {
            read_uuid(&mut r, "topic id")?;
            r.string("topic name")?;
            r.i32("partition count")?;
            for _ in 0..array_len(&mut r, "partition metadata")? {
                r.i32("partition")?;
                read_strings(&mut r, "racks")?;
                r.tagged_fields()?;
            }
            r.tagged_fields()?;
        }
        finish_value(r, RECORD)?;
        Ok(PartitionMetadataValue)
    }
}

/// The value of a `ConsumerGroupMemberMetadata` record (key version 5): one member's subscription.
///
/// The tagged field `ClassicMemberMetadata` (tag 0) is never written, which
/// means a member of the consumer protocol; it is skipped when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// The static member's instance id, if any.
    pub instance_id: Option<String>,
    /// The member's rack id, if any.
    pub rack_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client host.
    pub client_host: String,
    /// The subscribed topic names, written in the given order (Kafka sorts them).
    pub subscribed_topic_names: Vec<String>,
    /// The subscribed topic regular expression, if any.
    pub subscribed_topic_regex: Option<String>,
    /// The server-side assignor the member asked for, if any.
    pub server_assignor: Option<String>,
    /// The rebalance timeout (Kafka's default is -1).
    pub rebalance_timeout_ms: i32,
}

impl MemberMetadataValue {
    /// Encodes as version 0 in Kafka's field order (the rebalance timeout precedes the assignor), with no tagged fields.
    pub fn encode(&self) -> Bytes {
        let mut w = value_writer();
        w.string(self.instance_id.as_deref());
        w.string(self.rack_id.as_deref());
        w.string(Some(&self.client_id));
        w.string(Some(&self.client_host));
        write_strings(&mut w, &self.subscribed_topic_names);
        w.string(self.subscribed_topic_regex.as_deref());
        w.out.put_i32(self.rebalance_timeout_ms);
        w.string(self.server_assignor.as_deref());
        w.tagged_fields();
        w.finish()
    }

    /// Decodes version 0, skipping tagged fields (`ClassicMemberMetadata` included).
    pub fn decode(input: &[u8]) -> Result<MemberMetadataValue, RecordError> {
        const RECORD: &str = "consumer group member metadata";
        let mut r = value_reader(input, RECORD)?;
        let instance_id = r.nullable_string("instance id")?;
        let rack_id = r.nullable_string("rack id")?;
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let subscribed_topic_names = read_strings(&mut r, "subscribed topic names")?;
        let subscribed_topic_regex = r.nullable_string("subscribed topic regex")?;
        let rebalance_timeout_ms = r.i32("rebalance timeout")?;
        let server_assignor = r.nullable_string("server assignor")?;
        finish_value(r, RECORD)?;
        Ok(MemberMetadataValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            server_assignor,
            rebalance_timeout_ms,
        })
    }
}

/// The value of a `ConsumerGroupTargetAssignmentMetadata` record (key version 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetAssignmentMetadataValue {
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
}

impl TargetAssignmentMetadataValue {
    /// Encodes as version 0 with no tagged fields.
    pub fn encode(&self) -> Bytes {
        let mut w = value_writer();
        w.out.put_i32(self.assignment_epoch);
        w.tagged_fields();
        w.finish()
    }

    /// Decodes version 0, skipping tagged fields.
    pub fn decode(input: &[u8]) -> Result<TargetAssignmentMetadataValue, RecordError> {
        const RECORD: &str = "consumer group target assignment metadata";
        let mut r = value_reader(input, RECORD)?;
        let assignment_epoch = r.i32("assignment epoch")?;
        finish_value(r, RECORD)?;
        Ok(TargetAssignmentMetadataValue { assignment_epoch })
    }
}

/// The value of a `ConsumerGroupTargetAssignmentMember` record (key version 7): one member's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAssignmentMemberValue {
    /// The target partitions: (topic id, partitions), in the order written.
    pub topic_partitions: Vec<(Uuid, Vec<i32>)>,
}

impl TargetAssignmentMemberValue {
    /// Encodes as version 0 with no tagged fields.
    pub fn encode(&self) -> Bytes {
        let mut w = value_writer();
        write_topic_partitions(&mut w, &self.topic_partitions);
        w.tagged_fields();
        w.finish()
    }

    /// Decodes version 0, skipping tagged fields.
    pub fn decode(input: &[u8]) -> Result<TargetAssignmentMemberValue, RecordError> {
        const RECORD: &str = "consumer group target assignment member";
        let mut r = value_reader(input, RECORD)?;
        let topic_partitions = read_topic_partitions(&mut r, "topic partitions")?;
        finish_value(r, RECORD)?;
        Ok(TargetAssignmentMemberValue { topic_partitions })
    }
}

/// The value of a `ConsumerGroupCurrentMemberAssignment` record (key version 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMemberAssignmentValue {
    /// The epoch the member is expected to heartbeat with.
    pub member_epoch: i32,
    /// The epoch before the last bump, accepted if the bump was lost.
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState` id: 0 STABLE, 1 UNREVOKED_PARTITIONS, 2 UNRELEASED_PARTITIONS, 127 UNKNOWN.
    pub state: i8,
    /// The partitions assigned to (or owned by) the member: (topic id, partitions).
    pub assigned_partitions: Vec<(Uuid, Vec<i32>)>,
    /// The partitions the member must revoke: (topic id, partitions).
    pub partitions_pending_revocation: Vec<(Uuid, Vec<i32>)>,
}

impl CurrentMemberAssignmentValue {
    /// Encodes as version 0 with no tagged fields.
    pub fn encode(&self) -> Bytes {
        let mut w = value_writer();
        w.out.put_i32(self.member_epoch);
        w.out.put_i32(self.previous_member_epoch);
        w.out.put_i8(self.state);
        write_topic_partitions(&mut w, &self.assigned_partitions);
        write_topic_partitions(&mut w, &self.partitions_pending_revocation);
        w.tagged_fields();
        w.finish()
    }

    /// Decodes version 0, skipping tagged fields.
    pub fn decode(input: &[u8]) -> Result<CurrentMemberAssignmentValue, RecordError> {
        const RECORD: &str = "consumer group current member assignment";
        let mut r = value_reader(input, RECORD)?;
        let member_epoch = r.i32("member epoch")?;
        let previous_member_epoch = r.i32("previous member epoch")?;
        let state = r.u8("state")? as i8;
        let assigned_partitions = read_topic_partitions(&mut r, "assigned partitions")?;
        let partitions_pending_revocation =
            read_topic_partitions(&mut r, "partitions pending revocation")?;
        finish_value(r, RECORD)?;
        Ok(CurrentMemberAssignmentValue {
            member_epoch,
            previous_member_epoch,
            state,
            assigned_partitions,
            partitions_pending_revocation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{assert_prefixes_fail, cat};
    use RecordError::*;

    /// A topic id whose 16 bytes are 0x01..=0x10, most significant first.
    const TOPIC: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

    fn topic() -> Uuid {
        Uuid::from_bytes(TOPIC)
    }

    fn keys() -> Vec<(ConsumerRecordKey, Vec<u8>)> {
        let (g, m) = (|| "g".to_owned(), || "m".to_owned());
        use ConsumerRecordKey::*;
        vec![
            // int16 version | string group (int16 len + bytes) [| string member]
            (GroupMetadata { group: g() }, vec![0, 3, 0, 1, b'g']),
            (PartitionMetadata { group: g() }, vec![0, 4, 0, 1, b'g']),
            (
                MemberMetadata {
                    group: g(),
                    member: m(),
                },
                vec![0, 5, 0, 1, b'g', 0, 1, b'm'],
            ),
            (
                TargetAssignmentMetadata { group: g() },
                vec![0, 6, 0, 1, b'g'],
            ),
            (
                TargetAssignmentMember {
                    group: g(),
                    member: m(),
                },
                vec![0, 7, 0, 1, b'g', 0, 1, b'm'],
            ),
            (
                CurrentMemberAssignment {
                    group: g(),
                    member: m(),
                },
                vec![0, 8, 0, 1, b'g', 0, 1, b'm'],
            ),
        ]
    }

    fn member() -> MemberMetadataValue {
        MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            server_assignor: Some("u".into()),
            rebalance_timeout_ms: 20,
        }
    }

    /// `member()` as version 0, byte for byte.
    fn member_v0() -> Vec<u8> {
        cat(&[
            &[0, 0],                // value version 0
            &[2, b'i'],             // InstanceId: compact nullable string "i"
            &[0],                   // RackId: null
            &[2, b'c'],             // ClientId "c"
            &[2, b'h'],             // ClientHost "h"
            &[3, 2, b'a', 2, b'b'], // SubscribedTopicNames: compact array of 2
            &[0],                   // SubscribedTopicRegex: null
            &[0, 0, 0, 20],         // RebalanceTimeoutMs 20
            &[2, b'u'],             // ServerAssignor "u"
            &[0],                   // no tagged fields
        ])
    }

    fn assignment() -> CurrentMemberAssignmentValue {
        CurrentMemberAssignmentValue {
            member_epoch: 3,
            previous_member_epoch: 2,
            state: 1,
            assigned_partitions: vec![(topic(), vec![0, 1])],
            partitions_pending_revocation: Vec::new(),
        }
    }

    /// `assignment()` as version 0, byte for byte.
    fn assignment_v0() -> Vec<u8> {
        cat(&[
            &[0, 0],                      // value version 0
            &[0, 0, 0, 3],                // MemberEpoch 3
            &[0, 0, 0, 2],                // PreviousMemberEpoch 2
            &[1],                         // State: UNREVOKED_PARTITIONS
            &[2],                         // AssignedPartitions: compact array of 1
            &TOPIC,                       //   TopicId
            &[3, 0, 0, 0, 0, 0, 0, 0, 1], //   Partitions [0, 1]
            &[0],                         //   no tagged fields in the element
            &[1],                         // PartitionsPendingRevocation: empty
            &[0],                         // no tagged fields
        ])
    }

    #[test]
    fn keys_encode_byte_for_byte_and_round_trip() {
        for (key, bytes) in keys() {
            assert_eq!(&key.encode()[..], &bytes[..], "{key:?}");
            assert_eq!(ConsumerRecordKey::decode(&bytes), Ok(key.clone()));
            assert_eq!(key.group(), "g");
            assert_prefixes_fail(&bytes, ConsumerRecordKey::decode);
        }
        let unicode = ConsumerRecordKey::CurrentMemberAssignment {
            group: "grüppe".into(),
            member: String::new(),
        };
        assert_eq!(ConsumerRecordKey::decode(&unicode.encode()), Ok(unicode));
    }

    #[test]
    fn other_key_versions_are_classic_or_unknown() {
        for version in [0i16, 1, 2] {
            let input = cat(&[&version.to_be_bytes(), &[0, 1, b'g']]);
            let error = ConsumerRecordKey::decode(&input).unwrap_err();
            assert_eq!(error, ConsumerKeyError::ClassicRecord(version));
            assert!(error.is_classic_record() && !error.is_unknown_record_type());
            assert!(error.to_string().contains("classic record"));
        }
        for version in [9i16, 15, 16, i16::MAX, -1] {
            let input = cat(&[&version.to_be_bytes(), &[0, 1, b'g']]);
            let error = ConsumerRecordKey::decode(&input).unwrap_err();
            assert_eq!(error, ConsumerKeyError::UnknownRecordType(version));
            assert!(error.is_unknown_record_type() && !error.is_classic_record());
            assert!(error.to_string().contains("unknown record type"));
        }
        let malformed = ConsumerRecordKey::decode(&[0, 5, 0, 1, b'g']).unwrap_err();
        assert_eq!(malformed, Truncated("member id", 2, 0).into());
        assert!(!malformed.is_unknown_record_type() && !malformed.is_classic_record());
        let trailing = ConsumerRecordKey::decode(&[0, 3, 0, 1, b'g', 0]);
        assert_eq!(
            trailing,
            Err(TrailingBytes("consumer record key", 1).into())
        );
        let null = ConsumerRecordKey::decode(&[0, 3, 0xff, 0xff]);
        assert_eq!(null, Err(UnexpectedNull("group").into()));
    }

    #[test]
    fn group_and_target_metadata_values_are_byte_exact() {
        // version 0 | int32 epoch | empty tagged fields
        let bytes = [0, 0, 0, 0, 0, 5, 0];
        let group = ConsumerGroupMetadataValue { epoch: 5 };
        assert_eq!(&group.encode()[..], &bytes);
        assert_eq!(ConsumerGroupMetadataValue::decode(&bytes), Ok(group));
        assert_prefixes_fail(&bytes, ConsumerGroupMetadataValue::decode);
        let target = TargetAssignmentMetadataValue {
            assignment_epoch: 5,
        };
        assert_eq!(&target.encode()[..], &bytes);
        assert_eq!(TargetAssignmentMetadataValue::decode(&bytes), Ok(target));
        assert_prefixes_fail(&bytes, TargetAssignmentMetadataValue::decode);
        // A newer writer's tagged field (tag 0, 8 bytes, as Kafka 4.1's MetadataHash) is skipped.
        let tagged = cat(&[&[0, 0, 0, 0, 0, 5], &[1, 0, 8], &[0xab; 8]]);
        assert_eq!(ConsumerGroupMetadataValue::decode(&tagged), Ok(group));
        assert_prefixes_fail(&tagged, ConsumerGroupMetadataValue::decode);
        for epoch in [i32::MIN, -1, 0, i32::MAX] {
            let group = ConsumerGroupMetadataValue { epoch };
            assert_eq!(
                ConsumerGroupMetadataValue::decode(&group.encode()),
                Ok(group)
            );
        }
    }

    #[test]
    fn member_metadata_value_is_byte_exact_and_round_trips() {
        assert_eq!(&member().encode()[..], &member_v0()[..]);
        assert_eq!(MemberMetadataValue::decode(&member_v0()), Ok(member()));
        let empty = MemberMetadataValue {
            instance_id: None,
            rack_id: Some("r".into()),
            client_id: String::new(),
            client_host: "höst".into(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: Some("t.*".into()),
            server_assignor: None,
            rebalance_timeout_ms: -1,
        };
        for value in [member(), empty] {
            let encoded = value.encode();
            assert_eq!(MemberMetadataValue::decode(&encoded), Ok(value));
            assert_prefixes_fail(&encoded, MemberMetadataValue::decode);
        }
        // ClassicMemberMetadata (tag 0) and an unknown tag 5 are skipped.
        let v0 = member_v0();
        let tagged = cat(&[
            &v0[..v0.len() - 1],
            &[2, 0, 4, 0, 0, 0, 45, 5, 1, 0xcc], // 2 tags: 0 (4 bytes), 5 (1 byte)
        ]);
        assert_eq!(MemberMetadataValue::decode(&tagged), Ok(member()));
        assert_prefixes_fail(&tagged, MemberMetadataValue::decode);
    }

    #[test]
    fn assignment_values_are_byte_exact_and_round_trip() {
        assert_eq!(&assignment().encode()[..], &assignment_v0()[..]);
        assert_eq!(
            CurrentMemberAssignmentValue::decode(&assignment_v0()),
            Ok(assignment())
        );
        let other = Uuid::from_u128(0xdead_beef);
        let full = CurrentMemberAssignmentValue {
            member_epoch: -2,
            previous_member_epoch: -1,
            state: 127,
            assigned_partitions: vec![(topic(), vec![2, 0]), (Uuid::nil(), Vec::new())],
            partitions_pending_revocation: vec![(other, vec![i32::MAX])],
        };
        for value in [assignment(), full] {
            let encoded = value.encode();
            assert_eq!(CurrentMemberAssignmentValue::decode(&encoded), Ok(value));
            assert_prefixes_fail(&encoded, CurrentMemberAssignmentValue::decode);
        }

        // version 0 | array of 1 {TopicId, Partitions [7], tags} | tags
        let target_v0 = cat(&[&[0, 0, 2], &TOPIC, &[2, 0, 0, 0, 7, 0, 0]]);
        let target = TargetAssignmentMemberValue {
            topic_partitions: vec![(topic(), vec![7])],
        };
        assert_eq!(&target.encode()[..], &target_v0[..]);
        let two = TargetAssignmentMemberValue {
            topic_partitions: vec![(topic(), vec![7, 8]), (other, vec![0])],
        };
        let empty = TargetAssignmentMemberValue {
            topic_partitions: Vec::new(),
        };
        assert_eq!(&empty.encode()[..], &[0, 0, 1, 0]);
        for value in [target, two, empty] {
            let encoded = value.encode();
            assert_eq!(TargetAssignmentMemberValue::decode(&encoded), Ok(value));
            assert_prefixes_fail(&encoded, TargetAssignmentMemberValue::decode);
        }
        // A tagged field inside an element is skipped.
        let tagged = cat(&[&[0, 0, 2], &TOPIC, &[2, 0, 0, 0, 7, 1, 3, 1, 9, 0]]);
        let expected = TargetAssignmentMemberValue {
            topic_partitions: vec![(topic(), vec![7])],
        };
        assert_eq!(TargetAssignmentMemberValue::decode(&tagged), Ok(expected));
    }

    #[test]
    fn partition_metadata_value_is_checked_and_ignored() {
        let bytes = cat(&[
            &[0, 0],       // value version 0
            &[2],          // Topics: compact array of 1
            &TOPIC,        //   TopicId
            &[2, b't'],    //   TopicName "t"
            &[0, 0, 0, 3], //   NumPartitions 3
            &[2],          //   PartitionMetadata: compact array of 1
            &[0, 0, 0, 0], //     Partition 0
            &[2, 2, b'r'], //     Racks ["r"]
            &[0],          //     no tagged fields
            &[0],          //   no tagged fields
            &[0],          // no tagged fields
        ]);
        assert_eq!(
            PartitionMetadataValue::decode(&bytes),
            Ok(PartitionMetadataValue)
        );
        assert_prefixes_fail(&bytes, PartitionMetadataValue::decode);
        assert_eq!(
            PartitionMetadataValue::decode(&[0, 0, 1, 0]),
            Ok(PartitionMetadataValue)
        );
    }

    #[test]
    fn hostile_lengths_are_errors() {
        // A compact count of 0xffff_fffe with nothing behind it.
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let topics = cat(&[&[0, 0], &huge]);
        let error = TargetAssignmentMemberValue::decode(&topics);
        assert_eq!(error, Err(Truncated("topic id", 16, 0)));
        let error = PartitionMetadataValue::decode(&topics);
        assert_eq!(error, Err(Truncated("topic id", 16, 0)));
        let partitions = cat(&[&[0, 0, 2], &TOPIC, &huge, &[0, 0, 0, 1]]);
        let error = TargetAssignmentMemberValue::decode(&partitions);
        assert_eq!(error, Err(Truncated("partitions", 4, 0)));
        let current = cat(&[&[0, 0], &[0; 9], &huge]);
        let error = CurrentMemberAssignmentValue::decode(&current);
        assert_eq!(error, Err(Truncated("topic id", 16, 0)));
        let names = cat(&[&[0, 0, 0, 0, 1, 1], &huge, &[2, b'a']]);
        let error = MemberMetadataValue::decode(&names);
        assert_eq!(error, Err(Truncated("subscribed topic names", 1, 0)));
        let string = cat(&[&[0, 0], &huge, b"i"]);
        let error = MemberMetadataValue::decode(&string);
        assert_eq!(error, Err(Truncated("instance id", 0xffff_fffe, 1)));
        let tag = cat(&[&[0, 0, 0, 0, 0, 5], &[1, 0], &huge]);
        let error = ConsumerGroupMetadataValue::decode(&tag);
        assert_eq!(error, Err(Truncated("tagged field", 0xffff_ffff, 0)));
        let tags = cat(&[&[0, 0, 0, 0, 0, 5], &huge]);
        let error = ConsumerGroupMetadataValue::decode(&tags);
        assert_eq!(error, Err(Truncated("tagged field tag", 1, 0)));
        let varint = cat(&[&[0, 0], &[0x80; 5]]);
        let error = TargetAssignmentMemberValue::decode(&varint);
        assert_eq!(error, Err(VarintTooLong("topic partitions")));
        let key = ConsumerRecordKey::decode(&[0, 5, 0x7f, 0xff, b'g']);
        assert_eq!(key, Err(Truncated("group", 32767, 1).into()));
    }

    #[test]
    fn malformed_values_are_errors() {
        // Null for non-nullable fields: ClientId, SubscribedTopicNames, AssignedPartitions.
        let client = [0, 0, 0, 0, 0];
        let error = MemberMetadataValue::decode(&client);
        assert_eq!(error, Err(UnexpectedNull("client id")));
        let names = [0, 0, 0, 0, 1, 1, 0];
        let error = MemberMetadataValue::decode(&names);
        assert_eq!(error, Err(UnexpectedNull("subscribed topic names")));
        let current = cat(&[&[0, 0], &[0; 9], &[0]]);
        let error = CurrentMemberAssignmentValue::decode(&current);
        assert_eq!(error, Err(UnexpectedNull("assigned partitions")));
        let utf8 = [0, 0, 2, 0xff];
        assert_eq!(
            MemberMetadataValue::decode(&utf8),
            Err(InvalidUtf8("instance id"))
        );
        let trailing = [0, 0, 0, 0, 0, 5, 0, 0];
        let error = TargetAssignmentMetadataValue::decode(&trailing);
        let expected = TrailingBytes("consumer group target assignment metadata", 1);
        assert_eq!(error, Err(expected));
        for version in [1i16, -1] {
            let input = cat(&[&version.to_be_bytes(), &[0, 0, 0, 5, 0]]);
            let error = ConsumerGroupMetadataValue::decode(&input);
            let expected = UnknownValueVersion("consumer group metadata", version);
            assert_eq!(error, Err(expected));
            assert!(MemberMetadataValue::decode(&input).is_err());
            assert!(PartitionMetadataValue::decode(&input).is_err());
            assert!(TargetAssignmentMetadataValue::decode(&input).is_err());
            assert!(TargetAssignmentMemberValue::decode(&input).is_err());
            assert!(CurrentMemberAssignmentValue::decode(&input).is_err());
        }
    }
}
