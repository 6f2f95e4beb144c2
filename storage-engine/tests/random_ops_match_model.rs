//! Randomized operations on a `PartitionLog<MemoryStorage>` checked against a
//! simple in-memory model of the log: appends (leader and replica, every
//! codec, tombstones), flushes, reads, rolls (forced and by `segment.ms`),
//! suffix and prefix truncation, retention, compaction, leader-epoch and
//! timestamp lookups, clean close, process restarts, injected I/O faults,
//! simulated power loss with torn writes, and corruption past the durable
//! end.
//!
//! Replay one case with `KELP_SEED=<seed> cargo test -p kelp-storage --test
//! random_ops_match_model -- --nocapture`; `KELP_CASES` and `KELP_STEPS`
//! change how many cases and steps run. Every failure message starts with
//! `seed=<n> step=<i> op=<...>` and the last operations that ran.
//!
//! Every check is strict: a deviation from the model fails the test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use kelp_storage::batch::{
    peek_total_len, set_base_offset, set_partition_leader_epoch, BatchBuilder, Compression,
    RecordBatch,
};
use kelp_storage::compaction::CompactionOptions;
use kelp_storage::io::{Fault, MemoryStorage, Storage};
use kelp_storage::log::{AppendOrigin, LogContext};
use kelp_storage::{
    CleanupPolicy, Clock, LeaderEpoch, LogConfig, LogId, ManualClock, Offset, PartitionLog,
    StorageError, TailCache,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const MAX_DECOMPRESSED: usize = 64 << 20;

/// One record of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MRec {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    ts: i64,
}

/// The records of a generated batch: key, value and timestamp of each.
type RecordSpecs = Vec<(Option<Vec<u8>>, Option<Vec<u8>>, i64)>;

/// A generated batch: its builder, codec and records.
type GeneratedBatch = (BatchBuilder, Compression, RecordSpecs);

/// One batch of the model, as the log should return it.
#[derive(Clone, Debug)]
struct MBatch {
    base: i64,
    last: i64,
    epoch: i32,
    codec: Compression,
    max_ts: i64,
    records: Vec<MRec>,
    /// The exact bytes, while compaction has not rewritten the batch.
    bytes: Option<Bytes>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// Readable batches (those whose last offset is at or above the log start).
    batches: BTreeMap<i64, MBatch>,
    log_start: i64,
    next: i64,
    /// The leader-epoch cache as Kafka defines it: (epoch, start offset).
    epochs: Vec<(i32, i64)>,
}

impl Model {
    fn assign_epoch(&mut self, epoch: i32, start: i64) {
        if epoch >= 0 && self.epochs.last().is_none_or(|(e, _)| epoch > *e) {
            self.epochs.push((epoch, start));
        }
    }

    fn epochs_truncate_from_end(&mut self, end: i64) {
        self.epochs.retain(|(_, s)| *s < end);
    }

    fn epochs_truncate_from_start(&mut self, start: i64) {
        let below: Vec<(i32, i64)> = self
            .epochs
            .iter()
            .copied()
            .filter(|(_, s)| *s < start)
            .collect();
        let Some(&(epoch, _)) = below.last() else {
            return;
        };
        self.epochs.retain(|(_, s)| *s >= start);
        if self.epochs.first().is_none_or(|(_, s)| *s > start) {
            self.epochs.insert(0, (epoch, start));
        }
    }

    fn end_offset_for(&self, requested: i32) -> Option<(i32, i64)> {
        let &(latest, _) = self.epochs.last()?;
        if requested == latest {
            return Some((latest, self.next));
        }
        let &(_, higher_start) = self.epochs.iter().find(|(e, _)| *e > requested)?;
        let floor = self
            .epochs
            .iter()
            .rev()
            .find(|(e, _)| *e <= requested)
            .map_or(requested, |(e, _)| *e);
        Some((floor, higher_start))
    }

    /// Moves the log start up and forgets batches wholly below it.
    fn move_start(&mut self, start: i64) {
        self.log_start = start;
        self.batches.retain(|_, b| b.last >= start);
    }

    /// Records at or above the log start, in offset order.
    fn visible_records(&self) -> impl Iterator<Item = &MRec> + '_ {
        let start = self.log_start;
        self.batches
            .values()
            .flat_map(|b| b.records.iter())
            .filter(move |r| r.offset >= start)
    }
}

thread_local! {
    /// The operation running now, for panics raised inside the engine.
    static CURRENT_OP: std::cell::RefCell<String> = std::cell::RefCell::default();
}

struct Harness {
    seed: u64,
    step: usize,
    op: String,
    history: VecDeque<String>,
    rng: StdRng,
    storage: MemoryStorage,
    clock: Rc<ManualClock>,
    cache: Rc<TailCache>,
    cache_bytes: usize,
    config: LogConfig,
    dir: PathBuf,
    log: Option<Rc<PartitionLog<MemoryStorage>>>,
    model: Model,
    /// The leader epoch leader appends use now.
    epoch: i32,
    key_space: u32,
    value_max: usize,
    reopens: usize,
    crashes: usize,
    compactions: usize,
    records_removed: u64,
    /// The last log start written by truncate_prefix.
    start_checkpoint: i64,
}

