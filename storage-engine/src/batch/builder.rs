//! Building valid batches, and rewriting a batch with a subset of its records (compaction).

use bytes::{BufMut, BytesMut};

use super::compression::{compress, Compression};
use super::header::{
    write_crc, RecordBatch, BATCH_LENGTH_POS, CONTROL_BIT, HEADER_LEN, LOG_OVERHEAD,
    RECORD_COUNT_POS, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};
use super::records::{encode_varint, encode_varlong, Record};
use super::BatchError;

/// Builds one valid RecordBatch v2 from records pushed in offset order.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    partition_leader_epoch: i32,
    log_append_time: bool,
    /// Uncompressed, encoded records section.
    records: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// First encoding failure from `push`, reported by `build` so `push` stays infallible.
    error: Option<BatchError>,
}

/// Length prefix for a nullable field: -1 for null, else the length if it fits an i32.
fn field_len(field: Option<&[u8]>) -> Result<i32, BatchError> {
    match field {
        None => Ok(-1),
        Some(b) => i32::try_from(b.len()).map_err(|_| BatchError::RecordTooLarge { len: b.len() }),
    }
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&[u8]>) -> Result<(), BatchError> {
    encode_varint(field_len(field)?, out);
    if let Some(b) = field {
        out.extend_from_slice(b);
    }
    Ok(())
}

impl BatchBuilder {
    /// Empty builder: no producer id (-1), leader epoch -1, create-time timestamps.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            compression,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            log_append_time: false,
            records: Vec::new(),
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            error: None,
        }
    }

    /// Sets the idempotent producer id, epoch and first sequence number.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> BatchBuilder {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional.
    pub fn transactional(mut self, on: bool) -> BatchBuilder {
        self.transactional = on;
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(mut self, on: bool) -> BatchBuilder {
        self.control = on;
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> BatchBuilder {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the LogAppendTime timestamp-type bit.
    pub fn log_append_time(mut self, on: bool) -> BatchBuilder {
        self.log_append_time = on;
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        // count is never negative.
        self.count as usize
    }

    /// Whether no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends a record with the next offset delta; encoding errors surface in `build`.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_push(timestamp, key, value, headers) {
            self.error = Some(e);
        }
    }

    fn try_push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Result<(), BatchError> {
        if self.count == i32::MAX {
            return Err(BatchError::TooManyRecords);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let mut body = Vec::new();
        body.push(0); // record attributes: unused
        encode_varlong(timestamp.wrapping_sub(self.base_timestamp), &mut body);
        encode_varint(self.count, &mut body);
        put_nullable(&mut body, key)?;
        put_nullable(&mut body, value)?;
        let header_count = i32::try_from(headers.len())
            .map_err(|_| BatchError::RecordTooLarge { len: headers.len() })?;
        encode_varint(header_count, &mut body);
        for (k, v) in headers {
            put_nullable(&mut body, Some(k))?;
            put_nullable(&mut body, *v)?;
        }
        let body_len = i32::try_from(body.len())
            .map_err(|_| BatchError::RecordTooLarge { len: body.len() })?;
        encode_varint(body_len, &mut self.records);
        self.records.extend_from_slice(&body);
        self.count += 1;
        Ok(())
    }

    /// Encodes the batch at `base_offset`, compressing and computing the CRC.
    pub fn build(&self, base_offset: i64) -> Result<BytesMut, BatchError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.count == 0 {
            return Err(BatchError::EmptyBatch);
        }
        let mut attributes = i16::from(self.compression.id());
        if self.log_append_time {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.put_i64(base_offset);
        header.put_i32(0); // batchLength, set by assemble
        header.put_i32(self.partition_leader_epoch);
        header.put_i8(2); // magic
        header.put_u32(0); // crc, set by assemble
        header.put_i16(attributes);
        header.put_i32(self.count - 1); // lastOffsetDelta
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(self.producer_id);
        header.put_i16(self.producer_epoch);
        header.put_i32(self.base_sequence);
        header.put_i32(0); // recordCount, set by assemble
        let section = compress(self.compression, &self.records)?;
        assemble(&header, &section, self.count)
    }
}

/// Joins a 61-byte header template and a records section, fixing batchLength, recordCount and CRC.
fn assemble(header: &[u8], section: &[u8], record_count: i32) -> Result<BytesMut, BatchError> {
    let total = HEADER_LEN + section.len();
    let batch_length = i32::try_from(total - LOG_OVERHEAD)
        .map_err(|_| BatchError::BatchTooLarge { len: total })?;
    let mut buf = BytesMut::with_capacity(total);
    buf.put_slice(&header[..HEADER_LEN]);
    buf.put_slice(section);
    buf[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&batch_length.to_be_bytes());
    buf[RECORD_COUNT_POS..RECORD_COUNT_POS + 4].copy_from_slice(&record_count.to_be_bytes());
    write_crc(&mut buf);
    Ok(buf)
}

/// Outcome of `RecordBatch::retain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record was kept: reuse the original batch unchanged.
    All,
    /// No record was kept.
    None,
    /// A rewritten batch holding only the kept records.
    Some(BytesMut),
}

