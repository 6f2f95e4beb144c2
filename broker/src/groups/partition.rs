//! One `__consumer_offsets` partition as its coordinator holds it: the
//! groups that hash to it, their committed offsets, the requests waiting
//! on a rebalance, and the log that makes all of it durable.
//!
//! The in-memory state is authoritative while the partition is loaded;
//! every change a client is told about is first written to the log and
//! flushed, and [`OffsetsPartition::load`] rebuilds the state from the log
//! after a restart. Runs on the shard that owns the partition's log.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use kelp_net::signal::Signal;
use kelp_net::Shutdown;
use kelp_storage::batch::{parse_marker, BatchBuilder, Compression};
use kelp_storage::log::AppendOrigin;
use kelp_storage::producers::{ProducerError, TxnMarker};
use kelp_storage::StorageError;
use uuid::Uuid;

use super::classic::{
    ClassicGroup, GroupError, GroupState, JoinRequest, JoinResponse, Millis, Reply, SyncResponse,
};
use super::consumer;
use super::consumer::{
    CommitRefusal, ConsumerGroup, ConsumerGroupError, ConsumerSnapshot, Heartbeat, HeartbeatAnswer,
};
use super::consumer_log;
use super::consumer_records::ConsumerRecordKey;
use super::records::{GroupMetadataValue, OffsetValue, RecordKey};
use super::settings::GroupSettings;
use crate::kafka::errors::ErrorCode;
use crate::kafka::handlers::produce::LEADER_EPOCH;
use crate::shard::replay::replay as replay_log;
use crate::shard::Log;

/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_MAX_CHARS: usize = 4096;
/// Largest decompressed batch accepted while loading.
const LOAD_MAX_DECOMPRESSED: usize = 64 << 20;

/// The wall clock in ms.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A committed offset and where its record sits in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The commit.
    pub value: OffsetValue,
    /// The log offset of its record: a later record wins.
    pub record_offset: i64,
}

/// A group and its committed offsets.
#[derive(Debug)]
pub struct GroupEntry {
    /// The group's membership state under the classic protocol.
    pub group: ClassicGroup,
    /// The group under the KIP-848 protocol, once a member joined by it;
    /// the classic state then stays Empty.
    pub consumer: Option<ConsumerGroup>,
    /// Committed offsets by topic and partition.
    pub offsets: BTreeMap<(String, i32), Committed>,
}

impl GroupEntry {
    fn new(id: &str, now: Millis, settings: GroupSettings) -> GroupEntry {
        GroupEntry {
            group: ClassicGroup::new(id, now).with_settings(settings),
            consumer: None,
            offsets: BTreeMap::new(),
        }
    }

    /// Whether members of the KIP-848 protocol are in the group.
    pub fn has_consumer_members(&self) -> bool {
        self.consumer.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// The group's type ("classic" or "consumer") and state, as ListGroups shows them.
    pub fn kind_and_state(&self) -> (&'static str, &'static str) {
        match &self.consumer {
            Some(consumer) if self.group.state() == GroupState::Empty => {
                ("consumer", consumer.state_name())
            }
            _ => ("classic", self.group.state().name()),
        }
    }
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug)]
pub struct ListedGroup {
    /// Group id.
    pub id: String,
    /// "classic" or "consumer".
    pub kind: &'static str,
    /// State name.
    pub state: &'static str,
    /// Protocol type (`""` for none).
    pub protocol_type: String,
}

/// Why a ConsumerGroupHeartbeat is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeartbeatRefusal {
    /// The group exists under the classic protocol, with members.
    GroupIdNotFound,
    /// The consumer group refused it.
    Group(ConsumerGroupError),
    /// Its change could not be made durable.
    Coordinator(ErrorCode),
}

/// Which request a waiter answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WaitKind {
    Join,
    Sync,
}

type WaiterKey = (String, String, WaitKind);

/// An offset to commit.
#[derive(Clone, Debug)]
pub struct CommitEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// What to store.
    pub value: OffsetValue,
}

/// Who commits offsets: a member of the group, or (generation -1, no
/// member id) a client outside it.
#[derive(Clone, Copy, Debug)]
pub struct Committer<'a> {
    /// Member id; empty from outside the group.
    pub member_id: &'a str,
    /// The static member's `group.instance.id`.
    pub instance_id: Option<&'a str>,
    /// Generation (classic) or member epoch (KIP-848); -1 from outside the group.
    pub generation: i32,
}

/// The transactional producer a TxnOffsetCommit writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnProducer {
    /// Producer id.
    pub id: i64,
    /// Producer epoch: one older than the log has seen is a zombie's.
    pub epoch: i16,
}

/// Offsets written by transactions whose marker has not come yet, by
/// producer id, then group, topic and partition.
type PendingOffsets = BTreeMap<i64, BTreeMap<(String, String, i32), Committed>>;

/// The groups of one `__consumer_offsets` partition.
pub struct OffsetsPartition {
    /// The partition index.
    pub index: i32,
    log: Log,
    groups: RefCell<BTreeMap<String, GroupEntry>>,
    /// TxnOffsetCommit offsets waiting for their transaction's marker:
    /// OffsetFetch does not show them until a commit marker applies them.
    pending: RefCell<PendingOffsets>,
    waiters: RefCell<HashMap<WaiterKey, oneshot::Sender<Reply>>>,
    /// Signalled when a deadline may have moved.
    changed: Signal,
    /// Set at shutdown: nothing waits on a rebalance any more.
    stopping: Rc<Shutdown>,
    /// Topic names to ids as last seen, for consumer group records.
    topic_ids: RefCell<TopicIds>,
    /// The broker's group settings.
    settings: GroupSettings,
}

/// Topic names and their ids.
pub type TopicIds = BTreeMap<String, Uuid>;

impl OffsetsPartition {
    /// Rebuilds the partition's groups and offsets from its log, and starts
    /// its timers (sessions, rebalances, offset retention) until `stopping`.
    /// `topic_ids` maps topic names to ids, for consumer group records.
    pub async fn load(
        index: i32,
        log: Log,
        stopping: Rc<Shutdown>,
        topic_ids: TopicIds,
        settings: GroupSettings,
    ) -> Result<Rc<OffsetsPartition>, StorageError> {
        let now = now_ms();
        let mut replay = Replay::new(now, settings);
        let mut records = 0usize;
        replay_log(&log, |batch| {
            if batch.is_control() {
                // A marker ends its producer's transaction: the offsets it
                // wrote here apply, or are dropped.
                if let Some(marker) = parse_marker(&batch) {
                    replay.end_txn(&marker, batch.base_offset());
                }
                return Ok(());
            }
            // TxnOffsetCommit records: they wait for their marker.
            let producer =
                (batch.is_transactional() && batch.producer_id() >= 0).then(|| batch.producer_id());
            for record in batch.records(LOAD_MAX_DECOMPRESSED)? {
                let record = record?;
                let offset = batch.base_offset() + i64::from(record.offset_delta);
                records += 1;
                replay.apply(record.key, record.value, offset, producer);
            }
            Ok(())
        })
        .await?;
        let Replay {
            mut groups,
            metadata,
            consumers,
            pending,
            ..
        } = replay;
        for (id, value) in metadata {
            match value {
                Some(value) => {
                    groups
                        .entry(id.clone())
                        .or_insert_with(|| GroupEntry::new(&id, now, settings))
                        .group = ClassicGroup::restore(&id, &value, now, settings);
                }
                None => {
                    // Deleted: only offsets committed after the deletion stay,
                    // and those a transaction still holds.
                    if groups.get(&id).is_some_and(|g| g.offsets.is_empty())
                        && !has_open_txn(&pending, &id)
                    {
                        groups.remove(&id);
                    }
                }
            }
        }
        let name_of = |id: &Uuid| {
            topic_ids
                .iter()
                .find(|(_, t)| *t == id)
                .map(|(name, _)| name.clone())
        };
        for consumer in consumers.finish(&name_of, now, settings) {
            let id = consumer.id.clone();
            groups
                .entry(id.clone())
                .or_insert_with(|| GroupEntry::new(&id, now, settings))
                .consumer = Some(consumer);
        }
        if !groups.is_empty() {
            tracing::info!(
                partition = index,
                groups = groups.len(),
                records,
                "loaded consumer groups"
            );
        }
        let partition = Rc::new(OffsetsPartition {
            index,
            log,
            groups: RefCell::new(groups),
            pending: RefCell::new(pending),
            waiters: RefCell::new(HashMap::new()),
            changed: Signal::default(),
            stopping,
            topic_ids: RefCell::new(topic_ids),
            settings,
        });
        glommio::spawn_local(run_timers(Rc::clone(&partition))).detach();
        Ok(partition)
    }

