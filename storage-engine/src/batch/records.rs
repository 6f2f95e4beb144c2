//! Records inside a batch: zigzag varints and a bounds-checked record iterator.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::compression::{decompress, Compression};
use super::header::{RecordBatch, TimestampType};
use super::BatchError;

/// Decodes a zigzag varint (at most 5 bytes); `None` if truncated or over-long.
pub fn decode_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let mut raw: u32 = 0;
    for (i, &b) in buf.iter().enumerate().take(5) {
        // Bits past 32 in the 5th byte are dropped, as in Kafka's ByteUtils.
        raw |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = (raw >> 1) as i32 ^ -((raw & 1) as i32);
            return Some((value, i + 1));
        }
    }
    None
}

/// Decodes a zigzag varlong (at most 10 bytes); `None` if truncated or over-long.
pub fn decode_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends `value` as a zigzag varint.
pub fn encode_varint(value: i32, out: &mut Vec<u8>) {
    encode_varlong(i64::from(value), out);
}

/// Appends `value` as a zigzag varlong.
pub fn encode_varlong(value: i64, out: &mut Vec<u8>) {
    // Zigzag: small magnitudes of either sign get short encodings.
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One record header; keys are never null in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: Bytes,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
}

/// One decoded record; key, value and header bytes share the batch's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset relative to the batch base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch base timestamp.
    pub timestamp_delta: i64,
    /// Record attributes (unused by Kafka so far).
    pub attributes: i8,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// The record's complete encoding, leading length varint included.
    pub raw: Bytes,
}

impl Record {
    /// Absolute offset given the batch base offset.
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.wrapping_add(i64::from(self.offset_delta))
    }

    /// Create-time timestamp given the batch base timestamp.
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        // Wrapping mirrors Kafka's Java arithmetic and keeps hostile values panic-free.
        base_timestamp.wrapping_add(self.timestamp_delta)
    }
}

/// Iterator over a batch's records; yields exactly recordCount records, then checks for trailing bytes.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    pos: usize,
    index: usize,
    count: usize,
    done: bool,
}

impl RecordBatch {
    /// Iterates the records, decompressing the section first (output capped at `max_decompressed`).
    pub fn records(&self, max_decompressed: usize) -> Result<Records, BatchError> {
        let count = self.record_count();
        let count = usize::try_from(count).map_err(|_| BatchError::NegativeRecordCount(count))?;
        let codec = self.compression()?;
        let section = self.records_section();
        let data = match codec {
            // Uncompressed records stay zero-copy slices of the batch.
            Compression::None => section,
            _ => Bytes::from(decompress(codec, &section, max_decompressed)?),
        };
        Ok(Records {
            data,
            pos: 0,
            index: 0,
            count,
            done: false,
        })
    }

    /// A record's timestamp: maxTimestamp for LogAppendTime batches, else base + delta.
    pub fn record_timestamp(&self, record: &Record) -> i64 {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => self.max_timestamp(),
            TimestampType::CreateTime => record.timestamp(self.base_timestamp()),
        }
    }
}

impl Records {
    /// Records not yet yielded (as declared by recordCount).
    pub fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            self.count - self.index
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            let trailing = self.data.len() - self.pos;
            if trailing > 0 {
                return Some(Err(BatchError::CorruptRecord {
                    index: self.index,
                    reason: format!("{trailing} trailing bytes after the last record"),
                }));
            }
            return None;
        }
        let result =
            parse_record(&self.data, self.pos).map_err(|reason| BatchError::CorruptRecord {
                index: self.index,
                reason,
            });
        match result {
            Ok((record, end)) => {
                self.pos = end;
                self.index += 1;
                Some(Ok(record))
            }
            Err(e) => {
                // One error ends iteration: later positions are meaningless.
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Plus one for a possible trailing-bytes or corruption error.
        let n = self.remaining();
        (0, n.checked_add(1))
    }
}

impl FusedIterator for Records {}

