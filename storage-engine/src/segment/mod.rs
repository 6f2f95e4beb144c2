//! One segment of a partition log: its log file, its sparse offset and time
//! indexes, and (while it is the active segment) the writers of all three.
//!
//! A segment whose writer is gone is sealed: its files are exact, synced and
//! read-only. Files are named by the segment's base offset, as Kafka does:
//! `00000000000000001000.log`, `.index`, `.timeindex`.

pub mod appender;
pub mod index;
pub mod scan;

use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use self::appender::{Appender, PendingWrites};
use self::index::{
    relative, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex, OFFSET_ENTRY_LEN, TIME_ENTRY_LEN,
};
use self::scan::{scan, BatchInfo, ScanEnd, ScanRange};
use crate::config::LogConfig;
use crate::error::{StorageError, StorageResult};
use crate::io::{align_down, IoBuffer, OpenMode, Storage, StorageFile};
use crate::types::Offset;

/// Extension of a segment's log file.
pub const LOG_EXT: &str = "log";
/// Extension of a segment's offset index.
pub const INDEX_EXT: &str = "index";
/// Extension of a segment's time index.
pub const TIME_INDEX_EXT: &str = "timeindex";

/// The path of a segment file: the base offset in 20 digits, then `ext`.
pub fn segment_path(dir: &Path, base: Offset, ext: &str) -> PathBuf {
    dir.join(format!("{:020}.{ext}", base.0))
}

/// The base offset named by a segment file name, if it is one.
pub fn parse_base_offset(path: &Path) -> Option<Offset> {
    let stem = path.file_stem()?.to_str()?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse::<i64>().ok().filter(|o| *o >= 0).map(Offset)
}

/// How a segment is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// A closed segment: its file size is its length.
    Sealed,
    /// The last segment after a clean shutdown that recorded its length.
    LastClean {
        /// The log file's length at shutdown.
        size: u64,
    },
    /// The last segment after a crash: validate and cut at the first bad byte.
    LastUnclean,
}

/// The writers of the active segment.
pub struct SegmentWriter<F: StorageFile> {
    /// The log file's appender.
    pub log: Appender<F>,
    index: Appender<F>,
    time_index: Appender<F>,
    /// Offset-index entries already handed to the index appender.
    offset_entries_persisted: usize,
    /// Time-index entries already handed to the time-index appender.
    time_entries_persisted: usize,
    /// Log positions of the time-index entries added since the writer opened,
    /// starting at entry `time_entries_at_open`.
    time_entry_positions: Vec<u64>,
    time_entries_at_open: usize,
}

/// Everything a segment needs written, taken in one step.
pub struct SegmentWrites<F: StorageFile> {
    log: Option<PendingWrites<F>>,
    indexes: Vec<PendingWrites<F>>,
    /// The log length these writes bring to disk.
    pub end: u64,
}

impl<F: StorageFile> SegmentWrites<F> {
    /// Writes the log and the index entries (which describe synced data
    /// only, so their order does not matter) all at once.
    pub async fn run(self) -> io::Result<u64> {
        let log = async {
            match self.log {
                Some(log) => log.run().await.map(|_| ()),
                None => Ok(()),
            }
        };
        let indexes =
            futures_util::future::join_all(self.indexes.into_iter().map(PendingWrites::run));
        let (log, indexes) = futures_util::future::join(log, indexes).await;
        log?;
        for index in indexes {
            index?;
        }
        Ok(self.end)
    }
}

/// The I/O of sealing a segment, run without holding the log's state.
pub struct SealWork<F: StorageFile> {
    writes: Option<SegmentWrites<F>>,
    file: Rc<F>,
    size: u64,
    base_offset: Offset,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
}

