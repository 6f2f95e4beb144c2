//! A real crash test: a child process appends to a [`PartitionLog`] on
//! [`DmaStorage`] and reports every completed flush; the parent SIGKILLs it
//! at a random moment, reopens the log and checks that everything reported
//! flushed is there, byte for byte, and that nothing torn survived recovery.
//!
//! The test binary re-executes itself: [`crash_child`] does nothing unless
//! `KELP_CRASH_CHILD_DIR` is set. Batch content is a pure function of the
//! batch's base offset, so the parent regenerates every batch exactly and a
//! child after a crash continues the same sequence from the recovered log end.
//!
//! Reproduce a failing run with `KELP_CRASH_SEED=<seed printed at start>`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kelp_storage::batch::{BatchBuilder, Compression, RecordBatch};
use kelp_storage::io::DmaStorage;
use kelp_storage::log::{AppendOrigin, LogContext};
use kelp_storage::{LeaderEpoch, LogConfig, LogId, Offset, PartitionLog, SystemClock, TailCache};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR_ENV: &str = "KELP_CRASH_CHILD_DIR";
const CHILD_EPOCH_ENV: &str = "KELP_CRASH_EPOCH";
const CHILD_SEED_ENV: &str = "KELP_CRASH_CHILD_SEED";
const CHILD_T0_ENV: &str = "KELP_CRASH_T0";
const SEED_ENV: &str = "KELP_CRASH_SEED";
/// Starts the child's report lines (libtest may print on the same line).
const MARK: &str = "@kelp ";
const ROUNDS: u32 = 6;
const SEGMENT_BYTES: u64 = 4 << 20;
const MIN_BATCH_BYTES: f64 = 100.0;
const MAX_BATCH_BYTES: f64 = 200.0 * 1024.0;
/// How long the parent waits for the child's next line before failing.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The value of the record at `offset`, `len` bytes.
fn record_value(offset: i64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = splitmix(offset as u64 ^ 0x5eed);
    while out.len() < len {
        state = splitmix(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The shape of the batch that starts at `base`: record count and value length.
fn batch_shape(base: i64) -> (usize, usize) {
    let h = splitmix(base as u64);
    // Log-uniform target size in [100 B, 200 KiB].
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let target = MIN_BATCH_BYTES * (MAX_BATCH_BYTES / MIN_BATCH_BYTES).powf(u);
    let max_records = ((target / 60.0) as usize).clamp(1, 64);
    let records = 1 + (splitmix(h) % max_records as u64) as usize;
    // 61 bytes of batch header, about 20 of record framing and key.
    let value_len = ((target - 61.0) / records as f64 - 20.0).max(1.0) as usize;
    (records, value_len)
}

fn timestamp(t0: i64, offset: i64) -> i64 {
    t0 + offset / 16
}

/// The batch that starts at `base`, as the log should store it when it was
/// appended in leader epoch `epoch`.
fn expected_batch(t0: i64, base: i64, epoch: i32) -> BytesMut {
    let (records, value_len) = batch_shape(base);
    let mut builder = BatchBuilder::new(Compression::None).partition_leader_epoch(epoch);
    for i in 0..records as i64 {
        let offset = base + i;
        let value = record_value(offset, value_len);
        builder.push(
            timestamp(t0, offset),
            Some(&offset.to_be_bytes()),
            Some(&value),
            &[],
        );
    }
    builder.build(base).expect("build batch")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    }
}

async fn open_log(dir: &Path) -> PartitionLog<DmaStorage> {
    let ctx = LogContext {
        id: LogId(1),
        cache: Rc::new(TailCache::new(64 << 20)),
        clock: Rc::new(SystemClock),
    };
    PartitionLog::open(DmaStorage, dir, config(), ctx)
        .await
        .unwrap_or_else(|e| panic!("open log in {}: {e}", dir.display()))
}

fn env_i64(name: &str) -> i64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run_local<T, Fut>(f: impl FnOnce() -> Fut + Send + 'static) -> T
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn glommio executor")
        .join()
        .expect("glommio executor panicked")
}

/// The child: appends deterministic batches until it is killed, printing
/// `@kelp flushed <log end>` after every flush. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let epoch = i32::try_from(env_i64(CHILD_EPOCH_ENV)).expect("epoch fits i32");
    let seed = env_i64(CHILD_SEED_ENV) as u64;
    let t0 = env_i64(CHILD_T0_ENV);
    let build = move |base: i64| expected_batch(t0, base, -1);
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let log = open_log(&dir).await;
            let mut out = std::io::stdout();
            writeln!(out, "{MARK}start {}", log.log_end_offset()).expect("stdout");
            out.flush().expect("stdout");
            loop {
                // Flush after 1..=4 appends, chosen from the seed and the offset.
                let appends = 1 + splitmix(seed ^ log.log_end_offset().0 as u64) % 4;
                for _ in 0..appends {
                    let base = log.log_end_offset().0;
                    let info = log
                        .append(build(base), AppendOrigin::Leader(LeaderEpoch(epoch)))
                        .await
                        .expect("append");
                    assert_eq!(info.base_offset, Offset(base));
                }
                let end = log.log_end_offset();
                log.flush().await.expect("flush");
                writeln!(out, "{MARK}flushed {}", end.0).expect("stdout");
                out.flush().expect("stdout");
            }
        })
        .expect("spawn glommio executor")
        .join()
        .expect("child executor");
}

