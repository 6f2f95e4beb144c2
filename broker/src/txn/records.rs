//! Kafka byte formats of the `__transaction_state` records.
//!
//! Schemas `TransactionLogKey` and `TransactionLogValue` in Kafka's
//! `transaction-coordinator/src/main/resources/common/message/`. A key is
//! `int16 version` (always 0) + a non-flexible `string TransactionalId`. A
//! value is `int16 version` + `int64 ProducerId`, `int16 ProducerEpoch`,
//! `int32 TransactionTimeoutMs`, `int8 TransactionStatus`, a nullable
//! `[]{string Topic, []int32 PartitionIds} TransactionPartitions`, `int64
//! TransactionLastUpdateTimestampMs`, `int64 TransactionStartTimestampMs`.
//! Version 0 is non-flexible; version 1 is flexible (compact strings and
//! arrays, a tagged-field section after each struct) and adds the KIP-890
//! tagged fields 0 `PreviousProducerId` (`int64`, default -1), 1
//! `NextProducerId` (`int64`, default -1) and 2 `ClientTransactionVersion`
//! (`int16`, default 0), each written only when not its default.
//!
//! [`TxnValue::encode`] writes version 1, as Kafka 4.0 does once
//! `transaction.version` is 1 or more (the default of a new 4.0 cluster).
//! Kafka 4.0 itself leaves the previous and next producer ids out (later
//! Kafka writes them); this encoder writes them whenever they are set, so a
//! value with both at -1 is byte-identical to Kafka 4.0's. Kafka writes a
//! null partition array for an [`TxnStatus::Empty`] transaction and an array,
//! maybe empty, otherwise; its loader ignores the partitions of an `Empty`
//! one, and so does [`TxnValue::decode`]. Decoders accept both versions, skip
//! tags they do not know (later Kafka adds tag 3, `NextProducerEpoch`), check
//! each length against the remaining input before allocating, and reject
//! trailing bytes. A null value (tombstone) never reaches these decoders.

use bytes::{BufMut, Bytes};

use crate::wire::{Reader, RecordError, Writer};

/// A transaction's state, by Kafka's `TransactionState` id (its byte in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum TxnStatus {
    /// No transaction is open; the producer id may be in use.
    Empty = 0,
    /// A transaction is open and has added partitions or offsets.
    Ongoing = 1,
    /// The transaction is committing; markers are being written.
    PrepareCommit = 2,
    /// The transaction is aborting; markers are being written.
    PrepareAbort = 3,
    /// The transaction has committed.
    CompleteCommit = 4,
    /// The transaction has aborted.
    CompleteAbort = 5,
    /// The transactional id has expired and is being removed.
    Dead = 6,
    /// A newer producer is fencing this one; the transaction will abort.
    PrepareEpochFence = 7,
}

impl TxnStatus {
    /// Every status, in id order.
    pub const ALL: [TxnStatus; 8] = [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::PrepareCommit,
        TxnStatus::PrepareAbort,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
        TxnStatus::Dead,
        TxnStatus::PrepareEpochFence,
    ];

    /// The status's id, its `TransactionStatus` byte in the log.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The status of an id, `None` for an id Kafka does not define.
    pub fn from_id(id: i8) -> Option<TxnStatus> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Kafka's name of the status, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The status of a name (exact, case-sensitive, as Kafka's `fromName`), `None` if unknown.
    pub fn from_name(name: &str) -> Option<TxnStatus> {
        Self::ALL.into_iter().find(|status| status.name() == name)
    }
}

/// The key of a `__transaction_state` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnKey {
    /// The transactional id.
    pub transactional_id: String,
}

impl TxnKey {
    /// Encodes the key as Kafka does: version 0.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(0, false);
        w.string(Some(&self.transactional_id));
        w.finish()
    }

    /// Decodes a key; a version other than 0 gives [`RecordError::UnknownKeyVersion`], which Kafka's loader skips.
    pub fn decode(input: &[u8]) -> Result<TxnKey, RecordError> {
        let mut r = Reader::new(input);
        match r.i16("key version")? {
            0 => {}
            version => return Err(RecordError::UnknownKeyVersion(version)),
        }
        let transactional_id = r.string("transactional id")?;
        r.finish("transaction key")?;
        Ok(TxnKey { transactional_id })
    }
}

