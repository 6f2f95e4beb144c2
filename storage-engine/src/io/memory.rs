//! An in-memory backend for tests: enforces direct-I/O alignment, fails the
//! next write or sync on request, and simulates a crash by forgetting
//! whatever was not synced (optionally keeping a torn prefix of it).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::{IoBuffer, OpenMode, Storage, StorageFile};

const ALIGNMENT: u64 = 4096;

/// An I/O failure to inject into the next matching call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next write fails with ENOSPC.
    WriteNoSpace,
    /// The next write fails with EIO.
    WriteIo,
    /// The next sync fails with EIO.
    SyncIo,
}

/// A change to a file that a crash may or may not keep.
#[derive(Clone, Debug)]
enum PendingOp {
    Write { pos: u64, data: Vec<u8> },
    Resize(u64),
}

#[derive(Debug, Default)]
struct FileData {
    /// What reads see now.
    current: Vec<u8>,
    /// What survives a crash for certain.
    durable: Vec<u8>,
    /// Changes since the last sync, in order.
    pending: Vec<PendingOp>,
}

impl FileData {
    fn apply(image: &mut Vec<u8>, op: &PendingOp) {
        match op {
            PendingOp::Write { pos, data } => {
                let start = usize::try_from(*pos).expect("test file positions fit in memory");
                let end = start + data.len();
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            PendingOp::Resize(len) => {
                image.resize(
                    usize::try_from(*len).expect("test file sizes fit in memory"),
                    0,
                );
            }
        }
    }
}

#[derive(Debug, Default)]
struct Fs {
    files: BTreeMap<PathBuf, Rc<RefCell<FileData>>>,
    dirs: BTreeSet<PathBuf>,
    faults: Vec<Fault>,
    writes: u64,
    syncs: u64,
}

/// A file system in memory; clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    fs: Rc<RefCell<Fs>>,
}

/// An open file of a [`MemoryStorage`].
#[derive(Debug)]
pub struct MemoryFile {
    data: Rc<RefCell<FileData>>,
    fs: Rc<RefCell<Fs>>,
}

/// A plain byte buffer standing in for a DMA buffer.
#[derive(Debug)]
pub struct MemoryBuffer(Vec<u8>);

impl IoBuffer for MemoryBuffer {
    fn as_slice(&self) -> &[u8] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

impl MemoryStorage {
    /// An empty file system.
    #[must_use]
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Makes the next matching call fail; faults queue in order.
    pub fn inject(&self, fault: Fault) {
        self.fs.borrow_mut().faults.push(fault);
    }

    /// How many writes and syncs have been issued.
    #[must_use]
    pub fn io_counts(&self) -> (u64, u64) {
        let fs = self.fs.borrow();
        (fs.writes, fs.syncs)
    }

    /// Simulates power loss: every file keeps its synced content plus, as
    /// `keep` decides per file, the first `n` of its unsynced changes with
    /// the `n`-th cut after `cut` bytes (`None` keeps it whole).
    ///
    /// `keep(path, pending_count)` returns `(n, cut)`.
    pub fn crash(&self, mut keep: impl FnMut(&Path, usize) -> (usize, Option<usize>)) {
        let fs = self.fs.borrow();
        for (path, file) in &fs.files {
            let mut file = file.borrow_mut();
            let (n, cut) = keep(path, file.pending.len());
            let mut image = file.durable.clone();
            for (i, op) in file.pending.iter().take(n).enumerate() {
                match (op, cut) {
                    (PendingOp::Write { pos, data }, Some(cut)) if i + 1 == n => {
                        let torn = PendingOp::Write {
                            pos: *pos,
                            data: data[..cut.min(data.len())].to_vec(),
                        };
                        FileData::apply(&mut image, &torn);
                    }
                    _ => FileData::apply(&mut image, op),
                }
            }
            file.current = image.clone();
            file.durable = image;
            file.pending.clear();
        }
    }

    /// Overwrites `bytes` at `pos` of `path`, durably, as a disk fault would.
    pub fn corrupt(&self, path: &Path, pos: usize, bytes: &[u8]) {
        let fs = self.fs.borrow();
        let file = fs
            .files
            .get(path)
            .expect("corrupt() names an existing file");
        let mut file = file.borrow_mut();
        let file = &mut *file;
        for image in [&mut file.current, &mut file.durable] {
            let end = (pos + bytes.len()).min(image.len());
            if pos < end {
                image[pos..end].copy_from_slice(&bytes[..end - pos]);
            }
        }
    }