impl<F: StorageFile> SealWork<F> {
    /// Writes and syncs everything, cuts the preallocated tail off the log
    /// file, and rewrites the indexes whole, so a sealed segment's files are exact.
    pub async fn run<S: Storage<File = F>>(self, storage: &S, dir: &Path) -> StorageResult<()> {
        let log_path = segment_path(dir, self.base_offset, LOG_EXT);
        if let Some(writes) = self.writes {
            writes
                .run()
                .await
                .map_err(StorageError::io("write segment", &log_path))?;
        }
        self.file
            .truncate(self.size)
            .await
            .map_err(StorageError::io("truncate segment", &log_path))?;
        self.file
            .sync()
            .await
            .map_err(StorageError::io("fsync segment", &log_path))?;
        write_indexes(
            storage,
            dir,
            self.base_offset,
            &self.offset_index,
            &self.time_index,
        )
        .await
    }
}

/// The parts of a segment that a truncated copy starts from.
pub struct TruncateOrigin<F: StorageFile> {
    base_offset: Offset,
    file: Rc<F>,
    rolling_base_ms: i64,
    generation: u64,
}

/// One segment of a log.
pub struct Segment<F: StorageFile> {
    /// Offset of the first record this segment may hold.
    pub base_offset: Offset,
    /// The log file.
    pub file: Rc<F>,
    /// Logical length of the log file.
    pub size: u64,
    /// The offset after the last batch (the base offset when empty).
    pub next_offset: Offset,
    /// Largest batch timestamp, -1 when empty.
    pub max_timestamp_ms: i64,
    /// Last offset of the batch holding the largest timestamp.
    pub max_timestamp_offset: Offset,
    /// When the segment started, for `segment.ms`.
    pub rolling_base_ms: i64,
    /// Sparse offset index.
    pub offset_index: OffsetIndex,
    /// Sparse time index.
    pub time_index: TimeIndex,
    /// Present while the segment is active.
    pub writer: Option<SegmentWriter<F>>,
    /// Distinguishes this segment from a replacement with the same base offset.
    pub generation: u64,
    bytes_since_index: u64,
}

