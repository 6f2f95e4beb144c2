//! The aborted-transaction index of a partition: for each transaction that
//! an abort marker ended, its producer and offset span. A `read_committed`
//! fetch lists the ones overlapping what it returns, so the client drops
//! their records (Kafka's `.txnindex`).

use std::collections::VecDeque;

/// One aborted transaction on this partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// The offset of its first batch here.
    pub first_offset: i64,
    /// The offset of its abort marker.
    pub last_offset: i64,
}

/// Aborted transactions in marker order (so by `last_offset`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AbortedTxns {
    entries: VecDeque<AbortedTxn>,
}

impl AbortedTxns {
    /// Adds a transaction whose abort marker was just appended.
    pub fn push(&mut self, txn: AbortedTxn) {
        assert!(
            self.entries
                .back()
                .is_none_or(|last| last.last_offset < txn.last_offset),
            "abort markers are appended in offset order"
        );
        assert!(
            txn.first_offset <= txn.last_offset,
            "a transaction ends after it starts"
        );
        self.entries.push_back(txn);
    }

    /// The transactions with records in `[from, upper)`: those whose marker
    /// is at or past `from` and whose first batch is before `upper`.
    pub fn overlapping(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.entries.partition_point(|t| t.last_offset < from);
        self.entries
            .range(start..)
            .filter(|t| t.first_offset < upper)
            .copied()
            .collect()
    }

    /// Whether `producer_id`'s batch at `offset` belongs to an aborted
    /// transaction.
    pub fn contains(&self, producer_id: i64, offset: i64) -> bool {
        let start = self.entries.partition_point(|t| t.last_offset < offset);
        self.entries
            .range(start..)
            .any(|t| t.producer_id == producer_id && t.first_offset <= offset)
    }

    /// Forgets transactions wholly below the log start (deleted by retention).
    pub fn forget_below(&mut self, log_start: i64) {
        while self
            .entries
            .front()
            .is_some_and(|t| t.last_offset < log_start)
        {
            self.entries.pop_front();
        }
    }

    /// Forgets transactions whose marker is at or past `offset` (the log was
    /// truncated there).
    pub fn forget_from(&mut self, offset: i64) {
        while self.entries.back().is_some_and(|t| t.last_offset >= offset) {
            self.entries.pop_back();
        }
    }

    /// Every entry, oldest marker first.
    pub fn iter(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.entries.iter()
    }

    /// How many transactions are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
        }
    }

    #[test]
    fn a_fetch_sees_the_transactions_overlapping_its_range() {
        let mut index = AbortedTxns::default();
        index.push(txn(1, 0, 10));
        index.push(txn(2, 5, 20));
        index.push(txn(3, 30, 31));
        assert_eq!(index.overlapping(11, 25), vec![txn(2, 5, 20)]);
        assert_eq!(index.overlapping(0, 6), vec![txn(1, 0, 10), txn(2, 5, 20)]);
        assert_eq!(index.overlapping(21, 30), vec![], "30 is past the range");
        assert_eq!(index.overlapping(21, 31), vec![txn(3, 30, 31)]);
        assert!(index.contains(2, 5) && index.contains(2, 19) && !index.contains(2, 21));
        assert!(
            !index.contains(1, 12),
            "producer 1's transaction ended at 10"
        );
        index.forget_below(11);
        assert_eq!(index.len(), 2);
        index.forget_from(31);
        assert_eq!(
            index.iter().copied().collect::<Vec<_>>(),
            vec![txn(2, 5, 20)]
        );
    }

    #[test]
    #[should_panic(expected = "offset order")]
    fn markers_out_of_order_are_a_bug() {
        let mut index = AbortedTxns::default();
        index.push(txn(1, 0, 10));
        index.push(txn(2, 0, 9));
    }
}