/// The value of a `__transaction_state` record: a transactional id's producer and transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    /// The producer id in use by the transactional id.
    pub producer_id: i64,
    /// The producer id of the last committed transaction, -1 if none (tagged, v1).
    pub previous_producer_id: i64,
    /// The latest producer id sent to the producer, -1 if none (tagged, v1).
    pub next_producer_id: i64,
    /// The epoch of the producer id.
    pub producer_epoch: i16,
    /// The transaction timeout, in ms.
    pub timeout_ms: i32,
    /// The transaction's state.
    pub status: TxnStatus,
    /// The partitions in the transaction, as (topic, partition ids); always empty when `Empty`.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// When the transaction was last updated, in ms since the epoch.
    pub last_update_ms: i64,
    /// When the transaction started, in ms since the epoch; -1 if none.
    pub start_ms: i64,
    /// The client's `transaction.version` feature level, 0 for a client before KIP-890 (tagged, v1).
    pub client_transaction_version: i16,
}

impl TxnValue {
    /// Encodes as Kafka 4.0 does with `transaction.version` 1 or more: version 1.
    ///
    /// The partitions of an `Empty` value are written as null, as Kafka does; Kafka
    /// refuses to write an `Empty` value with partitions, and debug builds panic on one.
    pub fn encode(&self) -> Bytes {
        self.encode_version(1)
    }

    /// Encodes in one version (0 or 1); version 0 drops the tagged fields.
    fn encode_version(&self, version: i16) -> Bytes {
        debug_assert!(
            self.status != TxnStatus::Empty || self.partitions.is_empty(),
            "an Empty transaction with partitions"
        );
        let mut w = Writer::new(version, version >= 1);
        w.out.put_i64(self.producer_id);
        w.out.put_i16(self.producer_epoch);
        w.out.put_i32(self.timeout_ms);
        w.out.put_i8(self.status.id());
        if self.status == TxnStatus::Empty {
            w.nullable_array_len(None);
        } else {
            w.array_len(self.partitions.len());
            for (topic, partition_ids) in &self.partitions {
                w.string(Some(topic));
                w.i32_array(partition_ids);
                w.tagged_fields();
            }
        }
        w.out.put_i64(self.last_update_ms);
        w.out.put_i64(self.start_ms);
        if w.flexible {
            let previous = self.previous_producer_id.to_be_bytes();
            let next = self.next_producer_id.to_be_bytes();
            let client = self.client_transaction_version.to_be_bytes();
            // Only fields off their default, in tag order, as Kafka writes them.
            let mut fields: Vec<(u32, &[u8])> = Vec::new();
            if self.previous_producer_id != -1 {
                fields.push((TAG_PREVIOUS_PRODUCER_ID, &previous));
            }
            if self.next_producer_id != -1 {
                fields.push((TAG_NEXT_PRODUCER_ID, &next));
            }
            if self.client_transaction_version != 0 {
                fields.push((TAG_CLIENT_TXN_VERSION, &client));
            }
            w.tagged_fields_with(&fields);
        }
        w.finish()
    }

    /// Decodes a value of version 0 or 1.
    pub fn decode(input: &[u8]) -> Result<TxnValue, RecordError> {
        let mut r = Reader::new(input);
        let version = r.i16("value version")?;
        if !(0..=1).contains(&version) {
            return Err(RecordError::UnknownValueVersion(
                "transaction value",
                version,
            ));
        }
        r.flexible = version >= 1;
        let producer_id = r.i64("producer id")?;
        let producer_epoch = r.i16("producer epoch")?;
        let timeout_ms = r.i32("transaction timeout")?;
        let status = r.i8("transaction status")?;
        let status = TxnStatus::from_id(status).ok_or(RecordError::InvalidValue(
            "transaction status",
            i64::from(status),
        ))?;
        let count = r.length("transaction partitions", true)?.unwrap_or(0);
        // No capacity from `count`: each topic consumes input or fails, so
        // the vector grows only with what the input really holds.
        let mut partitions = Vec::new();
        for _ in 0..count {
            let topic = r.string("topic")?;
            let partition_ids = r.i32_array("partition ids")?;
            r.tagged_fields()?;
            partitions.push((topic, partition_ids));
        }
        if status == TxnStatus::Empty {
            // Kafka's loader ignores them too; its writer never writes any.
            partitions.clear();
        }
        let last_update_ms = r.i64("last update timestamp")?;
        let start_ms = r.i64("start timestamp")?;
        let mut value = TxnValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            timeout_ms,
            status,
            partitions,
            last_update_ms,
            start_ms,
            client_transaction_version: 0,
        };
        r.tagged_fields_with(|tag, data| {
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    value.previous_producer_id =
                        i64::from_be_bytes(fixed(data, "previous producer id size")?);
                }
                TAG_NEXT_PRODUCER_ID => {
                    value.next_producer_id =
                        i64::from_be_bytes(fixed(data, "next producer id size")?);
                }
                TAG_CLIENT_TXN_VERSION => {
                    value.client_transaction_version =
                        i16::from_be_bytes(fixed(data, "client transaction version size")?);
                }
                _ => {}
            }
            Ok(())
        })?;
        r.finish("transaction value")?;
        Ok(value)
    }
}