impl RecordBatch {
    /// Rewrites the batch keeping only records for which `keep` is true (header fields and record bytes unchanged).
    pub fn retain(
        &self,
        max_decompressed: usize,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Result<Retained, BatchError> {
        let codec = self.compression()?;
        let mut kept = Vec::new();
        let mut total = 0usize;
        for record in self.records(max_decompressed)? {
            let record = record?;
            total += 1;
            if keep(&record) {
                kept.push(record.raw);
            }
        }
        if kept.len() == total {
            return Ok(Retained::All);
        }
        if kept.is_empty() {
            return Ok(Retained::None);
        }
        // Raw record bytes are reused as-is: their offset and timestamp deltas
        // stay valid because base offset, base timestamp and lastOffsetDelta
        // are unchanged.
        let plain: Vec<u8> = kept.concat();
        let section = compress(codec, &plain)?;
        // kept.len() < total <= recordCount <= i32::MAX, so this cannot fail.
        let count = i32::try_from(kept.len()).map_err(|_| BatchError::TooManyRecords)?;
        assemble(self.bytes(), &section, count).map(Retained::Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::compression::tests::ALL;
    use crate::batch::{validate_producer_batch, TimestampType};
    use bytes::Bytes;

    fn sample(codec: Compression) -> RecordBatch {
        let mut b = BatchBuilder::new(codec)
            .producer(42, 2, 7)
            .partition_leader_epoch(9)
            .transactional(true);
        for i in 0..10u8 {
            let key = [b'k', b'0' + i % 3];
            let value = [i; 3];
            // Every 4th record is a tombstone; timestamps are not monotonic.
            let value = if i % 4 == 3 { None } else { Some(&value[..]) };
            b.push(
                1_000 + i64::from(i * 7 % 10),
                Some(&key),
                value,
                &[(b"n", Some(&[i]))],
            );
        }
        assert_eq!(b.len(), 10);
        RecordBatch::parse(b.build(1_000).expect("build").freeze()).expect("parse")
    }

    fn decode(batch: &RecordBatch) -> Vec<Record> {
        batch
            .records(1 << 20)
            .expect("records")
            .collect::<Result<_, _>>()
            .expect("decode")
    }

    #[test]
    fn build_defaults() {
        let mut b = BatchBuilder::new(Compression::None);
        assert!(b.is_empty());
        assert_eq!(b.build(0), Err(BatchError::EmptyBatch));
        b.push(5, None, None, &[]);
        b.push(3, None, None, &[]);
        let batch = RecordBatch::parse(b.build(77).expect("build").freeze()).expect("parse");
        assert_eq!(batch.producer_id(), -1);
        assert_eq!(batch.producer_epoch(), -1);
        assert_eq!(batch.base_sequence(), -1);
        assert_eq!(batch.partition_leader_epoch(), -1);
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.is_transactional() && !batch.is_control());
        assert_eq!(batch.base_timestamp(), 5);
        assert_eq!(batch.max_timestamp(), 5);
        assert_eq!(batch.record_count(), 2);
        assert_eq!(batch.last_offset_delta(), 1);
        let recs = decode(&batch);
        assert_eq!(recs[1].timestamp_delta, -2);
        assert_eq!(batch.record_timestamp(&recs[1]), 3);
    }

    #[test]
    fn retain_subset_every_codec() {
        for codec in ALL {
            let batch = sample(codec);
            let all = decode(&batch);
            // Keep only the latest record per key among the non-tombstones.
            let keep = |r: &Record| r.value.is_some() && r.offset_delta >= 6;
            let Retained::Some(buf) = batch.retain(1 << 20, keep).expect("retain") else {
                panic!("{codec:?}: expected a rewritten batch");
            };
            let out = RecordBatch::parse(buf.freeze()).expect("retained batch parses");
            assert_eq!(out.compression(), Ok(codec));
            assert_eq!(out.record_count(), 3, "{codec:?}");
            assert_eq!(out.base_offset(), batch.base_offset());
            assert_eq!(out.last_offset_delta(), batch.last_offset_delta());
            assert_eq!(out.base_timestamp(), batch.base_timestamp());
            assert_eq!(out.max_timestamp(), batch.max_timestamp());
            assert_eq!(out.producer_id(), 42);
            assert_eq!(out.producer_epoch(), 2);
            assert_eq!(out.base_sequence(), 7);
            assert_eq!(out.partition_leader_epoch(), 9);
            assert_eq!(out.attributes(), batch.attributes());
            // A compacted batch is not a fresh producer batch any more.
            assert!(validate_producer_batch(&out).is_err());
            let kept = decode(&out);
            let expected: Vec<&Record> = all.iter().filter(|r| keep(r)).collect();
            assert_eq!(kept.len(), expected.len());
            for (k, e) in kept.iter().zip(expected) {
                assert_eq!(k.raw, e.raw);
                assert_eq!(k.offset(out.base_offset()), e.offset(batch.base_offset()));
                assert_eq!(out.record_timestamp(k), batch.record_timestamp(e));
                assert_eq!(k.key, e.key);
                assert_eq!(k.value, e.value);
                assert_eq!(k.headers, e.headers);
            }
        }
    }

    #[test]
    fn retain_all_and_none() {
        for codec in ALL {
            let batch = sample(codec);
            assert_eq!(batch.retain(1 << 20, |_| true), Ok(Retained::All));
            assert_eq!(batch.retain(1 << 20, |_| false), Ok(Retained::None));
            let mut seen = 0;
            let _ = batch.retain(1 << 20, |_| {
                seen += 1;
                true
            });
            assert_eq!(seen, 10);
        }
    }

    #[test]
    fn retain_propagates_limits_and_corruption() {
        let batch = sample(Compression::Zstd);
        assert!(matches!(
            batch.retain(10, |_| true),
            Err(BatchError::DecompressedTooLarge { limit: 10 })
        ));
        let mut buf = sample(Compression::None).into_bytes().to_vec();
        let last = buf.len() - 1;
        buf.push(0);
        buf[8..12].copy_from_slice(&((last + 2 - 12) as i32).to_be_bytes());
        let bad = RecordBatch::parse_unvalidated(Bytes::from(buf)).expect("lengths");
        assert!(matches!(
            bad.retain(1 << 20, |_| true),
            Err(BatchError::CorruptRecord { index: 10, .. })
        ));
    }

    #[test]
    fn builder_reports_push_errors_at_build() {
        let mut b = BatchBuilder::new(Compression::None);
        b.count = i32::MAX;
        b.push(0, None, None, &[]);
        assert_eq!(b.build(0), Err(BatchError::TooManyRecords));
    }
}