/// Bounds-checked reader over `data[pos..end]`.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn varint(&mut self, what: &str) -> Result<i32, String> {
        let (v, n) = decode_varint(&self.data[self.pos..self.end])
            .ok_or_else(|| format!("truncated or over-long varint for {what}"))?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self, what: &str) -> Result<i64, String> {
        let (v, n) = decode_varlong(&self.data[self.pos..self.end])
            .ok_or_else(|| format!("truncated or over-long varlong for {what}"))?;
        self.pos += n;
        Ok(v)
    }

    fn byte(&mut self, what: &str) -> Result<u8, String> {
        if self.pos >= self.end {
            return Err(format!("missing {what}"));
        }
        let b = self.data[self.pos];
        self.pos += 1;
        Ok(b)
    }

    /// Zero-copy slice of `len` bytes, checked against what remains.
    fn take(&mut self, len: usize, what: &str) -> Result<Bytes, String> {
        if len > self.remaining() {
            return Err(format!(
                "{what} length {len} exceeds the {} bytes remaining",
                self.remaining()
            ));
        }
        let out = self.data.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(out)
    }

    /// A varint length followed by that many bytes; -1 is null.
    fn nullable(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        let len = self.varint(what)?;
        match len {
            -1 => Ok(None),
            // Non-negative, so the cast is lossless.
            n if n >= 0 => self.take(n as usize, what).map(Some),
            n => Err(format!("invalid {what} length {n}")),
        }
    }
}