    /// Runs `f` on the group, if it exists.
    pub fn with_group<T>(&self, group_id: &str, f: impl FnOnce(&GroupEntry) -> T) -> Option<T> {
        self.groups.borrow().get(group_id).map(f)
    }

    /// Every group id of this partition with its state and protocol type.
    pub fn list(&self) -> Vec<ListedGroup> {
        self.groups
            .borrow()
            .values()
            .map(|e| {
                let (kind, state) = e.kind_and_state();
                let protocol_type = if kind == "consumer" {
                    "consumer".to_owned()
                } else {
                    e.group.protocol_type().unwrap_or_default().to_owned()
                };
                ListedGroup {
                    id: e.group.id.clone(),
                    kind,
                    state,
                    protocol_type,
                }
            })
            .collect()
    }

    /// ConsumerGroupHeartbeat. `partition_counts` holds every topic's
    /// partition count and `topic_ids` their ids. What changed is written
    /// and flushed before the answer.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: Heartbeat,
        partition_counts: &BTreeMap<String, i32>,
        topic_ids: TopicIds,
    ) -> Result<HeartbeatAnswer, HeartbeatRefusal> {
        let now = now_ms();
        *self.topic_ids.borrow_mut() = topic_ids;
        consumer::validate(&request).map_err(HeartbeatRefusal::Group)?;
        let (answer, records) = {
            let mut groups = self.groups.borrow_mut();
            if let Some(entry) = groups.get(group_id) {
                if entry.group.state() != GroupState::Empty {
                    // A classic group in use cannot take members of the other protocol.
                    return Err(HeartbeatRefusal::GroupIdNotFound);
                }
            } else if request.member_epoch != 0 {
                return Err(HeartbeatRefusal::Group(ConsumerGroupError::UnknownMemberId));
            }
            let entry = groups
                .entry(group_id.to_owned())
                .or_insert_with(|| GroupEntry::new(group_id, now, self.settings));
            let consumer = entry.consumer.get_or_insert_with(|| {
                ConsumerGroup::new(group_id, now).with_settings(self.settings)
            });
            let before = consumer.snapshot();
            let answer = consumer
                .heartbeat(request, partition_counts, now)
                .map_err(HeartbeatRefusal::Group)?;
            (
                answer,
                self.changes(group_id, &before, &consumer.snapshot()),
            )
        };
        self.changed.notify();
        if !records.is_empty() {
            self.write(records)
                .await
                .map_err(HeartbeatRefusal::Coordinator)?;
        }
        Ok(answer)
    }

    /// The records that persist a consumer group's change, none if nothing
    /// durable changed.
    fn changes(
        &self,
        group_id: &str,
        before: &ConsumerSnapshot,
        after: &ConsumerSnapshot,
    ) -> Vec<consumer_log::Record> {
        let ids = self.topic_ids.borrow();
        let id_of = |topic: &str| ids.get(topic).copied();
        let now = consumer_log::records(group_id, None, after, &id_of);
        if now == consumer_log::records(group_id, None, before, &id_of) {
            return Vec::new();
        }
        consumer_log::records(group_id, Some(before), after, &id_of)
    }

    /// JoinGroup: waits until the group answers this member.
    pub async fn join(&self, group_id: &str, request: JoinRequest) -> JoinResponse {
        let now = now_ms();
        let member_id = request.member_id.clone();
        let outcome = {
            let mut groups = self.groups.borrow_mut();
            if !groups.contains_key(group_id) && !request.member_id.is_empty() {
                None
            } else {
                let entry = groups
                    .entry(group_id.to_owned())
                    .or_insert_with(|| GroupEntry::new(group_id, now, self.settings));
                let before = Fingerprint::of(&entry.group);
                let (filed, replies) = entry.group.join(request, now);
                let snapshot = before.persist_after(&entry.group);
                Some((filed, replies, snapshot))
            }
        };
        let Some((filed, replies, snapshot)) = outcome else {
            return JoinResponse::error(GroupError::UnknownMemberId, &member_id);
        };
        let receiver = self.wait(group_id, &filed, WaitKind::Join);
        self.release(group_id, replies, snapshot).await;
        match receiver.await {
            Ok(Reply::Join(_, response)) => response,
            // The broker is stopping, or the member asked again meanwhile.
            _ => JoinResponse::error(GroupError::NotCoordinator, &filed),
        }
    }

    /// SyncGroup: waits for the leader's assignment.
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResponse {
        let now = now_ms();
        let outcome = {
            let mut groups = self.groups.borrow_mut();
            groups.get_mut(group_id).map(|entry| {
                let before = Fingerprint::of(&entry.group);
                let replies =
                    entry
                        .group
                        .sync(member_id, instance_id, generation, assignments, now);
                (replies, before.persist_after(&entry.group))
            })
        };
        let Some((replies, snapshot)) = outcome else {
            return sync_error(GroupError::UnknownMemberId);
        };
        let receiver = self.wait(group_id, member_id, WaitKind::Sync);
        self.release(group_id, replies, snapshot).await;
        match receiver.await {
            Ok(Reply::Sync(_, response)) => response,
            _ => sync_error(GroupError::NotCoordinator),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let mut groups = self.groups.borrow_mut();
        let entry = groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        entry
            .group
            .heartbeat(member_id, instance_id, generation, now_ms())
    }

    /// LeaveGroup: one result per member; `None` if the group is unknown.
    pub async fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Option<Vec<Result<(), GroupError>>> {
        let now = now_ms();
        let (results, replies, snapshot) = {
            let mut groups = self.groups.borrow_mut();
            let entry = groups.get_mut(group_id)?;
            let before = Fingerprint::of(&entry.group);
            let (results, replies) = entry.group.leave(members, now);
            (results, replies, before.persist_after(&entry.group))
        };
        self.release(group_id, replies, snapshot).await;
        Some(results)
    }

    /// OffsetCommit: the group's verdict, then one result per entry.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        entries: Vec<CommitEntry>,
    ) -> Result<Vec<Result<(), ErrorCode>>, ErrorCode> {
        let committer = Committer {
            member_id,
            instance_id,
            generation,
        };
        self.admit_commit(group_id, committer, &entries, false)?;
        let (results, accepted, records) = offset_records(group_id, entries);
        if records.is_empty() {
            return Ok(results);
        }
        let base = self.write(records).await?;
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(|| GroupEntry::new(group_id, now_ms(), self.settings));
        for (i, entry) in accepted.into_iter().enumerate() {
            let committed = Committed {
                value: entry.value,
                record_offset: base + i as i64,
            };
            keep_latest(
                &mut group.offsets,
                (entry.topic, entry.partition),
                committed,
            );
        }
        Ok(results)
    }

    /// Notes, before the transaction coordinator is asked, that `producer`
    /// may write offsets here in its transaction; a marker arriving first
    /// withdraws it and [`OffsetsPartition::txn_commit`] is then refused
    /// (Kafka's verification guard).
    pub fn begin_txn_verification(&self, producer: TxnProducer) {
        self.log.begin_txn_verification(producer.id, producer.epoch);
    }

    /// TxnOffsetCommit: the group's verdict, then one result per entry.
    /// The offsets are written as one transactional batch of `producer`
    /// and stay pending until [`OffsetsPartition::complete_txn`] sees the
    /// transaction's marker. A zombie's epoch is refused with
    /// INVALID_PRODUCER_EPOCH, as Kafka's log refuses it.
    pub async fn txn_commit(
        &self,
        group_id: &str,
        producer: TxnProducer,
        committer: Committer<'_>,
        entries: Vec<CommitEntry>,
    ) -> Result<Vec<Result<(), ErrorCode>>, ErrorCode> {
        // Kafka's transaction verification refuses these before the group
        // is looked at; the log would not track such a batch as a
        // transaction, so a restart would apply its offsets at once.
        if producer.id < 0 {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if producer.epoch < 0 {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        self.admit_commit(group_id, committer, &entries, true)?;
        let (results, accepted, records) = offset_records(group_id, entries);
        if records.is_empty() {
            return Ok(results);
        }
        let mut builder = BatchBuilder::new(Compression::None)
            .producer(producer.id, producer.epoch, -1)
            .transactional(true);
        let now = now_ms();
        for (key, value) in &records {
            builder.push(now, Some(key), value.as_deref(), &[]);
        }
        let batch = builder.build(0).map_err(|e| {
            tracing::error!(error = %e, "building a transactional offset batch failed");
            ErrorCode::UnknownServerError
        })?;
        let info = self
            .log
            .append_internal(batch, LEADER_EPOCH)
            .await
            .map_err(|e| txn_write_error(&e))?;
        // Recorded before the flush, with no await since the append: a
        // marker appended meanwhile lands after these records and so ends
        // their transaction.
        {
            let mut pending = self.pending.borrow_mut();
            let written = pending.entry(producer.id).or_default();
            for (i, entry) in accepted.into_iter().enumerate() {
                let committed = Committed {
                    value: entry.value,
                    record_offset: info.base_offset.0 + i as i64,
                };
                written.insert(
                    (group_id.to_owned(), entry.topic, entry.partition),
                    committed,
                );
            }
        }
        self.log.flush().await.map_err(|e| coordinator_error(&e))?;
        Ok(results)
    }

    /// Ends a transaction on this partition for the transaction
    /// coordinator: appends its marker (whether or not the transaction
    /// wrote offsets here), makes it durable, then applies the offsets the
    /// transaction wrote here (commit) or drops them (abort). A marker from
    /// an older producer epoch than the log has seen is refused with
    /// INVALID_PRODUCER_EPOCH and changes nothing.
    pub async fn complete_txn(&self, marker: TxnMarker) -> Result<(), ErrorCode> {
        let info = self
            .log
            .append_marker(marker, LEADER_EPOCH)
            .await
            .map_err(|e| ErrorCode::from_storage(&e))?;
        self.log
            .flush()
            .await
            .map_err(|e| ErrorCode::from_storage(&e))?;
        settle(
            &mut self.groups.borrow_mut(),
            &mut self.pending.borrow_mut(),
            &marker,
            info.base_offset.0,
            (now_ms(), self.settings),
        );
        Ok(())
    }

    /// The partitions of `group_id` with offsets a transaction has written
    /// but not yet committed or aborted.
    pub fn pending_partitions(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        self.pending
            .borrow()
            .values()
            .flat_map(|written| written.keys())
            .filter(|(group, _, _)| group == group_id)
            .map(|(_, topic, partition)| (topic.clone(), *partition))
            .collect()
    }

    /// Checks who commits against the group (Kafka's `validateOffsetCommit`),
    /// and creates the group for a commit from outside one that does not
    /// exist. Transactional commits differ as in Kafka: v0-2 carry no
    /// member, so one from outside the group is taken whatever its state,
    /// a member may commit before its assignment arrives, and a stale
    /// member epoch is an illegal generation.
    fn admit_commit(
        &self,
        group_id: &str,
        committer: Committer<'_>,
        entries: &[CommitEntry],
        transactional: bool,
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        let Committer {
            member_id,
            instance_id,
            generation,
        } = committer;
        let outsider =
            transactional && generation == -1 && member_id.is_empty() && instance_id.is_none();
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group_id) {
            Some(entry)
                if entry.has_consumer_members()
                    || entry.consumer.is_some() && !member_id.is_empty() =>
            {
                if outsider {
                    return Ok(());
                }
                let consumer = entry.consumer.as_ref().expect("checked in the guard");
                let partitions: Vec<(String, i32)> = entries
                    .iter()
                    .map(|e| (e.topic.clone(), e.partition))
                    .collect();
                consumer
                    .validate_offset_commit(member_id, generation, &partitions)
                    .map_err(|refusal| match refusal {
                        CommitRefusal::UnknownMember => ErrorCode::UnknownMemberId,
                        CommitRefusal::StaleEpoch if transactional => ErrorCode::IllegalGeneration,
                        CommitRefusal::StaleEpoch => ErrorCode::StaleMemberEpoch,
                    })
            }
            Some(entry) if outsider && entry.group.state() != GroupState::Dead => Ok(()),
            Some(entry) => {
                match entry
                    .group
                    .validate_offset_commit(member_id, instance_id, generation, now)
                {
                    Err(GroupError::RebalanceInProgress) if transactional => Ok(()),
                    result => result.map_err(ErrorCode::from),
                }
            }
            // A group only committing offsets (manual assignment).
            None if generation < 0 => {
                groups.insert(
                    group_id.to_owned(),
                    GroupEntry::new(group_id, now, self.settings),
                );
                Ok(())
            }
            None => Err(ErrorCode::IllegalGeneration),
        }
    }

    /// OffsetDelete: per topic, whether its offsets were deleted.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<(String, Vec<(i32, ErrorCode)>)>, ErrorCode> {
        let (answers, records) = {
            let groups = self.groups.borrow();
            let entry = groups
                .get(group_id)
                .filter(|e| e.group.state() != GroupState::Dead)
                .ok_or(ErrorCode::GroupIdNotFound)?;
            let consumer_topics = entry
                .consumer
                .as_ref()
                .filter(|c| !c.is_empty())
                .map(ConsumerGroup::subscribed_topics);
            let active = !matches!(entry.group.state(), GroupState::Empty);
            if active && entry.group.protocol_type() != Some("consumer") {
                return Err(ErrorCode::NonEmptyGroup);
            }
            let mut answers = Vec::new();
            let mut records = Vec::new();
            for (topic, partitions) in topics {
                let subscribed = (active && entry.group.is_subscribed_to(&topic))
                    || consumer_topics.as_ref().is_some_and(|t| t.contains(&topic));
                let code = if subscribed {
                    ErrorCode::GroupSubscribedToTopic
                } else {
                    ErrorCode::None
                };
                for &partition in &partitions {
                    if !subscribed && entry.offsets.contains_key(&(topic.clone(), partition)) {
                        let key = RecordKey::Offset {
                            group: group_id.to_owned(),
                            topic: topic.clone(),
                            partition,
                        };
                        records.push((key.encode(), None));
                    }
                }
                answers.push((topic, partitions.into_iter().map(|p| (p, code)).collect()));
            }
            (answers, records)
        };
        if !records.is_empty() {
            let base = self.write(records.clone()).await?;
            self.forget_offsets(group_id, &records, base);
        }
        Ok(answers)
    }

    /// DeleteGroups for one group.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ErrorCode> {
        let records = {
            let groups = self.groups.borrow();
            let entry = groups
                .get(group_id)
                .filter(|e| e.group.state() != GroupState::Dead)
                .ok_or(ErrorCode::GroupIdNotFound)?;
            if entry.group.state() != GroupState::Empty || entry.has_consumer_members() {
                return Err(ErrorCode::NonEmptyGroup);
            }
            // Offsets pending in a transaction go too, as in Kafka: their
            // tombstones drop them, so a later commit marker applies nothing.
            let mut partitions: BTreeSet<(String, i32)> = entry.offsets.keys().cloned().collect();
            partitions.extend(self.pending_partitions(group_id));
            let mut records: Vec<(Bytes, Option<Bytes>)> = partitions
                .into_iter()
                .map(|(topic, partition)| {
                    let key = RecordKey::Offset {
                        group: group_id.to_owned(),
                        topic,
                        partition,
                    };
                    (key.encode(), None)
                })
                .collect();
            let key = RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            };
            records.push((key.encode(), None));
            if let Some(consumer) = &entry.consumer {
                records.extend(consumer_log::tombstones(group_id, &consumer.snapshot()));
            }
            records
        };
        let base = self.write(records.clone()).await?;
        self.forget_offsets(group_id, &records, base);
        if let Some(mut entry) = self.groups.borrow_mut().remove(group_id) {
            entry.group.mark_dead(now_ms());
        }
        Ok(())
    }

    // --- internals ---

    fn wait(&self, group_id: &str, member_id: &str, kind: WaitKind) -> oneshot::Receiver<Reply> {
        let (sender, receiver) = oneshot::channel();
        if self.stopping.is_triggered() {
            // Answered at once (NOT_COORDINATOR) by the dropped sender.
            return receiver;
        }
        let key = (group_id.to_owned(), member_id.to_owned(), kind);
        if let Some(old) = self.waiters.borrow_mut().insert(key, sender) {
            // The member asked again while waiting: the old request ends.
            drop(old);
        }
        receiver
    }

    /// Persists the group when it reached a state worth keeping, then
    /// hands each released reply to the request waiting for it.
    async fn release(
        &self,
        group_id: &str,
        mut replies: Vec<Reply>,
        snapshot: Option<GroupMetadataValue>,
    ) {
        self.changed.notify();
        if let Some(snapshot) = snapshot {
            let key = RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            };
            if let Err(code) = self
                .write(vec![(key.encode(), Some(snapshot.encode()))])
                .await
            {
                tracing::warn!(group = group_id, ?code, "could not persist the group");
                // An assignment that is not durable is not handed out:
                // the members rejoin.
                for reply in &mut replies {
                    if let Reply::Sync(_, response) = reply {
                        *response = sync_error(GroupError::CoordinatorNotAvailable);
                    }
                }
            }
        }
        let mut waiters = self.waiters.borrow_mut();
        for reply in replies {
            let key = match &reply {
                Reply::Join(to, _) => (group_id.to_owned(), to.clone(), WaitKind::Join),
                Reply::Sync(to, _) => (group_id.to_owned(), to.clone(), WaitKind::Sync),
            };
            if let Some(sender) = waiters.remove(&key) {
                // The client may have gone; nothing to do then.
                let _ = sender.send(reply);
            }
        }
    }

    /// Appends records as one batch and makes them durable; the log offset
    /// of the first.
    async fn write(&self, records: Vec<(Bytes, Option<Bytes>)>) -> Result<i64, ErrorCode> {
        let now = now_ms();
        let mut builder = BatchBuilder::new(Compression::None);
        for (key, value) in &records {
            builder.push(now, Some(key), value.as_deref(), &[]);
        }
        let batch = builder.build(0).map_err(|e| {
            tracing::error!(error = %e, "building a group record batch failed");
            ErrorCode::UnknownServerError
        })?;
        let info = self
            .log
            .append(batch, AppendOrigin::Leader(LEADER_EPOCH))
            .await
            .map_err(|e| coordinator_error(&e))?;
        self.log.flush().await.map_err(|e| coordinator_error(&e))?;
        Ok(info.base_offset.0)
    }

    /// Applies offset tombstones written from log offset `base` on: the
    /// offsets they delete go, unless committed after them meanwhile.
    fn forget_offsets(&self, group_id: &str, tombstones: &[(Bytes, Option<Bytes>)], base: i64) {
        let mut groups = self.groups.borrow_mut();
        let mut pending = self.pending.borrow_mut();
        for (i, (key, _)) in tombstones.iter().enumerate() {
            let Ok(RecordKey::Offset {
                topic, partition, ..
            }) = RecordKey::decode(key)
            else {
                continue;
            };
            let tombstone_offset = base + i as i64;
            forget_pending(&mut pending, group_id, &topic, partition, tombstone_offset);
            if let Some(entry) = groups.get_mut(group_id) {
                let key = (topic, partition);
                if entry
                    .offsets
                    .get(&key)
                    .is_some_and(|c| c.record_offset < tombstone_offset)
                {
                    entry.offsets.remove(&key);
                }
            }
        }
    }

    /// Expires sessions and rebalance timeouts due now, and old offsets.
    async fn tick(&self, now: Millis, expire_offsets: bool) {
        let mut due: Vec<(String, Vec<Reply>, Option<GroupMetadataValue>)> = Vec::new();
        let mut expired = Vec::new();
        let mut consumer_changes: Vec<(String, ConsumerSnapshot, ConsumerSnapshot)> = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            for entry in groups.values_mut() {
                if let Some(consumer) = &mut entry.consumer {
                    if consumer.next_deadline().is_some_and(|d| d <= now) {
                        let before = consumer.snapshot();
                        for member in consumer.tick(now) {
                            tracing::info!(
                                group = consumer.id,
                                member,
                                "consumer group member expired"
                            );
                        }
                        consumer_changes.push((consumer.id.clone(), before, consumer.snapshot()));
                    }
                }
                if entry.group.next_deadline().is_some_and(|d| d <= now) {
                    let before = Fingerprint::of(&entry.group);
                    let replies = entry.group.tick(now);
                    due.push((
                        entry.group.id.clone(),
                        replies,
                        before.persist_after(&entry.group),
                    ));
                }
                if expire_offsets {
                    let retention = self.settings.offsets_retention_ms;
                    // An offset a transaction is about to replace stays, as in Kafka.
                    let pending = self.pending_partitions(&entry.group.id);
                    for (topic, partition) in expired_offsets(entry, now, retention) {
                        if !pending.contains(&(topic.clone(), partition)) {
                            expired.push((entry.group.id.clone(), topic, partition));
                        }
                    }
                }
            }
        }
        for (group, replies, snapshot) in due {
            self.release(&group, replies, snapshot).await;
        }
        for (group, before, after) in consumer_changes {
            let records = self.changes(&group, &before, &after);
            if !records.is_empty() {
                if let Err(code) = self.write(records).await {
                    tracing::warn!(group, ?code, "could not persist the consumer group");
                }
            }
        }
        let mut touched: Vec<String> = Vec::new();
        for (group, topic, partition) in expired {
            let key = RecordKey::Offset {
                group: group.clone(),
                topic,
                partition,
            };
            let records = vec![(key.encode(), None)];
            if let Ok(base) = self.write(records.clone()).await {
                self.forget_offsets(&group, &records, base);
                if !touched.contains(&group) {
                    touched.push(group);
                }
            }
        }
        // An empty group whose last offset expired is deleted, as in Kafka,
        // unless a transaction holds offsets for it.
        for group in touched {
            let gone = self.with_group(&group, |e| {
                e.offsets.is_empty() && e.group.state() == GroupState::Empty
            }) == Some(true)
                && self.pending_partitions(&group).is_empty();
            if gone {
                if let Err(code) = self.delete_group(&group).await {
                    tracing::warn!(group, ?code, "deleting an expired group failed");
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        self.groups
            .borrow()
            .values()
            .flat_map(|e| {
                [
                    e.group.next_deadline(),
                    e.consumer.as_ref().and_then(ConsumerGroup::next_deadline),
                ]
            })
            .flatten()
            .min()
    }
}

/// Runs the partition's timers until the shard stops.
async fn run_timers(partition: Rc<OffsetsPartition>) {
    let stopping = Rc::clone(&partition.stopping);
    let check_every = partition.settings.offsets_retention_check_ms.max(1);
    let mut next_retention = now_ms() + check_every;
    loop {
        let seen = partition.changed.generation();
        let now = now_ms();
        let wake = partition
            .next_deadline()
            .unwrap_or(Millis::MAX)
            .min(next_retention);
        let sleep = Duration::from_millis(u64::try_from(wake.saturating_sub(now)).unwrap_or(0));
        let timer = pin!(glommio::timer::sleep(sleep));
        let changed = pin!(partition.changed.changed(seen));
        let stop = pin!(stopping.triggered());
        if let Either::Right(_) = select(select(timer, changed), stop).await {
            // Requests waiting on a rebalance end now, so shutdown need not
            // wait for one: the clients find the coordinator again.
            partition.waiters.borrow_mut().clear();
            return;
        }
        let now = now_ms();
        let retention = now >= next_retention;
        if retention {
            next_retention = now + check_every;
        }
        partition.tick(now, retention).await;
    }
}

/// What decides whether a group must be written out after a change.
struct Fingerprint {
    state: GroupState,
    generation: i32,
    members: Vec<String>,
}

impl Fingerprint {
    fn of(group: &ClassicGroup) -> Fingerprint {
        Fingerprint {
            state: group.state(),
            generation: group.generation(),
            members: group.members().map(|m| m.id.clone()).collect(),
        }
    }

    /// The group's record, when it became Stable or Empty or changed its
    /// members while Stable: the states a restarted broker rebuilds.
    fn persist_after(&self, group: &ClassicGroup) -> Option<GroupMetadataValue> {
        let members: Vec<String> = group.members().map(|m| m.id.clone()).collect();
        let changed = self.state != group.state()
            || self.generation != group.generation()
            || self.members != members;
        (changed && matches!(group.state(), GroupState::Stable | GroupState::Empty))
            .then(|| group.snapshot())
    }
}

/// What [`OffsetsPartition::load`] rebuilds from the log, record by record.
struct Replay {
    groups: BTreeMap<String, GroupEntry>,
    /// Group metadata, applied last: `None` for a deleted group.
    metadata: BTreeMap<String, Option<GroupMetadataValue>>,
    consumers: consumer_log::Loader,
    pending: PendingOffsets,
    now: Millis,
    settings: GroupSettings,
}

impl Replay {
    fn new(now: Millis, settings: GroupSettings) -> Replay {
        Replay {
            groups: BTreeMap::new(),
            metadata: BTreeMap::new(),
            consumers: consumer_log::Loader::default(),
            pending: PendingOffsets::new(),
            now,
            settings,
        }
    }

    /// Applies one record at `offset`; an offset commit written by
    /// `producer`'s transaction waits for its marker instead.
    fn apply(
        &mut self,
        key: Option<Bytes>,
        value: Option<Bytes>,
        offset: i64,
        producer: Option<i64>,
    ) {
        let Some(key) = key else {
            return;
        };
        let key = match RecordKey::decode(&key) {
            Ok(key) => key,
            Err(e) if e.is_unknown_record_type() => {
                match ConsumerRecordKey::decode(&key) {
                    Ok(key) => self.consumers.apply(key, value.as_deref()),
                    // Other coordinators' records (share groups, ...) are not Kelp's.
                    Err(e) if e.is_unknown_record_type() => {}
                    Err(e) => {
                        tracing::warn!(offset, error = %e, "skipping an undecodable consumer group key");
                    }
                }
                return;
            }
            Err(e) => {
                tracing::warn!(offset, error = %e, "skipping an undecodable __consumer_offsets key");
                return;
            }
        };
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let (now, settings) = (self.now, self.settings);
                // Kafka creates a simple group for offsets alone, pending ones too.
                let entry = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| GroupEntry::new(&group, now, settings));
                match value.map(|v| OffsetValue::decode(&v)) {
                    None => {
                        entry.offsets.remove(&(topic.clone(), partition));
                        forget_pending(&mut self.pending, &group, &topic, partition, offset);
                    }
                    Some(Ok(value)) => {
                        let committed = Committed {
                            value,
                            record_offset: offset,
                        };
                        match producer {
                            Some(id) => {
                                self.pending
                                    .entry(id)
                                    .or_default()
                                    .insert((group, topic, partition), committed);
                            }
                            None => {
                                entry.offsets.insert((topic, partition), committed);
                            }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(offset, error = %e, "skipping an undecodable offset commit");
                    }
                }
            }
            RecordKey::GroupMetadata { group } => {
                match value.map(|v| GroupMetadataValue::decode(&v)) {
                    None => {
                        self.metadata.insert(group, None);
                    }
                    Some(Ok(value)) => {
                        self.metadata.insert(group, Some(value));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(offset, error = %e, "skipping undecodable group metadata");
                    }
                }
            }
        }
    }

    /// Applies a transaction marker found at `offset`.
    fn end_txn(&mut self, marker: &TxnMarker, offset: i64) {
        settle(
            &mut self.groups,
            &mut self.pending,
            marker,
            offset,
            (self.now, self.settings),
        );
    }
}