impl<F: StorageFile> Segment<F> {
    /// Creates an empty active segment at `base`.
    pub async fn create<S: Storage<File = F>>(
        storage: &S,
        dir: &Path,
        base: Offset,
        now_ms: i64,
        config: &LogConfig,
    ) -> StorageResult<Segment<F>> {
        let open = |ext: &'static str| {
            let path = segment_path(dir, base, ext);
            async move {
                storage
                    .open(&path, OpenMode::CreateTruncate)
                    .await
                    .map(Rc::new)
                    .map_err(StorageError::io("create segment file", path))
            }
        };
        let file = open(LOG_EXT).await?;
        let index = open(INDEX_EXT).await?;
        let time_index = open(TIME_INDEX_EXT).await?;
        storage
            .sync_dir(dir)
            .await
            .map_err(StorageError::io("sync directory", dir))?;
        let mut segment = Segment::empty(base, file, now_ms);
        segment.writer = Some(SegmentWriter {
            log: Appender::new(
                Rc::clone(&segment.file),
                0,
                &[],
                0,
                config.write_chunk_bytes,
                config.preallocate_bytes,
            ),
            index: Appender::new(index, 0, &[], 0, 64 << 10, 1 << 20),
            time_index: Appender::new(time_index, 0, &[], 0, 64 << 10, 1 << 20),
            offset_entries_persisted: 0,
            time_entries_persisted: 0,
            time_entry_positions: Vec::new(),
            time_entries_at_open: 0,
        });
        Ok(segment)
    }

    /// An empty, read-only segment over `file`; compaction fills one with
    /// [`Segment::note_batch`] while it writes the file itself.
    pub(crate) fn empty(base: Offset, file: Rc<F>, now_ms: i64) -> Segment<F> {
        Segment {
            base_offset: base,
            file,
            size: 0,
            next_offset: base,
            max_timestamp_ms: -1,
            max_timestamp_offset: base,
            rolling_base_ms: now_ms,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            writer: None,
            generation: 0,
            bytes_since_index: 0,
        }
    }

    /// Whether the segment holds no batch.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whether this is the writable, active segment.
    pub fn is_active(&self) -> bool {
        self.writer.is_some()
    }

    /// The end of the bytes that are on disk and can be read from the file.
    pub fn readable_end(&self) -> u64 {
        self.writer.as_ref().map_or(self.size, |w| w.log.written())
    }

    /// The length known to be durable.
    pub fn synced_len(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(self.size, |w| w.log.synced_len())
    }

    /// Whether log chunks filled to the brim wait to be written.
    pub fn has_full_chunks(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|w| w.log.has_full_chunks())
    }

    /// Bytes appended but not yet written.
    pub fn unwritten(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.log.unwritten())
    }

    /// Appends one batch (already validated, offsets assigned) in memory.
    pub fn append(&mut self, bytes: &[u8], info: &BatchInfo, index_interval_bytes: u64) {
        assert!(
            info.base_offset >= self.next_offset,
            "offsets must increase: batch at {} after next offset {}",
            info.base_offset,
            self.next_offset
        );
        let writer = self
            .writer
            .as_mut()
            .expect("append goes to the active segment");
        let position = self.size;
        writer.log.append(bytes);
        self.size += u64::from(info.len);
        self.note_batch(info, position, index_interval_bytes);
    }

    /// Updates indexes and bounds for a batch at `position`.
    pub(crate) fn note_batch(
        &mut self,
        info: &BatchInfo,
        position: u64,
        index_interval_bytes: u64,
    ) {
        if info.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = info.max_timestamp_ms;
            self.max_timestamp_offset = info.last_offset;
        }
        if self.offset_index.entries().is_empty() || self.bytes_since_index >= index_interval_bytes
        {
            self.offset_index.push(OffsetEntry {
                relative_offset: relative(self.base_offset, info.base_offset),
                position: u32::try_from(position).expect("segments are smaller than 4 GiB"),
            });
            let added = self.time_index.maybe_push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: relative(self.base_offset, self.max_timestamp_offset),
            });
            if let (true, Some(writer)) = (added, self.writer.as_mut()) {
                writer.time_entry_positions.push(position);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += u64::from(info.len);
        self.next_offset = info.last_offset.next();
    }

    /// Takes the writes that bring appended data (and index entries of
    /// synced data) to disk.
    pub fn take_writes(&mut self) -> Option<SegmentWrites<F>> {
        let writer = self.writer.as_mut()?;
        let synced = writer.log.synced_len();
        let mut indexes = Vec::new();
        let offset_entries = self.offset_index.entries();
        while writer.offset_entries_persisted < offset_entries.len()
            && u64::from(offset_entries[writer.offset_entries_persisted].position) < synced
        {
            writer.index.append(&OffsetIndex::encode(
                offset_entries[writer.offset_entries_persisted],
            ));
            writer.offset_entries_persisted += 1;
        }
        let time_entries = self.time_index.entries();
        while writer.time_entries_persisted < time_entries.len() {
            let i = writer.time_entries_persisted;
            // Entries loaded at open are on disk already; an entry without a
            // recorded position (the final one of a seal) is written whole then.
            let position = match i.checked_sub(writer.time_entries_at_open) {
                None => 0,
                Some(j) => match writer.time_entry_positions.get(j) {
                    Some(position) => *position,
                    None => break,
                },
            };
            if position >= synced {
                break;
            }
            writer
                .time_index
                .append(&TimeIndex::encode(time_entries[i]));
            writer.time_entries_persisted += 1;
        }
        // Index pages go out once a page of entries is waiting: they are not
        // synced (recovery rebuilds the index tail), so writing a partial
        // page at every flush would only cost bandwidth.
        let page = writer.index.file().alignment();
        if writer.index.not_taken() >= page {
            indexes.extend(writer.index.take_writes());
        }
        if writer.time_index.not_taken() >= page {
            indexes.extend(writer.time_index.take_writes());
        }
        let log = writer.log.take_writes();
        if log.is_none() && indexes.is_empty() {
            return None;
        }
        Some(SegmentWrites {
            log,
            indexes,
            end: writer.log.len(),
        })
    }

    /// The log chunks filled to the brim, to write ahead of any flush;
    /// indexes wait for the next [`Segment::take_writes`].
    pub fn take_full_writes(&mut self) -> Option<SegmentWrites<F>> {
        let writer = self.writer.as_mut()?;
        let log = writer.log.take_full_writes()?;
        let end = log.end;
        Some(SegmentWrites {
            log: Some(log),
            indexes: Vec::new(),
            end,
        })
    }

    /// Records that writes up to log length `end` completed.
    pub fn wrote(&mut self, end: u64) {
        if let Some(writer) = self.writer.as_mut() {
            writer.log.wrote(end);
            // Index writes are only ever run together with log writes, so the
            // ones handed out completed too.
            let (index_len, time_len) = (writer.index.handed_out(), writer.time_index.handed_out());
            writer.index.wrote(index_len);
            writer.time_index.wrote(time_len);
        }
    }

    /// Records that the log is durable up to `end`.
    pub fn synced(&mut self, end: u64) {
        if let Some(writer) = self.writer.as_mut() {
            writer.log.synced(end);
        }
    }

    /// First step of sealing (no I/O): takes what is left to write and a
    /// copy of the final indexes. Nothing may be appended until
    /// [`Segment::finish_seal`].
    pub fn prepare_seal(&mut self) -> SealWork<F> {
        let writes = self.take_writes();
        self.push_final_time_entry();
        SealWork {
            writes,
            file: Rc::clone(&self.file),
            size: self.size,
            base_offset: self.base_offset,
            offset_index: self.offset_index.clone(),
            time_index: self.time_index.clone(),
        }
    }

    /// Records the segment's largest timestamp in the time index, so a sealed
    /// segment's last time entry is its maximum.
    pub(crate) fn push_final_time_entry(&mut self) {
        if self.max_timestamp_ms >= 0 {
            self.time_index.maybe_push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: relative(self.base_offset, self.max_timestamp_offset),
            });
        }
    }

    /// Last step of sealing: the segment becomes read-only.
    pub fn finish_seal(&mut self) {
        let writer = self.writer.take();
        if let Some(writer) = writer {
            assert_eq!(
                writer.log.len(),
                self.size,
                "nothing may be appended while sealing"
            );
        }
    }

    /// Opens an existing segment, validating as `mode` asks; an active
    /// segment is returned with its writer.
    pub async fn load<S: Storage<File = F>>(
        storage: &S,
        dir: &Path,
        base: Offset,
        mode: LoadMode,
        now_ms: i64,
        config: &LogConfig,
    ) -> StorageResult<Segment<F>> {
        let log_path = segment_path(dir, base, LOG_EXT);
        let file = storage
            .open(&log_path, OpenMode::Existing)
            .await
            .map_err(StorageError::io("open segment", &log_path))?;
        let file = Rc::new(file);
        let file_size = file
            .size()
            .await
            .map_err(StorageError::io("stat segment", &log_path))?;
        let (limit, verify) = match mode {
            LoadMode::Sealed => (file_size, false),
            LoadMode::LastClean { size } => (size.min(file_size), false),
            LoadMode::LastUnclean => (file_size, true),
        };
        let read_index = |ext: &'static str| {
            let path = segment_path(dir, base, ext);
            async move {
                match storage.open(&path, OpenMode::Existing).await {
                    Ok(f) => {
                        let size = f.size().await.unwrap_or(0);
                        f.read_at(0, usize::try_from(size).unwrap_or(0))
                            .await
                            .unwrap_or_default()
                    }
                    Err(_) => Bytes::new(),
                }
            }
        };
        let index_bytes = read_index(INDEX_EXT).await;
        let time_bytes = read_index(TIME_INDEX_EXT).await;
        let mut offset_index = OffsetIndex::decode(&index_bytes, limit);
        let mut rebuilt = !trailing_zeros(
            &index_bytes,
            offset_index.entries().len() * OFFSET_ENTRY_LEN,
        );

        // Find the last index entry that points at a batch with the offset
        // it claims; entries after it are dropped and rebuilt by the scan.
        let mut segment = Segment::empty(base, Rc::clone(&file), now_ms);
        while let Some(last) = offset_index.entries().last().copied() {
            let mut found = None;
            let range = ScanRange {
                start: u64::from(last.position),
                end: limit,
                verify,
                previous_last_offset: None,
            };
            scan(&*file, range, |info, _| {
                found = Some(info.base_offset);
                ControlFlow::Break(())
            })
            .await
            .map_err(StorageError::io("read segment", &log_path))?;
            if found == Some(base.plus(i64::from(last.relative_offset))) {
                break;
            }
            offset_index.truncate_entries(offset_index.entries().len() - 1);
            rebuilt = true;
        }
        let entries_valid = offset_index.entries().len();
        let start = offset_index
            .entries()
            .last()
            .map_or(0, |e| u64::from(e.position));
        let previous = offset_index
            .entries()
            .last()
            .map(|e| base.plus(i64::from(e.relative_offset) - 1));
        let time_index = TimeIndex::decode(
            &time_bytes,
            offset_index
                .entries()
                .last()
                .map_or(0, |e| e.relative_offset),
        );
        let time_damaged =
            !trailing_zeros(&time_bytes, time_index.entries().len() * TIME_ENTRY_LEN);
        if time_damaged && entries_valid > 0 && mode == LoadMode::Sealed {
            // The time index cannot be trusted: rebuild both from the start.
            return Box::pin(Self::rebuild(
                storage, dir, base, file, limit, now_ms, config,
            ))
            .await;
        }
        segment.offset_index = offset_index;
        segment
            .offset_index
            .truncate_entries(entries_valid.saturating_sub(1));
        segment.time_index = time_index;
        if let Some(last) = segment.time_index.last() {
            segment.max_timestamp_ms = last.timestamp_ms;
            segment.max_timestamp_offset = base.plus(i64::from(last.relative_offset));
        }
        // Rescan from the last valid entry: it re-adds that entry and
        // everything after it, and finds the true end of the data.
        let range = ScanRange {
            start,
            end: limit,
            verify,
            previous_last_offset: previous.filter(|p| *p >= base),
        };
        let mut first_ts = None;
        let interval = config.index_interval_bytes;
        segment.bytes_since_index = interval;
        let outcome = scan(&*file, range, |info, _| {
            first_ts.get_or_insert(info.max_timestamp_ms);
            segment.size = info.end();
            segment.note_batch(info, info.position, interval);
            ControlFlow::Continue(())
        })
        .await
        .map_err(StorageError::io("read segment", &log_path))?;
        segment.size = outcome.next_position;
        if start == 0 {
            if let Some(ts) = first_ts {
                segment.rolling_base_ms = ts;
            }
        }
        if let ScanEnd::Invalid { position, reason } = &outcome.end {
            if mode == LoadMode::Sealed
                || *position < limit && matches!(mode, LoadMode::LastClean { .. })
            {
                tracing::error!(segment = %log_path.display(), position, reason, "damaged sealed segment; data after the damage is dropped");
            } else {
                tracing::info!(segment = %log_path.display(), position, reason, "recovered segment: cut at the first invalid byte");
            }
        }
        let cut = segment.size != file_size;
        if cut {
            file.truncate(segment.size)
                .await
                .map_err(StorageError::io("truncate segment", &log_path))?;
        }
        // What a crash left on disk is from now on reported durable, so it
        // must be: it may still sit in the device's volatile cache.
        if cut || mode == LoadMode::LastUnclean {
            file.sync()
                .await
                .map_err(StorageError::io("fsync segment", &log_path))?;
        }
        if rebuilt || cut || mode != LoadMode::Sealed {
            write_indexes(
                storage,
                dir,
                base,
                &segment.offset_index,
                &segment.time_index,
            )
            .await?;
        }
        if mode != LoadMode::Sealed {
            segment.open_writer(storage, dir, config).await?;
        }
        Ok(segment)
    }

    /// Rebuilds a sealed segment's indexes by scanning its whole log.
    async fn rebuild<S: Storage<File = F>>(
        storage: &S,
        dir: &Path,
        base: Offset,
        file: Rc<F>,
        limit: u64,
        now_ms: i64,
        config: &LogConfig,
    ) -> StorageResult<Segment<F>> {
        let log_path = segment_path(dir, base, LOG_EXT);
        let mut segment = Segment::empty(base, Rc::clone(&file), now_ms);
        let range = ScanRange {
            start: 0,
            end: limit,
            verify: true,
            previous_last_offset: None,
        };
        let interval = config.index_interval_bytes;
        scan(&*file, range, |info, _| {
            segment.size = info.end();
            segment.note_batch(info, info.position, interval);
            ControlFlow::Continue(())
        })
        .await
        .map_err(StorageError::io("read segment", &log_path))?;
        if segment.size != limit {
            file.truncate(segment.size)
                .await
                .map_err(StorageError::io("truncate segment", &log_path))?;
            file.sync()
                .await
                .map_err(StorageError::io("fsync segment", &log_path))?;
        }
        segment.push_final_time_entry();
        write_indexes(
            storage,
            dir,
            base,
            &segment.offset_index,
            &segment.time_index,
        )
        .await?;
        Ok(segment)
    }

    /// Makes a segment with exact, synced files writable again: its index
    /// files were just written whole, and its log ends at `size`.
    pub async fn open_writer<S: Storage<File = F>>(
        &mut self,
        storage: &S,
        dir: &Path,
        config: &LogConfig,
    ) -> StorageResult<()> {
        let tail = |file: Rc<F>, len: u64, path: PathBuf| async move {
            let page = align_down(len, file.alignment());
            let tail = file
                .read_at(page, usize::try_from(len - page).unwrap_or(0))
                .await
                .map_err(StorageError::io("read tail page", path))?;
            Ok::<_, StorageError>((file, len, tail))
        };
        let log_path = segment_path(dir, self.base_offset, LOG_EXT);
        let (log_file, log_len, log_tail) =
            tail(Rc::clone(&self.file), self.size, log_path.clone()).await?;
        let log_file_size = log_file
            .size()
            .await
            .map_err(StorageError::io("stat segment", &log_path))?;
        let open_index = |ext: &'static str, len: u64| {
            let path = segment_path(dir, self.base_offset, ext);
            async move {
                let file = storage
                    .open(&path, OpenMode::Existing)
                    .await
                    .map_err(StorageError::io("open index", &path))?;
                tail(Rc::new(file), len, path).await
            }
        };
        let index_len = (self.offset_index.entries().len() * OFFSET_ENTRY_LEN) as u64;
        let time_len = (self.time_index.entries().len() * TIME_ENTRY_LEN) as u64;
        let (index_file, _, index_tail) = open_index(INDEX_EXT, index_len).await?;
        let (time_file, _, time_tail) = open_index(TIME_INDEX_EXT, time_len).await?;
        self.writer = Some(SegmentWriter {
            log: Appender::new(
                log_file,
                log_len,
                &log_tail,
                log_file_size,
                config.write_chunk_bytes,
                config.preallocate_bytes,
            ),
            index: Appender::new(
                index_file,
                index_len,
                &index_tail,
                index_len,
                64 << 10,
                1 << 20,
            ),
            time_index: Appender::new(time_file, time_len, &time_tail, time_len, 64 << 10, 1 << 20),
            offset_entries_persisted: self.offset_index.entries().len(),
            time_entries_persisted: self.time_index.entries().len(),
            time_entry_positions: Vec::new(),
            time_entries_at_open: self.time_index.entries().len(),
        });
        Ok(())
    }

    /// A copy of a segment cut at `position` (a batch boundary), writable,
    /// with its file, indexes and bounds cut too. The original must have no
    /// unwritten data; it stays readable until the caller swaps the copy in.
    pub async fn truncated<S: Storage<File = F>>(
        origin: TruncateOrigin<F>,
        storage: &S,
        dir: &Path,
        position: u64,
        config: &LogConfig,
    ) -> StorageResult<Segment<F>> {
        let log_path = segment_path(dir, origin.base_offset, LOG_EXT);
        origin
            .file
            .truncate(position)
            .await
            .map_err(StorageError::io("truncate segment", &log_path))?;
        origin
            .file
            .sync()
            .await
            .map_err(StorageError::io("fsync segment", &log_path))?;
        // Recompute bounds by rescanning what is left: truncation is rare and
        // this keeps one source of truth for sizes, indexes and timestamps.
        let mut fresh = Segment::empty(
            origin.base_offset,
            Rc::clone(&origin.file),
            origin.rolling_base_ms,
        );
        let range = ScanRange {
            start: 0,
            end: position,
            verify: false,
            previous_last_offset: None,
        };
        let interval = config.index_interval_bytes;
        scan(&*origin.file, range, |info, _| {
            fresh.size = info.end();
            fresh.note_batch(info, info.position, interval);
            ControlFlow::Continue(())
        })
        .await
        .map_err(StorageError::io("read segment", &log_path))?;
        assert_eq!(
            fresh.size, position,
            "truncation point must be a batch boundary"
        );
        fresh.generation = origin.generation + 1;
        write_indexes(
            storage,
            dir,
            fresh.base_offset,
            &fresh.offset_index,
            &fresh.time_index,
        )
        .await?;
        fresh.open_writer(storage, dir, config).await?;
        Ok(fresh)
    }

    /// What [`Segment::truncated`] needs of the original; the original must
    /// have no unwritten data.
    pub fn truncate_origin(&self) -> TruncateOrigin<F> {
        assert_eq!(
            self.unwritten(),
            0,
            "truncation needs everything written first"
        );
        TruncateOrigin {
            base_offset: self.base_offset,
            file: Rc::clone(&self.file),
            rolling_base_ms: self.rolling_base_ms,
            generation: self.generation,
        }
    }

    /// The file position of the first batch that may hold `offset`.
    pub fn floor_position(&self, offset: Offset) -> u64 {
        if offset <= self.base_offset {
            return 0;
        }
        self.offset_index
            .floor_position(relative(self.base_offset, offset.min(self.next_offset)))
    }
}