/// The tag of `PreviousProducerId`.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
/// The tag of `NextProducerId`.
const TAG_NEXT_PRODUCER_ID: u32 = 1;
/// The tag of `ClientTransactionVersion`.
const TAG_CLIENT_TXN_VERSION: u32 = 2;

/// A known tagged field's data as its fixed-size type; another size is an error named `field`.
fn fixed<const N: usize>(data: &[u8], field: &'static str) -> Result<[u8; N], RecordError> {
    data.try_into().map_err(|_| {
        RecordError::InvalidValue(field, i64::try_from(data.len()).unwrap_or(i64::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{assert_prefixes_fail, cat};
    use RecordError::*;

    /// An ongoing transaction on t-0 and t-2, with no KIP-890 fields.
    fn ongoing() -> TxnValue {
        TxnValue {
            producer_id: 1000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 5,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: vec![("t".into(), vec![0, 2])],
            last_update_ms: 2000,
            start_ms: 1500,
            client_transaction_version: 0,
        }
    }

    /// `ongoing()` with a previous producer id and client transaction version 2.
    fn ongoing_kip890() -> TxnValue {
        TxnValue {
            previous_producer_id: 900,
            client_transaction_version: 2,
            ..ongoing()
        }
    }

    /// An `Empty` transactional id: no partitions, no start.
    fn empty() -> TxnValue {
        TxnValue {
            status: TxnStatus::Empty,
            partitions: Vec::new(),
            start_ms: -1,
            ..ongoing()
        }
    }

    /// The fixed head of every test value: producer id 1000, epoch 5, timeout 60000.
    fn head(version: i16) -> Vec<u8> {
        cat(&[
            &version.to_be_bytes(),
            &1000i64.to_be_bytes(),
            &5i16.to_be_bytes(),
            &60_000i32.to_be_bytes(),
        ])
    }

    /// `ongoing()` as v0: int32 array counts, int16 string lengths, no tagged fields.
    fn ongoing_v0() -> Vec<u8> {
        cat(&[
            &head(0),
            &[1],                // status Ongoing
            &1i32.to_be_bytes(), // one topic
            &[0, 1, b't'],       // topic "t"
            &2i32.to_be_bytes(), // two partition ids
            &0i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &2000i64.to_be_bytes(), // last update
            &1500i64.to_be_bytes(), // start
        ])
    }

    /// `ongoing()` as v1 with `tags` as its top-level tagged-field section.
    fn ongoing_v1(tags: &[u8]) -> Vec<u8> {
        cat(&[
            &head(1),
            &[1],       // status Ongoing
            &[2],       // compact count: one topic
            &[2, b't'], // compact string "t"
            &[3],       // compact count: two partition ids
            &0i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &[0], // the topic's tagged fields: none
            &2000i64.to_be_bytes(),
            &1500i64.to_be_bytes(),
            tags,
        ])
    }

    /// The tagged section of `ongoing_kip890()`: tag 0 (8 bytes, 900), tag 2 (2 bytes, 2).
    fn kip890_tags() -> Vec<u8> {
        cat(&[
            &[2],
            &[0, 8],
            &900i64.to_be_bytes(),
            &[2, 2],
            &2i16.to_be_bytes(),
        ])
    }

    #[test]
    fn status_ids_and_names_are_kafkas() {
        let names = [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
            "PrepareEpochFence",
        ];
        for (id, (status, name)) in TxnStatus::ALL.into_iter().zip(names).enumerate() {
            let id = i8::try_from(id).expect("eight statuses");
            assert_eq!(status.id(), id);
            assert_eq!(TxnStatus::from_id(id), Some(status));
            assert_eq!(status.name(), name);
            assert_eq!(TxnStatus::from_name(name), Some(status));
        }
        for id in [8, 127, -1, -128] {
            assert_eq!(TxnStatus::from_id(id), None);
        }
        assert_eq!(TxnStatus::from_name("ongoing"), None);
    }

    #[test]
    fn key_encodes_as_kafka_writes_it_and_round_trips() {
        let key = TxnKey {
            transactional_id: "tx".into(),
        };
        // int16 version 0, int16 length 2, "tx".
        let expected = [0, 0, 0, 2, b't', b'x'];
        assert_eq!(&key.encode()[..], &expected);
        assert_eq!(TxnKey::decode(&expected), Ok(key));
        let unicode = TxnKey {
            transactional_id: "tränsaktion".into(),
        };
        let empty = TxnKey {
            transactional_id: String::new(),
        };
        for key in [unicode, empty] {
            assert_eq!(TxnKey::decode(&key.encode()), Ok(key.clone()));
            assert_prefixes_fail(&key.encode(), TxnKey::decode);
        }
        assert_prefixes_fail(&expected, TxnKey::decode);
    }

    #[test]
    fn other_key_versions_are_unknown_record_types() {
        for version in [1i16, 2, -1] {
            let input = cat(&[&version.to_be_bytes(), &[0, 1, b'x']]);
            let error = TxnKey::decode(&input).unwrap_err();
            assert_eq!(error, UnknownKeyVersion(version));
            assert!(error.is_unknown_record_type());
        }
    }

    #[test]
    fn value_encodes_v1_as_kafka_writes_it() {
        // No KIP-890 fields set: an empty tagged section.
        let plain = ongoing_v1(&[0]);
        assert_eq!(&ongoing().encode()[..], &plain[..]);
        assert_eq!(TxnValue::decode(&plain), Ok(ongoing()));
        let tagged = ongoing_v1(&kip890_tags());
        assert_eq!(&ongoing_kip890().encode()[..], &tagged[..]);
        assert_eq!(TxnValue::decode(&tagged), Ok(ongoing_kip890()));
        // All three tags, in ascending order.
        let all = TxnValue {
            next_producer_id: 1001,
            ..ongoing_kip890()
        };
        let tags = cat(&[
            &[3],
            &[0, 8],
            &900i64.to_be_bytes(),
            &[1, 8],
            &1001i64.to_be_bytes(),
            &[2, 2],
            &2i16.to_be_bytes(),
        ]);
        assert_eq!(&all.encode()[..], &ongoing_v1(&tags)[..]);
        // Empty: a null (0) compact partition array.
        let empty_v1 = cat(&[
            &head(1),
            &[0, 0],
            &2000i64.to_be_bytes(),
            &(-1i64).to_be_bytes(),
            &[0],
        ]);
        assert_eq!(&empty().encode()[..], &empty_v1[..]);
        assert_eq!(TxnValue::decode(&empty_v1), Ok(empty()));
        for input in [plain, tagged, ongoing_v1(&tags), empty_v1] {
            assert_prefixes_fail(&input, TxnValue::decode);
        }
    }

    #[test]
    fn value_v0_is_kafkas_and_drops_tagged_fields() {
        assert_eq!(&ongoing_kip890().encode_version(0)[..], &ongoing_v0()[..]);
        assert_eq!(TxnValue::decode(&ongoing_v0()), Ok(ongoing()));
        // Empty: a null (-1) int32 partition array.
        let empty_v0 = cat(&[
            &head(0),
            &[0],
            &(-1i32).to_be_bytes(),
            &2000i64.to_be_bytes(),
            &(-1i64).to_be_bytes(),
        ]);
        assert_eq!(&empty().encode_version(0)[..], &empty_v0[..]);
        assert_eq!(TxnValue::decode(&empty_v0), Ok(empty()));
        assert_prefixes_fail(&ongoing_v0(), TxnValue::decode);
        assert_prefixes_fail(&empty_v0, TxnValue::decode);
    }

    #[test]
    fn values_round_trip_in_every_status_and_version() {
        for status in TxnStatus::ALL {
            let partitions = if status == TxnStatus::Empty {
                Vec::new()
            } else {
                vec![
                    ("orders".into(), vec![0, 1, 7]),
                    ("ünïcode".into(), Vec::new()),
                    ("t".into(), vec![i32::MAX]),
                ]
            };
            let value = TxnValue {
                status,
                partitions,
                next_producer_id: 77,
                ..ongoing_kip890()
            };
            assert_eq!(TxnValue::decode(&value.encode()), Ok(value.clone()));
            assert_prefixes_fail(&value.encode(), TxnValue::decode);
            let v0 = TxnValue {
                previous_producer_id: -1,
                next_producer_id: -1,
                client_transaction_version: 0,
                ..value.clone()
            };
            assert_eq!(TxnValue::decode(&value.encode_version(0)), Ok(v0));
            assert_prefixes_fail(&value.encode_version(0), TxnValue::decode);
        }
        // A completed transaction's partitions are an empty, non-null array.
        let done = TxnValue {
            status: TxnStatus::CompleteCommit,
            partitions: Vec::new(),
            ..ongoing()
        };
        let bytes = done.encode();
        assert_eq!(bytes[17], 1, "compact count of an empty array");
        assert_eq!(TxnValue::decode(&bytes), Ok(done));
    }

    #[test]
    fn unknown_tags_are_skipped_and_known_ones_must_fit() {
        // Tag 5 (3 bytes) and tag 3 (NextProducerEpoch, later Kafka) around tag 2.
        let tags = cat(&[
            &[3],
            &[2, 2],
            &2i16.to_be_bytes(),
            &[3, 2, 0, 4],
            &[5, 3, 0xaa, 0xbb, 0xcc],
        ]);
        let expected = TxnValue {
            client_transaction_version: 2,
            ..ongoing()
        };
        assert_eq!(TxnValue::decode(&ongoing_v1(&tags)), Ok(expected));
        assert_prefixes_fail(&ongoing_v1(&tags), TxnValue::decode);
        // The partition struct's own tagged section skips unknown tags too.
        let mut nested = ongoing_v1(&[0]);
        let at = head(1).len() + 1 + 1 + 2 + 1 + 8;
        assert_eq!(nested[at], 0, "the topic's tagged section");
        nested.splice(at..=at, [1, 9, 1, 0xdd]);
        assert_eq!(TxnValue::decode(&nested), Ok(ongoing()));
        // A known tag of the wrong size would desynchronise Kafka's reader.
        let short = cat(&[&[1], &[0, 4], &900i32.to_be_bytes()]);
        let error = TxnValue::decode(&ongoing_v1(&short));
        assert_eq!(error, Err(InvalidValue("previous producer id size", 4)));
        let long = cat(&[&[1], &[2, 3], &[0, 0, 2]]);
        let error = TxnValue::decode(&ongoing_v1(&long));
        assert_eq!(
            error,
            Err(InvalidValue("client transaction version size", 3))
        );
    }

    #[test]
    fn partitions_of_an_empty_value_are_ignored_and_null_is_empty() {
        // Kafka never writes these, and its loader ignores them.
        let mut input = ongoing_v0();
        input[head(0).len()] = 0; // status Empty
        let expected = TxnValue {
            status: TxnStatus::Empty,
            partitions: Vec::new(),
            ..ongoing()
        };
        assert_eq!(TxnValue::decode(&input), Ok(expected));
        let null = cat(&[
            &head(0),
            &[1],
            &(-1i32).to_be_bytes(),
            &2000i64.to_be_bytes(),
            &1500i64.to_be_bytes(),
        ]);
        let expected = TxnValue {
            partitions: Vec::new(),
            ..ongoing()
        };
        assert_eq!(TxnValue::decode(&null), Ok(expected));
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let at = head(0).len() + 1;
        // A topic count of i32::MAX with no topics behind it.
        let topics = cat(&[&ongoing_v0()[..at], &i32::MAX.to_be_bytes()]);
        assert_eq!(TxnValue::decode(&topics), Err(Truncated("topic", 2, 0)));
        // A partition id count of i32::MAX with one id behind it.
        let ids = cat(&[&ongoing_v0()[..at + 7], &i32::MAX.to_be_bytes(), &[0; 4]]);
        assert_eq!(
            TxnValue::decode(&ids),
            Err(Truncated("partition ids", 4, 0))
        );
        let negative = cat(&[&ongoing_v0()[..at], &(-2i32).to_be_bytes()]);
        let error = TxnValue::decode(&negative);
        assert_eq!(error, Err(NegativeLength("transaction partitions", -2)));
        let topic = cat(&[&ongoing_v0()[..at + 4], &(-5i16).to_be_bytes()]);
        assert_eq!(TxnValue::decode(&topic), Err(NegativeLength("topic", -5)));
        let ids = cat(&[&ongoing_v0()[..at + 7], &(-7i32).to_be_bytes()]);
        let error = TxnValue::decode(&ids);
        assert_eq!(error, Err(NegativeLength("partition ids", -7)));
        let key = TxnKey::decode(&[0, 0, 0x7f, 0xff, b'x']);
        assert_eq!(key, Err(Truncated("transactional id", 32767, 1)));
        // Compact counts of u32::MAX - 1 elements.
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let topics = cat(&[&ongoing_v1(&[0])[..at], &huge]);
        assert_eq!(TxnValue::decode(&topics), Err(Truncated("topic", 1, 0)));
        let topic = cat(&[&ongoing_v1(&[0])[..at + 1], &huge, b"t"]);
        let error = TxnValue::decode(&topic);
        assert_eq!(error, Err(Truncated("topic", 0xffff_fffe, 1)));
        let tag = ongoing_v1(&[1, 7, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let error = TxnValue::decode(&tag);
        assert_eq!(error, Err(Truncated("tagged field", 0xffff_ffff, 0)));
        let count = ongoing_v1(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let error = TxnValue::decode(&count);
        assert_eq!(error, Err(Truncated("tagged field tag", 1, 0)));
        let varint = ongoing_v1(&[0x80; 5]);
        let error = TxnValue::decode(&varint);
        assert_eq!(error, Err(VarintTooLong("tagged field count")));
    }

    #[test]
    fn malformed_fields_are_errors() {
        let at = head(0).len();
        for status in [8u8, 0x7f, 0xff] {
            let mut input = ongoing_v0();
            input[at] = status;
            let error = TxnValue::decode(&input);
            let expected = i64::from(status as i8);
            assert_eq!(error, Err(InvalidValue("transaction status", expected)));
        }
        let key = TxnKey::decode(&[0, 0, 0xff, 0xff]);
        assert_eq!(key, Err(UnexpectedNull("transactional id")));
        let key = TxnKey::decode(&[0, 0, 0, 1, 0xff]);
        assert_eq!(key, Err(InvalidUtf8("transactional id")));
        let topic = cat(&[&ongoing_v0()[..at + 5], &(-1i16).to_be_bytes()]);
        assert_eq!(TxnValue::decode(&topic), Err(UnexpectedNull("topic")));
        let ids = cat(&[&ongoing_v1(&[0])[..at + 4], &[0]]);
        assert_eq!(TxnValue::decode(&ids), Err(UnexpectedNull("partition ids")));
        for version in [2i16, -1] {
            let input = cat(&[&version.to_be_bytes(), &ongoing_v0()[2..]]);
            let error = TxnValue::decode(&input);
            assert_eq!(
                error,
                Err(UnknownValueVersion("transaction value", version))
            );
        }
    }

    #[test]
    fn trailing_bytes_are_errors() {
        let key = TxnKey::decode(&[0, 0, 0, 1, b'x', 0]);
        assert_eq!(key, Err(TrailingBytes("transaction key", 1)));
        let v0 = cat(&[&ongoing_v0(), &[0, 0]]);
        assert_eq!(
            TxnValue::decode(&v0),
            Err(TrailingBytes("transaction value", 2))
        );
        let v1 = cat(&[&ongoing_v1(&[0]), &[0]]);
        assert_eq!(
            TxnValue::decode(&v1),
            Err(TrailingBytes("transaction value", 1))
        );
    }
}
