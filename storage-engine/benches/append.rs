//! Append + flush throughput of [`PartitionLog`] on [`DmaStorage`], next to
//! the raw sequential O_DIRECT write bandwidth of the same directory.
//!
//! `cargo bench -p kelp-storage --bench append` prints one line per case:
//!
//! ```text
//! append batch_bytes=<n> flush_every=<n> mb_s=<x> raw_mb_s=<y> ratio=<x/y> p99_flush_us=<z>
//! ```
//!
//! MB is 10^6 bytes. Environment:
//! - `KELP_BENCH_BYTES`: bytes written per case and per measurement (default 512 MiB).
//! - `KELP_BENCH_DIR`: where the temporary files go (default: a temporary
//!   directory under Cargo's target directory). Must not be tmpfs: O_DIRECT.
//! - `KELP_BENCH_VERBOSE=1`: a breakdown of each case on stderr.
//! - `KELP_BENCH_CASES=16384:1,1048576:16`: run only these
//!   `batch_bytes:flush_every` cases (for profiling one of them).
//! - `KELP_BENCH_ONLY=log` or `raw`: run only that side (for profiling; the
//!   summary line then has no meaning).
//!
//! The log and the raw writer are measured in alternating slices of the
//! volume, so that the device's drift (large on shared virtual disks) hits
//! both alike. With `KELP_BENCH_VERBOSE=1` a third writer runs too: the raw
//! loop plus one 4 KiB write to a second file per sync point, which is what
//! the log's offset index adds to a flush.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use glommio::io::DmaFile;
use hdrhistogram::Histogram;
use kelp_storage::batch::{BatchBuilder, Compression};
use kelp_storage::io::DmaStorage;
use kelp_storage::log::{AppendOrigin, LogContext};
use kelp_storage::{LeaderEpoch, LogConfig, LogId, PartitionLog, SystemClock, TailCache};

const BATCH_SIZES: [usize; 2] = [16 << 10, 1 << 20];
const FLUSH_EVERY: [usize; 2] = [1, 16];
const RECORD_VALUE_BYTES: usize = 1024;
const ALIGN: usize = 4096;

/// Slices a case is cut into: the log and the raw file are written in
/// alternation, so that drift in the device's speed hits both alike.
const SLICES: usize = 8;

/// One measurement, summed over its slices.
struct Run {
    bytes: u64,
    elapsed: Duration,
    /// Latency of each flush (log) or sync point (raw).
    flushes: Histogram<u64>,
    /// Time spent inside `append` (zero for raw runs).
    append_time: Duration,
}

impl Run {
    fn new() -> Run {
        Run {
            bytes: 0,
            elapsed: Duration::ZERO,
            flushes: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
            append_time: Duration::ZERO,
        }
    }

    fn mb_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    fn record_flush(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, self.flushes.high());
        self.flushes.record(us).expect("value within bounds");
    }

    fn describe(&self, name: &str) -> String {
        let h = &self.flushes;
        format!(
            "{name}: {:.1} MB/s, {:.3}s total, {:.3}s in append, ~{:.3}s in {} flushes (p50 {}us, p99 {}us, max {}us)",
            self.mb_s(),
            self.elapsed.as_secs_f64(),
            self.append_time.as_secs_f64(),
            h.mean() * h.len() as f64 / 1e6,
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max()
        )
    }
}

/// An uncompressed batch of exactly `target` bytes: 1 KiB records, then
/// one record sized to fill the rest.
fn build_batch(target: usize) -> BytesMut {
    let value = vec![0xa5u8; RECORD_VALUE_BYTES];
    let filler = vec![0x5au8; target];
    let build = |full: usize, last: usize| {
        let mut builder = BatchBuilder::new(Compression::None);
        for i in 0..=full {
            let v = if i < full {
                &value[..]
            } else {
                &filler[..last]
            };
            builder.push(1_700_000_000_000 + i as i64, None, Some(v), &[]);
        }
        builder.build(0).expect("build batch")
    };
    let empty = build(0, 0).len();
    let per_record = build(1, 0).len() - empty;
    // Offset and timestamp deltas grow to a few bytes in large batches.
    let full = ((target - empty) / (per_record + 8)).saturating_sub(1);
    let mut last = target - build(full, 0).len();
    // Varint lengths make the size a step function: adjust until exact.
    for _ in 0..8 {
        let len = build(full, last).len();
        if len == target {
            break;
        }
        last = (last as i64 + target as i64 - len as i64).max(0) as usize;
    }
    let batch = build(full, last);
    assert_eq!(batch.len(), target, "batch size");
    batch
}

