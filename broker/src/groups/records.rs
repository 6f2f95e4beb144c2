//! Kafka byte formats of the `__consumer_offsets` records.
//!
//! A key is `int16 version` + key struct; the version names the record type
//! (0/1 offset commit, 2 group metadata, 3+ other group types, which a
//! classic loader skips). A value is `int16 version` + value struct; a null
//! value (tombstone) never reaches these decoders. Encoders write what Kafka
//! 3.9 writes (keys v1/v2, offset values v1/v3, group values v3) and panic on
//! a string over `i16::MAX` bytes, which no Kafka request can carry. Decoders
//! accept every classic version, flexible v4 included; they check each length
//! against the remaining input before allocating, and reject trailing bytes,
//! which no Kafka writer produces. The primitive readers and writers are
//! [`crate::wire`]'s.

use bytes::{BufMut, Bytes};

/// Why a `__consumer_offsets` key or value could not be decoded (shared with the other coordinator logs).
pub use crate::wire::RecordError;
pub(super) use crate::wire::{Reader, Writer};

/// The key of a `__consumer_offsets` record of the classic protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// An offset commit (key versions 0 and 1).
    Offset {
        /// The group id.
        group: String,
        /// The committed topic.
        topic: String,
        /// The committed partition.
        partition: i32,
    },
    /// A group's metadata (key version 2).
    GroupMetadata {
        /// The group id.
        group: String,
    },
}

impl RecordKey {
    /// Encodes the key as Kafka 3.9 does: offset keys as v1, group keys as v2.
    pub fn encode(&self) -> Bytes {
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let mut w = Writer::new(1, false);
                w.string(Some(group));
                w.string(Some(topic));
                w.out.put_i32(*partition);
                w.finish()
            }
            RecordKey::GroupMetadata { group } => {
                let mut w = Writer::new(2, false);
                w.string(Some(group));
                w.finish()
            }
        }
    }

    /// Decodes a key; versions 3 and up give [`RecordError::UnknownKeyVersion`].
    pub fn decode(input: &[u8]) -> Result<RecordKey, RecordError> {
        let mut r = Reader::new(input);
        let key = match r.i16("key version")? {
            0 | 1 => RecordKey::Offset {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            },
            2 => RecordKey::GroupMetadata {
                group: r.string("group")?,
            },
            version => return Err(RecordError::UnknownKeyVersion(version)),
        };
        r.finish("record key")?;
        Ok(key)
    }
}

/// The value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch of the committed offset, -1 if none.
    pub leader_epoch: i32,
    /// The client's metadata string; null is stored as `""`.
    pub metadata: String,
    /// When the commit was made, in ms since the epoch.
    pub commit_timestamp_ms: i64,
    /// An explicit expiry from the commit's RetentionTimeMs, in ms since the epoch.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetValue {
    /// Encodes as Kafka 3.9 does: v1 (no leader epoch) with an expiry, else v3.
    pub fn encode(&self) -> Bytes {
        let version = if self.expire_timestamp_ms.is_some() {
            1
        } else {
            3
        };
        self.encode_version(version)
    }

    /// Encodes in one version (0..=4), dropping the fields it lacks.
    fn encode_version(&self, version: i16) -> Bytes {
        let mut w = Writer::new(version, version >= 4);
        w.out.put_i64(self.offset);
        if version >= 3 {
            w.out.put_i32(self.leader_epoch);
        }
        w.string(Some(&self.metadata));
        w.out.put_i64(self.commit_timestamp_ms);
        if version == 1 {
            w.out.put_i64(self.expire_timestamp_ms.unwrap_or(-1));
        }
        w.tagged_fields();
        w.finish()
    }

    /// Decodes an offset commit value of version 0..=4.
    pub fn decode(input: &[u8]) -> Result<OffsetValue, RecordError> {
        let mut r = Reader::new(input);
        let version = r.i16("offset value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownValueVersion("offset commit", version));
        }
        r.flexible = version >= 4;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader epoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp_ms = r.i64("commit timestamp")?;
        let expire_timestamp_ms = if version == 1 {
            Some(r.i64("expire timestamp")?).filter(|&ms| ms != -1)
        } else {
            None
        };
        r.tagged_fields()?;
        r.finish("offset commit value")?;
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        })
    }
}

/// The value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// The protocol type, `""` for none (a simple group).
    pub protocol_type: String,
    /// The generation.
    pub generation: i32,
    /// The selected protocol, if any.
    pub protocol: Option<String>,
    /// The leader's member id, if any.
    pub leader: Option<String>,
    /// When the group entered its current state, in ms since the epoch; -1 if unknown.
    pub current_state_timestamp_ms: i64,
    /// The members, in the coordinator's map order.
    pub members: Vec<MemberMetadata>,
}