/// Ends `marker`'s transaction, whose marker sits at `marker_offset`: the
/// offsets it wrote before the marker become committed offsets (unless a
/// later commit replaced them) or, on abort, are dropped.
fn settle(
    groups: &mut BTreeMap<String, GroupEntry>,
    pending: &mut PendingOffsets,
    marker: &TxnMarker,
    marker_offset: i64,
    (now, settings): (Millis, GroupSettings),
) {
    let Some(written) = pending.get_mut(&marker.producer_id) else {
        return;
    };
    // Offsets past the marker belong to the producer's next transaction.
    let (ended, next): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(written)
        .into_iter()
        .partition(|(_, c)| c.record_offset < marker_offset);
    if next.is_empty() {
        pending.remove(&marker.producer_id);
    } else {
        *written = next;
    }
    if !marker.commit {
        return;
    }
    for ((group, topic, partition), committed) in ended {
        // The group is deleted with its pending offsets; this only
        // guards against a log written otherwise.
        let entry = groups
            .entry(group.clone())
            .or_insert_with(|| GroupEntry::new(&group, now, settings));
        keep_latest(&mut entry.offsets, (topic, partition), committed);
    }
}

/// Stores `committed` unless the slot holds a commit from a later record:
/// commits land in log order, whatever order they finish in.
fn keep_latest(
    offsets: &mut BTreeMap<(String, i32), Committed>,
    key: (String, i32),
    committed: Committed,
) {
    match offsets.entry(key) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(committed);
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            if o.get().record_offset < committed.record_offset {
                o.insert(committed);
            }
        }
    }
}

