//! Zero-copy view over one RecordBatch v2 and in-place header setters.

use bytes::Bytes;

use super::compression::Compression;
use super::validate::validate_batch;
use super::BatchError;

/// Size of the fixed RecordBatch v2 header; records start here.
pub const HEADER_LEN: usize = 61;
/// Bytes before the part counted by batchLength (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;

pub(crate) const BASE_OFFSET_POS: usize = 0;
pub(crate) const BATCH_LENGTH_POS: usize = 8;
pub(crate) const LEADER_EPOCH_POS: usize = 12;
pub(crate) const MAGIC_POS: usize = 16;
pub(crate) const CRC_POS: usize = 17;
pub(crate) const ATTRIBUTES_POS: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_POS: usize = 23;
pub(crate) const BASE_TIMESTAMP_POS: usize = 27;
pub(crate) const MAX_TIMESTAMP_POS: usize = 35;
pub(crate) const PRODUCER_ID_POS: usize = 43;
pub(crate) const PRODUCER_EPOCH_POS: usize = 51;
pub(crate) const BASE_SEQUENCE_POS: usize = 53;
pub(crate) const RECORD_COUNT_POS: usize = 57;

/// The CRC covers everything from the attributes field on.
pub(crate) const CRC_START: usize = ATTRIBUTES_POS;

pub(crate) const COMPRESSION_MASK: i16 = 0x07;
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;

/// How the batch's timestamps were assigned (Kafka's `message.timestamp.type`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Timestamps were set by the producer.
    #[default]
    CreateTime,
    /// The broker stamped maxTimestamp on append.
    LogAppendTime,
}

impl TimestampType {
    /// Parses Kafka's config value (`CreateTime`, `LogAppendTime`).
    pub fn parse(text: &str) -> Option<TimestampType> {
        match text {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    /// Kafka's config value.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// Zero-copy view over the bytes of exactly one RecordBatch v2.
///
/// Invariant: `bytes.len() >= HEADER_LEN` and the batchLength field matches
/// the buffer, so the fixed-offset accessors below cannot go out of bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

/// Copies `N` bytes at `pos`; callers guarantee `pos + N <= buf.len()`.
fn array_at<const N: usize>(buf: &[u8], pos: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[pos..pos + N]);
    out
}

pub(crate) fn read_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes(array_at(buf, pos))
}

pub(crate) fn read_i32(buf: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(array_at(buf, pos))
}

pub(crate) fn read_i64(buf: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(array_at(buf, pos))
}

/// Recomputes and stores the CRC of a complete batch held in `buf`.
pub(crate) fn write_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Panics with a clear message when a setter is handed something that is not
/// a batch: that is a caller bug, not hostile input (input goes through
/// `RecordBatch::parse` first).
fn assert_header(buf: &[u8]) {
    assert!(
        buf.len() >= HEADER_LEN,
        "buffer of {} bytes is not a RecordBatch (header is {HEADER_LEN} bytes)",
        buf.len()
    );
}

/// Total size (12 + batchLength) of the batch starting at `buf`; `None` if fewer than 12 bytes.
pub fn peek_total_len(buf: &[u8]) -> Option<Result<usize, BatchError>> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let batch_length = read_i32(buf, BATCH_LENGTH_POS);
    // Anything under a header's worth (including negatives) can never be a
    // batch; reject it before a caller waits for or allocates that many bytes.
    let min = (HEADER_LEN - LOG_OVERHEAD) as i32;
    if batch_length < min {
        return Some(Err(BatchError::InvalidBatchLength(batch_length)));
    }
    // batch_length is positive here, so the cast is lossless.
    Some(Ok(LOG_OVERHEAD + batch_length as usize))
}