/// One member of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// The member id.
    pub member_id: String,
    /// The static member's instance id (value v3+).
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client host.
    pub client_host: String,
    /// The rebalance timeout; in v0, equal to the session timeout.
    pub rebalance_timeout_ms: i32,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl GroupMetadataValue {
    /// Encodes as Kafka 3.9 does: version 3.
    pub fn encode(&self) -> Bytes {
        self.encode_version(3)
    }

    /// Encodes in one version (0..=4), dropping the fields it lacks.
    fn encode_version(&self, version: i16) -> Bytes {
        let mut w = Writer::new(version, version >= 4);
        w.string(Some(&self.protocol_type));
        w.out.put_i32(self.generation);
        w.string(self.protocol.as_deref());
        w.string(self.leader.as_deref());
        if version >= 2 {
            w.out.put_i64(self.current_state_timestamp_ms);
        }
        w.array_len(self.members.len());
        for member in &self.members {
            w.string(Some(&member.member_id));
            if version >= 3 {
                w.string(member.group_instance_id.as_deref());
            }
            w.string(Some(&member.client_id));
            w.string(Some(&member.client_host));
            if version >= 1 {
                w.out.put_i32(member.rebalance_timeout_ms);
            }
            w.out.put_i32(member.session_timeout_ms);
            w.bytes(&member.subscription);
            w.bytes(&member.assignment);
            w.tagged_fields();
        }
        w.tagged_fields();
        w.finish()
    }

    /// Decodes a group metadata value of version 0..=4.
    pub fn decode(input: &[u8]) -> Result<GroupMetadataValue, RecordError> {
        let mut r = Reader::new(input);
        let version = r.i16("group value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownValueVersion("group metadata", version));
        }
        r.flexible = version >= 4;
        let protocol_type = r.string("protocol type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp_ms = if version >= 2 {
            r.i64("current state timestamp")?
        } else {
            -1
        };
        let count = r
            .length("members", true)?
            .ok_or(RecordError::UnexpectedNull("members"))?;
        // No capacity from `count`: each member consumes input or fails, so
        // the vector grows only with what the input really holds.
        let mut members = Vec::new();
        for _ in 0..count {
            members.push(MemberMetadata::decode(&mut r, version)?);
        }
        r.tagged_fields()?;
        r.finish("group metadata value")?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

impl MemberMetadata {
    /// Reads one member of a group metadata value of `version`.
    fn decode(r: &mut Reader<'_>, version: i16) -> Result<MemberMetadata, RecordError> {
        let member_id = r.string("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("group instance id")?
        } else {
            None
        };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let rebalance_timeout_ms = if version >= 1 {
            Some(r.i32("rebalance timeout")?)
        } else {
            None
        };
        let session_timeout_ms = r.i32("session timeout")?;
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        r.tagged_fields()?;
        Ok(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{assert_prefixes_fail, cat};
    use RecordError::*;

    fn offset_key() -> RecordKey {
        let (group, topic) = ("g".into(), "t".into());
        RecordKey::Offset {
            group,
            topic,
            partition: 3,
        }
    }

    fn offset(leader_epoch: i32, expire_timestamp_ms: Option<i64>) -> OffsetValue {
        let (offset, metadata, commit_timestamp_ms) = (5, "m".into(), 7);
        OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        }
    }

    fn member(instance: Option<&str>, rebalance_timeout_ms: i32) -> MemberMetadata {
        MemberMetadata {
            member_id: "m".into(),
            group_instance_id: instance.map(str::to_owned),
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms,
            session_timeout_ms: 10,
            subscription: Bytes::from_static(&[1]),
            assignment: Bytes::from_static(&[2]),
        }
    }

    fn group(current_state_timestamp_ms: i64, members: Vec<MemberMetadata>) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "c".into(),
            generation: 1,
            protocol: Some("p".into()),
            leader: Some("m".into()),
            current_state_timestamp_ms,
            members,
        }
    }

    const OFFSET_KEY_V1: &[u8] = &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
    const GROUP_KEY_V2: &[u8] = &[0, 2, 0, 1, b'g'];
    const OFFSET_V3: &[u8] = &[
        0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 7,
    ];

    /// Group value v3: "c", generation 1, "p", leader "m", timestamp 100, one member.
    fn group_value_v3() -> Vec<u8> {
        cat(&[
            &[0, 3, 0, 1, b'c', 0, 0, 0, 1, 0, 1, b'p', 0, 1, b'm'],
            &100i64.to_be_bytes(),
            &[0, 0, 0, 1, 0, 1, b'm', 0, 1, b'i', 0, 1, b'c', 0, 1, b'h'],
            &[0, 0, 0, 20, 0, 0, 0, 10, 0, 0, 0, 1, 1, 0, 0, 0, 1, 2],
        ])
    }

    #[test]
    fn keys_encode_as_kafka_writes_them_and_round_trip() {
        assert_eq!(&offset_key().encode()[..], OFFSET_KEY_V1);
        let group = RecordKey::GroupMetadata { group: "g".into() };
        assert_eq!(&group.encode()[..], GROUP_KEY_V2);
        let unicode = RecordKey::GroupMetadata {
            group: "grüppe".into(),
        };
        for key in [offset_key(), group, unicode] {
            assert_eq!(RecordKey::decode(&key.encode()), Ok(key.clone()));
            assert_prefixes_fail(&key.encode(), RecordKey::decode);
        }
        let v0 = [0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
        assert_eq!(RecordKey::decode(&v0), Ok(offset_key()));
    }

    #[test]
    fn other_key_versions_are_unknown_record_types() {
        for version in [3i16, 8, 15, -1] {
            let input = cat(&[&version.to_be_bytes(), &[0, 1, b'g']]);
            let error = RecordKey::decode(&input).unwrap_err();
            assert_eq!(error, UnknownKeyVersion(version));
            assert!(error.is_unknown_record_type());
        }
        assert!(!RecordKey::decode(&[0])
            .unwrap_err()
            .is_unknown_record_type());
    }

    #[test]
    fn offset_value_encodes_v3_without_expiry_and_v1_with_it() {
        assert_eq!(&offset(2, None).encode()[..], OFFSET_V3);
        assert_eq!(OffsetValue::decode(OFFSET_V3), Ok(offset(2, None)));
        let (o, m, ts) = (5i64.to_be_bytes(), [0, 1, b'm'], 7i64.to_be_bytes());
        let v1 = cat(&[&[0, 1], &o, &m, &ts, &9i64.to_be_bytes()]);
        assert_eq!(&offset(2, Some(9)).encode()[..], &v1[..]);
        // v1 has no leader epoch, as in Kafka.
        assert_eq!(OffsetValue::decode(&v1), Ok(offset(-1, Some(9))));
        assert_prefixes_fail(&v1, OffsetValue::decode);
        assert_prefixes_fail(OFFSET_V3, OffsetValue::decode);
    }

    #[test]
    fn offset_value_decodes_every_version() {
        let (o, m, ts) = (5i64.to_be_bytes(), [0, 1, b'm'], 7i64.to_be_bytes());
        for version in [0u8, 2] {
            let input = cat(&[&[0, version], &o, &m, &ts]);
            assert_eq!(OffsetValue::decode(&input), Ok(offset(-1, None)));
        }
        // An expire timestamp of -1 in v1 means none.
        let v1 = cat(&[&[0, 1], &o, &m, &ts, &(-1i64).to_be_bytes()]);
        assert_eq!(OffsetValue::decode(&v1), Ok(offset(-1, None)));
        // v4: compact metadata, then a tagged section with one unknown 2-byte tag.
        let v4 = cat(&[
            &[0, 4],
            &o,
            &[0, 0, 0, 2, 2, b'm'],
            &ts,
            &[1, 0, 2, 0xaa, 0xbb],
        ]);
        assert_eq!(OffsetValue::decode(&v4), Ok(offset(2, None)));
        assert_prefixes_fail(&v4, OffsetValue::decode);
        for version in 0..=4 {
            let decoded = OffsetValue::decode(&offset(2, None).encode_version(version));
            assert_eq!(decoded, Ok(offset(if version >= 3 { 2 } else { -1 }, None)));
        }
    }

    #[test]
    fn group_value_encodes_v3_and_round_trips() {
        let value = group(100, vec![member(Some("i"), 20)]);
        assert_eq!(&value.encode()[..], &group_value_v3()[..]);
        let empty = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: -1,
            members: Vec::new(),
        };
        let two = group(5, vec![member(Some("i"), 20), member(None, 30)]);
        for value in [value, empty, two] {
            assert_eq!(
                GroupMetadataValue::decode(&value.encode()),
                Ok(value.clone())
            );
            assert_prefixes_fail(&value.encode(), GroupMetadataValue::decode);
        }
    }

    #[test]
    fn group_value_decodes_older_versions() {
        let head = [0, 1, b'c', 0, 0, 0, 1, 0, 1, b'p', 0, 1, b'm'];
        let (count, id, ids) = ([0, 0, 0, 1], [0, 1, b'm'], [0, 1, b'c', 0, 1, b'h']);
        let (rebalance, tail) = ([0, 0, 0, 20], [0, 0, 0, 10, 0, 0, 0, 1, 1, 0, 0, 0, 1, 2]);
        let v0 = cat(&[&[0, 0], &head, &count, &id, &ids, &tail]);
        // v0 has no rebalance timeout: it is the session timeout.
        let expected = group(-1, vec![member(None, 10)]);
        assert_eq!(GroupMetadataValue::decode(&v0), Ok(expected));
        let v1 = cat(&[&[0, 1], &head, &count, &id, &ids, &rebalance, &tail]);
        let expected = group(-1, vec![member(None, 20)]);
        assert_eq!(GroupMetadataValue::decode(&v1), Ok(expected));
        let ts = 100i64.to_be_bytes();
        let v2 = cat(&[&[0, 2], &head, &ts, &count, &id, &ids, &rebalance, &tail]);
        let expected = group(100, vec![member(None, 20)]);
        assert_eq!(GroupMetadataValue::decode(&v2), Ok(expected));
        for input in [v0, v1, v2, group_value_v3()] {
            assert_prefixes_fail(&input, GroupMetadataValue::decode);
        }
    }

    #[test]
    fn group_value_decodes_flexible_v4() {
        let v4 = cat(&[
            &[0, 4, 2, b'c', 0, 0, 0, 1, 0, 0], // null protocol and leader
            &100i64.to_be_bytes(),
            &[
                2, 2, b'm', 2, b'i', 2, b'c', 2, b'h', 0, 0, 0, 20, 0, 0, 0, 10,
            ],
            &[2, 1, 2, 2, 1, 7, 1, 0xcc, 0], // member tags: tag 7, one byte
        ]);
        let mut expected = group(100, vec![member(Some("i"), 20)]);
        (expected.protocol, expected.leader) = (None, None);
        assert_eq!(GroupMetadataValue::decode(&v4), Ok(expected.clone()));
        assert_prefixes_fail(&v4, GroupMetadataValue::decode);
        let encoded = expected.encode_version(4);
        assert_eq!(GroupMetadataValue::decode(&encoded), Ok(expected));
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let string = RecordKey::decode(&[0, 2, 0x7f, 0xff, b'g']);
        assert_eq!(string, Err(Truncated("group", 32767, 1)));
        let bytes = cat(&[&group_value_v3()[..52], &[0x7f, 0xff, 0xff, 0xff, 2]]);
        let error = GroupMetadataValue::decode(&bytes);
        assert_eq!(error, Err(Truncated("assignment", 0x7fff_ffff, 1)));
        // A member count of i32::MAX with no members behind it.
        let count = [
            0, 0, 0, 1, b'c', 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ];
        let error = GroupMetadataValue::decode(&count);
        assert_eq!(error, Err(Truncated("member id", 2, 0)));
        let compact = cat(&[&[0, 4], &[0; 12], &[0xff, 0xff, 0xff, 0xff, 0x0f, b'm']]);
        let error = OffsetValue::decode(&compact);
        assert_eq!(error, Err(Truncated("metadata", 0xffff_fffe, 1)));
        let tag = cat(&[
            &[0, 4],
            &[0; 12],
            &[1],
            &[0; 8],
            &[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f],
        ]);
        let error = OffsetValue::decode(&tag);
        assert_eq!(error, Err(Truncated("tagged field", 0xffff_ffff, 0)));
        let varint = cat(&[&[0, 4], &[0; 12], &[0x80; 5]]);
        assert_eq!(OffsetValue::decode(&varint), Err(VarintTooLong("metadata")));
    }

    #[test]
    fn malformed_fields_are_errors() {
        let negative = RecordKey::decode(&[0, 2, 0xff, 0xfe]);
        assert_eq!(negative, Err(NegativeLength("group", -2)));
        assert_eq!(
            RecordKey::decode(&[0, 2, 0xff, 0xff]),
            Err(UnexpectedNull("group"))
        );
        assert_eq!(
            RecordKey::decode(&[0, 2, 0, 1, 0xff]),
            Err(InvalidUtf8("group"))
        );
        let trailing = RecordKey::decode(&[0, 2, 0, 1, b'g', 0]);
        assert_eq!(trailing, Err(TrailingBytes("record key", 1)));
        let null = cat(&[&group_value_v3()[..52], &[0xff, 0xff, 0xff, 0xff]]);
        let error = GroupMetadataValue::decode(&null);
        assert_eq!(error, Err(UnexpectedNull("assignment")));
        for version in [5i16, -1] {
            let input = cat(&[&version.to_be_bytes(), &[0; 24]]);
            let offset = UnknownValueVersion("offset commit", version);
            assert_eq!(OffsetValue::decode(&input), Err(offset));
            let group = UnknownValueVersion("group metadata", version);
            assert_eq!(GroupMetadataValue::decode(&input), Err(group));
        }
    }
}