macro_rules! ensure {
    ($h:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            panic!("{}\n  check failed: {}\n  {}", $h.ctx(), stringify!($cond), format!($($arg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($h:expr, $left:expr, $right:expr, $($arg:tt)+) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            panic!("{}\n  check failed: {} == {}\n  left: {:?}\n  right: {:?}\n  {}", $h.ctx(), stringify!($left), stringify!($right), l, r, format!($($arg)+));
        }
    }};
}

macro_rules! ok {
    ($h:expr, $result:expr) => {
        match $result {
            Ok(v) => v,
            Err(e) => panic!(
                "{}\n  unexpected error from {}: {e}",
                $h.ctx(),
                stringify!($result)
            ),
        }
    };
}

impl Harness {
    fn ctx(&self) -> String {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        format!(
            "seed={} step={} op={}\n  recent ops (oldest first): {}\n  model: log_start={} next={} epochs={:?} batches={}\n  config: {:?}",
            self.seed,
            self.step,
            self.op,
            history.join(" | "),
            self.model.log_start,
            self.model.next,
            self.model.epochs,
            self.model.batches.len(),
            self.config,
        )
    }

    fn log(&self) -> Rc<PartitionLog<MemoryStorage>> {
        Rc::clone(self.log.as_ref().expect("the log is open"))
    }

    fn now(&self) -> i64 {
        self.clock.now().0
    }

    fn ctx_for_log(&self) -> LogContext {
        let clock: Rc<dyn Clock> = self.clock.clone();
        LogContext {
            id: LogId(1),
            cache: Rc::clone(&self.cache),
            clock,
        }
    }

    async fn open(&mut self) {
        let log = PartitionLog::open(
            self.storage.clone(),
            &self.dir,
            self.config.clone(),
            self.ctx_for_log(),
        )
        .await;
        let log = ok!(self, log);
        self.log = Some(Rc::new(log));
    }

    fn set_op(&mut self, op: String) {
        self.op = op.clone();
        self.history.push_back(format!("{}:{op}", self.step));
        if self.history.len() > 12 {
            self.history.pop_front();
        }
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        let line = format!(
            "seed={} step={} op={}\n  recent ops: {}",
            self.seed,
            self.step,
            self.op,
            history.join(" | ")
        );
        CURRENT_OP.with(|c| *c.borrow_mut() = line);
    }

    fn random_config(rng: &mut StdRng) -> LogConfig {
        let policy = match rng.random_range(0..4) {
            0 | 1 => CleanupPolicy::DELETE,
            2 => CleanupPolicy::COMPACT,
            _ => CleanupPolicy {
                delete: true,
                compact: true,
            },
        };
        LogConfig {
            segment_bytes: rng.random_range(8..=64) << 10,
            segment_ms: rng.random_range(5_000..=60_000),
            retention_ms: -1,
            retention_bytes: -1,
            cleanup_policy: policy,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: rng.random_range(0..=20_000),
            index_interval_bytes: [128, 512, 512, 2048][rng.random_range(0..4)],
            preallocate_bytes: [4096, 16 << 10, 64 << 10][rng.random_range(0..3)],
            write_chunk_bytes: [4096, 8192, 16 << 10][rng.random_range(0..3)],
            max_unwritten_bytes: rng.random_range(8..=64) << 10,
            ..LogConfig::default()
        }
    }

    // ---- batches -------------------------------------------------------

    fn random_batch(&mut self) -> GeneratedBatch {
        let codec = CODECS[self.rng.random_range(0..CODECS.len())];
        let n = self.rng.random_range(1..=20);
        let now = self.now();
        let mut builder = BatchBuilder::new(codec);
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            let ts = now + self.rng.random_range(-3_000..=3_000);
            let key = self
                .rng
                .random_bool(0.9)
                .then(|| format!("key-{}", self.rng.random_range(0..self.key_space)).into_bytes());
            let value = if self.rng.random_bool(0.1) {
                None
            } else {
                let len = self.rng.random_range(0..=self.value_max);
                let alphabet = self.rng.random_range(1..=26u8);
                Some(
                    (0..len)
                        .map(|_| b'a' + self.rng.random_range(0..alphabet))
                        .collect::<Vec<u8>>(),
                )
            };
            builder.push(ts, key.as_deref(), value.as_deref(), &[]);
            records.push((key, value, ts));
        }
        (builder, codec, records)
    }

    fn model_batch(
        base: i64,
        epoch: i32,
        codec: Compression,
        records: RecordSpecs,
        bytes: Bytes,
    ) -> MBatch {
        let last = base + records.len() as i64 - 1;
        let max_ts = records
            .iter()
            .map(|r| r.2)
            .max()
            .expect("a batch has records");
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, ts))| MRec {
                offset: base + i as i64,
                key,
                value,
                ts,
            })
            .collect();
        MBatch {
            base,
            last,
            epoch,
            codec,
            max_ts,
            records,
            bytes: Some(bytes),
        }
    }

    /// The records of a batch, as the model holds them.
    fn decode(&self, batch: &RecordBatch) -> Vec<MRec> {
        let records = ok!(self, batch.records(MAX_DECOMPRESSED));
        let mut got = Vec::new();
        for record in records {
            let record = ok!(self, record);
            got.push(MRec {
                offset: record.offset(batch.base_offset()),
                key: record.key.as_ref().map(|k| k.to_vec()),
                value: record.value.as_ref().map(|v| v.to_vec()),
                ts: batch.record_timestamp(&record),
            });
        }
        got
    }

    /// Checks one returned batch against the model's.
    fn compare_batch(&self, what: &str, bytes: &Bytes, expected: &MBatch) {
        let batch = match RecordBatch::parse(bytes.clone()) {
            Ok(batch) => batch,
            Err(e) => panic!(
                "{}\n  {what}: returned batch does not parse with CRC: {e}; expected batch {}..={}",
                self.ctx(),
                expected.base,
                expected.last
            ),
        };
        ensure_eq!(
            self,
            (batch.base_offset(), batch.last_offset()),
            (expected.base, expected.last),
            "{what}: batch offsets"
        );
        ensure_eq!(
            self,
            batch.partition_leader_epoch(),
            expected.epoch,
            "{what}: leader epoch of batch {}",
            expected.base
        );
        if let Some(exact) = &expected.bytes {
            ensure!(
                self,
                bytes == exact,
                "{what}: bytes of batch {}..={} differ from what was appended",
                expected.base,
                expected.last
            );
            return;
        }
        ensure_eq!(
            self,
            batch.compression().ok(),
            Some(expected.codec),
            "{what}: codec of batch {}",
            expected.base
        );
        ensure_eq!(
            self,
            batch.max_timestamp(),
            expected.max_ts,
            "{what}: max timestamp of batch {}",
            expected.base
        );
        let got = self.decode(&batch);
        ensure_eq!(
            self,
            got,
            expected.records,
            "{what}: records of compacted batch {}",
            expected.base
        );
    }

    /// Checks a read result at `offset` against the model.
    fn check_read(&self, what: &str, offset: i64, max_bytes: usize, batches: &[Bytes]) {
        let expected: Vec<&MBatch> = self
            .model
            .batches
            .values()
            .filter(|b| b.last >= offset)
            .collect();
        if expected.is_empty() {
            ensure!(
                self,
                batches.is_empty(),
                "{what}: read at {offset} returned {} batches, the model has none at or after it",
                batches.len()
            );
            return;
        }
        ensure!(
            self,
            !batches.is_empty(),
            "{what}: read at {offset} returned nothing; the model's next batch is {}..={}",
            expected[0].base,
            expected[0].last
        );
        ensure!(
            self,
            batches.len() <= expected.len(),
            "{what}: read at {offset} returned {} batches, the model has {}",
            batches.len(),
            expected.len()
        );
        for (i, bytes) in batches.iter().enumerate() {
            self.compare_batch(
                &format!("{what} (read at {offset}, batch #{i})"),
                bytes,
                expected[i],
            );
        }
        let total: usize = batches.iter().map(Bytes::len).sum();
        ensure!(
            self,
            batches.len() == 1 || total <= max_bytes,
            "{what}: read at {offset} returned {total} bytes in {} batches, max_bytes {max_bytes}",
            batches.len()
        );
    }

    /// Reads every batch from the log start to the log end.
    async fn read_all(&self, what: &str) -> Vec<Bytes> {
        let log = self.log();
        let (start, end) = (log.log_start_offset().0, log.log_end_offset().0);
        let mut offset = start;
        let mut got: Vec<Bytes> = Vec::new();
        while offset < end {
            let result = ok!(self, log.read(Offset(offset), 48 << 10).await);
            if result.batches.is_empty() {
                break;
            }
            for bytes in result.batches {
                let batch = match RecordBatch::parse(bytes.clone()) {
                    Ok(b) => b,
                    Err(e) => panic!(
                        "{}\n  {what}: full read: batch after offset {offset} does not parse: {e}",
                        self.ctx()
                    ),
                };
                ensure!(
                    self,
                    batch.last_offset() >= offset,
                    "{what}: full read at {offset} returned batch {}..={} below it",
                    batch.base_offset(),
                    batch.last_offset()
                );
                if let Some(prev) = got.last() {
                    let prev = RecordBatch::parse_unvalidated(prev.clone()).expect("checked");
                    ensure!(
                        self,
                        batch.base_offset() > prev.last_offset(),
                        "{what}: full read: offsets do not increase: {}..={} then {}..={}",
                        prev.base_offset(),
                        prev.last_offset(),
                        batch.base_offset(),
                        batch.last_offset()
                    );
                }
                offset = batch.last_offset() + 1;
                got.push(bytes);
            }
        }
        got
    }

    /// Reads everything from the log start and compares it with the model.
    async fn check_full(&self, what: &str) {
        let got = self.read_all(what).await;
        let expected: Vec<&MBatch> = self.model.batches.values().collect();
        ensure_eq!(
            self,
            got.len(),
            expected.len(),
            "{what}: full read found batches {:?}, model has {:?}",
            got.iter()
                .map(|b| RecordBatch::parse_unvalidated(b.clone())
                    .map(|b| (b.base_offset(), b.last_offset()))
                    .ok())
                .collect::<Vec<_>>(),
            expected
                .iter()
                .map(|b| (b.base, b.last))
                .collect::<Vec<_>>()
        );
        for (i, (bytes, exp)) in got.iter().zip(&expected).enumerate() {
            self.compare_batch(&format!("{what} (full read, batch #{i})"), bytes, exp);
        }
    }

    async fn check_invariants(&self) {
        let log = self.log();
        let (start, durable, end) = (
            log.log_start_offset().0,
            log.durable_end_offset().0,
            log.log_end_offset().0,
        );
        ensure!(self, start <= end, "log start {start} > log end {end}");
        ensure!(
            self,
            durable <= end,
            "durable end {durable} > log end {end}"
        );
        // Not checked: log start <= durable end. DeleteRecords may move the
        // log start past data that is not flushed yet; that is legal.
        ensure_eq!(self, end, self.model.next, "log end vs model");
        ensure_eq!(self, start, self.model.log_start, "log start vs model");
        let epochs: Vec<(i32, i64)> = log
            .epochs()
            .entries()
            .iter()
            .map(|(e, o)| (e.0, o.0))
            .collect();
        ensure_eq!(
            self,
            epochs,
            self.model.epochs,
            "leader-epoch cache vs model"
        );
        let bases = log.segment_bases();
        ensure!(
            self,
            bases.windows(2).all(|w| w[0] < w[1]),
            "segment bases not increasing: {bases:?}"
        );
        ensure!(
            self,
            bases[0].0 <= start,
            "first segment {} above log start {start}",
            bases[0]
        );
        ensure!(
            self,
            bases.last().expect("active").0 <= end,
            "active segment {} above log end {end}",
            bases.last().expect("active")
        );
        ensure!(
            self,
            log.poisoned().is_none(),
            "log is poisoned: {:?}",
            log.poisoned()
        );
        self.check_full("invariants").await;
    }

    // ---- operations ----------------------------------------------------

    async fn op_append_leader(&mut self) {
        if self.rng.random_bool(0.05) {
            self.epoch += 1;
        }
        let (builder, codec, records) = self.random_batch();
        let epoch = self.epoch;
        self.set_op(format!(
            "append(leader epoch {epoch}, {} records, {codec:?})",
            records.len()
        ));
        let built = ok!(self, builder.build(0));
        let log = self.log();
        let info = ok!(
            self,
            log.append(built.clone(), AppendOrigin::Leader(LeaderEpoch(epoch)))
                .await
        );
        let base = self.model.next;
        ensure_eq!(self, info.base_offset.0, base, "leader append base offset");
        ensure_eq!(
            self,
            info.last_offset.0,
            base + records.len() as i64 - 1,
            "leader append last offset"
        );
        let mut exact = built;
        set_base_offset(&mut exact, base);
        set_partition_leader_epoch(&mut exact, epoch);
        let batch = Self::model_batch(base, epoch, codec, records, exact.freeze());
        ensure_eq!(
            self,
            info.max_timestamp_ms,
            batch.max_ts,
            "append max timestamp"
        );
        self.model.assign_epoch(epoch, base);
        self.model.next = batch.last + 1;
        self.model.batches.insert(base, batch);
    }

    async fn op_append_replica(&mut self) {
        let gap = if self.rng.random_bool(0.5) {
            0
        } else {
            self.rng.random_range(1..=5)
        };
        let base = self.model.next + gap;
        let epoch = if self.rng.random_bool(0.1) {
            -1
        } else {
            if self.rng.random_bool(0.1) {
                self.epoch += 1;
            }
            self.epoch
        };
        let (builder, codec, records) = self.random_batch();
        self.set_op(format!(
            "append(replica base {base} epoch {epoch}, {} records, {codec:?})",
            records.len()
        ));
        let built = ok!(self, builder.partition_leader_epoch(epoch).build(base));
        let log = self.log();
        let info = ok!(self, log.append(built.clone(), AppendOrigin::Replica).await);
        ensure_eq!(
            self,
            info.base_offset.0,
            base,
            "replica append keeps offsets"
        );
        let batch = Self::model_batch(base, epoch, codec, records, built.freeze());
        self.model.assign_epoch(epoch, base);
        self.model.next = batch.last + 1;
        self.model.batches.insert(base, batch);
    }

    async fn op_append_stale_replica(&mut self) {
        // A replica batch that does not continue the log must be refused.
        if self.model.next == 0 {
            return;
        }
        let base = self.rng.random_range(0..self.model.next);
        // Half the time with a new epoch: the refusal must not record it.
        let epoch = self.epoch + i32::from(self.rng.random_bool(0.5));
        self.set_op(format!("append(stale replica at {base}, epoch {epoch})"));
        let (builder, _, _) = self.random_batch();
        let built = ok!(self, builder.partition_leader_epoch(epoch).build(base));
        let result = self.log().append(built, AppendOrigin::Replica).await;
        ensure!(
            self,
            matches!(result, Err(StorageError::NonMonotonicOffset { .. })),
            "stale replica batch at {base} accepted: {result:?}"
        );
    }

    async fn op_flush(&mut self) {
        self.set_op("flush".into());
        let log = self.log();
        ok!(self, log.flush().await);
        ensure_eq!(
            self,
            log.durable_end_offset(),
            log.log_end_offset(),
            "flush makes everything durable"
        );
    }

    async fn op_concurrent(&mut self) {
        self.set_op("concurrent(append, flush, append, read)".into());
        let (b1, c1, r1) = self.random_batch();
        let (b2, c2, r2) = self.random_batch();
        let (b1, b2) = (ok!(self, b1.build(0)), ok!(self, b2.build(0)));
        let epoch = self.epoch;
        let log = self.log();
        let read_at = self.model.log_start;
        let ((a1, f), (a2, r)) = futures_lite::future::zip(
            futures_lite::future::zip(
                log.append(b1.clone(), AppendOrigin::Leader(LeaderEpoch(epoch))),
                log.flush(),
            ),
            futures_lite::future::zip(
                log.append(b2.clone(), AppendOrigin::Leader(LeaderEpoch(epoch))),
                log.read(Offset(read_at), 1 << 20),
            ),
        )
        .await;
        let (a1, a2) = (ok!(self, a1), ok!(self, a2));
        ok!(self, f);
        ok!(self, r);
        ensure_eq!(
            self,
            a1.base_offset.0,
            self.model.next,
            "first concurrent append"
        );
        ensure_eq!(
            self,
            a2.base_offset.0,
            a1.last_offset.0 + 1,
            "second concurrent append follows the first"
        );
        for (info, built, codec, records) in [(a1, b1, c1, r1), (a2, b2, c2, r2)] {
            let mut exact = built;
            set_base_offset(&mut exact, info.base_offset.0);
            set_partition_leader_epoch(&mut exact, epoch);
            let batch =
                Self::model_batch(info.base_offset.0, epoch, codec, records, exact.freeze());
            self.model.assign_epoch(epoch, batch.base);
            self.model.next = batch.last + 1;
            self.model.batches.insert(batch.base, batch);
        }
    }

    async fn op_read(&mut self) {
        let log = self.log();
        let (start, end) = (self.model.log_start, self.model.next);
        let max_bytes = if self.rng.random_bool(0.3) {
            self.rng.random_range(1..=512)
        } else {
            self.rng.random_range(1..=(64 << 10))
        };
        if self.rng.random_bool(0.05) {
            let offset = if start > 0 && self.rng.random_bool(0.5) {
                start - 1
            } else {
                end + 1
            };
            self.set_op(format!("read({offset}, {max_bytes}) out of range"));
            let result = log.read(Offset(offset), max_bytes).await;
            ensure!(
                self,
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "read out of range at {offset} gave {:?}",
                result.map(|r| r.batches.len())
            );
            return;
        }
        let offset = self.rng.random_range(start..=end);
        self.set_op(format!("read({offset}, {max_bytes})"));
        let result = ok!(self, log.read(Offset(offset), max_bytes).await);
        self.check_read("read", offset, max_bytes, &result.batches);
    }

    async fn op_advance_clock(&mut self) {
        let ms = if self.rng.random_bool(0.2) {
            self.rng.random_range(10_000..=120_000)
        } else {
            self.rng.random_range(0..=5_000)
        };
        self.set_op(format!("advance_clock({ms})"));
        self.clock.advance(ms);
    }

    async fn op_force_roll(&mut self) {
        self.set_op("force_roll".into());
        let log = self.log();
        let before = log.segment_bases();
        ok!(self, log.force_roll().await);
        let after = log.segment_bases();
        if after != before {
            ensure_eq!(
                self,
                after.last().copied(),
                Some(log.log_end_offset()),
                "a roll starts a segment at the log end"
            );
            ensure_eq!(
                self,
                log.durable_end_offset(),
                log.log_end_offset(),
                "a roll makes the sealed segment durable"
            );
        }
    }

    async fn op_truncate_suffix(&mut self) {
        let log = self.log();
        let (start, end) = (self.model.log_start, self.model.next);
        if self.rng.random_bool(0.05) && start > 0 {
            let offset = self.rng.random_range(0..start);
            self.set_op(format!("truncate_suffix({offset}) below log start"));
            let result = log.truncate_suffix(Offset(offset)).await;
            ensure!(
                self,
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "truncate_suffix below start gave {result:?}"
            );
            return;
        }
        // Mostly near the end, as a follower does.
        let offset = if end > start && self.rng.random_bool(0.7) {
            self.rng
                .random_range(end.saturating_sub(30).max(start)..=end)
        } else {
            self.rng.random_range(start..=end)
        };
        self.set_op(format!("truncate_suffix({offset})"));
        let bases = log.segment_bases();
        let segment_base = bases
            .iter()
            .rev()
            .find(|b| b.0 <= offset)
            .expect("offset at or above the first segment")
            .0;
        let remaining_end = self
            .model
            .batches
            .values()
            .filter(|b| b.last < offset)
            .map(|b| b.last + 1)
            .max();
        // With no readable batch left below the cut, the log end falls back
        // to the segment base or the end of a batch below the log start.
        let new_end = ok!(self, log.truncate_suffix(Offset(offset)).await);
        if offset >= end {
            ensure_eq!(
                self,
                new_end.0,
                end,
                "truncate_suffix at or past the end changes nothing"
            );
            return;
        }
        self.model.batches.retain(|_, b| b.last < offset);
        ensure_eq!(
            self,
            log.durable_end_offset(),
            new_end,
            "truncate_suffix({offset}) syncs the cut segment: all of the log is durable"
        );
        match remaining_end {
            Some(e) => ensure_eq!(
                self,
                new_end.0,
                e.max(segment_base),
                "truncate_suffix({offset}) new log end (segment base {segment_base})"
            ),
            None => ensure!(
                self,
                segment_base <= new_end.0 && new_end.0 <= start.max(segment_base),
                "truncate_suffix({offset}) new log end {} (segment base {segment_base}, log start {start})",
                new_end.0
            ),
        }
        self.model.next = new_end.0;
        self.model.epochs_truncate_from_end(new_end.0);
        // Cutting whole batches can go below the log start; the start follows
        // (Kafka's min(target, log start)), so offsets are never reused.
        if new_end.0 < self.model.log_start {
            self.model.log_start = new_end.0;
            self.start_checkpoint = new_end.0;
        }
    }

    async fn op_truncate_prefix(&mut self) {
        let log = self.log();
        let (start, end) = (self.model.log_start, self.model.next);
        if self.rng.random_bool(0.05) {
            let offset = end + 1;
            self.set_op(format!("truncate_prefix({offset}) past end"));
            let result = log.truncate_prefix(Offset(offset)).await;
            ensure!(
                self,
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "truncate_prefix past the end gave {result:?}"
            );
            return;
        }
        let offset = if end > start && self.rng.random_bool(0.8) {
            // Usually a small step, so the log does not empty itself.
            self.rng
                .random_range(start..=(start + (end - start) / 3).max(start))
        } else {
            self.rng.random_range(start.saturating_sub(3).max(0)..=end)
        };
        self.set_op(format!("truncate_prefix({offset})"));
        let new_start = ok!(self, log.truncate_prefix(Offset(offset)).await);
        let expected = offset.max(start);
        ensure_eq!(self, new_start.0, expected, "truncate_prefix result");
        if expected > start {
            self.model.move_start(expected);
            self.start_checkpoint = expected;
            self.model.epochs_truncate_from_start(expected);
        }
    }

    async fn op_alter_config(&mut self) {
        let mut config = self.config.clone();
        match self.rng.random_range(0..5) {
            0 => {
                config.retention_ms = if self.rng.random_bool(0.3) {
                    -1
                } else {
                    self.rng.random_range(2_000..=60_000)
                }
            }
            1 => {
                config.retention_bytes = if self.rng.random_bool(0.3) {
                    -1
                } else {
                    self.rng.random_range(8..=256) << 10
                }
            }
            2 => config.delete_retention_ms = self.rng.random_range(0..=30_000),
            3 => config.segment_ms = self.rng.random_range(2_000..=60_000),
            _ => config.segment_bytes = self.rng.random_range(8..=64) << 10,
        }
        self.set_op(format!(
            "alter_config(retention.ms={} retention.bytes={} delete.retention.ms={} segment.ms={} segment.bytes={})",
            config.retention_ms, config.retention_bytes, config.delete_retention_ms, config.segment_ms, config.segment_bytes
        ));
        self.log().set_config(config.clone());
        self.config = config;
    }

    async fn op_retention(&mut self) {
        let log = self.log();
        self.set_op(format!("apply_retention(now={})", self.now()));
        let start = self.model.log_start;
        let outcome = ok!(self, log.apply_retention().await);
        let new_start = log.log_start_offset().0;
        if !self.config.cleanup_policy.delete || outcome.segments_deleted == 0 {
            ensure_eq!(self, outcome.segments_deleted, 0, "no deletions expected");
            ensure_eq!(
                self,
                new_start,
                start,
                "retention without deletions keeps the log start"
            );
            return;
        }
        let first = log.segment_bases()[0].0;
        ensure_eq!(
            self,
            new_start,
            start.max(first),
            "log start after retention is the first remaining segment"
        );
        ensure_eq!(
            self,
            outcome.log_start.0,
            new_start,
            "retention outcome's log start"
        );
        if self.config.retention_bytes < 0 && self.config.retention_ms >= 0 {
            let horizon = self.now() - self.config.retention_ms;
            for b in self.model.batches.values().filter(|b| b.last < new_start) {
                ensure!(self, b.max_ts < horizon, "retention by time deleted batch {}..={} with max timestamp {} >= horizon {horizon}", b.base, b.last, b.max_ts);
            }
        }
        self.model.move_start(new_start);
        self.model.epochs_truncate_from_start(new_start);
    }

    /// Compaction may only drop keyed records of closed segments that a newer
    /// record of the same key supersedes, or tombstones past
    /// `delete.retention.ms`; the newest record of each key survives, offsets
    /// and every other byte of the data stay. The model then takes what the
    /// log kept (how much a pass cleans is the engine's choice), and the
    /// liveness check asks that a pass leave one record per key below the
    /// active segment.
    async fn op_compact(&mut self, concurrent: bool) {
        if !self.config.cleanup_policy.compact {
            return self.op_flush().await;
        }
        let log = self.log();
        let now = self.now();
        let active_base = log.segment_bases().last().expect("active").0;
        let horizon = now - self.config.delete_retention_ms;
        // The newest closed record of each key.
        let model = self.model.clone();
        let mut newest: HashMap<&[u8], &MRec> = HashMap::new();
        for b in model.batches.values().filter(|b| b.base < active_base) {
            for r in &b.records {
                if let Some(k) = &r.key {
                    newest.insert(k, r);
                }
            }
        }
        // Maybe appends, a flush and retention (or DeleteRecords) run while
        // the pass does; the MemoryStorage fsync yields, so they interleave.
        let mut side = Vec::new();
        let side_count = if concurrent {
            self.rng.random_range(1..=4)
        } else {
            0
        };
        for _ in 0..side_count {
            let (builder, codec, records) = self.random_batch();
            side.push((ok!(self, builder.build(0)), codec, records));
        }
        let shrink = concurrent && self.rng.random_bool(0.5);
        let prefix_to = (self.model.log_start + (self.model.next - self.model.log_start) / 4)
            .max(self.model.log_start);
        let epoch = self.epoch;
        self.set_op(format!(
            "compact(now={now}, delete.retention.ms={}, concurrent appends={side_count}, {})",
            self.config.delete_retention_ms,
            match (shrink, self.config.cleanup_policy.delete) {
                (false, _) => "-".to_owned(),
                (true, true) => "retention".to_owned(),
                (true, false) => format!("truncate_prefix({prefix_to})"),
            }
        ));
        let delete = self.config.cleanup_policy.delete;
        let others = async {
            let mut infos = Vec::new();
            for (bytes, _, _) in &side {
                infos.push(
                    log.append(bytes.clone(), AppendOrigin::Leader(LeaderEpoch(epoch)))
                        .await,
                );
            }
            let flushed = if concurrent {
                log.flush().await
            } else {
                Ok(())
            };
            let shrunk = match (shrink, delete) {
                (false, _) => Ok(()),
                (true, true) => log.apply_retention().await.map(|_| ()),
                (true, false) => log.truncate_prefix(Offset(prefix_to)).await.map(|_| ()),
            };
            (infos, flushed, shrunk)
        };
        let (outcome, (infos, flushed, shrunk)) =
            futures_lite::future::zip(log.compact(CompactionOptions::default()), others).await;
        let outcome = ok!(self, outcome);
        ok!(self, flushed);
        ok!(self, shrunk);
        for (info, (built, codec, records)) in infos.into_iter().zip(side) {
            let info = ok!(self, info);
            ensure_eq!(
                self,
                info.base_offset.0,
                self.model.next,
                "append during compaction"
            );
            let mut exact = built;
            set_base_offset(&mut exact, info.base_offset.0);
            set_partition_leader_epoch(&mut exact, epoch);
            let batch =
                Self::model_batch(info.base_offset.0, epoch, codec, records, exact.freeze());
            self.model.assign_epoch(epoch, batch.base);
            self.model.next = batch.last + 1;
            self.model.batches.insert(batch.base, batch);
        }
        let new_start = log.log_start_offset().0;
        if new_start != self.model.log_start {
            ensure!(
                self,
                shrink && new_start > self.model.log_start,
                "log start moved to {new_start} during compaction"
            );
            if !delete {
                ensure_eq!(
                    self,
                    new_start,
                    prefix_to,
                    "truncate_prefix during compaction"
                );
                self.start_checkpoint = new_start;
            }
            self.model.move_start(new_start);
            self.model.epochs_truncate_from_start(new_start);
        }
        let before = self.model.clone();
        let got = self.read_all("compact").await;
        let mut after: BTreeMap<i64, MBatch> = BTreeMap::new();
        for bytes in &got {
            let batch = RecordBatch::parse_unvalidated(bytes.clone()).expect("read_all parsed it");
            let base = batch.base_offset();
            let Some(old) = before.batches.get(&base) else {
                panic!(
                    "{}\n  compaction produced batch {base}..={} that was never appended",
                    self.ctx(),
                    batch.last_offset()
                );
            };
            let unchanged = match &old.bytes {
                Some(exact) => exact == bytes,
                // Compacted before (and maybe part of the active segment
                // now, after a truncation): compare the records.
                None => self.decode(&batch) == old.records,
            };
            if unchanged {
                after.insert(base, old.clone());
                continue;
            }
            ensure!(
                self,
                base < active_base,
                "compaction changed batch {base} of the active segment (base {active_base})"
            );
            ensure_eq!(
                self,
                (batch.last_offset(), batch.partition_leader_epoch()),
                (old.last, old.epoch),
                "compacted batch {base}: offset span and epoch"
            );
            ensure_eq!(
                self,
                batch.compression().ok(),
                Some(old.codec),
                "compacted batch {base}: codec"
            );
            let records = self.decode(&batch);
            let max_ts = batch.max_timestamp();
            let kept_max = records.iter().map(|r| r.ts).max();
            ensure!(self, max_ts == old.max_ts || Some(max_ts) == kept_max, "compacted batch {base}: max timestamp {max_ts}, was {}, kept records' {kept_max:?}", old.max_ts);
            // Kept records are the old ones, unchanged, in order.
            let mut old_records = old.records.iter();
            for r in &records {
                ensure!(self, old_records.any(|o| o == r), "compacted batch {base}: record {r:?} is not one of the batch's records (in order)");
            }
            after.insert(
                base,
                MBatch {
                    records,
                    max_ts,
                    bytes: None,
                    ..old.clone()
                },
            );
        }
        let survives = |r: &MRec| {
            after
                .values()
                .any(|b| b.records.iter().any(|k| k.offset == r.offset))
        };
        let mut removed = 0u64;
        for b in before.batches.values() {
            for r in &b.records {
                if survives(r) {
                    continue;
                }
                removed += 1;
                ensure!(
                    self,
                    b.base < active_base,
                    "compaction removed record {} of the active segment",
                    r.offset
                );
                let Some(key) = &r.key else {
                    panic!(
                        "{}\n  compaction removed record {} without a key",
                        self.ctx(),
                        r.offset
                    );
                };
                let superseded = newest
                    .get(key.as_slice())
                    .is_some_and(|n| n.offset > r.offset);
                let expired_tombstone = r.value.is_none() && r.ts < horizon;
                ensure!(self, superseded || expired_tombstone, "compaction removed record {r:?}: it is the newest of its key and not an expired tombstone (horizon {horizon})");
            }
        }
        for r in newest.values() {
            // (Retention or DeleteRecords may have removed it meanwhile.)
            if r.offset >= self.model.log_start && !(r.value.is_none() && r.ts < horizon) {
                ensure!(
                    self,
                    survives(r),
                    "compaction removed the newest record of its key: {r:?}"
                );
            }
        }
        ensure!(
            self,
            outcome.records_removed >= removed,
            "compaction reports {} records removed, {removed} visible ones went",
            outcome.records_removed
        );
        // Liveness: one pass leaves at most one record per key below the
        // active segment (the key space is tiny, so no key budget applies).
        let mut seen: HashMap<&[u8], i64> = HashMap::new();
        for b in after.values().filter(|b| b.base < active_base) {
            for r in &b.records {
                if let Some(k) = &r.key {
                    if let Some(prev) = seen.insert(k, r.offset) {
                        panic!("{}\n  after a compaction pass key {:?} still has records {prev} and {} below the active segment {active_base}", self.ctx(), String::from_utf8_lossy(k), r.offset);
                    }
                }
            }
        }
        self.model.batches = after;
        self.compactions += 1;
        self.records_removed += removed;
    }

    async fn op_epoch_lookup(&mut self) {
        let requested = self.rng.random_range(-1..=self.epoch + 2);
        self.set_op(format!("end_offset_for_epoch({requested})"));
        let got = self
            .log()
            .end_offset_for_epoch(LeaderEpoch(requested))
            .map(|(e, o)| (e.0, o.0));
        ensure_eq!(
            self,
            got,
            self.model.end_offset_for(requested),
            "end_offset_for_epoch({requested})"
        );
    }

    async fn op_timestamp_lookup(&mut self) {
        let timestamps: Vec<i64> = self.model.visible_records().map(|r| r.ts).collect();
        let target = match self.rng.random_range(0..4) {
            0 | 1 if !timestamps.is_empty() => {
                timestamps[self.rng.random_range(0..timestamps.len())]
                    + self.rng.random_range(-1..=1)
            }
            2 => self.now() + self.rng.random_range(-10_000..=10_000),
            _ => [0, i64::MAX / 2][self.rng.random_range(0..2)],
        };
        self.set_op(format!("offset_for_timestamp({target})"));
        let log = self.log();
        let got = ok!(self, log.offset_for_timestamp(target).await).map(|(o, t)| (o.0, t));
        let expected = self
            .model
            .visible_records()
            .find(|r| r.ts >= target)
            .map(|r| (r.offset, r.ts));
        ensure_eq!(self, got, expected, "offset_for_timestamp({target})");
    }

    async fn op_max_timestamp(&mut self) {
        self.set_op("max_timestamp".into());
        let log = self.log();
        let got = ok!(self, log.max_timestamp().await).map(|(o, t)| (o.0, t));
        let max = self.model.visible_records().map(|r| r.ts).max();
        let expected = max
            .and_then(|m| self.model.visible_records().find(|r| r.ts == m))
            .map(|r| (r.offset, r.ts));
        ensure_eq!(self, got, expected, "max_timestamp");
    }

    async fn op_close_reopen(&mut self) {
        self.set_op("close+reopen".into());
        let log = self.log();
        let (start, end, bases) = (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_bases(),
        );
        ok!(self, log.close().await);
        let (builder, _, _) = self.random_batch();
        let refused = log
            .append(
                ok!(self, builder.build(0)),
                AppendOrigin::Leader(LeaderEpoch(self.epoch)),
            )
            .await;
        ensure!(self, refused.is_err(), "a closed log accepted an append");
        drop(log);
        self.log = None;
        self.open().await;
        self.reopens += 1;
        let log = self.log();
        ensure_eq!(
            self,
            log.log_start_offset(),
            start,
            "clean reopen keeps the log start"
        );
        ensure_eq!(
            self,
            log.log_end_offset(),
            end,
            "clean reopen keeps the log end"
        );
        ensure_eq!(
            self,
            log.durable_end_offset(),
            end,
            "clean reopen: everything durable"
        );
        ensure_eq!(
            self,
            log.segment_bases(),
            bases,
            "clean reopen keeps the segments"
        );
        // Recovery drops epochs starting at the log end: an epoch that a
        // retention or DeleteRecords up to the log end moved there is lost
        // (Kafka's truncateFromEnd does the same).
        self.model.epochs_truncate_from_end(end.0);
    }

    /// Position and base offset of each valid batch at the start of `data`.
    fn scan_file(data: &[u8]) -> (Vec<(usize, usize, i64)>, usize) {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(Ok(len)) = peek_total_len(&data[pos..]) {
            if pos + len > data.len() {
                break;
            }
            let Ok(batch) = RecordBatch::parse(Bytes::copy_from_slice(&data[pos..pos + len]))
            else {
                break;
            };
            out.push((pos, len, batch.base_offset()));
            pos += len;
        }
        (out, pos)
    }

    /// Power loss (`crash`), a process restart without close (`kill`), or a
    /// reopen after a failed write or fsync (`poisoned`).
    async fn unclean_reopen(&mut self, crash: bool, same_cache: bool) {
        let log = self.log();
        let durable = log.durable_end_offset().0;
        drop(log);
        self.log = None;
        let mut torn = 0;
        if crash {
            let rng = &mut self.rng;
            self.storage.crash(|_, pending| {
                let n = rng.random_range(0..=pending);
                let cut = rng.random_bool(0.5).then(|| rng.random_range(0..=16 << 10));
                if cut.is_some() && n > 0 {
                    torn += 1;
                }
                (n, cut)
            });
            self.crashes += 1;
        }
        // Maybe damage the active segment past the durable end.
        let mut corrupt_at: Option<(usize, i64)> = None;
        if self.rng.random_bool(0.4) {
            let active = self
                .storage
                .list(&self.dir)
                .expect("log dir")
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .max()
                .expect("a segment file");
            let data = self.storage.contents(&active).expect("segment file");
            let (batches, end) = Self::scan_file(&data);
            // Recovery verifies every batch of the last segment, and what
            // it does not verify (sealed segments, the cut segment of a
            // truncate_suffix) is durable: any batch past the durable end
            // may be damaged.
            let undurable: Vec<_> = batches
                .iter()
                .filter(|(_, _, base)| *base >= durable)
                .copied()
                .collect();
            if !undurable.is_empty() {
                let (pos, len, base) = undurable[self.rng.random_range(0..undurable.len())];
                // Bytes 17.. are covered by the CRC (or are the CRC).
                let at = pos + self.rng.random_range(17..len);
                let flip = self.rng.random_range(1..=255u8);
                self.storage.corrupt(&active, at, &[data[at] ^ flip]);
                corrupt_at = Some((at, base));
            } else if end < data.len() {
                let at = self.rng.random_range(end..data.len().min(end + 8192));
                self.storage
                    .corrupt(&active, at, &[self.rng.random_range(1..=255u8)]);
            }
        }
        // A process restart starts with an empty cache; an in-process reopen
        // keeps the old one, whose entries past the recovered end must not
        // be served.
        if !same_cache {
            self.cache = Rc::new(TailCache::new(self.cache_bytes));
        }
        self.set_op(format!(
            "{}(durable_end={durable}, torn files={torn}, corrupt={corrupt_at:?}, same_cache={same_cache})",
            if crash { "crash+reopen" } else { "reopen" }
        ));
        self.open().await;
        self.reopens += 1;
        let log = self.log();
        let end = log.log_end_offset().0;
        ensure!(
            self,
            end >= durable,
            "reopen lost durable data: log end {end} < durable end {durable}"
        );
        ensure!(
            self,
            end <= self.model.next,
            "reopen grew the log: {end} > {}",
            self.model.next
        );
        // Kafka keeps a checkpointed log start even when the data below it
        // was lost: the log restarts empty there (LogLoader.recoverLog).
        ensure_eq!(
            self,
            log.log_start_offset().0,
            self.model.log_start,
            "reopen keeps the log start (checkpoint {}, log end {end})",
            self.start_checkpoint
        );
        let restarted_at_start = end == self.model.log_start;
        if let Some((_, base)) = corrupt_at {
            // Cut at the damaged batch, or, when that cut fell below the
            // checkpointed log start, restarted empty at the start.
            ensure!(
                self,
                end <= base || restarted_at_start,
                "recovery kept the corrupted batch at {base}: log end {end}"
            );
        }
        if end > durable && !restarted_at_start {
            let boundary = self
                .model
                .batches
                .values()
                .any(|b| b.base >= durable && b.last + 1 == end);
            ensure!(
                self,
                boundary,
                "recovered log end {end} is not the end of a batch past the durable end {durable}"
            );
        }
        if let Some(b) = self
            .model
            .batches
            .values()
            .find(|b| b.base < end && b.last >= end)
        {
            ensure!(
                self,
                restarted_at_start,
                "batch {}..={} torn by recovery at {end}",
                b.base,
                b.last
            );
        }
        self.model.batches.retain(|_, b| b.last < end);
        self.model.next = end;
        self.model.epochs_truncate_from_end(end);
        self.model.epochs_truncate_from_start(self.model.log_start);
        ensure_eq!(
            self,
            log.durable_end_offset().0,
            end,
            "after recovery everything is durable"
        );
    }

    async fn op_crash(&mut self) {
        self.unclean_reopen(true, false).await;
    }

    async fn op_kill(&mut self) {
        self.unclean_reopen(false, false).await;
    }

    async fn op_fault(&mut self) {
        self.op_append_leader().await;
        let fault =
            [Fault::WriteIo, Fault::WriteNoSpace, Fault::SyncIo][self.rng.random_range(0..3)];
        self.set_op(format!("flush with {fault:?}"));
        let log = self.log();
        self.storage.inject(fault);
        let result = log.flush().await;
        ensure!(
            self,
            result.is_err(),
            "flush with an injected {fault:?} succeeded"
        );
        ensure!(
            self,
            log.poisoned().is_some(),
            "a failed flush poisons the log"
        );
        let (builder, _, _) = self.random_batch();
        let refused = log
            .append(
                ok!(self, builder.build(0)),
                AppendOrigin::Leader(LeaderEpoch(self.epoch)),
            )
            .await;
        ensure!(self, refused.is_err(), "a poisoned log accepted an append");
        drop(log);
        // Reopen in the same process (same cache), or after a power loss.
        let crash = self.rng.random_bool(0.5);
        self.unclean_reopen(crash, !crash).await;
    }
}