async fn open_log(dir: &Path, batch: &BytesMut) -> PartitionLog<DmaStorage> {
    let config = LogConfig {
        segment_bytes: 1 << 30,
        max_message_bytes: batch.len().max(LogConfig::default().max_message_bytes),
        ..LogConfig::default()
    };
    let ctx = LogContext {
        id: LogId(1),
        cache: Rc::new(TailCache::new(64 << 20)),
        clock: Rc::new(SystemClock),
    };
    let log = PartitionLog::open(DmaStorage, dir, config, ctx)
        .await
        .expect("open log");
    // The first append of an epoch persists the epoch checkpoint: keep it out.
    log.append(batch.clone(), AppendOrigin::Leader(LeaderEpoch(1)))
        .await
        .expect("append");
    log.flush().await.expect("flush");
    log
}

/// Appends `n` batches, flushing every `flush_every` and at the end.
async fn log_slice(
    log: &PartitionLog<DmaStorage>,
    batch: &BytesMut,
    n: usize,
    flush_every: usize,
    run: &mut Run,
) {
    let origin = AppendOrigin::Leader(LeaderEpoch(1));
    for i in 0..n {
        // The batch arrives in its own buffer, as from a socket; making that
        // buffer is the network's cost, not the log's, so it is not timed.
        let incoming = batch.clone();
        let t = Instant::now();
        log.append(incoming, origin).await.expect("append");
        let appended = t.elapsed();
        run.append_time += appended;
        run.elapsed += appended;
        if (i + 1) % flush_every == 0 || i + 1 == n {
            let t = Instant::now();
            log.flush().await.expect("flush");
            let flushed = t.elapsed();
            run.record_flush(flushed);
            run.elapsed += flushed;
        }
    }
    run.bytes += (batch.len() * n) as u64;
}

/// The plain O_DIRECT writer: aligned buffers written one after another,
/// fdatasync every `flush_every` writes. With `index`, each sync point also
/// rewrites one 4 KiB page of a second file first, as the log's offset
/// index does (a diagnostic, see `KELP_BENCH_VERBOSE`).
struct RawWriter {
    file: DmaFile,
    index: Option<DmaFile>,
    pos: u64,
    syncs: u64,
}

impl RawWriter {
    async fn create(path: &Path, size: u64, index: bool) -> RawWriter {
        let file = DmaFile::create(path).await.expect("create raw file");
        file.pre_allocate(size, false).await.expect("preallocate");
        let index = if index {
            let file = DmaFile::create(path.with_extension("index"))
                .await
                .expect("create raw index");
            file.pre_allocate(1 << 20, false)
                .await
                .expect("preallocate");
            Some(file)
        } else {
            None
        };
        RawWriter {
            file,
            index,
            pos: 0,
            syncs: 0,
        }
    }

    async fn slice(&mut self, data: &[u8], n: usize, flush_every: usize, run: &mut Run) {
        let len = data.len().next_multiple_of(ALIGN);
        let start = Instant::now();
        for i in 0..n {
            let mut buf = self.file.alloc_dma_buffer(len);
            let bytes = buf.as_bytes_mut();
            bytes[..data.len()].copy_from_slice(data);
            bytes[data.len()..].fill(0);
            let written = self.file.write_at(buf, self.pos).await.expect("write");
            assert_eq!(written, len, "short write");
            self.pos += len as u64;
            if (i + 1) % flush_every == 0 || i + 1 == n {
                let t = Instant::now();
                if let Some(index) = &self.index {
                    let mut page = index.alloc_dma_buffer(ALIGN);
                    page.as_bytes_mut().fill(0);
                    let at = (self.syncs * 8 / ALIGN as u64 * ALIGN as u64) % (1 << 20);
                    index.write_at(page, at).await.expect("write index page");
                }
                self.file.fdatasync().await.expect("fdatasync");
                self.syncs += 1;
                run.record_flush(t.elapsed());
            }
        }
        run.elapsed += start.elapsed();
        run.bytes += (len * n) as u64;
    }

    async fn close(self) {
        if let Some(index) = self.index {
            index.close().await.expect("close raw index");
        }
        self.file.close().await.expect("close raw file");
    }
}