/// Drops the pending offsets of a group's partition written before a
/// tombstone at `tombstone_offset`, as Kafka's replay of a tombstone does.
fn forget_pending(
    pending: &mut PendingOffsets,
    group: &str,
    topic: &str,
    partition: i32,
    tombstone_offset: i64,
) {
    let key = (group.to_owned(), topic.to_owned(), partition);
    pending.retain(|_, written| {
        if written
            .get(&key)
            .is_some_and(|c| c.record_offset < tombstone_offset)
        {
            written.remove(&key);
        }
        !written.is_empty()
    });
}

/// Whether a transaction has offsets of `group` pending.
fn has_open_txn(pending: &PendingOffsets, group: &str) -> bool {
    pending
        .values()
        .any(|written| written.keys().any(|(g, _, _)| g == group))
}

/// The offsets of `entry` past their retention (Kafka's `offsetExpirationCondition`).
fn expired_offsets(entry: &GroupEntry, now: Millis, retention_ms: Millis) -> Vec<(String, i32)> {
    let group = &entry.group;
    let subscribed = group.subscribed_topics();
    entry
        .offsets
        .iter()
        .filter(|((topic, _), committed)| {
            if let Some(expire) = committed.value.expire_timestamp_ms {
                return now >= expire;
            }
            let base = match (group.state(), group.protocol_type()) {
                (GroupState::Empty, Some(_)) => group.state_since,
                (_, None) => committed.value.commit_timestamp_ms,
                (GroupState::Stable, Some("consumer")) => match &subscribed {
                    Some(topics) if !topics.contains(topic) => committed.value.commit_timestamp_ms,
                    _ => return false,
                },
                _ => return false,
            };
            now - base >= retention_ms
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// Kafka's mapping of a failed group write to what the client is told.
fn coordinator_error(error: &StorageError) -> ErrorCode {
    match ErrorCode::from_storage(error) {
        ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge => ErrorCode::UnknownServerError,
        _ => ErrorCode::CoordinatorNotAvailable,
    }
}

/// Kafka's mapping of a failed transactional offset write: a zombie
/// producer is told so, the rest as for any group write.
fn txn_write_error(error: &StorageError) -> ErrorCode {
    match error {
        StorageError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
            ErrorCode::InvalidProducerEpoch
        }
        StorageError::Producer(ProducerError::NotInTransaction { .. }) => {
            ErrorCode::InvalidTxnState
        }
        _ => coordinator_error(error),
    }
}

/// Offset commit records for `entries`: one result per entry (metadata
/// over Kafka's limit is refused), the entries accepted, and their records
/// in the same order.
#[allow(clippy::type_complexity)]
fn offset_records(
    group_id: &str,
    entries: Vec<CommitEntry>,
) -> (
    Vec<Result<(), ErrorCode>>,
    Vec<CommitEntry>,
    Vec<(Bytes, Option<Bytes>)>,
) {
    let mut results = Vec::with_capacity(entries.len());
    let mut accepted = Vec::new();
    let mut records = Vec::new();
    for entry in entries {
        if entry.value.metadata.encode_utf16().count() > OFFSET_METADATA_MAX_CHARS {
            results.push(Err(ErrorCode::OffsetMetadataTooLarge));
            continue;
        }
        results.push(Ok(()));
        let key = RecordKey::Offset {
            group: group_id.to_owned(),
            topic: entry.topic.clone(),
            partition: entry.partition,
        };
        records.push((key.encode(), Some(entry.value.encode())));
        accepted.push(entry);
    }
    (results, accepted, records)
}

fn sync_error(error: GroupError) -> SyncResponse {
    SyncResponse {
        error: Some(error),
        assignment: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    impl OffsetsPartition {
        /// `txn_commit` after the verification the handler starts first.
        async fn verified_txn_commit(
            &self,
            group_id: &str,
            producer: TxnProducer,
            committer: Committer<'_>,
            entries: Vec<CommitEntry>,
        ) -> Result<Vec<Result<(), ErrorCode>>, ErrorCode> {
            self.begin_txn_verification(producer);
            self.txn_commit(group_id, producer, committer, entries)
                .await
        }
    }

    use super::*;
    use crate::groups::classic::Protocol;
    use kelp_storage::io::DmaStorage;
    use kelp_storage::log::LogContext;
    use kelp_storage::{LogConfig, LogId, PartitionLog, SystemClock, TailCache};
    use std::path::Path;

    async fn open_log(dir: &Path) -> Log {
        let ctx = LogContext {
            id: LogId(0),
            cache: Rc::new(TailCache::new(1 << 20)),
            clock: Rc::new(SystemClock),
        };
        Rc::new(
            PartitionLog::open(DmaStorage, dir, LogConfig::default(), ctx)
                .await
                .unwrap(),
        )
    }

    fn join_request(member_id: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_owned(),
            instance_id: None,
            client_id: "c".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".to_owned(),
            protocols: vec![Protocol {
                name: "range".to_owned(),
                metadata: Bytes::from_static(b"sub"),
            }],
            requires_known_member_id: false,
        }
    }

    fn commit(offset: i64) -> CommitEntry {
        CommitEntry {
            topic: "t".to_owned(),
            partition: 3,
            value: OffsetValue {
                offset,
                leader_epoch: 7,
                metadata: "meta".to_owned(),
                commit_timestamp_ms: now_ms(),
                expire_timestamp_ms: None,
            },
        }
    }

    fn committed(commit_ms: Millis, expire: Option<Millis>) -> Committed {
        Committed {
            value: OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: commit_ms,
                expire_timestamp_ms: expire,
            },
            record_offset: 0,
        }
    }

    #[test]
    fn failed_group_writes_map_to_kafkas_coordinator_errors() {
        let disk = StorageError::Poisoned {
            dir: "/data/__consumer_offsets-0".into(),
            operation: "fsync",
            reason: "EIO".to_owned(),
        };
        assert_eq!(coordinator_error(&disk), ErrorCode::NotCoordinator);
        let too_large = StorageError::BatchTooLarge { size: 2, max: 1 };
        assert_eq!(coordinator_error(&too_large), ErrorCode::UnknownServerError);
        let other = StorageError::NonMonotonicOffset {
            base: kelp_storage::Offset(1),
            log_end: kelp_storage::Offset(2),
        };
        assert_eq!(
            coordinator_error(&other),
            ErrorCode::CoordinatorNotAvailable
        );
    }

    #[test]
    fn offsets_expire_as_kafkas_retention_says() {
        let day = 24 * 60 * 60 * 1000;
        let retention = GroupSettings::default().offsets_retention_ms;
        // A simple group (offsets only): counted from each commit.
        let mut simple = GroupEntry::new("s", 0, GroupSettings::default());
        simple
            .offsets
            .insert(("old".to_owned(), 0), committed(0, None));
        simple
            .offsets
            .insert(("new".to_owned(), 0), committed(6 * day, None));
        simple.offsets.insert(
            ("explicit".to_owned(), 0),
            committed(6 * day, Some(6 * day + 5)),
        );
        let expired = expired_offsets(&simple, retention, retention);
        assert_eq!(
            expired,
            vec![("explicit".to_owned(), 0), ("old".to_owned(), 0)]
        );
        assert!(expired_offsets(&simple, retention - 1, retention)
            .iter()
            .all(|(t, _)| t == "explicit"));

        // An emptied consumer group: counted from when it became empty.
        let mut entry = GroupEntry::new("g", 0, GroupSettings::default());
        let join = join_request("");
        let _ = entry.group.join(join, 0);
        entry
            .group
            .tick(crate::groups::classic::INITIAL_REBALANCE_DELAY_MS);
        let member = entry.group.members().next().unwrap().id.clone();
        entry.group.leave(&[(member, None)], day);
        assert_eq!(entry.group.state(), GroupState::Empty);
        entry
            .offsets
            .insert(("t".to_owned(), 0), committed(0, None));
        assert!(expired_offsets(&entry, day + retention - 1, retention).is_empty());
        assert_eq!(expired_offsets(&entry, day + retention, retention).len(), 1);
    }

    #[test]
    fn groups_and_offsets_are_rebuilt_from_the_log() {
        // The crate directory: /tmp may be a tmpfs without O_DIRECT.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let stopping = Rc::new(Shutdown::default());
                let log = open_log(&path).await;
                let partition = OffsetsPartition::load(
                    0,
                    Rc::clone(&log),
                    Rc::clone(&stopping),
                    TopicIds::new(),
                    GroupSettings::default(),
                )
                .await
                .unwrap();
                // One member: the first generation completes after the initial delay.
                let joined = partition.join("g", join_request("")).await;
                assert_eq!(joined.error, None);
                assert_eq!(joined.generation, 1);
                let synced = partition
                    .sync(
                        "g",
                        &joined.member_id,
                        None,
                        1,
                        vec![(joined.member_id.clone(), Bytes::from_static(b"a"))],
                    )
                    .await;
                assert_eq!(synced.error, None);
                let results = partition
                    .commit("g", &joined.member_id, None, 1, vec![commit(42)])
                    .await
                    .unwrap();
                assert_eq!(results, vec![Ok(())]);
                assert_eq!(
                    partition
                        .commit("g", &joined.member_id, None, 0, vec![commit(1)])
                        .await,
                    Err(ErrorCode::IllegalGeneration)
                );
                // A simple group commits without members.
                partition
                    .commit("simple", "", None, -1, vec![commit(5)])
                    .await
                    .unwrap();
                partition.delete_group("simple").await.unwrap();
                stopping.trigger();
                drop(partition);
                log.close().await.unwrap();

                let reopened = open_log(&path).await;
                let again = OffsetsPartition::load(
                    0,
                    reopened,
                    Rc::new(Shutdown::default()),
                    TopicIds::new(),
                    GroupSettings::default(),
                )
                .await
                .unwrap();
                let (state, generation, members, offset) = again
                    .with_group("g", |e| {
                        (
                            e.group.state(),
                            e.group.generation(),
                            e.group
                                .members()
                                .map(|m| m.assignment.clone())
                                .collect::<Vec<_>>(),
                            e.offsets.get(&("t".to_owned(), 3)).map(|c| c.value.clone()),
                        )
                    })
                    .expect("the group was rebuilt");
                assert_eq!(state, GroupState::Stable);
                assert_eq!(generation, 1);
                assert_eq!(members, vec![Bytes::from_static(b"a")]);
                let offset = offset.expect("the commit was rebuilt");
                assert_eq!(
                    (offset.offset, offset.leader_epoch, offset.metadata.as_str()),
                    (42, 7, "meta")
                );
                assert!(
                    again.with_group("simple", |_| ()).is_none(),
                    "deleted groups stay deleted"
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Runs `test` on a glommio executor with a fresh partition directory.
    fn on_executor<F, Fut>(test: F)
    where
        F: FnOnce(std::path::PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        // The crate directory: /tmp may be a tmpfs without O_DIRECT.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || test(path))
            .unwrap()
            .join()
            .unwrap();
    }

    /// The partition as loaded from the log at `path`.
    async fn load(path: &Path) -> (Rc<OffsetsPartition>, Log, Rc<Shutdown>) {
        let stopping = Rc::new(Shutdown::default());
        let log = open_log(path).await;
        let partition = OffsetsPartition::load(
            0,
            Rc::clone(&log),
            Rc::clone(&stopping),
            TopicIds::new(),
            GroupSettings::default(),
        )
        .await
        .unwrap();
        (partition, log, stopping)
    }

    /// Stops the partition and closes its log, as a restart does.
    async fn close((partition, log, stopping): (Rc<OffsetsPartition>, Log, Rc<Shutdown>)) {
        stopping.trigger();
        drop(partition);
        log.close().await.unwrap();
    }

    const PRODUCER: TxnProducer = TxnProducer { id: 1000, epoch: 3 };

    /// A client outside the group, as TxnOffsetCommit v0-2 always is.
    const OUTSIDER: Committer<'static> = Committer {
        member_id: "",
        instance_id: None,
        generation: -1,
    };

    fn marker(producer: TxnProducer, commit: bool) -> TxnMarker {
        TxnMarker {
            producer_id: producer.id,
            epoch: producer.epoch,
            commit,
            coordinator_epoch: 0,
        }
    }

    /// What OffsetFetch reads for partition t-3 of `group`: the committed
    /// offset, and whether a transaction holds it (UNSTABLE_OFFSET_COMMIT).
    fn fetched(partition: &OffsetsPartition, group: &str) -> (Option<i64>, bool) {
        let offset = partition
            .with_group(group, |e| {
                e.offsets.get(&("t".to_owned(), 3)).map(|c| c.value.offset)
            })
            .flatten();
        let unstable = partition
            .pending_partitions(group)
            .contains(&("t".to_owned(), 3));
        (offset, unstable)
    }

    #[test]
    fn offsets_of_a_transaction_that_ended_meanwhile_are_refused() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            // Unverified: refused.
            assert_eq!(
                partition
                    .txn_commit("g", PRODUCER, OUTSIDER, vec![commit(7)])
                    .await,
                Err(ErrorCode::InvalidTxnState)
            );
            // Verified, but the transaction's marker landed before the write.
            partition.begin_txn_verification(PRODUCER);
            partition
                .complete_txn(marker(PRODUCER, false))
                .await
                .unwrap();
            assert_eq!(
                partition
                    .txn_commit("g", PRODUCER, OUTSIDER, vec![commit(7)])
                    .await,
                Err(ErrorCode::InvalidTxnState)
            );
            assert_eq!(fetched(&partition, "g"), (None, false), "nothing pending");
            drop(partition);
            close(opened).await;
        });
    }

    #[test]
    fn transactional_offsets_show_only_after_the_commit_marker() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            let results = partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            assert_eq!(results, vec![Ok(())]);
            assert_eq!(fetched(&partition, "g"), (None, true));
            // Another producer's marker ends another transaction.
            let other = TxnProducer { id: 7, epoch: 0 };
            partition.complete_txn(marker(other, true)).await.unwrap();
            assert_eq!(fetched(&partition, "g"), (None, true));
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(42), false));
            drop(partition);
            close(opened).await;

            // The commit marker is durable: a restart keeps the offset.
            let reopened = load(&path).await;
            assert_eq!(fetched(&reopened.0, "g"), (Some(42), false));
            close(reopened).await;
        });
    }

    #[test]
    fn an_abort_marker_drops_transactional_offsets() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            partition
                .commit("g", "", None, -1, vec![commit(5)])
                .await
                .unwrap();
            partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(5), true));
            partition
                .complete_txn(marker(PRODUCER, false))
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(5), false));
            drop(partition);
            close(opened).await;

            let reopened = load(&path).await;
            assert_eq!(fetched(&reopened.0, "g"), (Some(5), false));
            close(reopened).await;
        });
    }

    #[test]
    fn a_restart_mid_transaction_keeps_the_offsets_pending_until_the_marker() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            opened
                .0
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            close(opened).await;

            let reopened = load(&path).await;
            let partition = Rc::clone(&reopened.0);
            assert_eq!(
                fetched(&partition, "g"),
                (None, true),
                "the group exists, its offset pending"
            );
            // The log still knows the producer's epoch: a zombie stays fenced.
            let zombie = TxnProducer {
                epoch: PRODUCER.epoch - 1,
                ..PRODUCER
            };
            assert_eq!(
                partition.complete_txn(marker(zombie, true)).await,
                Err(ErrorCode::InvalidProducerEpoch)
            );
            assert_eq!(fetched(&partition, "g"), (None, true));
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(42), false));
            drop(partition);
            close(reopened).await;

            let again = load(&path).await;
            assert_eq!(fetched(&again.0, "g"), (Some(42), false));
            close(again).await;
        });
    }

    #[test]
    fn a_zombie_producer_epoch_is_refused() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            let zombie = TxnProducer {
                epoch: PRODUCER.epoch - 1,
                ..PRODUCER
            };
            assert_eq!(
                partition
                    .verified_txn_commit("g", zombie, OUTSIDER, vec![commit(1)])
                    .await,
                Err(ErrorCode::InvalidProducerEpoch)
            );
            assert_eq!(
                partition.complete_txn(marker(zombie, true)).await,
                Err(ErrorCode::InvalidProducerEpoch)
            );
            // Ids the log could not track as a transaction never reach it.
            let no_id = TxnProducer { id: -1, epoch: 0 };
            assert_eq!(
                partition
                    .verified_txn_commit("g", no_id, OUTSIDER, vec![commit(1)])
                    .await,
                Err(ErrorCode::InvalidProducerIdMapping)
            );
            let no_epoch = TxnProducer { id: 5, epoch: -1 };
            assert_eq!(
                partition
                    .verified_txn_commit("g", no_epoch, OUTSIDER, vec![commit(1)])
                    .await,
                Err(ErrorCode::InvalidProducerEpoch)
            );
            // The live producer's transaction is untouched and commits 42.
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(42), false));
            drop(partition);
            close(opened).await;
        });
    }

    #[test]
    fn a_commit_written_after_the_transactional_one_wins() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            partition
                .commit("g", "", None, -1, vec![commit(50)])
                .await
                .unwrap();
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(50), false));
            drop(partition);
            close(opened).await;

            let reopened = load(&path).await;
            assert_eq!(fetched(&reopened.0, "g"), (Some(50), false));
            close(reopened).await;
        });
    }

    #[test]
    fn transactional_commits_check_the_member_like_kafka() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            // No group and a generation: nothing to commit for.
            let member = |generation| Committer {
                member_id: "m",
                instance_id: None,
                generation,
            };
            assert_eq!(
                partition
                    .verified_txn_commit("none", PRODUCER, member(1), vec![commit(1)])
                    .await,
                Err(ErrorCode::IllegalGeneration)
            );
            let joined = partition.join("g", join_request("")).await;
            assert_eq!(joined.error, None);
            let generation = joined.generation;
            let member = |generation| Committer {
                member_id: &joined.member_id,
                instance_id: None,
                generation,
            };
            // Before SyncGroup: an OffsetCommit is told to wait, a
            // transactional commit is taken.
            assert_eq!(
                partition
                    .commit("g", &joined.member_id, None, generation, vec![commit(1)])
                    .await,
                Err(ErrorCode::RebalanceInProgress)
            );
            assert_eq!(
                partition
                    .verified_txn_commit("g", PRODUCER, member(generation), vec![commit(2)])
                    .await,
                Ok(vec![Ok(())])
            );
            assert_eq!(
                partition
                    .verified_txn_commit("g", PRODUCER, member(generation + 1), vec![commit(3)])
                    .await,
                Err(ErrorCode::IllegalGeneration)
            );
            let stranger = Committer {
                member_id: "stranger",
                instance_id: None,
                generation,
            };
            assert_eq!(
                partition
                    .verified_txn_commit("g", PRODUCER, stranger, vec![commit(3)])
                    .await,
                Err(ErrorCode::UnknownMemberId)
            );
            // A v0-2 producer names no member: taken although the group is not empty.
            assert_eq!(
                partition
                    .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(4)])
                    .await,
                Ok(vec![Ok(())])
            );
            // Metadata over Kafka's limit is refused for its partition only.
            let mut long = commit(5);
            long.value.metadata = "x".repeat(OFFSET_METADATA_MAX_CHARS + 1);
            let mut other = commit(6);
            other.partition = 4;
            assert_eq!(
                partition
                    .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![long, other])
                    .await,
                Ok(vec![Err(ErrorCode::OffsetMetadataTooLarge), Ok(())])
            );
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            // The last write of the transaction wins.
            assert_eq!(fetched(&partition, "g"), (Some(4), false));
            drop(partition);
            close(opened).await;
        });
    }

    #[test]
    fn deleting_a_group_drops_its_pending_offsets() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            partition.delete_group("g").await.unwrap();
            assert!(partition.pending_partitions("g").is_empty());
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            assert!(partition.with_group("g", |_| ()).is_none());
            drop(partition);
            close(opened).await;

            let reopened = load(&path).await;
            assert!(reopened.0.with_group("g", |_| ()).is_none());
            close(reopened).await;
        });
    }

    #[test]
    fn a_producer_with_a_bumped_epoch_commits_again() {
        on_executor(|path| async move {
            let opened = load(&path).await;
            let partition = Rc::clone(&opened.0);
            partition
                .verified_txn_commit("g", PRODUCER, OUTSIDER, vec![commit(42)])
                .await
                .unwrap();
            partition
                .complete_txn(marker(PRODUCER, true))
                .await
                .unwrap();
            // InitProducerId after a restart bumps the epoch with no marker here.
            let bumped = TxnProducer {
                epoch: PRODUCER.epoch + 1,
                ..PRODUCER
            };
            partition
                .verified_txn_commit("g", bumped, OUTSIDER, vec![commit(43)])
                .await
                .unwrap();
            partition.complete_txn(marker(bumped, true)).await.unwrap();
            assert_eq!(fetched(&partition, "g"), (Some(43), false));
            drop(partition);
            close(opened).await;
        });
    }
}