async fn run_case_async(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = Harness::random_config(&mut rng);
    let cache_bytes = [8 << 10, 64 << 10, 4 << 20][rng.random_range(0..3)];
    let key_space = rng.random_range(3..=40);
    let value_max = [16, 200, 1000][rng.random_range(0..3)];
    let storage = MemoryStorage::new();
    let dir = Path::new("/kelp/topic-0").to_path_buf();
    let mut h = Harness {
        seed,
        step: 0,
        op: "open".into(),
        history: VecDeque::new(),
        rng,
        storage,
        clock: Rc::new(ManualClock::new(1_700_000_000_000)),
        cache: Rc::new(TailCache::new(cache_bytes)),
        cache_bytes,
        config,
        dir,
        log: None,
        model: Model::default(),
        epoch: 0,
        key_space,
        value_max,
        reopens: 0,
        crashes: 0,
        compactions: 0,
        records_removed: 0,
        start_checkpoint: 0,
    };
    h.open().await;
    h.check_invariants().await;
    // Weighted operations.
    let weights: [(u32, &str); 21] = [
        (30, "append"),
        (4, "replica"),
        (1, "stale_replica"),
        (3, "concurrent"),
        (9, "flush"),
        (12, "read"),
        (6, "clock"),
        (4, "force_roll"),
        (3, "truncate_suffix"),
        (3, "truncate_prefix"),
        (2, "alter_config"),
        (4, "retention"),
        (4, "compact"),
        (3, "compact_concurrent"),
        (3, "epoch"),
        (4, "timestamp"),
        (2, "max_timestamp"),
        (2, "close"),
        (3, "crash"),
        (2, "kill"),
        (2, "fault"),
    ];
    let total: u32 = weights.iter().map(|w| w.0).sum();
    for step in 1..=steps {
        h.step = step;
        let mut pick = h.rng.random_range(0..total);
        let op = weights
            .iter()
            .find(|(w, _)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .expect("weights cover the range")
            .1;
        match op {
            "append" => h.op_append_leader().await,
            "replica" => h.op_append_replica().await,
            "stale_replica" => h.op_append_stale_replica().await,
            "concurrent" => h.op_concurrent().await,
            "flush" => h.op_flush().await,
            "read" => h.op_read().await,
            "clock" => h.op_advance_clock().await,
            "force_roll" => h.op_force_roll().await,
            "truncate_suffix" => h.op_truncate_suffix().await,
            "truncate_prefix" => h.op_truncate_prefix().await,
            "alter_config" => h.op_alter_config().await,
            "retention" => h.op_retention().await,
            "compact" => h.op_compact(false).await,
            "compact_concurrent" => h.op_compact(true).await,
            "epoch" => h.op_epoch_lookup().await,
            "timestamp" => h.op_timestamp_lookup().await,
            "max_timestamp" => h.op_max_timestamp().await,
            "close" => h.op_close_reopen().await,
            "crash" => h.op_crash().await,
            "kill" => h.op_kill().await,
            "fault" => h.op_fault().await,
            _ => unreachable!(),
        }
        h.check_invariants().await;
    }
    let log = h.log();
    eprintln!(
        "seed={seed}: {steps} steps ok; log [{}, {}) in {} segments, {} reopens, {} crashes, {} compactions removed {} records",
        log.log_start_offset(),
        log.log_end_offset(),
        log.segment_count(),
        h.reopens,
        h.crashes,
        h.compactions,
        h.records_removed
    );
}

/// Runs one randomized case; panics with `seed=<n> step=<i> op=<...>` on the
/// first mismatch.
fn run_case(seed: u64, steps: usize) {
    eprintln!("seed={seed}: running {steps} steps (replay: KELP_SEED={seed})");
    // Panics inside the engine (assertions) carry no seed: print it too.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            CURRENT_OP.with(|c| eprintln!("while running {}", c.borrow()));
            default(info);
        }));
    });
    glommio::LocalExecutor::default().run(run_case_async(seed, steps));
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