    /// The current content of `path`, if it exists.
    #[must_use]
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let fs = self.fs.borrow();
        fs.files.get(path).map(|f| f.borrow().current.clone())
    }

    /// Replaces the content of `path` durably (creating it), for tests that
    /// plant damaged files.
    pub fn put(&self, path: &Path, content: Vec<u8>) {
        let mut fs = self.fs.borrow_mut();
        let data = FileData {
            current: content.clone(),
            durable: content,
            pending: Vec::new(),
        };
        fs.files
            .insert(path.to_path_buf(), Rc::new(RefCell::new(data)));
    }

    fn take_fault(&self, wanted: &[Fault]) -> Option<Fault> {
        let mut fs = self.fs.borrow_mut();
        let index = fs.faults.iter().position(|f| wanted.contains(f))?;
        Some(fs.faults.remove(index))
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl Storage for MemoryStorage {
    type File = MemoryFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemoryFile> {
        let mut fs = self.fs.borrow_mut();
        let parent = path.parent().unwrap_or(Path::new(""));
        if !fs.dirs.contains(parent) {
            return Err(not_found(parent));
        }
        let data = match mode {
            OpenMode::Existing => fs.files.get(path).cloned().ok_or_else(|| not_found(path))?,
            OpenMode::CreateTruncate => {
                let data = Rc::new(RefCell::new(FileData::default()));
                fs.files.insert(path.to_path_buf(), Rc::clone(&data));
                data
            }
        };
        Ok(MemoryFile {
            data,
            fs: Rc::clone(&self.fs),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let data = fs.files.remove(from).ok_or_else(|| not_found(from))?;
        fs.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let fs = self.fs.borrow();
        if fs.dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for ancestor in dir.ancestors() {
            fs.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.files.retain(|path, _| !path.starts_with(dir));
        fs.dirs.retain(|path| !path.starts_with(dir));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(fs
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .cloned()
            .collect())
    }
}

impl MemoryFile {
    fn storage(&self) -> MemoryStorage {
        MemoryStorage {
            fs: Rc::clone(&self.fs),
        }
    }
}

impl StorageFile for MemoryFile {
    type Buffer = MemoryBuffer;

    fn alignment(&self) -> u64 {
        ALIGNMENT
    }

    fn alloc_buffer(&self, len: usize) -> MemoryBuffer {
        // Filled with a pattern, not zeros, so code that forgets to zero
        // padding is caught by tests.
        MemoryBuffer(vec![0xA5; len])
    }

    async fn write_at(&self, buf: MemoryBuffer, pos: u64) -> io::Result<Option<MemoryBuffer>> {
        assert!(
            pos % ALIGNMENT == 0 && buf.0.len() as u64 % ALIGNMENT == 0,
            "direct write must be aligned: pos {pos}, len {}",
            buf.0.len()
        );
        match self
            .storage()
            .take_fault(&[Fault::WriteNoSpace, Fault::WriteIo])
        {
            Some(Fault::WriteNoSpace) => return Err(io::Error::from_raw_os_error(28)),
            Some(_) => return Err(io::Error::from_raw_os_error(5)),
            None => {}
        }
        self.fs.borrow_mut().writes += 1;
        let op = PendingOp::Write { pos, data: buf.0 };
        let mut data = self.data.borrow_mut();
        FileData::apply(&mut data.current, &op);
        data.pending.push(op);
        Ok(None)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let data = self.data.borrow();
        let start = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(data.current.len());
        let end = start.saturating_add(len).min(data.current.len());
        Ok(Bytes::copy_from_slice(&data.current[start..end]))
    }

    async fn sync(&self) -> io::Result<()> {
        // A real fsync takes time; yielding lets other tasks run meanwhile,
        // as they would on a device.
        glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
        if self.storage().take_fault(&[Fault::SyncIo]).is_some() {
            // Like Linux after a failed fsync: the dirty data may be dropped
            // and is no longer reported as dirty.
            let mut data = self.data.borrow_mut();
            data.pending.clear();
            return Err(io::Error::from_raw_os_error(5));
        }
        self.fs.borrow_mut().syncs += 1;
        let mut data = self.data.borrow_mut();
        data.durable = data.current.clone();
        data.pending.clear();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        let op = PendingOp::Resize(len);
        let mut data = self.data.borrow_mut();
        FileData::apply(&mut data.current, &op);
        data.pending.push(op);
        Ok(())
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut data = self.data.borrow_mut();
        if (data.current.len() as u64) < len {
            let op = PendingOp::Resize(len);
            FileData::apply(&mut data.current, &op);
            data.pending.push(op);
        }
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.data.borrow().current.len() as u64)
    }
}
