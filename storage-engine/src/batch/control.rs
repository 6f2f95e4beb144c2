//! Control batches: the commit and abort markers a transaction coordinator
//! writes to every partition of a transaction. A control batch has the
//! control and transactional attribute bits, the producer's id and epoch,
//! base sequence -1 and one record whose key is `int16 version (0)` +
//! `int16 type` (0 abort, 1 commit) and whose value is `int16 version (0)`
//! + `int32 coordinator epoch`, as Kafka's `EndTransactionMarker` writes.

use bytes::BytesMut;

use super::{BatchBuilder, BatchError, Compression, RecordBatch};
use crate::producers::TxnMarker;

/// Control record type of an abort marker.
const ABORT: i16 = 0;
/// Control record type of a commit marker.
const COMMIT: i16 = 1;
/// The only control key and marker value version.
const VERSION: i16 = 0;

/// Encodes a marker batch (offset 0; the log assigns the real one).
pub fn build_marker(marker: &TxnMarker, timestamp_ms: i64) -> Result<BytesMut, BatchError> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&VERSION.to_be_bytes());
    key.extend_from_slice(&if marker.commit { COMMIT } else { ABORT }.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&VERSION.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(marker.producer_id, marker.epoch, -1)
        .transactional(true)
        .control(true);
    builder.push(timestamp_ms, Some(&key), Some(&value), &[]);
    builder.build(0)
}

/// The marker a control batch holds, or `None` when it holds none Kelp knows
/// (Kafka defines other control types, such as KRaft's, that end nothing).
pub fn parse_marker(batch: &RecordBatch) -> Option<TxnMarker> {
    if !batch.is_control() {
        return None;
    }
    // Control records are tiny; the cap only guards against a hostile batch.
    let record = batch.records(1 << 16).ok()?.next()?.ok()?;
    let key = record.key?;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) != VERSION {
        return None;
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        ABORT => false,
        COMMIT => true,
        _ => return None,
    };
    let coordinator_epoch = record
        .value
        .filter(|v| v.len() >= 6)
        .map_or(-1, |v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
    Some(TxnMarker {
        producer_id: batch.producer_id(),
        epoch: batch.producer_epoch(),
        commit,
        coordinator_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_batch_is_what_kafka_writes() {
        let marker = TxnMarker {
            producer_id: 77,
            epoch: 3,
            commit: true,
            coordinator_epoch: 5,
        };
        let bytes = build_marker(&marker, 1_234).expect("builds").freeze();
        let batch = RecordBatch::parse(bytes).expect("valid");
        assert!(batch.is_control() && batch.is_transactional());
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (77, 3, -1)
        );
        let record = batch.records(1 << 16).unwrap().next().unwrap().unwrap();
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 5][..]));
        assert_eq!(parse_marker(&batch), Some(marker));
        let abort = TxnMarker {
            commit: false,
            ..marker
        };
        let bytes = build_marker(&abort, 0).unwrap().freeze();
        assert_eq!(
            parse_marker(&RecordBatch::parse(bytes).unwrap()),
            Some(abort)
        );
    }

    #[test]
    fn data_batches_and_unknown_control_types_are_no_markers() {
        let mut data = BatchBuilder::new(Compression::None);
        data.push(0, Some(b"\0\0\0\x01"), None, &[]);
        let batch = RecordBatch::parse(data.build(0).unwrap().freeze()).unwrap();
        assert_eq!(parse_marker(&batch), None);
        let mut other = BatchBuilder::new(Compression::None).control(true);
        other.push(0, Some(b"\0\0\0\x02"), None, &[]);
        let batch = RecordBatch::parse(other.build(0).unwrap().freeze()).unwrap();
        assert_eq!(parse_marker(&batch), None);
    }
}
