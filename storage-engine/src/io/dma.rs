//! The production backend: glommio DMA files (io_uring, O_DIRECT).

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use super::{IoBuffer, OpenMode, Storage, StorageFile};

/// Files opened with O_DIRECT through glommio's io_uring reactor.
///
/// Must be used from inside a glommio executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaStorage;

/// One glommio [`DmaFile`].
#[derive(Debug)]
pub struct DmaStorageFile {
    file: DmaFile,
}

impl IoBuffer for DmaBuffer {
    fn as_slice(&self) -> &[u8] {
        self.as_bytes()
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
    fn truncate(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

/// Bytes of written buffers each executor thread keeps for reuse: enough
/// for the chunks of one full write-out (8 MiB unwritten by default) of a
/// couple of busy partitions.
const POOL_BYTES: usize = 32 << 20;

/// Written DMA buffers kept for the next allocation of the same length.
///
/// A fresh buffer costs a page fault per 4 KiB as it is filled (a tenth of
/// the broker's CPU under a 100-byte produce load when each partition kept
/// only its own few spares), so buffers are shared by all files of a shard.
#[derive(Default)]
struct BufferPool {
    buffers: Vec<DmaBuffer>,
    bytes: usize,
}

impl BufferPool {
    fn take(&mut self, len: usize) -> Option<DmaBuffer> {
        let index = self.buffers.iter().rposition(|buf| buf.len() == len)?;
        let buf = self.buffers.swap_remove(index);
        self.bytes -= buf.len();
        Some(buf)
    }

    fn put(&mut self, buf: DmaBuffer) {
        if self.bytes + buf.len() <= POOL_BYTES {
            self.bytes += buf.len();
            self.buffers.push(buf);
        }
    }
}

thread_local! {
    /// This executor thread's pool of written buffers.
    static BUFFER_POOL: RefCell<BufferPool> = RefCell::default();
    /// Devices whose iopoll support this executor thread has probed.
    static PROBED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

/// Makes glommio probe the device of `dir` with a non-empty file.
///
/// glommio decides once per device whether reads may use the polled
/// io_uring ring, by reading the first DMA file opened there. If that file
/// is empty the read succeeds trivially, the device is taken as pollable,
/// and every later direct read fails with EOPNOTSUPP on devices without
/// poll queues (virtio disks, most cloud volumes). A one-page file makes the
/// probe honest.
async fn probe_device(dir: &Path) -> io::Result<()> {
    let device = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|p| p.borrow().contains(&device)) {
        return Ok(());
    }
    let probe = dir.join(".kelp-iopoll-probe");
    std::fs::write(&probe, [0u8; 4096])?;
    let opened = DmaFile::open(&probe).await;
    std::fs::remove_file(&probe)?;
    opened?.close().await?;
    PROBED_DEVICES.with(|p| p.borrow_mut().insert(device));
    Ok(())
}

impl Storage for DmaStorage {
    type File = DmaStorageFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<DmaStorageFile> {
        if let Some(dir) = path.parent() {
            probe_device(dir).await?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if mode == OpenMode::CreateTruncate {
            options.create(true).truncate(true);
        }
        let file = options.dma_open(path).await?;
        Ok(DmaStorageFile { file })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        glommio::io::rename(from, to).await?;
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // glommio opens directories relative to nothing: a relative path
        // fails with EBADF, so it gets an absolute one.
        let dir = glommio::io::Directory::open(std::path::absolute(dir)?).await?;
        dir.sync().await?;
        dir.close().await?;
        Ok(())
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                paths.push(entry.path());
            }
        }
        Ok(paths)
    }
}

impl StorageFile for DmaStorageFile {
    type Buffer = DmaBuffer;

    fn alignment(&self) -> u64 {
        // Segment writes are whole 4 KiB pages even where the device would
        // take 512-byte sectors: a page is the unit the kernel and NVMe write
        // atomically, and the partial-page rewrite logic assumes it.
        self.file.alignment().max(4096)
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        if let Some(buf) = BUFFER_POOL.with_borrow_mut(|pool| pool.take(len)) {
            return buf;
        }
        // Not zeroed: the appender zeroes the padding it writes, and zeroing
        // whole chunks would touch memory that may never hold data.
        self.file.alloc_dma_buffer(len)
    }

    fn recycle_buffer(&self, buf: DmaBuffer) {
        BUFFER_POOL.with_borrow_mut(|pool| pool.put(buf));
    }

    async fn write_at(&self, buf: DmaBuffer, pos: u64) -> io::Result<Option<DmaBuffer>> {
        let len = buf.len();
        // Shared, so the buffer comes back for reuse: a fresh one costs a
        // page fault per 4 KiB when it is filled.
        let buf = Rc::new(buf);
        let written = self.file.write_rc_at(Rc::clone(&buf), pos).await?;
        if written != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short direct write: {written} of {len} bytes at {pos}"),
            ));
        }
        Ok(Rc::try_unwrap(buf).ok())
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        if len == 0 {
            // glommio panics on a zero-length read once its registered
            // buffers are in use (a zero-size fallback buffer cannot be
            // made); the tail of a page-aligned segment is such a read.
            return Ok(Bytes::new());
        }
        let result = self.file.read_at(pos, len).await?;
        // The DMA buffer belongs to the reactor and is not Send, so the bytes
        // are copied once into a reference-counted buffer that can cross shards.
        Ok(Bytes::copy_from_slice(&result))
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.fdatasync().await?;
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await?;
        Ok(())
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.pre_allocate(len, false).await?;
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.file.file_size().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_buffers_are_handed_out_again() {
        // The crate directory: /tmp may be a tmpfs without O_DIRECT.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let file = DmaStorage
                    .open(&path, OpenMode::CreateTruncate)
                    .await
                    .unwrap();
                let mut buf = file.alloc_buffer(1 << 20);
                buf.as_mut_slice().fill(7);
                let address = buf.as_slice().as_ptr();
                let buf = file.write_at(buf, 0).await.unwrap().unwrap();
                file.recycle_buffer(buf);
                let pooled = || BUFFER_POOL.with_borrow(|pool| pool.buffers.len());
                assert_eq!(pooled(), 1);
                // Another length is not served from the pool.
                let _other = file.alloc_buffer(8192);
                assert_eq!(pooled(), 1);
                let again = file.alloc_buffer(1 << 20);
                assert_eq!(pooled(), 0);
                assert_eq!(
                    again.as_slice().as_ptr(),
                    address,
                    "the written buffer came back"
                );
                // The pool keeps a bounded number of bytes.
                let many: Vec<_> = (0..(POOL_BYTES >> 20) + 8)
                    .map(|_| file.alloc_buffer(1 << 20))
                    .collect();
                for buf in many {
                    file.recycle_buffer(buf);
                }
                BUFFER_POOL.with_borrow(|pool| assert!(pool.bytes <= POOL_BYTES));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn zero_length_reads_need_no_buffer() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        // A tiny registered-buffer pool, used up by the reads in flight.
        glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .spawn(move || async move {
                let file = Rc::new(
                    DmaStorage
                        .open(&path, OpenMode::CreateTruncate)
                        .await
                        .unwrap(),
                );
                let mut buf = file.alloc_buffer(4096);
                buf.as_mut_slice().fill(1);
                file.write_at(buf, 0).await.unwrap();
                let reads = (0..64).map(|i| {
                    let file = Rc::clone(&file);
                    async move { file.read_at(0, if i % 2 == 0 { 4096 } else { 0 }).await }
                });
                for (i, read) in futures_util::future::join_all(reads)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    assert_eq!(read.unwrap().len(), if i % 2 == 0 { 4096 } else { 0 });
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
