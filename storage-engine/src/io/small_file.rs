//! Small metadata files (checkpoints, markers) written atomically: a
//! checksummed payload goes to a temporary name, is synced, and is renamed
//! over the real name, so a reader sees the old file or the new one whole.

use std::io;
use std::path::Path;

use bytes::Bytes;

use super::{align_up, IoBuffer, OpenMode, Storage, StorageFile};

const MAGIC: u32 = 0x4b45_4c50; // "KELP"
const HEADER_LEN: usize = 12;

/// Atomically replaces `path` with `payload`.
pub async fn write_small_file<S: Storage>(
    storage: &S,
    path: &Path,
    payload: &[u8],
) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let file = storage.open(&tmp, OpenMode::CreateTruncate).await?;
    let len = HEADER_LEN + payload.len();
    let mut buf = file.alloc_buffer(
        usize::try_from(align_up(len as u64, file.alignment())).expect("small files fit in memory"),
    );
    let bytes = buf.as_mut_slice();
    bytes.fill(0);
    let payload_len = u32::try_from(payload.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "small file payload over 4 GiB")
    })?;
    bytes[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    bytes[4..8].copy_from_slice(&payload_len.to_be_bytes());
    bytes[8..12].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    bytes[HEADER_LEN..len].copy_from_slice(payload);
    file.write_at(buf, 0).await?;
    file.sync().await?;
    storage.rename(&tmp, path).await?;
    if let Some(dir) = path.parent() {
        storage.sync_dir(dir).await?;
    }
    Ok(())
}

/// Reads a file written by [`write_small_file`]: `None` if it is missing,
/// an `InvalidData` error if it is damaged.
pub async fn read_small_file<S: Storage>(storage: &S, path: &Path) -> io::Result<Option<Bytes>> {
    let file = match storage.open(path, OpenMode::Existing).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = usize::try_from(file.size().await?).unwrap_or(usize::MAX);
    let bytes = file.read_at(0, size.min(64 << 20)).await?;
    let damaged = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    if bytes.len() < HEADER_LEN || bytes[0..4] != MAGIC.to_be_bytes() {
        return Err(damaged("not a Kelp metadata file"));
    }
    let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let crc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if HEADER_LEN + len > bytes.len() {
        return Err(damaged("truncated"));
    }
    let payload = bytes.slice(HEADER_LEN..HEADER_LEN + len);
    if crc32c::crc32c(&payload) != crc {
        return Err(damaged("checksum mismatch"));
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryStorage;

    #[test]
    fn round_trips_and_detects_damage() {
        glommio::LocalExecutor::default().run(async {
            let storage = MemoryStorage::new();
            let dir = Path::new("/d");
            storage.create_dir_all(dir).await.unwrap();
            let path = dir.join("marker");
            assert!(read_small_file(&storage, &path).await.unwrap().is_none());
            write_small_file(&storage, &path, b"hello").await.unwrap();
            assert_eq!(
                &read_small_file(&storage, &path).await.unwrap().unwrap()[..],
                b"hello"
            );
            storage.corrupt(&path, 13, b"X");
            let err = read_small_file(&storage, &path).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