/// Overwrites baseOffset in place; panics if `buf` is shorter than a header.
pub fn set_base_offset(buf: &mut [u8], offset: i64) {
    assert_header(buf);
    buf[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch in place; panics if `buf` is shorter than a header.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    assert_header(buf);
    buf[LEADER_EPOCH_POS..LEADER_EPOCH_POS + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks `buf` (one whole batch) LogAppendTime with maxTimestamp `ts` and recomputes the CRC.
pub fn set_max_timestamp_log_append(buf: &mut [u8], ts: i64) {
    assert_header(buf);
    let attributes = read_i16(buf, ATTRIBUTES_POS) | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&ts.to_be_bytes());
    // Both fields are CRC-covered, so the checksum must follow them.
    write_crc(buf);
}

impl RecordBatch {
    /// Wraps and fully validates one batch (lengths, magic, CRC, codec, counts).
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let batch = RecordBatch::parse_unvalidated(bytes)?;
        validate_batch(&batch)?;
        Ok(batch)
    }

    /// Wraps one batch checking only that the lengths are consistent (no CRC, magic or counts).
    pub fn parse_unvalidated(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::TooShort { len: bytes.len() });
        }
        let declared = read_i32(&bytes, BATCH_LENGTH_POS);
        let actual = bytes.len() - LOG_OVERHEAD;
        if usize::try_from(declared).ok() != Some(actual) {
            return Err(BatchError::LengthMismatch { declared, actual });
        }
        Ok(RecordBatch { bytes })
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        read_i64(&self.bytes, BASE_OFFSET_POS)
    }

    /// The batchLength field: bytes after it.
    pub fn batch_length(&self) -> i32 {
        read_i32(&self.bytes, BATCH_LENGTH_POS)
    }

    /// Whole size of the batch in bytes (12 + batchLength).
    pub fn total_len(&self) -> usize {
        self.bytes.len()
    }

    /// Leader epoch stamped by the partition leader on append.
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(&self.bytes, LEADER_EPOCH_POS)
    }

    /// Magic byte (2 for a valid batch).
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_POS] as i8
    }

    /// CRC-32C stored in the header.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(array_at(&self.bytes, CRC_POS))
    }

    /// Raw attributes field.
    pub fn attributes(&self) -> i16 {
        read_i16(&self.bytes, ATTRIBUTES_POS)
    }

    /// Compression codec of the records section.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes())
    }

    /// Whether timestamps are create time or log-append time.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (commit/abort markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// Whether baseTimestamp holds a compaction delete horizon (attribute bit 6).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_BIT != 0
    }

    /// Offset of the last offset the batch spans, relative to the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(&self.bytes, LAST_OFFSET_DELTA_POS)
    }

    /// Last offset the batch spans (wraps like Kafka's Java code on hostile values).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }

    /// Timestamp of the first record (or the delete horizon, see `has_delete_horizon`).
    pub fn base_timestamp(&self) -> i64 {
        read_i64(&self.bytes, BASE_TIMESTAMP_POS)
    }

    /// Largest record timestamp, or the append time for LogAppendTime batches.
    pub fn max_timestamp(&self) -> i64 {
        read_i64(&self.bytes, MAX_TIMESTAMP_POS)
    }

    /// Idempotent producer id (-1 if none).
    pub fn producer_id(&self) -> i64 {
        read_i64(&self.bytes, PRODUCER_ID_POS)
    }

    /// Idempotent producer epoch (-1 if none).
    pub fn producer_epoch(&self) -> i16 {
        read_i16(&self.bytes, PRODUCER_EPOCH_POS)
    }

    /// Sequence number of the first record (-1 if none).
    pub fn base_sequence(&self) -> i32 {
        read_i32(&self.bytes, BASE_SEQUENCE_POS)
    }

    /// Number of records in the records section.
    pub fn record_count(&self) -> i32 {
        read_i32(&self.bytes, RECORD_COUNT_POS)
    }

    /// The whole batch, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Gives back the whole batch.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// CRC-32C of bytes 21..end, to compare with `crc()`.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[CRC_START..])
    }

    /// The records section as stored (possibly compressed).
    pub(crate) fn records_section(&self) -> Bytes {
        self.bytes.slice(HEADER_LEN..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, Compression};
    use bytes::{BufMut, BytesMut};

    /// Builds, field by field, the spec's uncompressed one-record batch.
    fn spec_batch() -> (Vec<u8>, Vec<u8>) {
        // Record: attributes 0, timestampDelta 0, offsetDelta 0, key "k",
        // value "hello", one header ("h", "v"). Varints are zigzag.
        let mut rec_body = vec![
            0x00, // attributes
            0x00, // timestampDelta = 0
            0x00, // offsetDelta = 0
            0x02, // keyLength = 1
            b'k', 0x0a, // valueLength = 5
        ];
        rec_body.extend_from_slice(b"hello");
        rec_body.extend_from_slice(&[0x02, 0x02, b'h', 0x02, b'v']); // 1 header, key len 1, val len 1
        let mut record = vec![(rec_body.len() as u8) << 1]; // length varint (small, positive)
        record.extend_from_slice(&rec_body);

        let mut b = BytesMut::new();
        b.put_i64(42); // baseOffset
        b.put_i32((HEADER_LEN - LOG_OVERHEAD + record.len()) as i32); // batchLength
        b.put_i32(7); // partitionLeaderEpoch
        b.put_i8(2); // magic
        b.put_u32(0); // crc, patched below
        b.put_i16(0); // attributes: no compression, create time
        b.put_i32(0); // lastOffsetDelta
        b.put_i64(1_700_000_000_000); // baseTimestamp
        b.put_i64(1_700_000_000_000); // maxTimestamp
        b.put_i64(1234); // producerId
        b.put_i16(5); // producerEpoch
        b.put_i32(99); // baseSequence
        b.put_i32(1); // recordCount
        b.put_slice(&record);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        (b.to_vec(), record)
    }

    #[test]
    fn known_good_spec_batch_accessors() {
        let (raw, record_bytes) = spec_batch();
        let expected_crc = crc32c::crc32c(&raw[21..]);
        assert_eq!(peek_total_len(&raw), Some(Ok(raw.len())));
        let batch = RecordBatch::parse(Bytes::from(raw.clone())).expect("valid");
        assert_eq!(batch.base_offset(), 42);
        assert_eq!(batch.batch_length() as usize, raw.len() - 12);
        assert_eq!(batch.total_len(), raw.len());
        assert_eq!(batch.partition_leader_epoch(), 7);
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.crc(), expected_crc);
        assert_eq!(batch.compute_crc(), expected_crc);
        assert_eq!(batch.attributes(), 0);
        assert_eq!(batch.compression(), Ok(Compression::None));
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.is_transactional());
        assert!(!batch.is_control());
        assert!(!batch.has_delete_horizon());
        assert_eq!(batch.last_offset_delta(), 0);
        assert_eq!(batch.last_offset(), 42);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        assert_eq!(batch.max_timestamp(), 1_700_000_000_000);
        assert_eq!(batch.producer_id(), 1234);
        assert_eq!(batch.producer_epoch(), 5);
        assert_eq!(batch.base_sequence(), 99);
        assert_eq!(batch.record_count(), 1);
        assert_eq!(&batch.bytes()[..], &raw[..]);

        let records: Vec<_> = batch
            .records(1 << 20)
            .expect("records")
            .collect::<Result<_, _>>()
            .expect("decode");
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.offset(batch.base_offset()), 42);
        assert_eq!(batch.record_timestamp(r), 1_700_000_000_000);
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(&r.headers[0].key[..], b"h");
        assert_eq!(r.headers[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(&r.raw[..], &record_bytes[..]);
        assert_eq!(batch.into_bytes(), Bytes::from(raw));
    }

    #[test]
    fn builder_matches_spec_bytes() {
        // The builder must produce byte-for-byte what the spec layout says.
        let (raw, _) = spec_batch();
        let mut builder = BatchBuilder::new(Compression::None)
            .producer(1234, 5, 99)
            .partition_leader_epoch(7);
        builder.push(
            1_700_000_000_000,
            Some(b"k"),
            Some(b"hello"),
            &[(b"h", Some(b"v"))],
        );
        assert_eq!(&builder.build(42).expect("build")[..], &raw[..]);
    }

    #[test]
    fn attribute_bits() {
        let mut b = BatchBuilder::new(Compression::Lz4)
            .transactional(true)
            .control(true)
            .log_append_time(true);
        b.push(5, None, Some(b"x"), &[]);
        let batch = RecordBatch::parse(b.build(0).expect("build").freeze()).expect("parse");
        assert_eq!(batch.compression(), Ok(Compression::Lz4));
        assert!(batch.is_transactional());
        assert!(batch.is_control());
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.attributes(), 0x3 | 0x08 | 0x10 | 0x20);
    }

    #[test]
    fn peek_total_len_cases() {
        let (raw, _) = spec_batch();
        assert_eq!(peek_total_len(&raw[..11]), None);
        assert_eq!(peek_total_len(&raw[..12]), Some(Ok(raw.len())));
        let mut bad = raw.clone();
        bad[8..12].copy_from_slice(&48i32.to_be_bytes());
        assert_eq!(
            peek_total_len(&bad),
            Some(Err(BatchError::InvalidBatchLength(48)))
        );
        bad[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            peek_total_len(&bad),
            Some(Err(BatchError::InvalidBatchLength(-1)))
        );
        bad[8..12].copy_from_slice(&49i32.to_be_bytes());
        assert_eq!(peek_total_len(&bad), Some(Ok(61)));
    }

    #[test]
    fn setters_leave_crc_valid() {
        let (raw, _) = spec_batch();
        let crc = crc32c::crc32c(&raw[21..]);
        let mut buf = raw.clone();
        set_base_offset(&mut buf, 1_000_000);
        set_partition_leader_epoch(&mut buf, 31);
        let batch = RecordBatch::parse(Bytes::from(buf)).expect("still valid");
        assert_eq!(batch.base_offset(), 1_000_000);
        assert_eq!(batch.last_offset(), 1_000_000);
        assert_eq!(batch.partition_leader_epoch(), 31);
        assert_eq!(batch.crc(), crc);
    }

    #[test]
    fn set_max_timestamp_log_append_recomputes_crc() {
        let (raw, _) = spec_batch();
        let old_crc = crc32c::crc32c(&raw[21..]);
        let mut buf = raw.clone();
        set_max_timestamp_log_append(&mut buf, 1_800_000_000_000);
        let batch = RecordBatch::parse(Bytes::from(buf)).expect("crc recomputed");
        assert_ne!(batch.crc(), old_crc);
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.max_timestamp(), 1_800_000_000_000);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        let rec = batch.records(1024).expect("records").next().expect("one");
        assert_eq!(batch.record_timestamp(&rec.expect("ok")), 1_800_000_000_000);
    }

    #[test]
    #[should_panic(expected = "not a RecordBatch")]
    fn setter_on_short_buffer_panics() {
        set_base_offset(&mut [0u8; 10], 1);
    }

    #[test]
    fn parse_unvalidated_skips_crc_but_checks_length() {
        let (mut raw, _) = spec_batch();
        raw[21] ^= 0xff;
        assert!(RecordBatch::parse_unvalidated(Bytes::from(raw.clone())).is_ok());
        raw.push(0);
        assert_eq!(
            RecordBatch::parse_unvalidated(Bytes::from(raw.clone())),
            Err(BatchError::LengthMismatch {
                declared: (raw.len() - 13) as i32,
                actual: raw.len() - 12
            })
        );
    }
}
