//! One `__transaction_state` partition as its coordinator holds it: the
//! transactional ids that hash to it and their state, made durable in the
//! log before any client is told, and rebuilt from it after a restart.
//!
//! A change to one id runs alone: it claims the id, decides with
//! [`super::state`], writes the record, then applies it; a request for an
//! id whose change is in flight gets CONCURRENT_TRANSACTIONS, as in Kafka.
//! An ending transaction keeps its claim while its markers are written and
//! until its Complete record is, in a task of its own. Runs on the shard
//! that owns the partition's log.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use kelp_storage::batch::{BatchBuilder, Compression};
use kelp_storage::producers::TxnMarker;
use kelp_storage::StorageError;

use super::markers;
use super::records::{TxnKey, TxnStatus, TxnValue};
use super::settings::TxnSettings;
use super::state::{self, InitOutcome, TxnMetadata, TxnPartition};
use crate::groups::partition::now_ms;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::replay::replay;
use crate::shard::{Log, Shard};

/// The coordinator epoch markers carry: one coordinator, never moved.
pub const COORDINATOR_EPOCH: i32 = 0;

/// The transactional ids of one `__transaction_state` partition.
pub struct TxnLogPartition {
    /// The partition index.
    pub index: i32,
    log: Log,
    txns: RefCell<BTreeMap<String, TxnMetadata>>,
    /// Ids with a change in flight.
    claimed: RefCell<HashSet<String>>,
    settings: TxnSettings,
}

/// An id claimed for one change; released when dropped.
pub struct Claim {
    partition: Rc<TxnLogPartition>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.partition.claimed.borrow_mut().remove(&self.id);
    }
}

impl TxnLogPartition {
    /// Rebuilds the partition's transactional ids from its log, finishes
    /// the transactions that were ending when the broker stopped, and starts
    /// the timer that aborts transactions past their timeout.
    pub async fn load(
        shard: &Rc<Shard>,
        index: i32,
        log: Log,
        settings: TxnSettings,
    ) -> Result<Rc<TxnLogPartition>, StorageError> {
        let mut txns = BTreeMap::new();
        replay(&log, |batch| {
            if batch.is_control() {
                return Ok(());
            }
            // Coordinator records are small and uncompressed.
            for record in batch.records(64 << 20)? {
                apply_record(&mut txns, record?, batch.base_offset());
            }
            Ok(())
        })
        .await?;
        let partition = Rc::new(TxnLogPartition {
            index,
            log,
            txns: RefCell::new(txns),
            claimed: RefCell::default(),
            settings,
        });
        let ending: Vec<(String, TxnMetadata)> = partition
            .txns
            .borrow()
            .iter()
            .filter(|(_, m)| m.is_completing())
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        if !partition.txns.borrow().is_empty() {
            tracing::info!(
                partition = index,
                ids = partition.txns.borrow().len(),
                ending = ending.len(),
                "loaded transactional ids"
            );
        }
        for (id, metadata) in ending {
            if let Ok(claim) = partition.claim(&id) {
                spawn_completion(shard, claim, metadata);
            }
        }
        glommio::spawn_local(run_timers(Rc::clone(shard), Rc::clone(&partition))).detach();
        Ok(partition)
    }

    /// Claims `id` for one change, or CONCURRENT_TRANSACTIONS if another is in flight.
    fn claim(self: &Rc<Self>, id: &str) -> Result<Claim, ErrorCode> {
        if !self.claimed.borrow_mut().insert(id.to_owned()) {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        Ok(Claim {
            partition: Rc::clone(self),
            id: id.to_owned(),
        })
    }

    /// A request's producer against the id's current one, before waiting on
    /// a change in flight: a fenced producer hears so at once, as in Kafka,
    /// not CONCURRENT_TRANSACTIONS until the change is done.
    fn check_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
        let current = self.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        current.check_producer(producer_id, epoch)
    }

    /// The state of one transactional id.
    pub fn get(&self, id: &str) -> Option<TxnMetadata> {
        self.txns.borrow().get(id).cloned()
    }