/// What one child run reported before it was killed.
struct ChildReport {
    start: i64,
    last_flushed: i64,
    flushes: usize,
}

/// Kills the child on drop, so a failing parent leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one child in `log_dir`, SIGKILLs it after `kill_after` flushed lines
/// plus `delay`, and returns what it reported.
fn run_child(
    log_dir: &Path,
    stderr_path: &Path,
    epoch: i32,
    seed: u64,
    t0: i64,
    kill_after: usize,
    delay: Duration,
) -> ChildReport {
    let exe = std::env::current_exe().expect("current exe");
    let stderr = std::fs::File::create(stderr_path).expect("child stderr file");
    let child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, log_dir)
        .env(CHILD_EPOCH_ENV, epoch.to_string())
        .env(CHILD_SEED_ENV, (seed as i64).to_string())
        .env(CHILD_T0_ENV, t0.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn child");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let child_failed = |what: &str| -> ! {
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        panic!("child {what}; its stderr:\n{stderr}");
    };
    let mut start = None;
    let mut last_flushed = None::<i64>;
    let mut flushes = 0;
    while flushes < kill_after {
        let line = match rx.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => child_failed("printed nothing for too long"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                child_failed("exited before it was killed")
            }
        };
        let Some((_, line)) = line.rsplit_once(MARK) else {
            continue;
        };
        if let Some(n) = line.strip_prefix("start ") {
            start = Some(n.parse::<i64>().expect("start offset"));
        } else if let Some(n) = line.strip_prefix("flushed ") {
            let n: i64 = n.parse().expect("flushed offset");
            assert!(start.is_some(), "flushed before start");
            assert!(
                last_flushed.is_none_or(|last| n > last),
                "flushed offsets must increase: {n} after {last_flushed:?}"
            );
            last_flushed = Some(n);
            flushes += 1;
        }
    }
    std::thread::sleep(delay);
    // Child::kill sends SIGKILL.
    child.0.kill().expect("kill child");
    let status = child.0.wait().expect("wait for child");
    assert!(
        !status.success(),
        "the child must die of the signal, not exit"
    );
    // Lines printed between the last one read and the kill count too: the
    // child said those offsets were flushed.
    reader.join().expect("stdout reader");
    while let Ok(line) = rx.try_recv() {
        let Some((_, line)) = line.rsplit_once(MARK) else {
            continue;
        };
        if let Some(n) = line.strip_prefix("flushed ") {
            let n: i64 = n.parse().expect("flushed offset");
            assert!(last_flushed.is_none_or(|last| n > last));
            last_flushed = Some(n);
            flushes += 1;
        }
    }
    ChildReport {
        start: start.expect("child printed its start"),
        last_flushed: last_flushed.expect("child flushed at least once"),
        flushes,
    }
}

/// Which epoch appended each stretch of the log: `(start, end, epoch)`.
type EpochRanges = Vec<(i64, i64, i32)>;

fn epoch_at(ranges: &EpochRanges, offset: i64) -> i32 {
    ranges
        .iter()
        .find(|(start, end, _)| (*start..*end).contains(&offset))
        .map(|r| r.2)
        .unwrap_or_else(|| panic!("no epoch range holds offset {offset}: {ranges:?}"))
}

/// What a verification saw.
struct Verified {
    log_end: i64,
    batches: usize,
    segments: usize,
    size: u64,
}