/// One case: the log and the raw writer (and, if `diagnose`, the raw writer
/// with index page writes), in alternating slices of the volume.
async fn run_case(
    dir: &Path,
    batch: &BytesMut,
    count: usize,
    flush_every: usize,
    diagnose: bool,
) -> (Run, Run, Option<Run>) {
    let name = format!("{}-{flush_every}", batch.len());
    let log_dir = dir.join(format!("log-{name}"));
    let log = open_log(&log_dir, batch).await;
    let raw_size = (batch.len().next_multiple_of(ALIGN) * count) as u64;
    let mut raw = RawWriter::create(&dir.join(format!("raw-{name}")), raw_size, false).await;
    let mut raw_index = if diagnose {
        Some(RawWriter::create(&dir.join(format!("rawidx-{name}")), raw_size, true).await)
    } else {
        None
    };
    let (mut log_run, mut raw_run, mut raw_index_run) = (Run::new(), Run::new(), Run::new());
    let per_slice = (count / SLICES / flush_every * flush_every).max(flush_every);
    let only = std::env::var("KELP_BENCH_ONLY").unwrap_or_default();
    let mut done = 0;
    while done < count {
        let n = per_slice.min(count - done);
        if only != "raw" {
            log_slice(&log, batch, n, flush_every, &mut log_run).await;
        }
        if only != "log" {
            raw.slice(batch, n, flush_every, &mut raw_run).await;
        }
        if let Some(writer) = raw_index.as_mut() {
            writer
                .slice(batch, n, flush_every, &mut raw_index_run)
                .await;
        }
        done += n;
    }
    assert_eq!(log.durable_end_offset(), log.log_end_offset());
    log.close().await.expect("close log");
    raw.close().await;
    if let Some(writer) = raw_index {
        writer.close().await;
    }
    std::fs::remove_dir_all(&log_dir).expect("remove log dir");
    for entry in std::fs::read_dir(dir).expect("list bench dir") {
        std::fs::remove_file(entry.expect("dir entry").path()).expect("remove raw file");
    }
    (log_run, raw_run, diagnose.then_some(raw_index_run))
}

/// The file system type of the mount holding `dir`, from /proc/self/mountinfo.
fn fs_type(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount), Some(sep)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        let Some(fstype) = fields.get(sep + 1) else {
            continue;
        };
        let mount = mount.replace("\\040", " ");
        if dir.starts_with(&mount) && best.as_ref().is_none_or(|(len, _)| mount.len() >= *len) {
            best = Some((mount.len(), (*fstype).to_owned()));
        }
    }
    best.map(|(_, t)| t)
}

fn bench_root() -> PathBuf {
    let base = std::env::var_os("KELP_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&base).expect("create bench dir");
    if let Some(t) = fs_type(&base) {
        assert!(
            t != "tmpfs" && t != "ramfs",
            "{} is on {t}, which has no O_DIRECT: set KELP_BENCH_DIR",
            base.display()
        );
    }
    base
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and gets a tiny smoke run instead.
    let benching = std::env::args().any(|a| a == "--bench");
    let default_bytes = if benching { 512 << 20 } else { 4 << 20 };
    let volume: usize = std::env::var("KELP_BENCH_BYTES")
        .ok()
        .map(|s| s.parse().expect("KELP_BENCH_BYTES must be a byte count"))
        .unwrap_or(default_bytes);
    let verbose = std::env::var_os("KELP_BENCH_VERBOSE").is_some_and(|v| v == "1");
    let cases = std::env::var("KELP_BENCH_CASES").ok();
    let selected = move |batch_bytes: usize, flush_every: usize| {
        cases.as_deref().is_none_or(|c| {
            c.split(',')
                .any(|case| case.trim() == format!("{batch_bytes}:{flush_every}"))
        })
    };
    let root = bench_root();
    let tmp = tempfile::Builder::new()
        .prefix("kelp-bench-")
        .tempdir_in(&root)
        .expect("temp dir");
    let tmp_path = tmp.path().to_path_buf();
    if verbose {
        eprintln!(
            "bench dir {} ({:?}), {volume} bytes per case",
            tmp_path.display(),
            fs_type(&tmp_path)
        );
    }
    glommio::LocalExecutorBuilder::default()
        .name("append-bench")
        .spawn(move || async move {
            for batch_bytes in BATCH_SIZES {
                let batch = build_batch(batch_bytes);
                let count = (volume / batch_bytes).max(1);
                for flush_every in FLUSH_EVERY {
                    if !selected(batch_bytes, flush_every) {
                        continue;
                    }
                    let (log, raw, raw_index) = run_case(&tmp_path, &batch, count, flush_every, verbose).await;
                    let (x, y) = (log.mb_s(), raw.mb_s());
                    println!(
                        "append batch_bytes={batch_bytes} flush_every={flush_every} mb_s={x:.1} raw_mb_s={y:.1} ratio={:.3} p99_flush_us={}",
                        x / y,
                        log.flushes.value_at_quantile(0.99)
                    );
                    if verbose {
                        eprintln!("  {}", log.describe("log"));
                        eprintln!("  {}", raw.describe("raw"));
                        if let Some(run) = raw_index {
                            eprintln!("  {}", run.describe("raw+index page"));
                        }
                    }
                }
            }
        })
        .expect("spawn executor")
        .join()
        .expect("bench executor");
    drop(tmp);
}
