//! The file interface the log is written against.
//!
//! Everything the engine does to disk goes through [`Storage`] (names in a
//! directory) and [`StorageFile`] (one open file), so the same log code runs
//! on [`DmaStorage`] (glommio, io_uring, O_DIRECT) in production and on
//! [`MemoryStorage`] in tests, where the next write or fsync can be made to
//! fail and a crash can be simulated by dropping what was never synced.
//!
//! The rules are O_DIRECT's, and the memory backend enforces them: writes
//! start at a multiple of [`StorageFile::alignment`] and their length is a
//! multiple of it too. Reads may be unaligned.

// The traits are used on one executor thread only, so the futures they return
// need no `Send` bound.
#![allow(async_fn_in_trait)]

mod dma;
mod memory;
mod small_file;

pub use dma::{DmaStorage, DmaStorageFile};
pub use memory::{Fault, MemoryFile, MemoryStorage};
pub use small_file::{read_small_file, write_small_file};

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// How [`Storage::open`] treats an existing or missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file, or empty it if it exists.
    CreateTruncate,
    /// Open an existing file for reading and writing; fail if it is missing.
    Existing,
}

/// A buffer that a [`StorageFile`] can write with direct I/O.
pub trait IoBuffer {
    /// The buffer's bytes.
    fn as_slice(&self) -> &[u8];
    /// The buffer's bytes, to fill.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Shortens the buffer to `len` bytes (an aligned length).
    fn truncate(&mut self, len: usize);
    /// The buffer's length.
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    /// Whether the buffer holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A directory tree of files.
pub trait Storage: Clone + 'static {
    /// An open file of this storage.
    type File: StorageFile;

    /// Opens `path` as `mode` says.
    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Removes the name `path`; open handles keep working.
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates `dir` and its parents.
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Removes `dir` and everything in it.
    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The paths of the files directly in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// One open file, read and written at explicit positions.
pub trait StorageFile: 'static {
    /// The aligned buffer type that [`StorageFile::write_at`] takes.
    type Buffer: IoBuffer;

    /// Direct-I/O alignment of positions and lengths of writes.
    fn alignment(&self) -> u64;
    /// A buffer of `len` bytes (a multiple of the alignment); its content is unspecified.
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;
    /// Gives a written buffer back, for [`StorageFile::alloc_buffer`] to
    /// hand out again; the default drops it.
    fn recycle_buffer(&self, buf: Self::Buffer) {
        drop(buf);
    }
    /// Writes all of `buf` at `pos` (both aligned) and hands the buffer
    /// back for reuse when it can.
    async fn write_at(&self, buf: Self::Buffer, pos: u64) -> io::Result<Option<Self::Buffer>>;
    /// Reads up to `len` bytes at `pos`; fewer only at the end of the file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes>;
    /// Makes everything written so far durable (fdatasync).
    async fn sync(&self) -> io::Result<()>;
    /// Sets the file's size to `len`.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Reserves space up to `len` bytes; the file reads as zeros there.
    async fn preallocate(&self, len: u64) -> io::Result<()>;
    /// The file's size in bytes.
    async fn size(&self) -> io::Result<u64>;
}

/// `v` rounded down to a multiple of `align` (a power of two).
#[must_use]
pub fn align_down(v: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    v & !(align - 1)
}

/// `v` rounded up to a multiple of `align` (a power of two).
#[must_use]
pub fn align_up(v: u64, align: u64) -> u64 {
    align_down(v + align - 1, align)
}
