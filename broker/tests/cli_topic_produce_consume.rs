//! The `kelp` client commands against a real broker, run as the user runs
//! them: topic administration, producing stdin lines and consuming them back
//! in order in both formats, and failures that read as one clear sentence
//! with exit code 1.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Broker;

/// Runs `kelp ARGS --brokers ADDR` with `stdin`; returns its output.
fn kelp(brokers: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kelp"))
        .args(args)
        .args(["--brokers", brokers])
        .env_remove("KELP_BROKERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kelp starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin).expect("stdin takes the input");
    drop(input);
    child.wait_with_output().expect("kelp exits")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(brokers: &str, args: &[&str], stdin: &[u8]) -> String {
    let output = kelp(brokers, args, stdin);
    assert!(
        output.status.success(),
        "kelp {args:?} failed: {}\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

/// Runs a command that must fail with exit code 1 and one clear line; returns its stderr.
fn fails(brokers: &str, args: &[&str]) -> String {
    let output = kelp(brokers, args, b"");
    assert_eq!(
        output.status.code(),
        Some(1),
        "kelp {args:?}: {}",
        stderr(&output)
    );
    let error = stderr(&output);
    assert!(error.starts_with("kelp: "), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    error
}

#[test]
fn topics_are_created_described_altered_and_deleted() {
    let broker = Broker::start();
    let addr = broker.addr.to_string();

    let created = ok(
        &addr,
        &[
            "topic",
            "create",
            "events",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
        b"",
    );
    assert!(created.contains("Created topic 'events'"), "{created}");
    let error = fails(&addr, &["topic", "create", "events"]);
    assert!(error.contains("topic 'events' already exists"), "{error}");

    let list = ok(&addr, &["topic", "list"], b"");
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("events"))
        .unwrap_or_else(|| panic!("events listed: {list}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["events", "3", "1"]);

    let described = ok(&addr, &["topic", "describe", "events"], b"");
    assert!(described.contains("PARTITIONS  3"), "{described}");
    assert!(
        described.lines().any(|l| l.split_whitespace().eq([
            "retention.ms",
            "3600000",
            "DYNAMIC_TOPIC_CONFIG"
        ])),
        "{described}"
    );
    for partition in 0..3 {
        let line = format!("{partition} 0 [0] [0]");
        assert!(
            described
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line),
            "partition {partition}: {described}"
        );
    }
    assert!(
        !described.contains("cleanup.policy"),
        "defaults hidden: {described}"
    );

    ok(
        &addr,
        &[
            "topic",
            "alter-config",
            "events",
            "--set",
            "cleanup.policy=compact",
            "--delete",
            "retention.ms",
        ],
        b"",
    );
    let described = ok(&addr, &["topic", "describe", "events"], b"");
    assert!(
        described.lines().any(|l| l.split_whitespace().eq([
            "cleanup.policy",
            "compact",
            "DYNAMIC_TOPIC_CONFIG"
        ])),
        "{described}"
    );
    assert!(!described.contains("retention.ms"), "{described}");
    let error = fails(
        &addr,
        &["topic", "alter-config", "ghost", "--set", "retention.ms=1"],
    );
    assert!(error.contains("topic 'ghost' does not exist"), "{error}");

    let deleted = ok(&addr, &["topic", "delete", "events"], b"");
    assert!(deleted.contains("Deleted topic 'events'"), "{deleted}");
    let error = fails(&addr, &["topic", "describe", "events"]);
    assert!(error.contains("topic 'events' does not exist"), "{error}");
    let error = fails(&addr, &["topic", "delete", "events"]);
    assert!(error.contains("topic 'events' does not exist"), "{error}");
}

#[test]
fn produced_lines_come_back_in_order_as_plain_and_json() {
    let broker = Broker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "lines"], b"");

    let input: String = (0..100)
        .map(|i| format!("key-{i}::value {i}::x\n"))
        .collect();
    let summary = ok(
        &addr,
        &["produce", "lines", "-k", "::", "--compression", "lz4"],
        input.as_bytes(),
    );
    assert!(summary.contains("Produced 100 records"), "{summary}");
    assert!(summary.contains("0 failed"), "{summary}");

    let plain = ok(
        &addr,
        &["consume", "lines", "-n", "100", "-o", "start"],
        b"",
    );
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 100, "{plain}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("key-{i}\tvalue {i}::x"));
    }

    let json = ok(
        &addr,
        &["consume", "lines", "-n", "100", "-o", "start", "-f", "json"],
        b"",
    );
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(records.len(), 100);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["topic"], "lines");
        assert_eq!(record["partition"], 0);
        assert_eq!(record["offset"], i as u64);
        assert_eq!(record["key"], format!("key-{i}"));
        assert_eq!(record["value"], format!("value {i}::x"));
        assert!(
            record["timestamp"].as_i64().is_some_and(|t| t > 0),
            "{record}"
        );
        assert_eq!(record["headers"], serde_json::json!([]));
    }

    // From an offset, a few records: the tail of the log.
    let tail = ok(&addr, &["consume", "lines", "-o", "98", "-n", "2"], b"");
    assert_eq!(tail, "key-98\tvalue 98::x\nkey-99\tvalue 99::x\n");

    // Lines without the separator have no key.
    ok(
        &addr,
        &["produce", "lines", "-k", "::", "--acks", "1"],
        b"no key here\n",
    );
    let last = ok(&addr, &["consume", "lines", "-o", "100", "-n", "1"], b"");
    assert_eq!(last, "no key here\n");
}

#[test]
fn failures_are_one_clear_line_and_exit_code_one() {
    let broker = Broker::start();
    let addr = broker.addr.to_string();

    let error = fails(&addr, &["consume", "missing", "-n", "1"]);
    assert!(error.contains("topic 'missing' does not exist"), "{error}");
    let error = fails(&addr, &["produce", "missing"]);
    assert!(error.contains("topic 'missing' does not exist"), "{error}");

    ok(&addr, &["topic", "create", "one"], b"");
    let error = fails(&addr, &["consume", "one", "-p", "5", "-n", "1"]);
    assert!(error.contains("topic 'one' has no partition 5"), "{error}");

    let error = fails(
        &addr,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "missing",
            "--to-earliest",
        ],
    );
    assert!(error.contains("topic 'missing' does not exist"), "{error}");

    let unreachable = format!("127.0.0.1:{}", common::free_port());
    let error = fails(&unreachable, &["consume", "one", "-n", "1"]);
    assert_eq!(
        error.trim_end(),
        format!("kelp: cannot reach the broker at {unreachable}: connection refused")
    );
    let error = fails(&unreachable, &["topic", "list"]);
    assert!(error.contains("connection refused"), "{error}");
}

