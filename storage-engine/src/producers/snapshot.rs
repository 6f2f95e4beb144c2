//! The producer-state snapshot of a log: the producer table and the aborted
//! transactions as of one offset, so a reopened log replays only the
//! batches after it (Kafka's `.snapshot` files). The file's checksum and
//! atomic replacement come from [`crate::io::write_small_file`]; this is
//! its payload, every length checked before it is trusted.

use std::collections::VecDeque;

use super::{AbortedTxn, AbortedTxns, Landed, Producer, ProducerStates, BATCHES_RETAINED};

/// The payload format written today.
const VERSION: u16 = 1;
/// Bytes of one producer before its batches.
const PRODUCER_LEN: usize = 8 + 2 + 8 + 4 + 8 + 1;
/// Bytes of one remembered batch.
const BATCH_LEN: usize = 4 + 4 + 8 + 8;
/// Bytes of one aborted transaction.
const ABORTED_LEN: usize = 8 + 8 + 8;

/// A decoded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The log offset it was taken at: batches from here on must be replayed.
    pub end_offset: i64,
    /// The producers.
    pub producers: ProducerStates,
    /// The aborted transactions.
    pub aborted: AbortedTxns,
}

/// Why a snapshot payload is unusable (the log then rebuilds from its start).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// It ends inside a field or a count claims more than remains.
    #[error("producer snapshot truncated at {0}")]
    Truncated(&'static str),
    /// A version this build does not know.
    #[error("producer snapshot version {0} is unknown")]
    UnknownVersion(u16),
    /// A field holds a value no log could produce.
    #[error("producer snapshot holds an impossible {0}")]
    Invalid(&'static str),
    /// Bytes remain after the last field.
    #[error("producer snapshot has {0} trailing bytes")]
    TrailingBytes(usize),
}

/// Encodes the table and index as of `end_offset`.
pub fn encode(producers: &ProducerStates, aborted: &AbortedTxns, end_offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        2 + 8 + 4 + producers.producers.len() * (PRODUCER_LEN + BATCHES_RETAINED * BATCH_LEN),
    );
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&end_offset.to_be_bytes());
    let mut ids: Vec<&i64> = producers.producers.keys().collect();
    // Sorted so equal tables give equal files.
    ids.sort();
    put_count(&mut out, ids.len());
    for id in ids {
        let p = &producers.producers[id];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&p.epoch.to_be_bytes());
        out.extend_from_slice(&p.last_timestamp_ms.to_be_bytes());
        out.extend_from_slice(&p.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&p.txn_first_offset.unwrap_or(-1).to_be_bytes());
        // At most BATCHES_RETAINED.
        out.push(u8::try_from(p.batches.len()).expect("at most five batches are kept"));
        for b in &p.batches {
            out.extend_from_slice(&b.first_sequence.to_be_bytes());
            out.extend_from_slice(&b.last_sequence.to_be_bytes());
            out.extend_from_slice(&b.base_offset.to_be_bytes());
            out.extend_from_slice(&b.last_offset.to_be_bytes());
        }
    }
    put_count(&mut out, aborted.len());
    for t in aborted.iter() {
        out.extend_from_slice(&t.producer_id.to_be_bytes());
        out.extend_from_slice(&t.first_offset.to_be_bytes());
        out.extend_from_slice(&t.last_offset.to_be_bytes());
    }
    out
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(
        &u32::try_from(count)
            .expect("fewer than 2^32 producers")
            .to_be_bytes(),
    );
}