/// Reopens the log and checks all of it.
async fn verify(dir: PathBuf, t0: i64, ranges: EpochRanges, seed: u64, close: bool) -> Verified {
    let log = open_log(&dir).await;
    let log_end = log.log_end_offset().0;
    assert_eq!(log.log_start_offset(), Offset(0));
    let last_end = ranges.last().map_or(0, |r| r.1);
    assert_eq!(log_end, last_end, "the caller computes the expected end");

    // Every batch from offset 0, read from disk (the tail cache is empty).
    let mut next = 0i64;
    let mut batches = 0usize;
    while next < log_end {
        let result = log
            .read(Offset(next), 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("read at {next}: {e}"));
        assert!(
            !result.batches.is_empty(),
            "read at {next} below log end {log_end} returned nothing"
        );
        for bytes in result.batches {
            let batch = RecordBatch::parse(bytes.clone())
                .unwrap_or_else(|e| panic!("batch at {next}: {e}"));
            assert_eq!(batch.base_offset(), next, "batches must be contiguous");
            let epoch = epoch_at(&ranges, next);
            assert_eq!(
                batch.partition_leader_epoch(),
                epoch,
                "epoch of batch at {next}"
            );
            let (count, value_len) = batch_shape(next);
            let mut offset = next;
            for record in batch.records(64 << 20).expect("records") {
                let record = record.unwrap_or_else(|e| panic!("record in batch at {next}: {e}"));
                assert_eq!(
                    record.offset(batch.base_offset()),
                    offset,
                    "record offsets in batch at {next}"
                );
                assert_eq!(
                    record.key.as_deref(),
                    Some(&offset.to_be_bytes()[..]),
                    "key at {offset}"
                );
                let value = record
                    .value
                    .unwrap_or_else(|| panic!("null value at {offset}"));
                assert!(
                    value[..] == record_value(offset, value_len)[..],
                    "value at offset {offset} differs"
                );
                offset += 1;
            }
            assert_eq!(
                offset - next,
                count as i64,
                "record count of batch at {next}"
            );
            assert_eq!(batch.last_offset(), offset - 1);
            let expected = Bytes::from(expected_batch(t0, next, epoch));
            assert!(
                bytes == expected,
                "batch at {next} differs from the regenerated one"
            );
            next = offset;
            batches += 1;
        }
    }
    assert_eq!(next, log_end, "the last batch ends at the log end");
    assert!(log
        .read(Offset(log_end), 1 << 20)
        .await
        .expect("read at log end")
        .batches
        .is_empty());

    // Point reads land on the batch holding the offset.
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..32 {
        let offset = rng.random_range(0..log_end);
        let result = log
            .read(Offset(offset), 1)
            .await
            .unwrap_or_else(|e| panic!("read at {offset}: {e}"));
        let first = RecordBatch::parse(result.batches[0].clone()).expect("point read parses");
        assert!(
            first.base_offset() <= offset && offset <= first.last_offset(),
            "read at {offset} returned batch {}..={}",
            first.base_offset(),
            first.last_offset()
        );
    }

    // The leader-epoch cache: each round's epoch starts where its child started.
    let expected: Vec<(LeaderEpoch, Offset)> = ranges
        .iter()
        .map(|(start, _, epoch)| (LeaderEpoch(*epoch), Offset(*start)))
        .collect();
    assert_eq!(log.epochs().entries(), &expected[..], "leader-epoch cache");

    let segments = log.segment_count();
    let size = log.size_bytes();
    if close {
        log.close().await.expect("close");
    }
    Verified {
        log_end,
        batches,
        segments,
        size,
    }
}

#[test]
fn sigkill_keeps_flushed_data() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .map(|s| s.parse::<u64>().expect("KELP_CRASH_SEED must be a u64"))
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (rerun with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    // On the root file system: O_DIRECT does not work on tmpfs.
    let tmp = tempfile::Builder::new()
        .prefix("kelp-crash-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let log_dir = tmp.path().join("log");
    let stderr_path = tmp.path().join("child-stderr.txt");
    let mut ranges: EpochRanges = Vec::new();
    let mut end = 0i64;
    for round in 0..ROUNDS {
        let epoch = i32::try_from(round).expect("few rounds") + 1;
        let kill_after = rng.random_range(20..=120);
        let delay = Duration::from_micros(rng.random_range(0..30_000));
        let child_seed = rng.random::<u64>();
        let report = run_child(
            &log_dir,
            &stderr_path,
            epoch,
            child_seed,
            t0,
            kill_after,
            delay,
        );
        assert_eq!(
            report.start, end,
            "round {round}: the child must continue at the recovered log end"
        );

        // Reopen to learn the recovered end; everything reported flushed must be there.
        let dir = log_dir.clone();
        let recovered = run_local(move || async move { open_log(&dir).await.log_end_offset().0 });
        assert!(
            recovered >= report.last_flushed,
            "round {round}: flushed up to {} but only {recovered} recovered",
            report.last_flushed
        );
        ranges.push((report.start, recovered, epoch));
        let close = rng.random_bool(0.5);
        let verify_seed = rng.random::<u64>();
        let (dir, r) = (log_dir.clone(), ranges.clone());
        let v = run_local(move || verify(dir, t0, r, verify_seed, close));
        println!(
            "round {round}: {} flushes (kill after {kill_after} + {delay:?}), flushed {} recovered {}: {} batches in {} segments, {} bytes, closed cleanly: {close}, {:?} elapsed",
            report.flushes,
            report.last_flushed,
            v.log_end,
            v.batches,
            v.segments,
            v.size,
            started.elapsed()
        );
        end = v.log_end;
    }
    let dir = log_dir.clone();
    let segments = run_local(move || async move { open_log(&dir).await.segment_count() });
    assert!(
        segments >= 2,
        "the test should have rolled segments (got {segments})"
    );
}