/// Whether `bytes` holds only zeros after `from` (padding, not damage).
fn trailing_zeros(bytes: &[u8], from: usize) -> bool {
    bytes
        .get(from..)
        .is_none_or(|rest| rest.iter().all(|&b| b == 0))
}

/// Writes both index files of a segment whole, synced.
pub async fn write_indexes<S: Storage>(
    storage: &S,
    dir: &Path,
    base: Offset,
    offset_index: &OffsetIndex,
    time_index: &TimeIndex,
) -> StorageResult<()> {
    let paths = [
        segment_path(dir, base, INDEX_EXT),
        segment_path(dir, base, TIME_INDEX_EXT),
    ];
    write_index_files(storage, &paths, offset_index, time_index).await
}

/// Writes an offset index and a time index to `paths` (in that order), synced.
pub async fn write_index_files<S: Storage>(
    storage: &S,
    paths: &[PathBuf; 2],
    offset_index: &OffsetIndex,
    time_index: &TimeIndex,
) -> StorageResult<()> {
    let offsets: Vec<u8> = offset_index
        .entries()
        .iter()
        .flat_map(|e| OffsetIndex::encode(*e))
        .collect();
    let times: Vec<u8> = time_index
        .entries()
        .iter()
        .flat_map(|e| TimeIndex::encode(*e))
        .collect();
    for (path, bytes) in paths.iter().zip([offsets, times]) {
        write_whole(storage, path, &bytes)
            .await
            .map_err(StorageError::io("write index", path))?;
    }
    Ok(())
}

/// Replaces a file's content with `bytes` (zero-padded to the alignment,
/// then cut to the exact length) and syncs it.
pub async fn write_whole<S: Storage>(storage: &S, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = storage.open(path, OpenMode::CreateTruncate).await?;
    if !bytes.is_empty() {
        let align = file.alignment();
        let len =
            usize::try_from(crate::io::align_up(bytes.len() as u64, align)).unwrap_or(usize::MAX);
        let mut buf = file.alloc_buffer(len);
        buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
        buf.as_mut_slice()[bytes.len()..].fill(0);
        file.write_at(buf, 0).await?;
        file.truncate(bytes.len() as u64).await?;
    }
    file.sync().await
}
