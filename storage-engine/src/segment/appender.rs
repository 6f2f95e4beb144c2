//! The aligned appender: turns a stream of appended bytes into whole-page
//! direct writes at increasing file positions.
//!
//! Appends only copy into an aligned in-memory chunk; nothing waits for the
//! disk. [`Appender::take_writes`] hands out the pending chunks as writes; the
//! last, partial page goes out padded with zeros and stays in memory, so the
//! next write rewrites that page in place with more data. The file is
//! preallocated ahead of the writes so that they do not change its size and
//! fdatasync has no metadata to flush: in steps that double from
//! [`FIRST_PREALLOCATION`] up to the configured step, so a quiet partition
//! holds a little disk, not a whole step (a topic of 1000 partitions with a
//! record each took 32 GB with fixed 32 MiB steps).
//!
//! The appender does no I/O itself: the caller runs the writes without
//! holding any borrow, then reports back with [`Appender::wrote`] and
//! [`Appender::synced`].

use std::collections::VecDeque;
use std::rc::Rc;

use crate::io::{align_down, align_up, IoBuffer, StorageFile};

/// Writes that bring the file up to a logical length.
pub struct PendingWrites<F: StorageFile> {
    /// The file to write.
    pub file: Rc<F>,
    /// Aligned buffers and their aligned file positions, in file order.
    pub writes: Vec<(u64, F::Buffer)>,
    /// Grow the file's preallocation to this size first.
    pub preallocate_to: Option<u64>,
    /// The logical length the file has once the writes are done.
    pub end: u64,
    chunk_bytes: usize,
}

impl<F: StorageFile> PendingWrites<F> {
    /// Runs the preallocation, then all writes at once: they cover
    /// disjoint pages, and the device is fastest with several in flight.
    pub async fn run(self) -> std::io::Result<u64> {
        if let Some(size) = self.preallocate_to {
            self.file.preallocate(size).await?;
        }
        let file = &self.file;
        let writes = self
            .writes
            .into_iter()
            .map(|(pos, buf)| file.write_at(buf, pos));
        // Every write is awaited, even after one fails, so no buffer is
        // dropped while the kernel may still be reading it.
        for result in futures_util::future::join_all(writes).await {
            // Full chunks go back to the storage's pool; the truncated last
            // one cannot grow back to a chunk.
            if let Some(buf) = result? {
                if buf.len() == self.chunk_bytes {
                    self.file.recycle_buffer(buf);
                }
            }
        }
        Ok(self.end)
    }
}

/// The first preallocation of a file; later ones double up to the step.
pub const FIRST_PREALLOCATION: u64 = 256 << 10;

/// Aligned append-only writer of one file.
pub struct Appender<F: StorageFile> {
    file: Rc<F>,
    align: u64,
    chunk_bytes: usize,
    preallocate_step: u64,
    /// The chunk being filled; starts at file position `open_pos`.
    open: F::Buffer,
    open_pos: u64,
    open_fill: usize,
    /// Filled chunks not yet handed out for writing.
    full: VecDeque<(u64, F::Buffer)>,
    len: u64,
    /// The length covered by writes handed out so far.
    handed_out: u64,
    written: u64,
    synced: u64,
    preallocated: u64,
}

impl<F: StorageFile> Appender<F> {
    /// An appender continuing a file whose logical length is `len` and whose
    /// last partial page holds `tail` (the bytes from the page start to
    /// `len`); everything up to `len` is on disk and synced.
    pub fn new(
        file: Rc<F>,
        len: u64,
        tail: &[u8],
        file_size: u64,
        chunk_bytes: usize,
        preallocate_step: u64,
    ) -> Appender<F> {
        let align = file.alignment();
        let chunk_bytes =
            usize::try_from(align_up(chunk_bytes.max(1) as u64, align)).unwrap_or(usize::MAX);
        let open_pos = align_down(len, align);
        assert_eq!(
            open_pos + tail.len() as u64,
            len,
            "tail must be the partial last page"
        );
        let mut open = file.alloc_buffer(chunk_bytes);
        open.as_mut_slice()[..tail.len()].copy_from_slice(tail);
        Appender {
            file,
            align,
            chunk_bytes,
            preallocate_step: align_up(preallocate_step.max(align), align),
            open,
            open_pos,
            open_fill: tail.len(),
            full: VecDeque::new(),
            len,
            handed_out: len,
            written: len,
            synced: len,
            preallocated: file_size,
        }
    }

