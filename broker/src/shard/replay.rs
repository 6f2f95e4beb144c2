//! Reading a coordinator's log from its start to its end, batch by batch,
//! to rebuild the coordinator's state after a restart.

use kelp_storage::batch::RecordBatch;
use kelp_storage::{Offset, StorageError};

use super::Log;

/// Bytes read from the log per step.
const READ_BYTES: usize = 1 << 20;

/// Hands every batch of `log`, in offset order, to `apply`.
pub async fn replay(
    log: &Log,
    mut apply: impl FnMut(RecordBatch) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    while next < end {
        let read = log.read(next, READ_BYTES).await?;
        if read.batches.is_empty() {
            break;
        }
        for bytes in read.batches {
            let batch = RecordBatch::parse(bytes)?;
            next = Offset(batch.last_offset() + 1);
            apply(batch)?;
        }
    }
    Ok(())
}
