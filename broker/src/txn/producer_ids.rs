//! Producer ids: handed out by the controller shard from blocks whose end
//! is saved before the first id of a block is used, so no id is handed out
//! twice, across restarts too (the rest of a block in use at a crash is
//! skipped), as Kafka's `ProducerIdManager` does.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Ids reserved per saved block (Kafka's `PRODUCER_ID_BLOCK_SIZE`).
const BLOCK_SIZE: i64 = 1000;
/// The file, in the data directory, holding the end of the last block.
const FILE: &str = "producer-id-block";

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// The block file could not be read or written.
    #[error("producer id block file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The block file holds something Kelp did not write.
    #[error("producer id block file {0} is damaged")]
    Damaged(PathBuf),
    /// Every id up to `i64::MAX` was used.
    #[error("producer ids are exhausted")]
    Exhausted,
}

/// The allocator, on the controller shard.
pub struct ProducerIds {
    path: PathBuf,
    next: Cell<i64>,
    block_end: Cell<i64>,
}

impl ProducerIds {
    /// Loads the saved block end from `data_dir`; ids start there.
    pub fn load(data_dir: &Path) -> Result<ProducerIds, ProducerIdError> {
        let path = data_dir.join(FILE);
        let end = match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes: [u8; 8] = bytes
                    .try_into()
                    .map_err(|_| ProducerIdError::Damaged(path.clone()))?;
                let end = i64::from_be_bytes(bytes);
                if end < 0 {
                    return Err(ProducerIdError::Damaged(path));
                }
                end
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ProducerIdError::Io { path, source }),
        };
        Ok(ProducerIds {
            path,
            next: Cell::new(end),
            block_end: Cell::new(end),
        })
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> Result<i64, ProducerIdError> {
        let id = self.next.get();
        if id == self.block_end.get() {
            let end = id
                .checked_add(BLOCK_SIZE)
                .ok_or(ProducerIdError::Exhausted)?;
            self.save(end)?;
            self.block_end.set(end);
        }
        self.next.set(id + 1);
        Ok(id)
    }

    /// Saves a block end durably (write, fsync, rename, fsync the directory).
    fn save(&self, end: i64) -> Result<(), ProducerIdError> {
        let io = |source| ProducerIdError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&end.to_be_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::load(dir.path()).unwrap();
        let first: Vec<i64> = (0..1500).map(|_| ids.next_id().unwrap()).collect();
        assert_eq!(first, (0..1500).collect::<Vec<_>>());
        drop(ids);
        // The second block was reserved: a restart starts after it.
        let ids = ProducerIds::load(dir.path()).unwrap();
        assert_eq!(ids.next_id().unwrap(), 2000);
        std::fs::write(dir.path().join(FILE), b"xyz").unwrap();
        assert!(matches!(
            ProducerIds::load(dir.path()),
            Err(ProducerIdError::Damaged(_))
        ));
    }
}