    /// Copies `data` to the end of the file, in memory.
    pub fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (self.chunk_bytes - self.open_fill).min(data.len());
            self.open.as_mut_slice()[self.open_fill..self.open_fill + n]
                .copy_from_slice(&data[..n]);
            self.open_fill += n;
            self.len += n as u64;
            data = &data[n..];
            if self.open_fill == self.chunk_bytes {
                let next = self.new_chunk();
                let full = std::mem::replace(&mut self.open, next);
                self.full.push_back((self.open_pos, full));
                self.open_pos += self.chunk_bytes as u64;
                self.open_fill = 0;
            }
        }
    }

    /// The logical length of the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether chunks filled to the brim wait to be handed out.
    pub fn has_full_chunks(&self) -> bool {
        !self.full.is_empty()
    }

    /// Bytes appended but not yet written.
    pub fn unwritten(&self) -> u64 {
        self.len - self.written
    }

    /// Bytes appended but not yet handed out by [`Appender::take_writes`].
    pub fn not_taken(&self) -> u64 {
        self.len - self.handed_out
    }

    /// The length covered by the writes handed out so far.
    pub fn handed_out(&self) -> u64 {
        self.handed_out
    }

    /// The length known to be on disk (written, maybe not synced).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The length known to be durable.
    pub fn synced_len(&self) -> u64 {
        self.synced
    }

    /// The file this appender writes.
    pub fn file(&self) -> &Rc<F> {
        &self.file
    }

    /// Hands out everything appended since the last call as aligned writes,
    /// or `None` when all of it has been handed out already.
    pub fn take_writes(&mut self) -> Option<PendingWrites<F>> {
        if self.handed_out == self.len {
            return None;
        }
        self.handed_out = self.len;
        let mut writes: Vec<(u64, F::Buffer)> = self.full.drain(..).collect();
        if self.open_fill > 0 {
            let page_start = align_down(self.open_fill as u64, self.align) as usize;
            let write_len = align_up(self.open_fill as u64, self.align) as usize;
            let tail_len = self.open_fill - page_start;
            let mut next = self.new_chunk();
            next.as_mut_slice()[..tail_len]
                .copy_from_slice(&self.open.as_slice()[page_start..self.open_fill]);
            let mut current = std::mem::replace(&mut self.open, next);
            // Zero the padding of the last page: stale memory there must
            // never be read back as a batch.
            current.as_mut_slice()[self.open_fill..write_len].fill(0);
            current.truncate(write_len);
            writes.push((self.open_pos, current));
            self.open_pos += page_start as u64;
            self.open_fill = tail_len;
        }
        Some(self.pending(writes, self.len))
    }

    /// Hands out only the chunks filled to the brim, none of the open one:
    /// a write ahead of any flush that truncates no buffer. `None` when no
    /// chunk is full.
    pub fn take_full_writes(&mut self) -> Option<PendingWrites<F>> {
        if self.full.is_empty() {
            return None;
        }
        let writes: Vec<(u64, F::Buffer)> = self.full.drain(..).collect();
        // The open chunk starts where the last full one ends.
        assert!(
            self.open_pos >= self.handed_out,
            "hand-outs only move forward"
        );
        self.handed_out = self.open_pos;
        Some(self.pending(writes, self.open_pos))
    }

    /// Writes bringing the file to logical length `end`, growing its
    /// preallocation first when they reach past it.
    fn pending(&mut self, writes: Vec<(u64, F::Buffer)>, end: u64) -> PendingWrites<F> {
        let needed = align_up(end, self.align);
        let preallocate_to = (needed > self.preallocated).then(|| {
            let growth = self.preallocated.clamp(
                FIRST_PREALLOCATION,
                self.preallocate_step.max(FIRST_PREALLOCATION),
            );
            self.preallocated = align_up(needed.max(self.preallocated + growth), self.align);
            self.preallocated
        });
        PendingWrites {
            file: Rc::clone(&self.file),
            writes,
            preallocate_to,
            end,
            chunk_bytes: self.chunk_bytes,
        }
    }

    /// An empty chunk buffer (the storage reuses written ones).
    fn new_chunk(&self) -> F::Buffer {
        self.file.alloc_buffer(self.chunk_bytes)
    }

    /// Records that writes up to logical length `end` completed.
    pub fn wrote(&mut self, end: u64) {
        self.written = self.written.max(end);
    }

    /// Records that everything up to `end` is durable.
    pub fn synced(&mut self, end: u64) {
        debug_assert!(end <= self.written);
        self.synced = self.synced.max(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemoryStorage, OpenMode, Storage};
    use std::path::Path;

    async fn run(appender: &mut Appender<crate::io::MemoryFile>) {
        if let Some(work) = appender.take_writes() {
            let end = work.run().await.unwrap();
            appender.wrote(end);
        }
    }

    /// An appender of a new, empty file at `path`.
    async fn new_appender(
        storage: &MemoryStorage,
        path: &Path,
        chunk_bytes: usize,
        preallocate_step: u64,
    ) -> Appender<crate::io::MemoryFile> {
        storage
            .create_dir_all(path.parent().unwrap())
            .await
            .unwrap();
        let file = Rc::new(storage.open(path, OpenMode::CreateTruncate).await.unwrap());
        Appender::new(file, 0, &[], 0, chunk_bytes, preallocate_step)
    }

    #[test]
    fn partial_pages_are_rewritten_in_place() {
        futures_lite::future::block_on(async {
            let (storage, path) = (MemoryStorage::new(), Path::new("/d/f"));
            let mut appender = new_appender(&storage, path, 8192, 1 << 20).await;
            let mut expected = Vec::new();
            for i in 0..50u32 {
                let data = vec![(i % 251) as u8 + 1; 300 + i as usize * 97];
                appender.append(&data);
                expected.extend_from_slice(&data);
                if i % 3 == 0 {
                    run(&mut appender).await;
                    assert_eq!(appender.unwritten(), 0);
                    let on_disk = storage.contents(path).unwrap();
                    assert_eq!(&on_disk[..expected.len()], &expected[..]);
                    // Padding after the end is zero, so a scan stops there.
                    assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
                }
            }
            run(&mut appender).await;
            assert!(appender.take_writes().is_none(), "nothing left to write");
            let on_disk = storage.contents(path).unwrap();
            assert_eq!(&on_disk[..expected.len()], &expected[..]);
            // Steps double from 256 KiB: 256 KiB, 512 KiB, 1 MiB, then 2 MiB
            // at most (the configured step is 1 MiB).
            let size = on_disk.len() as u64;
            assert!(size >= expected.len() as u64, "{size}");
            assert!(
                [256 << 10, 512 << 10, 1 << 20, 2 << 20, 3 << 20].contains(&size),
                "{size}"
            );
        });
    }

    #[test]
    fn a_quiet_file_holds_one_small_preallocation() {
        futures_lite::future::block_on(async {
            let (storage, path) = (MemoryStorage::new(), Path::new("/d/f"));
            let mut appender = new_appender(&storage, path, 1 << 20, 32 << 20).await;
            appender.append(&[1; 100]);
            run(&mut appender).await;
            let size = storage.contents(path).unwrap().len() as u64;
            assert_eq!(size, FIRST_PREALLOCATION, "not the whole 32 MiB step");
            // A write past it grows the file by doubling.
            appender.append(&vec![2; 300 << 10]);
            run(&mut appender).await;
            assert_eq!(storage.contents(path).unwrap().len() as u64, 512 << 10);
        });
    }

    #[test]
    fn full_chunks_are_written_ahead_and_the_rest_later() {
        futures_lite::future::block_on(async {
            let (storage, path) = (MemoryStorage::new(), Path::new("/d/f"));
            let mut appender = new_appender(&storage, path, 8192, 1 << 20).await;
            appender.append(&[1; 5000]);
            assert!(appender.take_full_writes().is_none(), "no chunk is full");
            appender.append(&[2; 20000]);
            let ahead = appender.take_full_writes().expect("three chunks are full");
            assert_eq!(ahead.writes.len(), 3);
            let end = ahead.run().await.unwrap();
            assert_eq!(end, 3 * 8192, "only whole chunks");
            appender.wrote(end);
            assert_eq!(appender.unwritten(), 25000 - 3 * 8192);
            assert_eq!(appender.not_taken(), 25000 - 3 * 8192);
            run(&mut appender).await;
            let on_disk = storage.contents(path).unwrap();
            assert!(on_disk[..5000].iter().all(|&b| b == 1));
            assert!(on_disk[5000..25000].iter().all(|&b| b == 2));
            assert!(on_disk[25000..].iter().all(|&b| b == 0));
        });
    }

    #[test]
    fn continues_a_file_with_a_partial_page() {
        futures_lite::future::block_on(async {
            let storage = MemoryStorage::new();
            storage.create_dir_all(Path::new("/d")).await.unwrap();
            let path = Path::new("/d/f");
            storage.put(path, vec![7; 5000]);
            let file = Rc::new(storage.open(path, OpenMode::Existing).await.unwrap());
            let mut appender = Appender::new(file, 5000, &[7; 904], 5000, 4096, 4096);
            appender.append(&[9; 10]);
            run(&mut appender).await;
            let on_disk = storage.contents(path).unwrap();
            assert!(on_disk[..5000].iter().all(|&b| b == 7));
            assert!(on_disk[5000..5010].iter().all(|&b| b == 9));
        });
    }
}
