//! Kafka RecordBatch v2 (magic 2): the unit in which producers send, brokers
//! store and consumers fetch records. A batch is a 61-byte big-endian header
//! (base offset, batch length, partition leader epoch, magic, CRC, attributes,
//! last offset delta, base/max timestamp, producer id/epoch, base sequence,
//! record count) followed by the records section, which may be compressed as a
//! whole (gzip, snappy, lz4, zstd). The CRC-32C covers everything from the
//! attributes field (byte 21) to the end of the batch; the base offset, batch
//! length, partition leader epoch and magic lie outside it, so a broker can
//! assign offsets and stamp leader epochs in place without recomputing it.

pub mod builder;
pub mod compression;
pub mod control;
pub mod header;
pub mod records;
pub mod validate;

pub use builder::{BatchBuilder, Retained};
pub use compression::{compress, decompress, Compression};
pub use control::{build_marker, parse_marker};
pub use header::{
    peek_total_len, set_base_offset, set_max_timestamp_log_append, set_partition_leader_epoch,
    RecordBatch, TimestampType, HEADER_LEN, LOG_OVERHEAD,
};
pub use records::{
    decode_varint, decode_varlong, encode_varint, encode_varlong, Header, Record, Records,
};
pub use validate::{validate_batch, validate_producer_batch};

/// Every way a batch can fail to parse, validate, decompress or build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer cannot even hold a batch header.
    #[error("batch too short: {len} bytes, the header alone needs {HEADER_LEN}")]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The batchLength field disagrees with the buffer size.
    #[error("batchLength field says {declared} bytes follow it, buffer has {actual}")]
    LengthMismatch {
        /// The batchLength field.
        declared: i32,
        /// Bytes actually present after the batchLength field.
        actual: usize,
    },
    /// The batchLength field is negative or smaller than a header.
    #[error("invalid batchLength {0}: must be at least {min}", min = HEADER_LEN - LOG_OVERHEAD)]
    InvalidBatchLength(i32),
    /// The magic byte is not 2.
    #[error("unsupported magic {0}, only RecordBatch v2 (magic 2) is supported")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the bytes it covers.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC-32C computed over bytes 21..end.
        computed: u32,
    },
    /// The compression codec bits name no known codec.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// recordCount is negative.
    #[error("negative recordCount {0}")]
    NegativeRecordCount(i32),
    /// lastOffsetDelta is negative.
    #[error("negative lastOffsetDelta {0}")]
    NegativeLastOffsetDelta(i32),
    /// More records than offsets the batch spans.
    #[error("recordCount {record_count} exceeds lastOffsetDelta {last_offset_delta} + 1")]
    RecordCountMismatch {
        /// The recordCount field.
        record_count: i32,
        /// The lastOffsetDelta field.
        last_offset_delta: i32,
    },
    /// A producer batch whose record count is not exactly its offset span.
    #[error(
        "producer batch recordCount {record_count} != lastOffsetDelta {last_offset_delta} + 1"
    )]
    ProducerRecordCountMismatch {
        /// The recordCount field.
        record_count: i32,
        /// The lastOffsetDelta field.
        last_offset_delta: i32,
    },
    /// A batch (producer batch or builder) with no records.
    #[error("batch has no records")]
    EmptyBatch,
    /// Decompression would exceed the caller's output limit.
    #[error("decompressed records exceed the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// The compressed records section is corrupt.
    #[error("{codec:?} decompression failed: {reason}")]
    Decompression {
        /// Codec in use.
        codec: Compression,
        /// What the decoder reported.
        reason: String,
    },
    /// The encoder failed (should not happen with in-memory buffers).
    #[error("{codec:?} compression failed: {reason}")]
    Compression {
        /// Codec in use.
        codec: Compression,
        /// What the encoder reported.
        reason: String,
    },
    /// A record inside the records section is malformed.
    #[error("corrupt record #{index}: {reason}")]
    CorruptRecord {
        /// Zero-based position of the record in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A record pushed to the builder cannot be encoded (length over i32).
    #[error("record of {len} bytes is too large to encode")]
    RecordTooLarge {
        /// Encoded size of the offending field or record.
        len: usize,
    },
    /// The builder holds more records than an i32 offset delta can address.
    #[error("too many records for one batch")]
    TooManyRecords,
    /// The built batch would not fit the i32 batchLength field.
    #[error("batch of {len} bytes is too large")]
    BatchTooLarge {
        /// Total size the batch would have had.
        len: usize,
    },
    /// A client sent a control batch; only transaction coordinators write them.
    #[error("clients may not write control batches")]
    ControlFromClient,
    /// An idempotent or transactional batch without a valid producer id or sequence.
    #[error("batch has producer id {producer_id} and base sequence {base_sequence}{txn}", txn = if *.transactional { " (transactional)" } else { "" })]
    InvalidProducerFields {
        /// The producerId field.
        producer_id: i64,
        /// The baseSequence field.
        base_sequence: i32,
        /// Whether the transactional bit is set.
        transactional: bool,
    },
}