    /// Every transactional id with its state.
    pub fn all(&self) -> Vec<(String, TxnMetadata)> {
        self.txns
            .borrow()
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    /// InitProducerId for a transactional id: the producer id and epoch
    /// the new instance uses.
    pub async fn init_producer_id(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ErrorCode> {
        let claim = self.claim(id)?;
        let current = self.get(id);
        let fresh = if state::needs_new_producer_id(current.as_ref()) {
            Some(super::coordinator::new_producer_id(shard).await?)
        } else {
            None
        };
        let outcome =
            state::init_producer_id(current.as_ref(), timeout_ms, expected, now_ms(), || {
                fresh.ok_or(ErrorCode::UnknownServerError)
            })?;
        match outcome {
            InitOutcome::Answer { producer_id, epoch } => Ok((producer_id, epoch)),
            InitOutcome::Write(next) => {
                self.write(id, Some(&next)).await?;
                let answer = (next.producer_id, next.epoch);
                self.txns.borrow_mut().insert(id.to_owned(), next);
                Ok(answer)
            }
            InitOutcome::AbortFirst(abort) => {
                self.write(id, Some(&abort)).await?;
                self.txns.borrow_mut().insert(id.to_owned(), abort.clone());
                tracing::info!(
                    transactional_id = id,
                    producer_id = abort.producer_id,
                    "a new instance aborts the open transaction of the previous one"
                );
                spawn_completion(shard, claim, abort);
                Err(ErrorCode::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn.
    pub async fn add_partitions(
        self: &Rc<Self>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<(), ErrorCode> {
        self.check_producer(id, producer_id, epoch)?;
        let _claim = self.claim(id)?;
        let current = self.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if let Some(next) =
            state::add_partitions(&current, producer_id, epoch, partitions, now_ms())?
        {
            self.write(id, Some(&next)).await?;
            self.txns.borrow_mut().insert(id.to_owned(), next);
        }
        Ok(())
    }

    /// Whether `partition` is in the open transaction of `producer_id` at
    /// `epoch` (KIP-890 verification of a first transactional write).
    pub fn verify_partition(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &TxnPartition,
    ) -> Result<(), ErrorCode> {
        let current = self.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        current.check_producer(producer_id, epoch)?;
        if current.is_completing() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        if current.status == TxnStatus::Ongoing && current.partitions.contains(partition) {
            Ok(())
        } else {
            Err(ErrorCode::InvalidTxnState)
        }
    }

    /// EndTxn: answered once the prepare record is durable; the markers
    /// and the Complete record follow in the background.
    pub async fn end_txn(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        self.check_producer(id, producer_id, epoch)?;
        let claim = self.claim(id)?;
        let current = self.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let Some(prepare) = state::end_txn(&current, producer_id, epoch, commit, now_ms())? else {
            return Ok(());
        };
        self.write(id, Some(&prepare)).await?;
        self.txns
            .borrow_mut()
            .insert(id.to_owned(), prepare.clone());
        spawn_completion(shard, claim, prepare);
        Ok(())
    }

    /// Writes one id's record (a tombstone for `None`) and makes it durable.
    async fn write(&self, id: &str, metadata: Option<&TxnMetadata>) -> Result<(), ErrorCode> {
        let key = TxnKey {
            transactional_id: id.to_owned(),
        }
        .encode();
        let value = metadata.map(|m| m.to_value().encode());
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(now_ms(), Some(&key), value.as_deref(), &[]);
        let batch = builder.build(0).map_err(|e| {
            tracing::error!(error = %e, "building a transaction record batch failed");
            ErrorCode::UnknownServerError
        })?;
        let appended = self.log.append_internal(batch, LEADER_EPOCH).await;
        let flushed = match appended {
            Ok(_) => self.log.flush().await,
            Err(e) => Err(e),
        };
        flushed.map_err(|e| {
            tracing::error!(partition = self.index, error = %e, "writing __transaction_state failed");
            match e {
                StorageError::Io { .. } | StorageError::Poisoned { .. } => ErrorCode::NotCoordinator,
                _ => ErrorCode::CoordinatorNotAvailable,
            }
        })
    }

    /// Aborts transactions open past their timeout, fencing their
    /// producers, and forgets transactional ids idle past their expiration.
    async fn tick(self: &Rc<Self>, shard: &Rc<Shard>) {
        let now = now_ms();
        let candidates: Vec<String> = self
            .all()
            .into_iter()
            .filter(|(_, m)| {
                state::timed_out(m, now).is_some()
                    || state::expired(m, now, self.settings.id_expiration_ms)
            })
            .map(|(id, _)| id)
            .collect();
        for id in candidates {
            // Decided on the state as it is once claimed: the writes of
            // earlier candidates let requests change it meanwhile.
            let Ok(claim) = self.claim(&id) else {
                continue;
            };
            let Some(metadata) = self.get(&id) else {
                continue;
            };
            if let Some(abort) = state::timed_out(&metadata, now) {
                tracing::info!(
                    transactional_id = id,
                    producer_id = abort.producer_id,
                    timeout_ms = abort.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                if self.write(&id, Some(&abort)).await.is_ok() {
                    self.txns.borrow_mut().insert(id.clone(), abort.clone());
                    spawn_completion(shard, claim, abort);
                }
            } else if state::expired(&metadata, now, self.settings.id_expiration_ms)
                && self.write(&id, None).await.is_ok()
            {
                tracing::info!(transactional_id = id, "transactional id expired");
                self.txns.borrow_mut().remove(&id);
            }
        }
    }

    /// Writes the Complete record of an ending transaction whose markers
    /// are all written.
    async fn complete(&self, id: &str, ending: &TxnMetadata) -> Result<(), ErrorCode> {
        let done = state::completed(ending, now_ms());
        self.write(id, Some(&done)).await?;
        self.txns.borrow_mut().insert(id.to_owned(), done);
        Ok(())
    }
}

/// Whether a loaded record changes an id: the latest value wins, a
/// tombstone removes it.
fn apply_record(
    txns: &mut BTreeMap<String, TxnMetadata>,
    record: kelp_storage::batch::Record,
    offset: i64,
) {
    let Some(key) = record.key else {
        return;
    };
    let key = match TxnKey::decode(&key) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(offset, error = %e, "skipping an undecodable __transaction_state key");
            return;
        }
    };
    match record.value.map(|v| TxnValue::decode(&v)) {
        None => {
            txns.remove(&key.transactional_id);
        }
        Some(Ok(value)) => {
            txns.insert(key.transactional_id, TxnMetadata::from_value(&value));
        }
        Some(Err(e)) => {
            tracing::warn!(offset, error = %e, "skipping an undecodable __transaction_state value");
        }
    }
}

/// Writes an ending transaction's markers to every partition, retrying
/// until they are written or the broker stops, then its Complete record.
/// Holds the id's claim throughout.
fn spawn_completion(shard: &Rc<Shard>, claim: Claim, ending: TxnMetadata) {
    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        let marker = TxnMarker {
            producer_id: ending.producer_id,
            epoch: ending.epoch,
            commit: ending.status == TxnStatus::PrepareCommit,
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        let mut backoff = Duration::from_millis(50);
        let mut left: Vec<TxnPartition> = ending.partitions.iter().cloned().collect();
        loop {
            left = markers::write(&shard, marker, left).await;
            if left.is_empty() {
                break;
            }
            if shard.stopping.is_triggered() {
                // Finished after the restart, from the Prepare record.
                return;
            }
            tracing::warn!(
                transactional_id = claim.id,
                partitions = left.len(),
                "transaction markers not yet written; retrying"
            );
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        // The Complete record is retried like the markers: until it is
        // written, the id answers CONCURRENT_TRANSACTIONS.
        while let Err(code) = claim.partition.complete(&claim.id, &ending).await {
            if shard.stopping.is_triggered() {
                return;
            }
            tracing::warn!(
                transactional_id = claim.id,
                ?code,
                "could not write the transaction's Complete record; retrying"
            );
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    })
    .detach();
}

/// Runs [`TxnLogPartition::tick`] every abort-check interval until the
/// shard stops.
async fn run_timers(shard: Rc<Shard>, partition: Rc<TxnLogPartition>) {
    let interval = Duration::from_millis(
        u64::try_from(partition.settings.abort_check_interval_ms).unwrap_or(10_000),
    );
    let stopping = Rc::clone(&shard.stopping);
    loop {
        let stop = pin!(stopping.triggered());
        let sleep = pin!(glommio::timer::sleep(interval));
        if let Either::Left(_) = select(stop, sleep).await {
            return;
        }
        partition.tick(&shard).await;
    }
}
