//! Start-up checks of what the broker depends on, each failing with what
//! went wrong and how to fix it, instead of a panic or a bare errno deep in
//! the runtime.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Registered I/O memory each shard's executor asks for.
pub const IO_MEMORY_PER_SHARD: usize = 1 << 20;

/// A dependency that is missing, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The data directory cannot be created or written.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process holds the data directory's lock.
    #[error("data directory {path} is in use by another running Kelp (lock file {lock}); stop it or pass another --data-dir")]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The filesystem refuses O_DIRECT.
    #[error("data directory {path} is on a filesystem that refuses direct I/O (O_DIRECT: {source}); tmpfs before Linux 6.6 and some overlay filesystems do. Put --data-dir on ext4 or xfs, e.g. a mounted volume")]
    NoDirectIo {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// io_uring cannot be used.
    #[error("io_uring is not available ({source}){hint}")]
    NoIoUring {
        /// The error from io_uring_setup.
        source: io::Error,
        /// What to do about it.
        hint: String,
    },
    /// `ulimit -l` is too small.
    #[error("locked-memory limit (ulimit -l) is {have} KiB, but {cores} shard(s) need at least {need} KiB; raise it (ulimit -l {need}, or LimitMEMLOCK= in the systemd unit) or pass fewer --cores")]
    MemlockTooSmall {
        /// The current soft limit in KiB.
        have: u64,
        /// What is needed in KiB.
        need: u64,
        /// Shards asked for.
        cores: usize,
    },
}

/// Holds the data directory's lock while the broker runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Runs every check; returns the lock on the data directory.
pub fn check(data_dir: &Path, cores: usize) -> Result<DataDirLock, PreflightError> {
    create_data_dir(data_dir)?;
    let lock = lock_data_dir(data_dir)?;
    check_direct_io(data_dir)?;
    check_io_uring()?;
    check_memlock(cores)?;
    Ok(lock)
}

/// Creates the data directory and returns its absolute path.
pub fn create_data_dir(data_dir: &Path) -> Result<PathBuf, PreflightError> {
    let error = |source| PreflightError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(error)?;
    std::fs::canonicalize(data_dir).map_err(error)
}

fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, PreflightError> {
    let path = data_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| PreflightError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    // SAFETY: flock on a file descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return Err(PreflightError::Locked {
            path: data_dir.to_path_buf(),
            lock: path,
        });
    }
    Ok(DataDirLock { _file: file })
}

fn check_direct_io(data_dir: &Path) -> Result<(), PreflightError> {
    let probe = data_dir.join(".direct-io-probe");
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    opened
        .map(drop)
        .map_err(|source| PreflightError::NoDirectIo {
            path: data_dir.to_path_buf(),
            source,
        })
}

fn check_io_uring() -> Result<(), PreflightError> {
    // io_uring_setup with an all-zero params struct (120 bytes) and 2 entries.
    let mut params = [0u8; 120];
    // SAFETY: the syscall writes at most sizeof(struct io_uring_params) (120 bytes) into params.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: fd is the ring descriptor just returned and owned here.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let source = io::Error::last_os_error();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned());
    let hint = match (source.raw_os_error(), disabled.as_deref()) {
        (_, Some("1" | "2")) => {
            "; the kernel has it switched off: set `sysctl kernel.io_uring_disabled=0` (1 allows it only for the io_uring_group)".to_owned()
        }
        (Some(libc::ENOSYS), _) => "; the kernel is too old or built without io_uring: Kelp needs Linux 5.8 or newer".to_owned(),
        (Some(libc::EPERM), _) => {
            "; a seccomp profile forbids it (Docker's default does): run the container with a profile that allows io_uring_setup, io_uring_enter and io_uring_register".to_owned()
        }
        _ => String::new(),
    };
    Err(PreflightError::NoIoUring { source, hint })
}

/// The locked-memory limit in bytes; `None` when unlimited or unknown.
fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(limit.rlim_cur)
}

/// How many shards `ulimit -l` has room for; `None` when it is unlimited.
pub fn shards_memlock_allows() -> Option<usize> {
    memlock_limit().map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX) / IO_MEMORY_PER_SHARD)
}

fn check_memlock(cores: usize) -> Result<(), PreflightError> {
    let Some(limit) = memlock_limit() else {
        return Ok(());
    };
    let need = (cores * IO_MEMORY_PER_SHARD) as u64 / 1024;
    let have = limit / 1024;
    if have < need {
        return Err(PreflightError::MemlockTooSmall { have, need, cores });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_broker_on_the_same_data_dir_is_refused() {
        // Beside the build, on a disk that takes O_DIRECT (not a tmpfs /tmp).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _lock = check(dir.path(), 1).unwrap();
        let err = check(dir.path(), 1).unwrap_err();
        assert!(matches!(err, PreflightError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another running Kelp"));
    }

    #[test]
    fn too_many_shards_for_the_memlock_limit_say_so() {
        let err = check_memlock(1 << 20).unwrap_err();
        assert!(err.to_string().contains("ulimit -l"), "{err}");
        let allowed = shards_memlock_allows().expect("the test machine limits locked memory");
        if allowed > 0 {
            check_memlock(allowed).unwrap();
        }
        assert!(check_memlock(allowed + 1).is_err());
    }
}
