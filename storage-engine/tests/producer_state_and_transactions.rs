//! Idempotent producers and transactions as the log sees them: retries are
//! answered with their first offsets and not written twice, gaps and
//! zombies are refused, markers end transactions (moving the last stable
//! offset and filling the aborted index), and all of it is the same after
//! a clean reopen and after a crash.

mod common;

use std::path::Path;
use std::rc::Rc;

use bytes::BytesMut;
use common::{append, open, run};
use kelp_storage::batch::{BatchBuilder, Compression};
use kelp_storage::io::MemoryStorage;
use kelp_storage::log::AppendOrigin;
use kelp_storage::producers::{AbortedTxn, ProducerError, TxnMarker};
use kelp_storage::{LeaderEpoch, LogConfig, ManualClock, Offset, PartitionLog, StorageError};

/// A batch of `count` records from producer `pid` at `epoch`, sequences from `seq`.
fn produced(pid: i64, epoch: i16, seq: i32, count: usize, transactional: bool) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(transactional);
    for i in 0..count {
        builder.push(
            1_000,
            Some(b"k"),
            Some(format!("{pid}-{seq}-{i}").as_bytes()),
            &[],
        );
    }
    builder.build(0).expect("valid")
}

async fn try_append(
    log: &PartitionLog<MemoryStorage>,
    batch: BytesMut,
) -> Result<(i64, i64), StorageError> {
    log.append(batch, AppendOrigin::Leader(LeaderEpoch(1)))
        .await
        .map(|info| (info.base_offset.0, info.last_offset.0))
}

fn marker(pid: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        epoch,
        commit,
        coordinator_epoch: 0,
    }
}