/// Decodes a payload written by [`encode`].
pub fn decode(input: &[u8]) -> Result<Snapshot, SnapshotError> {
    let mut r = Reader(input);
    let version = u16::from_be_bytes(r.take("version")?);
    if version != VERSION {
        return Err(SnapshotError::UnknownVersion(version));
    }
    let end_offset = i64::from_be_bytes(r.take("end offset")?);
    let count = r.count("producer count", PRODUCER_LEN)?;
    let mut producers = ProducerStates::default();
    for _ in 0..count {
        let id = i64::from_be_bytes(r.take("producer id")?);
        let epoch = i16::from_be_bytes(r.take("epoch")?);
        let last_timestamp_ms = i64::from_be_bytes(r.take("timestamp")?);
        let coordinator_epoch = i32::from_be_bytes(r.take("coordinator epoch")?);
        let txn_first = i64::from_be_bytes(r.take("transaction start")?);
        let [batch_count] = r.take::<1>("batch count")?;
        if usize::from(batch_count) > BATCHES_RETAINED {
            return Err(SnapshotError::Invalid("batch count"));
        }
        let mut batches = VecDeque::with_capacity(usize::from(batch_count));
        for _ in 0..batch_count {
            batches.push_back(Landed {
                first_sequence: i32::from_be_bytes(r.take("first sequence")?),
                last_sequence: i32::from_be_bytes(r.take("last sequence")?),
                base_offset: i64::from_be_bytes(r.take("base offset")?),
                last_offset: i64::from_be_bytes(r.take("last offset")?),
            });
        }
        if id < 0 || txn_first < -1 || txn_first >= end_offset {
            return Err(SnapshotError::Invalid("producer"));
        }
        let txn_first_offset = (txn_first >= 0).then_some(txn_first);
        if let Some(first) = txn_first_offset {
            if producers.ongoing.insert(first, id).is_some() {
                return Err(SnapshotError::Invalid("transaction start"));
            }
        }
        let producer = Producer {
            epoch,
            batches,
            last_timestamp_ms,
            coordinator_epoch,
            txn_first_offset,
        };
        if producers.producers.insert(id, producer).is_some() {
            return Err(SnapshotError::Invalid("duplicate producer id"));
        }
    }
    let count = r.count("aborted count", ABORTED_LEN)?;
    let mut aborted = AbortedTxns::default();
    let mut previous = i64::MIN;
    for _ in 0..count {
        let txn = AbortedTxn {
            producer_id: i64::from_be_bytes(r.take("aborted producer")?),
            first_offset: i64::from_be_bytes(r.take("aborted first offset")?),
            last_offset: i64::from_be_bytes(r.take("aborted last offset")?),
        };
        if txn.last_offset <= previous
            || txn.first_offset > txn.last_offset
            || txn.last_offset >= end_offset
        {
            return Err(SnapshotError::Invalid("aborted transaction"));
        }
        previous = txn.last_offset;
        aborted.push(txn);
    }
    if !r.0.is_empty() {
        return Err(SnapshotError::TrailingBytes(r.0.len()));
    }
    Ok(Snapshot {
        end_offset,
        producers,
        aborted,
    })
}

/// Reads fixed-size fields off the front of the input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SnapshotError> {
        if self.0.len() < N {
            return Err(SnapshotError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        // `head` has exactly N bytes.
        Ok(head.try_into().expect("split at N"))
    }

    /// A count of items at least `min_len` bytes each, checked against
    /// what remains before anything is allocated for them.
    fn count(&mut self, field: &'static str, min_len: usize) -> Result<usize, SnapshotError> {
        let count = u32::from_be_bytes(self.take(field)?) as usize;
        if count.saturating_mul(min_len) > self.0.len() {
            return Err(SnapshotError::Truncated(field));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producers::{ProducerBatch, TxnMarker};

    fn sample() -> (ProducerStates, AbortedTxns) {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            let b = ProducerBatch {
                producer_id: 4,
                epoch: 2,
                first_sequence: i * 2,
                last_sequence: i * 2 + 1,
                transactional: false,
            };
            states.record(
                &b,
                i64::from(i) * 2,
                i64::from(i) * 2 + 1,
                1_000 + i64::from(i),
            );
        }
        let t = ProducerBatch {
            producer_id: 9,
            epoch: 0,
            first_sequence: 0,
            last_sequence: 0,
            transactional: true,
        };
        states.record(&t, 14, 14, 2_000);
        let abort = TxnMarker {
            producer_id: 9,
            epoch: 0,
            commit: false,
            coordinator_epoch: 3,
        };
        let ended = states.end_txn(&abort, 15, 2_001).expect("open");
        states.record(
            &ProducerBatch {
                first_sequence: 1,
                last_sequence: 1,
                ..t
            },
            16,
            16,
            2_002,
        );
        let mut aborted = AbortedTxns::default();
        aborted.push(AbortedTxn {
            producer_id: ended.producer_id,
            first_offset: ended.first_offset,
            last_offset: ended.last_offset,
        });
        (states, aborted)
    }

    #[test]
    fn a_snapshot_reads_back_as_the_table_it_was_taken_of() {
        let (states, aborted) = sample();
        let bytes = encode(&states, &aborted, 17);
        let snapshot = decode(&bytes).expect("decodes");
        assert_eq!(snapshot.end_offset, 17);
        assert_eq!(snapshot.producers, states);
        assert_eq!(snapshot.aborted, aborted);
        assert_eq!(snapshot.producers.first_unstable_offset(), Some(16));
        assert_eq!(encode(&snapshot.producers, &snapshot.aborted, 17), bytes);
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let (states, aborted) = sample();
        let bytes = encode(&states, &aborted, 17);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(SnapshotError::TrailingBytes(1)));
        let mut huge = bytes[..10].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode(&huge),
            Err(SnapshotError::Truncated("producer count"))
        );
        let mut version = bytes.clone();
        version[1] = 9;
        assert_eq!(decode(&version), Err(SnapshotError::UnknownVersion(9)));
        // Taken at an offset below the open transaction: impossible.
        assert_eq!(
            decode(&encode(&states, &AbortedTxns::default(), 16)),
            Err(SnapshotError::Invalid("producer"))
        );
    }
}
