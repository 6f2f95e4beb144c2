//! The storage engine's error type. Kafka error codes are assigned at the
//! protocol edge (the broker), not here.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;
use crate::types::Offset;

/// Result of a storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The batch failed validation; nothing was written.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes is larger than max.message.bytes ({max})")]
    BatchTooLarge {
        /// Size of the batch.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A read or truncation asked for an offset outside the log.
    #[error("offset {requested} is out of range: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// The log start offset.
        log_start: Offset,
        /// The log end offset.
        log_end: Offset,
    },
    /// A replicated batch does not continue the log.
    #[error("batch at offset {base} does not follow the log end offset {log_end}")]
    NonMonotonicOffset {
        /// The batch's base offset.
        base: Offset,
        /// The log end offset.
        log_end: Offset,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown.
    #[error(
        "log {dir} refuses writes after a failed {operation} ({reason}); reopen it to recover"
    )]
    Poisoned {
        /// The log directory.
        dir: PathBuf,
        /// What failed: "write", "fsync", ...
        operation: &'static str,
        /// The original error.
        reason: String,
    },
    /// A file operation failed.
    #[error("{operation} failed on {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// The producer state of the partition refuses the batch or marker.
    #[error(transparent)]
    Producer(#[from] crate::producers::ProducerError),
    /// A file holds something the engine did not write.
    #[error("{path} is damaged: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl StorageError {
    /// Wraps an I/O error with what was being done and where.
    pub fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io {
            operation,
            path,
            source,
        }
    }
}