#[test]
fn retries_are_answered_with_their_first_offsets_and_survive_reopening() {
    run(async {
        let dir = Path::new("/data/p-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let config = LogConfig::default();
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(
            try_append(&log, produced(7, 0, 0, 3, false)).await.unwrap(),
            (0, 2)
        );
        assert_eq!(
            try_append(&log, produced(7, 0, 3, 2, false)).await.unwrap(),
            (3, 4)
        );
        assert_eq!(
            try_append(&log, produced(7, 0, 0, 3, false)).await.unwrap(),
            (0, 2),
            "a retry"
        );
        assert_eq!(log.log_end_offset(), Offset(5), "the retry was not written");
        let gap = try_append(&log, produced(7, 0, 9, 1, false)).await;
        assert!(
            matches!(
                gap,
                Err(StorageError::Producer(ProducerError::OutOfOrderSequence {
                    expected: 5,
                    got: 9,
                    ..
                }))
            ),
            "{gap:?}"
        );
        // A bumped epoch starts at 0; the old epoch is then a zombie.
        assert_eq!(
            try_append(&log, produced(7, 1, 0, 1, false)).await.unwrap(),
            (5, 5)
        );
        let zombie = try_append(&log, produced(7, 0, 5, 1, false)).await;
        assert!(
            matches!(
                zombie,
                Err(StorageError::Producer(
                    ProducerError::InvalidProducerEpoch {
                        current: 1,
                        epoch: 0,
                        ..
                    }
                ))
            ),
            "{zombie:?}"
        );
        // Clients may not write markers.
        let mut control = BatchBuilder::new(Compression::None)
            .producer(7, 1, -1)
            .transactional(true)
            .control(true);
        control.push(0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
        assert!(matches!(
            try_append(&log, control.build(0).unwrap()).await,
            Err(StorageError::InvalidBatch(_))
        ));
        log.close().await.unwrap();
        drop(log);
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(
            log.producer_state_replayed_from(),
            log.log_end_offset(),
            "a clean close leaves nothing to replay"
        );
        assert_eq!(
            try_append(&log, produced(7, 1, 0, 1, false)).await.unwrap(),
            (5, 5),
            "a retry after a clean reopen"
        );
        assert_eq!(
            try_append(&log, produced(7, 1, 1, 1, false)).await.unwrap(),
            (6, 6)
        );
        assert_eq!(log.producers().len(), 1);
        assert_eq!(log.producers()[0].last_sequence, 1);
    });
}

#[test]
fn markers_end_transactions_and_the_state_survives_a_crash() {
    run(async {
        let dir = Path::new("/data/t-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        // Small segments, so the crash recovery starts from a roll's snapshot.
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        let log = open(&storage, dir, &config, &clock).await;
        append(&log, common::batch("plain", 2, 2, 0)).await;
        log.begin_txn_verification(1, 0);
        assert_eq!(
            try_append(&log, produced(1, 0, 0, 2, true)).await.unwrap(),
            (2, 3)
        );
        assert_eq!(
            log.last_stable_offset(),
            Offset(2),
            "producer 1's transaction is open"
        );
        log.begin_txn_verification(2, 0);
        assert_eq!(
            try_append(&log, produced(2, 0, 0, 1, true)).await.unwrap(),
            (4, 4)
        );
        assert_eq!(
            try_append(&log, produced(1, 0, 2, 1, true)).await.unwrap(),
            (5, 5)
        );
        // A zombie's marker is refused; the right one aborts.
        assert!(matches!(
            log.append_marker(marker(2, -1, false), LeaderEpoch(1))
                .await,
            Err(StorageError::Producer(
                ProducerError::InvalidProducerEpoch { .. }
            ))
        ));
        let abort = log
            .append_marker(marker(1, 0, false), LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(abort.base_offset, Offset(6));
        assert_eq!(log.last_stable_offset(), Offset(4), "now producer 2's");
        let commit = log
            .append_marker(marker(2, 0, true), LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(commit.base_offset, Offset(7));
        assert_eq!(log.last_stable_offset(), Offset(8));
        let aborted_1 = AbortedTxn {
            producer_id: 1,
            first_offset: 2,
            last_offset: 6,
        };
        assert_eq!(log.aborted_txns(Offset(0), Offset(8)), vec![aborted_1]);
        assert_eq!(log.aborted_txns(Offset(7), Offset(8)), vec![]);
        // Enough data to roll a few times, then an open transaction.
        for i in 0..40 {
            append(&log, common::batch(&format!("fill{i}"), 10, 10, 0)).await;
        }
        assert!(log.segment_count() > 2);
        log.begin_txn_verification(1, 0);
        let open_at = try_append(&log, produced(1, 0, 3, 1, true))
            .await
            .unwrap()
            .0;
        log.append_marker(marker(3, 0, false), LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(
            log.aborted_txns(Offset(0), Offset(i64::MAX)).len(),
            1,
            "producer 3 had no batch here"
        );
        log.flush().await.unwrap();
        let before = (
            log.producers(),
            log.last_stable_offset(),
            log.aborted_txns(Offset(0), Offset(i64::MAX)),
        );
        assert_eq!(before.1, Offset(open_at));
        drop(log);
        storage.crash(|_, pending| (pending, None));
        let log = open(&storage, dir, &config, &clock).await;
        let after = (
            log.producers(),
            log.last_stable_offset(),
            log.aborted_txns(Offset(0), Offset(i64::MAX)),
        );
        assert_eq!(after, before, "rebuilt from the snapshot and the tail");
        assert_eq!(
            log.producer_state_replayed_from(),
            *log.segment_bases().last().unwrap(),
            "only the active segment was replayed, after the last roll's snapshot"
        );
        // The open transaction can still be committed after the crash.
        log.append_marker(marker(1, 0, true), LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
    });
}

/// The values of key `k` in the log, in offset order (markers left out).
async fn values_of_k(log: &PartitionLog<MemoryStorage>) -> Vec<String> {
    common::read_all(log, log.log_start_offset())
        .await
        .into_iter()
        .filter(|(_, key, _)| key.as_deref() == Some("k"))
        .filter_map(|(_, _, value)| value)
        .collect()
}

/// One record `k` = `value` from producer `pid` in its transaction.
fn txn_record(pid: i64, seq: i32, value: &str) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, 0, seq)
        .transactional(true);
    builder.push(1_000, Some(b"k"), Some(value.as_bytes()), &[]);
    builder.build(0).expect("valid")
}

#[test]
fn compaction_drops_aborted_records_and_stops_at_the_last_stable_offset() {
    run(async {
        let dir = Path::new("/data/ct-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let config = LogConfig {
            cleanup_policy: kelp_storage::CleanupPolicy::COMPACT,
            ..LogConfig::default()
        };
        let log = open(&storage, dir, &config, &clock).await;
        append(&log, common::keyed("k", Some("committed"), 1_000)).await;
        log.begin_txn_verification(5, 0);
        try_append(&log, txn_record(5, 0, "aborted")).await.unwrap();
        log.append_marker(marker(5, 0, false), LeaderEpoch(1))
            .await
            .unwrap();
        log.force_roll().await.unwrap();
        log.begin_txn_verification(6, 0);
        try_append(&log, txn_record(6, 0, "open")).await.unwrap();
        log.force_roll().await.unwrap();
        log.compact(Default::default()).await.unwrap();
        assert_eq!(
            values_of_k(&log).await,
            vec!["committed".to_owned(), "open".to_owned()],
            "the aborted write is gone and hid nothing; the open one is past the last stable offset"
        );
        log.append_marker(marker(6, 0, true), LeaderEpoch(1))
            .await
            .unwrap();
        log.force_roll().await.unwrap();
        log.compact(Default::default()).await.unwrap();
        assert_eq!(
            values_of_k(&log).await,
            vec!["open".to_owned()],
            "committed, it supersedes the older value"
        );
    });
}

#[test]
fn delete_records_past_a_marker_leaves_no_phantom_transaction() {
    run(async {
        let dir = Path::new("/data/dr-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let config = LogConfig::default();
        let log = open(&storage, dir, &config, &clock).await;
        append(&log, common::batch("plain", 2, 2, 0)).await;
        log.begin_txn_verification(1, 0);
        let first = try_append(&log, produced(1, 0, 0, 1, true))
            .await
            .unwrap()
            .0;
        // The roll's snapshot has producer 1's transaction open.
        log.force_roll().await.unwrap();
        assert_eq!(log.last_stable_offset(), Offset(first));
        log.append_marker(marker(1, 0, true), LeaderEpoch(1))
            .await
            .unwrap();
        append(&log, common::batch("after", 3, 3, 0)).await;
        let end = log.log_end_offset();
        log.truncate_prefix(Offset(end.0 - 1)).await.unwrap();
        assert_eq!(log.last_stable_offset(), end);
        log.flush().await.unwrap();
        drop(log);
        storage.crash(|_, pending| (pending, None));
        let log = open(&storage, dir, &config, &clock).await;
        assert_eq!(
            log.last_stable_offset(),
            log.log_end_offset(),
            "the marker deleted with the records still ended the transaction"
        );
    });
}

#[test]
fn a_transactional_batch_delayed_past_its_transactions_end_is_refused() {
    run(async {
        let dir = Path::new("/data/vg-0");
        let clock = Rc::new(ManualClock::new(0));
        let storage = MemoryStorage::new();
        let log = open(&storage, dir, &LogConfig::default(), &clock).await;
        let not_in_transaction = |result: Result<(i64, i64), StorageError>| {
            matches!(
                result,
                Err(StorageError::Producer(ProducerError::NotInTransaction {
                    producer_id: 4
                }))
            )
        };
        // Never checked with the coordinator: refused.
        assert!(not_in_transaction(
            try_append(&log, produced(4, 0, 0, 1, true)).await
        ));
        // Checked, but the transaction ended (its marker landed) before the
        // batch did: refused, or it would open a transaction nobody ends.
        log.begin_txn_verification(4, 0);
        log.append_marker(marker(4, 0, false), LeaderEpoch(1))
            .await
            .unwrap();
        assert!(not_in_transaction(
            try_append(&log, produced(4, 0, 0, 1, true)).await
        ));
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        // Checked and still standing: it opens the transaction, and the
        // batches after it need no further check.
        log.begin_txn_verification(4, 0);
        try_append(&log, produced(4, 0, 0, 1, true)).await.unwrap();
        try_append(&log, produced(4, 0, 1, 1, true)).await.unwrap();
    });
}