/// Parses the record starting at `start`; returns it and the position after it.
fn parse_record(data: &Bytes, start: usize) -> Result<(Record, usize), String> {
    let mut outer = Cursor {
        data,
        pos: start,
        end: data.len(),
    };
    if outer.remaining() == 0 {
        return Err("records section ended before recordCount records".to_string());
    }
    let len = outer.varint("record length")?;
    let len = usize::try_from(len).map_err(|_| format!("negative record length {len}"))?;
    if len > outer.remaining() {
        return Err(format!(
            "record length {len} exceeds the {} bytes remaining",
            outer.remaining()
        ));
    }
    let end = outer.pos + len;
    let mut c = Cursor {
        data,
        pos: outer.pos,
        end,
    };
    let attributes = c.byte("attributes")? as i8;
    let timestamp_delta = c.varlong("timestampDelta")?;
    let offset_delta = c.varint("offsetDelta")?;
    let key = c.nullable("key")?;
    let value = c.nullable("value")?;
    let header_count = c.varint("header count")?;
    let header_count = usize::try_from(header_count)
        .map_err(|_| format!("negative header count {header_count}"))?;
    // Each header takes at least two bytes (two length varints), which caps
    // the allocation by the input size rather than by a hostile count.
    if header_count > c.remaining() / 2 {
        return Err(format!(
            "header count {header_count} cannot fit in {} bytes",
            c.remaining()
        ));
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key_len = c.varint("header key")?;
        let key_len =
            usize::try_from(key_len).map_err(|_| format!("invalid header key length {key_len}"))?;
        let key = c.take(key_len, "header key")?;
        let value = c.nullable("header value")?;
        headers.push(Header { key, value });
    }
    if c.pos != end {
        return Err(format!(
            "record declares {len} bytes but its fields use {}",
            len - c.remaining()
        ));
    }
    let record = Record {
        offset_delta,
        timestamp_delta,
        attributes,
        key,
        value,
        headers,
        raw: data.slice(start..end),
    };
    Ok((record, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::compression::tests::{xerial_frame, ALL};
    use crate::batch::header::{write_crc, ATTRIBUTES_POS, BATCH_LENGTH_POS, HEADER_LEN};
    use crate::batch::BatchBuilder;

    #[test]
    fn varint_round_trip_and_edges() {
        let cases: [i64; 11] = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            12345678,
        ];
        for v in cases {
            let mut buf = Vec::new();
            encode_varint(v as i32, &mut buf);
            assert_eq!(decode_varint(&buf), Some((v as i32, buf.len())), "{v}");
        }
        for v in [0, -1, 1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut buf = Vec::new();
            encode_varlong(v, &mut buf);
            assert_eq!(decode_varlong(&buf), Some((v, buf.len())), "{v}");
        }
        // Known encodings: zigzag(-1) = 1, zigzag(1) = 2, zigzag(-64) = 127, zigzag(64) = 128.
        assert_eq!(decode_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(decode_varint(&[0x02]), Some((1, 1)));
        assert_eq!(decode_varint(&[0x7f]), Some((-64, 1)));
        assert_eq!(decode_varint(&[0x80, 0x01]), Some((64, 2)));
        assert_eq!(decode_varint(&[]), None);
        assert_eq!(decode_varint(&[0x80]), None);
        assert_eq!(decode_varint(&[0x80; 6]), None);
        assert_eq!(decode_varlong(&[0xff; 11]), None);
    }

    type Rec<'a> = (
        i64,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Vec<(&'a [u8], Option<&'a [u8]>)>,
    );

    fn sample_records() -> Vec<Rec<'static>> {
        vec![
            (1_000, Some(b"key-a"), Some(b"value-a"), vec![]),
            (990, None, Some(b"null key"), vec![(b"h1", Some(b"v1"))]),
            (
                1_050,
                Some(b"key-c"),
                None,
                vec![(b"h1", None), (b"", Some(b""))],
            ),
            (1_020, Some(b""), Some(b""), vec![]),
        ]
    }

    fn build(codec: Compression, recs: &[Rec<'_>]) -> RecordBatch {
        let mut b = BatchBuilder::new(codec).producer(7, 3, 100);
        for (ts, k, v, h) in recs {
            b.push(*ts, *k, *v, h);
        }
        RecordBatch::parse(b.build(500).expect("build").freeze()).expect("parse")
    }

    #[test]
    fn round_trip_every_codec() {
        let recs = sample_records();
        for codec in ALL {
            let batch = build(codec, &recs);
            assert_eq!(batch.compression(), Ok(codec));
            assert_eq!(batch.base_offset(), 500);
            assert_eq!(batch.last_offset(), 503);
            assert_eq!(batch.base_timestamp(), 1_000);
            assert_eq!(batch.max_timestamp(), 1_050);
            assert_eq!(batch.producer_id(), 7);
            assert_eq!(batch.producer_epoch(), 3);
            assert_eq!(batch.base_sequence(), 100);
            crate::batch::validate_producer_batch(&batch).expect("producer batch");
            let it = batch.records(1 << 20).expect("records");
            assert_eq!(it.remaining(), 4);
            let got: Vec<Record> = it.collect::<Result<_, _>>().expect("decode");
            assert_eq!(got.len(), recs.len(), "{codec:?}");
            for (i, (r, (ts, k, v, h))) in got.iter().zip(&recs).enumerate() {
                assert_eq!(r.offset_delta, i as i32);
                assert_eq!(r.offset(batch.base_offset()), 500 + i as i64);
                assert_eq!(batch.record_timestamp(r), *ts);
                assert_eq!(r.timestamp(batch.base_timestamp()), *ts);
                assert_eq!(r.attributes, 0);
                assert_eq!(r.key.as_deref(), *k, "{codec:?} #{i}");
                assert_eq!(r.value.as_deref(), *v, "{codec:?} #{i}");
                let hs: Vec<_> = r
                    .headers
                    .iter()
                    .map(|x| (&x.key[..], x.value.as_deref()))
                    .collect();
                assert_eq!(&hs, h);
                let (len, n) = decode_varint(&r.raw).expect("length");
                assert_eq!(len as usize + n, r.raw.len());
            }
        }
    }

    #[test]
    fn uncompressed_records_are_zero_copy() {
        let batch = build(Compression::None, &sample_records());
        let range = batch.bytes().as_ptr_range();
        for r in batch.records(0).expect("records") {
            let r = r.expect("ok");
            assert!(range.contains(&r.raw.as_ptr()));
            if let Some(v) = r.value.as_ref().filter(|v| !v.is_empty()) {
                assert!(range.contains(&v.as_ptr()));
            }
        }
    }

    /// Replaces a batch's records section (records count unchanged) and fixes lengths and CRC.
    fn with_section(batch: &RecordBatch, section: &[u8]) -> RecordBatch {
        let mut buf = batch.bytes()[..HEADER_LEN].to_vec();
        buf.extend_from_slice(section);
        let len = (buf.len() - 12) as i32;
        buf[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&len.to_be_bytes());
        write_crc(&mut buf);
        RecordBatch::parse(Bytes::from(buf)).expect("valid header")
    }

    #[test]
    fn xerial_framed_batch_decodes() {
        let recs = sample_records();
        let plain = build(Compression::None, &recs);
        let section = &plain.bytes()[HEADER_LEN..];
        let framed = xerial_frame(&[&section[..7], &section[7..]]);
        let mut batch = with_section(&plain, &framed).into_bytes().to_vec();
        batch[ATTRIBUTES_POS + 1] |= Compression::Snappy.id();
        write_crc(&mut batch);
        let batch = RecordBatch::parse(Bytes::from(batch)).expect("parse");
        let got: Vec<Record> = batch
            .records(1 << 20)
            .expect("records")
            .collect::<Result<_, _>>()
            .expect("decode");
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].key, None);
        assert_eq!(got[2].value, None);
        assert_eq!(got[0].value.as_deref(), Some(&b"value-a"[..]));
    }

    #[test]
    fn trailing_bytes_and_missing_records_are_errors() {
        let batch = build(Compression::None, &sample_records());
        let mut section = batch.bytes()[HEADER_LEN..].to_vec();
        section.push(0);
        let results: Vec<_> = with_section(&batch, &section)
            .records(1 << 20)
            .expect("records")
            .collect();
        assert_eq!(results.len(), 5);
        assert!(matches!(
            results[4],
            Err(BatchError::CorruptRecord { index: 4, .. })
        ));

        let first_len = {
            let (l, n) = decode_varint(&batch.bytes()[HEADER_LEN..]).expect("len");
            l as usize + n
        };
        let short = &batch.bytes()[HEADER_LEN..HEADER_LEN + first_len];
        let results: Vec<_> = with_section(&batch, short)
            .records(1 << 20)
            .expect("records")
            .collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(BatchError::CorruptRecord { index: 1, .. })
        ));
    }

    fn decode_one(body: &[u8]) -> Result<Record, BatchError> {
        let mut rec = Vec::new();
        encode_varint(body.len() as i32, &mut rec);
        rec.extend_from_slice(body);
        let mut b = BatchBuilder::new(Compression::None);
        b.push(0, None, None, &[]);
        let batch = b.build(0).expect("build").freeze();
        let batch = RecordBatch::parse(batch).expect("parse");
        let batch = with_section(&batch, &rec);
        let mut it = batch.records(1 << 20).expect("records");
        it.next().expect("one item")
    }

    #[test]
    fn hostile_record_fields_are_rejected() {
        // attributes, tsDelta 0, offDelta 0, key len, ...
        let cases: &[(&[u8], &str)] = &[
            (&[0, 0, 0, 0x7e], "key"),                      // key len 63 > remaining
            (&[0, 0, 0, 0x03], "key"),                      // key len -2
            (&[0, 0, 0, 0x01, 0x01, 0x01], "header count"), // header count -1
            (
                &[0, 0, 0, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f],
                "header count",
            ), // huge
            (&[0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0x00], "header key"), // header key len -1
            (&[0, 0, 0, 0x01, 0x01, 0x00, 0x00], "declares"), // extra byte in record
            (&[0, 0, 0, 0x01], "value"),                    // missing value length
            (
                &[
                    0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                "timestampDelta",
            ),
            (&[], "attributes"),
        ];
        for (body, needle) in cases {
            match decode_one(body) {
                Err(BatchError::CorruptRecord { index: 0, reason }) => {
                    assert!(reason.contains(needle), "{body:?}: {reason}")
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // Negative and oversized record lengths.
        let batch = build(Compression::None, &sample_records());
        for section in [&[0x01u8][..], &[0x7e, 0, 0]] {
            let err = with_section(&batch, section)
                .records(1 << 20)
                .expect("records")
                .next()
                .expect("item");
            assert!(matches!(
                err,
                Err(BatchError::CorruptRecord { index: 0, .. })
            ));
        }
    }

    #[test]
    fn bomb_in_batch_is_stopped() {
        let big = vec![0u8; 2 << 20];
        for codec in ALL {
            let mut b = BatchBuilder::new(codec);
            b.push(0, None, Some(&big), &[]);
            let batch = RecordBatch::parse(b.build(0).expect("build").freeze()).expect("parse");
            let limit = 64 * 1024;
            if codec == Compression::None {
                // Uncompressed sections are not copied, so the cap does not apply.
                assert!(batch.records(limit).is_ok());
            } else {
                assert_eq!(
                    batch.records(limit).err(),
                    Some(BatchError::DecompressedTooLarge { limit }),
                    "{codec:?}"
                );
            }
        }
    }

    #[test]
    fn records_rejects_bad_header_fields_without_panicking() {
        let batch = build(Compression::None, &sample_records());
        let mut buf = batch.bytes().to_vec();
        buf[57..61].copy_from_slice(&(-3i32).to_be_bytes());
        let b = RecordBatch::parse_unvalidated(Bytes::from(buf.clone())).expect("len ok");
        assert_eq!(
            b.records(10).err(),
            Some(BatchError::NegativeRecordCount(-3))
        );
        buf[57..61].copy_from_slice(&4i32.to_be_bytes());
        buf[ATTRIBUTES_POS + 1] = 6;
        let b = RecordBatch::parse_unvalidated(Bytes::from(buf)).expect("len ok");
        assert_eq!(b.records(10).err(), Some(BatchError::UnknownCompression(6)));
    }

    /// Exercises every read path on one (possibly hostile) buffer; must never panic.
    fn poke(buf: &[u8]) -> usize {
        let mut seen = 0;
        if let Some(Ok(n)) = crate::batch::peek_total_len(buf) {
            seen += n % 2;
        }
        let bytes = Bytes::copy_from_slice(buf);
        let _ = RecordBatch::parse(bytes.clone());
        if let Ok(batch) = RecordBatch::parse_unvalidated(bytes) {
            let _ = (
                batch.compression(),
                batch.last_offset(),
                batch.compute_crc(),
            );
            let _ = crate::batch::validate_producer_batch(&batch);
            if let Ok(records) = batch.records(1 << 16) {
                for r in records {
                    match r {
                        Ok(r) => {
                            seen += 1;
                            let _ = batch.record_timestamp(&r);
                            let _ = r.offset(batch.base_offset());
                        }
                        Err(_) => break,
                    }
                }
            }
            let mut n = 0;
            let _ = batch.retain(1 << 16, |_| {
                n += 1;
                n % 2 == 0
            });
        }
        seen
    }

    #[test]
    fn random_mutations_never_panic() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let seed: u64 = 0x6b65_6c70_6261_7463;
        println!("random_mutations_never_panic seed = {seed:#x}");
        let mut rng = StdRng::seed_from_u64(seed);
        let recs = sample_records();
        let mut originals: Vec<Vec<u8>> = ALL
            .iter()
            .map(|&c| build(c, &recs).into_bytes().to_vec())
            .collect();
        // A snappy batch in xerial framing so that decoder is fuzzed too.
        let plain = build(Compression::None, &recs);
        let framed = xerial_frame(&[&plain.bytes()[HEADER_LEN..]]);
        let mut x = with_section(&plain, &framed).into_bytes().to_vec();
        x[ATTRIBUTES_POS + 1] |= Compression::Snappy.id();
        write_crc(&mut x);
        originals.push(x);

        let mut decoded = 0usize;
        for _ in 0..20_000 {
            let mut buf = originals[rng.random_range(0..originals.len())].clone();
            for _ in 0..rng.random_range(1..=4) {
                match rng.random_range(0..6) {
                    0 => {
                        // Flip a byte anywhere, biased towards the records section.
                        let lo = if rng.random_bool(0.7) {
                            HEADER_LEN.min(buf.len())
                        } else {
                            0
                        };
                        if lo < buf.len() {
                            let i = rng.random_range(lo..buf.len());
                            buf[i] ^= rng.random_range(1..=255u8);
                        }
                    }
                    1 => {
                        let n = rng.random_range(0..=buf.len());
                        buf.truncate(n);
                    }
                    2 => {
                        // Random 4-byte length somewhere (batchLength, counts, varints).
                        if buf.len() >= 4 {
                            let i = rng.random_range(0..=buf.len() - 4);
                            let v: i32 = match rng.random_range(0..3) {
                                0 => rng.random(),
                                1 => rng.random_range(-2..64),
                                _ => i32::MAX - rng.random_range(0..16),
                            };
                            buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
                        }
                    }
                    3 => {
                        let i = rng.random_range(0..=buf.len());
                        let extra: Vec<u8> =
                            (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
                        buf.splice(i..i, extra);
                    }
                    4 => {
                        // Random varint bytes in the records section.
                        if buf.len() > HEADER_LEN {
                            let i = rng.random_range(HEADER_LEN..buf.len());
                            let mut v = Vec::new();
                            encode_varlong(rng.random::<i64>() >> rng.random_range(0..64), &mut v);
                            let end = (i + v.len()).min(buf.len());
                            buf[i..end].copy_from_slice(&v[..end - i]);
                        }
                    }
                    _ => {
                        // Random record/codec counts in the header.
                        if buf.len() >= HEADER_LEN {
                            let pos = [23, 57, 21][rng.random_range(0..3)];
                            let v: i32 = rng.random_range(-3..40);
                            buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
                        }
                    }
                }
            }
            // Usually repair batchLength (and sometimes the CRC) so the
            // mutation reaches the record decoder instead of the length check.
            if buf.len() >= HEADER_LEN && rng.random_bool(0.8) {
                let len = (buf.len() - 12) as i32;
                buf[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&len.to_be_bytes());
                if rng.random_bool(0.5) {
                    write_crc(&mut buf);
                }
            }
            decoded += poke(&buf);
        }
        println!("decoded {decoded} records");
        // The repair step must let a good share of cases reach real decoding.
        assert!(decoded > 1_000, "only {decoded} records decoded");
    }
}
