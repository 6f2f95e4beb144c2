//! The transaction coordinator's clocks, with short settings from a config
//! file: a transaction open past its `transaction.timeout.ms` is aborted
//! and its producer fenced, and a transactional id idle past
//! `transactional.id.expiration.ms` is forgotten.

mod common;

use std::time::{Duration, Instant};

use common::groups::{create, NONE};
use common::raw::call;
use common::txn::{add, codes, describe, end, init, init_at, latest, produce, producer_batch};
use common::Broker;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// Polls `check` every 20 ms until it holds; fails after 20 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn open_transactions_time_out_and_idle_ids_expire() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("kelp.toml");
    std::fs::write(
        &config,
        "transaction_abort_timed_out_transaction_cleanup_interval_ms = 100\n\
         transactional_id_expiration_ms = 4000\n",
    )
    .unwrap();
    let broker = Broker::start_with(&["--config", config.to_str().unwrap()]);
    let topic = "txn-clocks";
    create(&broker, topic, 1);

    // A transaction with a 500 ms timeout is left open.
    let (code, pid, epoch) = init_at(&broker, 4, &init(Some("slow"), 500, (-1, -1)));
    assert_eq!((code, epoch), (NONE, 0));
    assert_eq!(
        codes(&call(&broker, 3, &add("slow", (pid, 0), &[(topic, 0)]))),
        vec![NONE]
    );
    assert_eq!(
        produce(
            &broker,
            topic,
            Some("slow"),
            producer_batch((pid, 0), 0, true, false)
        ),
        NONE
    );
    assert!(latest(&broker, topic, 1) < latest(&broker, topic, 0));
    eventually("the coordinator aborts it", || {
        let (_, state, _, epoch) = describe(&broker, "slow");
        state == "CompleteAbort" && epoch == 1
    });
    assert_eq!(
        latest(&broker, topic, 1),
        latest(&broker, topic, 0),
        "the abort marker is written"
    );
    // Its producer is fenced, at the coordinator and on the partition.
    assert_eq!(
        call(&broker, 3, &end("slow", (pid, 0), true)).error_code,
        PRODUCER_FENCED
    );
    assert_eq!(
        call(&broker, 1, &end("slow", (pid, 0), true)).error_code,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce(
            &broker,
            topic,
            Some("slow"),
            producer_batch((pid, 0), 1, false, false)
        ),
        INVALID_PRODUCER_EPOCH
    );

    // An id with nothing open is forgotten once idle long enough, and a
    // later InitProducerId starts it afresh with a new producer id.
    let (code, idle_pid, _) = init_at(&broker, 4, &init(Some("idle"), 60_000, (-1, -1)));
    assert_eq!(code, NONE);
    assert_eq!(describe(&broker, "idle").0, NONE);
    eventually("the idle id expires", || {
        describe(&broker, "idle").0 == TRANSACTIONAL_ID_NOT_FOUND
    });
    let (code, fresh_pid, epoch) = init_at(&broker, 4, &init(Some("idle"), 60_000, (-1, -1)));
    assert_eq!((code, epoch), (NONE, 0));
    assert_ne!(fresh_pid, idle_pid);
}

#[test]
fn after_a_restart_an_abandoned_transaction_times_out_without_any_client() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("kelp.toml");
    std::fs::write(
        &config,
        "transaction_abort_timed_out_transaction_cleanup_interval_ms = 100\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let flags = ["--config", config.to_str().unwrap()];
    let mut broker = Broker::start_in_with(&data, port, &flags);
    let topic = "txn-abandoned";
    create(&broker, topic, 1);
    let (code, pid, _) = init_at(&broker, 4, &init(Some("abandoned"), 2_000, (-1, -1)));
    assert_eq!(code, NONE);
    assert_eq!(
        codes(&call(
            &broker,
            3,
            &add("abandoned", (pid, 0), &[(topic, 0)])
        )),
        vec![NONE]
    );
    assert_eq!(
        produce(
            &broker,
            topic,
            Some("abandoned"),
            producer_batch((pid, 0), 0, true, false)
        ),
        NONE
    );
    broker.kill();
    // Nobody asks for the id again: only ListOffsets, which does not reach
    // the transaction coordinator.
    let broker = Broker::start_in_with(&data, port, &flags);
    assert!(latest(&broker, topic, 1) < latest(&broker, topic, 0));
    eventually("the abandoned transaction is aborted", || {
        latest(&broker, topic, 1) == latest(&broker, topic, 0)
    });
}