#[test]
fn random_ops_match_model() {
    let steps = env_usize("KELP_STEPS").unwrap_or(250);
    if let Ok(seed) = std::env::var("KELP_SEED") {
        run_case(seed.parse().expect("KELP_SEED must be a u64"), steps);
        return;
    }
    let cases = env_usize("KELP_CASES").unwrap_or(32) as u64;
    let started = std::time::Instant::now();
    for i in 0..cases {
        run_case(0x6b65_6c70_0000 + i, steps);
    }
    eprintln!("{cases} cases x {steps} steps in {:?}", started.elapsed());
}

/// The random cases rarely hit this, so it runs on its own: a process
/// restart (no close) whose last segment exactly fills its preallocation
/// must fsync it before reporting it durable (`flush` then has nothing to
/// do), so a later power loss keeps the data.
#[test]
fn restart_then_power_loss_keeps_durable_data() {
    glommio::LocalExecutor::default().run(async {
        let storage = MemoryStorage::new();
        let clock: Rc<dyn Clock> = Rc::new(ManualClock::new(1_000_000));
        let ctx = || LogContext {
            id: LogId(1),
            cache: Rc::new(TailCache::new(16)),
            clock: Rc::clone(&clock),
        };
        let config = LogConfig {
            preallocate_bytes: 4096,
            ..LogConfig::default()
        };
        let dir = Path::new("/restart");
        let log = PartitionLog::open(storage.clone(), dir, config.clone(), ctx())
            .await
            .unwrap();
        // One batch of exactly 4096 bytes: the preallocated file is full.
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(1_000_000, Some(b"k"), Some(&[b'v'; 4025]), &[]);
        let batch = builder.build(0).unwrap();
        assert_eq!(batch.len(), 4096);
        log.append(batch, AppendOrigin::Leader(LeaderEpoch(0)))
            .await
            .unwrap();
        // The tiny cache misses, so the read writes the batch out, unsynced.
        log.read(Offset(0), 1 << 20).await.unwrap();
        drop(log); // killed: the page cache still has the batch
        let log = PartitionLog::open(storage.clone(), dir, config.clone(), ctx())
            .await
            .unwrap();
        assert_eq!(
            log.durable_end_offset(),
            Offset(1),
            "recovery reports the batch durable"
        );
        log.flush().await.unwrap();
        drop(log);
        storage.crash(|_, _| (0, None)); // power loss: unsynced changes are gone
        let log = PartitionLog::open(storage.clone(), dir, config, ctx())
            .await
            .unwrap();
        assert_eq!(
            log.log_end_offset(),
            Offset(1),
            "a power loss took data reported durable"
        );
    });
}
