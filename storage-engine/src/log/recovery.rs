//! Opening a log directory: finish or discard an interrupted compaction
//! swap, load every segment (validating the last one unless the log was
//! closed cleanly), and restore the checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    LeaderEpochCache, LogState, CLEANER_CHECKPOINT, CLEAN_SHUTDOWN, EPOCH_CHECKPOINT,
    LOG_START_CHECKPOINT,
};
use crate::config::LogConfig;
use crate::error::{StorageError, StorageResult};
use crate::io::{read_small_file, write_small_file, Storage};
use crate::segment::{parse_base_offset, segment_path, LoadMode, Segment, LOG_EXT};
use crate::types::Offset;

/// Suffix of files a compaction is still writing.
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a compacted log file that is complete and replaces the original.
pub(crate) const SWAP_SUFFIX: &str = "swap";

pub(crate) async fn recover<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
    now_ms: i64,
) -> StorageResult<LogState<S::File>> {
    storage
        .create_dir_all(dir)
        .await
        .map_err(StorageError::io("create log directory", dir))?;
    finish_interrupted_swaps(storage, dir).await?;
    let mut bases: Vec<Offset> = list(storage, dir)?
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == LOG_EXT))
        .filter_map(|p| parse_base_offset(p))
        .collect();
    bases.sort();

    let marker_path = dir.join(CLEAN_SHUTDOWN);
    let marker = read_small_file(storage, &marker_path)
        .await
        .ok()
        .flatten()
        .filter(|m| m.len() == 16)
        .map(|m| {
            let base = i64::from_be_bytes(m[..8].try_into().expect("length checked"));
            let size = u64::from_be_bytes(m[8..].try_into().expect("length checked"));
            (Offset(base), size)
        });
    if marker.is_some() {
        // From here on a crash must recover fully again.
        storage
            .remove(&marker_path)
            .await
            .map_err(StorageError::io("remove marker", &marker_path))?;
        storage
            .sync_dir(dir)
            .await
            .map_err(StorageError::io("sync directory", dir))?;
    }

    let log_start_saved = read_checkpoint_offset(storage, &dir.join(LOG_START_CHECKPOINT)).await;
    let mut segments = BTreeMap::new();
    let mut previous_end: Option<Offset> = None;
    for (i, base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let mode = match marker {
            _ if !last => LoadMode::Sealed,
            Some((marker_base, size)) if marker_base == *base => LoadMode::LastClean { size },
            _ => LoadMode::LastUnclean,
        };
        let mut segment = Segment::load(storage, dir, *base, mode, now_ms, config).await?;
        if let Some(end) = previous_end {
            if *base < end {
                return Err(StorageError::Corrupt {
                    path: segment_path(dir, *base, LOG_EXT),
                    reason: format!("segment starts at {base}, inside the previous segment (which ends at {end})"),
                });
            }
        }
        segment.generation = i as u64;
        previous_end = Some(segment.next_offset);
        segments.insert(*base, segment);
    }
    let loaded_end = segments.values().next_back().map(|s| s.next_offset);
    if let (Some(saved), Some(end)) = (log_start_saved, loaded_end) {
        if saved > end {
            // The log start moved past data that a crash then lost. Offsets
            // below the start are never handed out again (consumers may hold
            // them), so the log restarts empty at the start, as Kafka does.
            tracing::warn!(dir = %dir.display(), log_start = %saved, log_end = %end, "log start is past the recovered end; starting empty there");
            for base in std::mem::take(&mut segments).into_keys() {
                for ext in [
                    LOG_EXT,
                    crate::segment::INDEX_EXT,
                    crate::segment::TIME_INDEX_EXT,
                ] {
                    let path = segment_path(dir, base, ext);
                    match storage.remove(&path).await {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(StorageError::io("remove segment file", &path)(e));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if segments.is_empty() {
        let base = log_start_saved.unwrap_or(Offset(0));
        segments.insert(
            base,
            Segment::create(storage, dir, base, now_ms, config).await?,
        );
    }
    let first = *segments.keys().next().expect("at least one segment");
    let log_end = segments
        .values()
        .next_back()
        .expect("at least one segment")
        .next_offset;
    let log_start = log_start_saved
        .map_or(first, |saved| saved.max(first))
        .min(log_end);

    let epoch_path = dir.join(EPOCH_CHECKPOINT);
    let mut epochs = match read_small_file(storage, &epoch_path).await {
        Ok(Some(bytes)) => LeaderEpochCache::decode(bytes).unwrap_or_else(|| {
            tracing::warn!(path = %epoch_path.display(), "unreadable leader-epoch checkpoint; starting empty");
            LeaderEpochCache::default()
        }),
        Ok(None) => LeaderEpochCache::default(),
        Err(e) => {
            tracing::warn!(path = %epoch_path.display(), error = %e, "damaged leader-epoch checkpoint; starting empty");
            LeaderEpochCache::default()
        }
    };
    // Recovery may have cut the log below epochs recorded before the crash.
    if epochs.truncate_from_end(log_end) | epochs.truncate_from_start(log_start) {
        write_small_file(storage, &epoch_path, &epochs.encode())
            .await
            .map_err(StorageError::io("write checkpoint", &epoch_path))?;
    }
    let cleaned_end = read_checkpoint_offset(storage, &dir.join(CLEANER_CHECKPOINT))
        .await
        .unwrap_or(first)
        .min(log_end);
    let next_generation = segments.len() as u64;
    Ok(LogState {
        segments,
        log_start,
        durable_end: log_end,
        epochs,
        cleaned_end,
        poisoned: None,
        closed: false,
        next_generation,
        producers: Default::default(),
        aborted: Default::default(),
        producers_replayed_from: log_start,
    })
}

fn list<S: Storage>(storage: &S, dir: &Path) -> StorageResult<Vec<PathBuf>> {
    storage
        .list(dir)
        .map_err(StorageError::io("list log directory", dir))
}

/// Reads a checkpoint holding one offset; missing or damaged reads as `None`.
pub(crate) async fn read_checkpoint_offset<S: Storage>(storage: &S, path: &Path) -> Option<Offset> {
    match read_small_file(storage, path).await {
        Ok(Some(bytes)) if bytes.len() == 8 => Some(Offset(i64::from_be_bytes(
            bytes[..].try_into().expect("length checked"),
        ))),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "damaged checkpoint ignored");
            None
        }
    }
}

/// A compaction writes `B.log.cleaned` and the index `.cleaned` files, then
/// renames the log to `B.log.swap` (the commit point), renames the indexes
/// into place, and finally the log. Here the commit point decides: a swap
/// file is finished, lone cleaned files are thrown away.
async fn finish_interrupted_swaps<S: Storage>(storage: &S, dir: &Path) -> StorageResult<()> {
    let paths = list(storage, dir)?;
    let has_suffix = |p: &Path, suffix: &str| p.extension().is_some_and(|e| e == suffix);
    for swap in paths.iter().filter(|p| has_suffix(p, SWAP_SUFFIX)) {
        let target = swap.with_extension("");
        for cleaned in paths.iter().filter(|p| has_suffix(p, CLEANED_SUFFIX)) {
            let final_path = cleaned.with_extension("");
            if final_path.file_stem() == target.file_stem() {
                storage
                    .rename(cleaned, &final_path)
                    .await
                    .map_err(StorageError::io("finish compaction swap", cleaned))?;
            }
        }
        storage
            .rename(swap, &target)
            .await
            .map_err(StorageError::io("finish compaction swap", swap))?;
        tracing::info!(segment = %target.display(), "finished an interrupted compaction swap");
    }
    for path in list(storage, dir)? {
        if has_suffix(&path, CLEANED_SUFFIX) || has_suffix(&path, "tmp") {
            storage
                .remove(&path)
                .await
                .map_err(StorageError::io("remove leftover file", &path))?;
        }
    }
    storage
        .sync_dir(dir)
        .await
        .map_err(StorageError::io("sync directory", dir))
}