#[test]
fn cluster_info_shows_the_broker() {
    let broker = Broker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "counted"], b"");
    let info = ok(&addr, &["cluster", "info"], b"");
    assert!(info.contains("CONTROLLER  0"), "{info}");
    assert!(info.contains("TOPICS      1"), "{info}");
    assert!(
        info.lines()
            .any(|l| l.split_whitespace().eq(["0*", addr.as_str()])),
        "{info}"
    );
    assert!(
        info.lines()
            .next()
            .is_some_and(|l| l.starts_with("CLUSTER ID") && l.len() > "CLUSTER ID  ".len()),
        "{info}"
    );
}

#[test]
fn consume_follows_new_records_until_ctrl_c() {
    use std::io::{BufRead, BufReader};

    let broker = Broker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "live"], b"");
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_kelp"))
        .args(["consume", "live", "-o", "end", "--brokers", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kelp starts");
    let mut lines = BufReader::new(consumer.stdout.take().expect("stdout is piped")).lines();
    // Produced until seen: the consumer starts at the end, which it may not have read yet.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (addr, done) = (addr.clone(), done.clone());
        std::thread::spawn(move || {
            let mut attempt = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && attempt < 100 {
                ok(
                    &addr,
                    &["produce", "live"],
                    format!("line {attempt}\n").as_bytes(),
                );
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
    };
    let seen = lines.next();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.join().expect("the producer thread ends");
    let line = seen.expect("a line").expect("stdout reads");
    assert!(line.starts_with("line "), "{line}");
    // SAFETY: kill with a pid this test spawned and has not reaped.
    unsafe { libc::kill(consumer.id() as i32, libc::SIGINT) };
    let status = consumer.wait().expect("kelp exits");
    assert!(
        status.success(),
        "Ctrl-C ends the consumer cleanly: {status}"
    );
}

#[test]
fn a_group_resumes_where_it_committed_and_can_be_reset() {
    let broker = Broker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "lines", "-p", "1"], b"");
    ok(&addr, &["produce", "lines"], b"one\ntwo\nthree\n");

    let first = ok(
        &addr,
        &["consume", "lines", "-g", "readers", "-n", "2"],
        b"",
    );
    assert_eq!(first, "one\ntwo\n");
    let next = ok(
        &addr,
        &["consume", "lines", "-g", "readers", "-n", "1"],
        b"",
    );
    assert_eq!(next, "three\n", "resumes after the committed offset");

    let described = ok(&addr, &["group", "describe", "readers"], b"");
    assert!(
        described
            .lines()
            .any(|l| l.split_whitespace().eq(["lines", "0", "3", "3", "0"])),
        "committed 3, end 3, lag 0: {described}"
    );
    let listed = ok(&addr, &["group", "list"], b"");
    assert!(listed.contains("readers"), "{listed}");

    ok(
        &addr,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
        ],
        b"",
    );
    let again = ok(
        &addr,
        &["consume", "lines", "-g", "readers", "-n", "1"],
        b"",
    );
    assert_eq!(again, "one\n", "reset to the start");
}
