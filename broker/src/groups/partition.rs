//! One `__consumer_offsets` partition as its coordinator holds it: the
//! groups that hash to it, their committed offsets, the requests waiting
//! on a rebalance, and the log that makes all of it durable.
//!
//! The in-memory state is authoritative while the partition is loaded;
//! every change a client is told about is first written to the log and
//! flushed, and [`OffsetsPartition::load`] rebuilds the state from the log
//! after a restart. Runs on the shard that owns the partition's log.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use kelp_net::signal::Signal;
use kelp_net::Shutdown;
use kelp_storage::batch::{BatchBuilder, Compression, RecordBatch};
use kelp_storage::log::AppendOrigin;
use kelp_storage::{Offset, StorageError};
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
use crate::shard::Log;

/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_MAX_CHARS: usize = 4096;
/// Bytes read from the log per step while loading.
const LOAD_READ_BYTES: usize = 1 << 20;
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

/// The groups of one `__consumer_offsets` partition.
pub struct OffsetsPartition {
    /// The partition index.
    pub index: i32,
    log: Log,
    groups: RefCell<BTreeMap<String, GroupEntry>>,
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
        let mut groups: BTreeMap<String, GroupEntry> = BTreeMap::new();
        let mut metadata: BTreeMap<String, Option<GroupMetadataValue>> = BTreeMap::new();
        let mut consumers = consumer_log::Loader::default();
        let mut next = log.log_start_offset();
        let end = log.log_end_offset();
        let mut records = 0usize;
        while next < end {
            let read = log.read(next, LOAD_READ_BYTES).await?;
            if read.batches.is_empty() {
                break;
            }
            for bytes in read.batches {
                let batch = RecordBatch::parse(bytes)?;
                next = Offset(batch.last_offset() + 1);
                if batch.is_control() {
                    continue;
                }
                for record in batch.records(LOAD_MAX_DECOMPRESSED)? {
                    let record = record?;
                    let offset = batch.base_offset() + i64::from(record.offset_delta);
                    records += 1;
                    apply_record(
                        &mut groups,
                        &mut metadata,
                        &mut consumers,
                        record.key,
                        record.value,
                        offset,
                        (now, settings),
                    );
                }
            }
        }
        for (id, value) in metadata {
            match value {
                Some(value) => {
                    groups
                        .entry(id.clone())
                        .or_insert_with(|| GroupEntry::new(&id, now, settings))
                        .group = ClassicGroup::restore(&id, &value, now, settings);
                }
                None => {
                    // Deleted: only offsets committed after the deletion stay.
                    if groups.get(&id).is_some_and(|g| g.offsets.is_empty()) {
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
        let now = now_ms();
        {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(group_id) {
                Some(entry)
                    if entry.has_consumer_members()
                        || entry.consumer.is_some() && !member_id.is_empty() =>
                {
                    let consumer = entry.consumer.as_ref().expect("checked in the guard");
                    let partitions: Vec<(String, i32)> = entries
                        .iter()
                        .map(|e| (e.topic.clone(), e.partition))
                        .collect();
                    consumer
                        .validate_offset_commit(member_id, generation, &partitions)
                        .map_err(|refusal| match refusal {
                            CommitRefusal::UnknownMember => ErrorCode::UnknownMemberId,
                            CommitRefusal::StaleEpoch => ErrorCode::StaleMemberEpoch,
                        })?;
                }
                Some(entry) => entry
                    .group
                    .validate_offset_commit(member_id, instance_id, generation, now)
                    .map_err(ErrorCode::from)?,
                // A group only committing offsets (manual assignment).
                None if generation < 0 => {
                    groups.insert(
                        group_id.to_owned(),
                        GroupEntry::new(group_id, now, self.settings),
                    );
                }
                None => return Err(ErrorCode::IllegalGeneration),
            }
        }
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
        if records.is_empty() {
            return Ok(results);
        }
        let base = self.write(records).await?;
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(|| GroupEntry::new(group_id, now, self.settings));
        for (i, entry) in accepted.into_iter().enumerate() {
            let committed = Committed {
                value: entry.value,
                record_offset: base + i as i64,
            };
            let slot = group.offsets.entry((entry.topic, entry.partition));
            match slot {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(committed);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    // Concurrent commits land in log order, whatever order they finish in.
                    if o.get().record_offset < committed.record_offset {
                        o.insert(committed);
                    }
                }
            }
        }
        Ok(results)
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
            self.write(records.clone()).await?;
            self.forget_offsets(group_id, &records);
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
            let mut records: Vec<(Bytes, Option<Bytes>)> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| {
                    let key = RecordKey::Offset {
                        group: group_id.to_owned(),
                        topic: topic.clone(),
                        partition: *partition,
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
        self.write(records).await?;
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

    fn forget_offsets(&self, group_id: &str, tombstones: &[(Bytes, Option<Bytes>)]) {
        let mut groups = self.groups.borrow_mut();
        let Some(entry) = groups.get_mut(group_id) else {
            return;
        };
        for (key, _) in tombstones {
            if let Ok(RecordKey::Offset {
                topic, partition, ..
            }) = RecordKey::decode(key)
            {
                entry.offsets.remove(&(topic, partition));
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
                    for (topic, partition) in expired_offsets(entry, now, retention) {
                        expired.push((entry.group.id.clone(), topic, partition));
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
            if self.write(records.clone()).await.is_ok() {
                self.forget_offsets(&group, &records);
                if !touched.contains(&group) {
                    touched.push(group);
                }
            }
        }
        // An empty group whose last offset expired is deleted, as in Kafka.
        for group in touched {
            let gone = self.with_group(&group, |e| {
                e.offsets.is_empty() && e.group.state() == GroupState::Empty
            });
            if gone == Some(true) {
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

/// Applies one loaded record; group metadata is collected and applied last.
#[allow(clippy::too_many_arguments)]
fn apply_record(
    groups: &mut BTreeMap<String, GroupEntry>,
    metadata: &mut BTreeMap<String, Option<GroupMetadataValue>>,
    consumers: &mut consumer_log::Loader,
    key: Option<Bytes>,
    value: Option<Bytes>,
    offset: i64,
    (now, settings): (Millis, GroupSettings),
) {
    let Some(key) = key else {
        return;
    };
    let key = match RecordKey::decode(&key) {
        Ok(key) => key,
        Err(e) if e.is_unknown_record_type() => {
            match ConsumerRecordKey::decode(&key) {
                Ok(key) => consumers.apply(key, value.as_deref()),
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
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| GroupEntry::new(&group, now, settings));
            match value.map(|v| OffsetValue::decode(&v)) {
                None => {
                    entry.offsets.remove(&(topic, partition));
                }
                Some(Ok(value)) => {
                    entry.offsets.insert(
                        (topic, partition),
                        Committed {
                            value,
                            record_offset: offset,
                        },
                    );
                }
                Some(Err(e)) => {
                    tracing::warn!(offset, error = %e, "skipping an undecodable offset commit");
                }
            }
        }
        RecordKey::GroupMetadata { group } => match value.map(|v| GroupMetadataValue::decode(&v)) {
            None => {
                metadata.insert(group, None);
            }
            Some(Ok(value)) => {
                metadata.insert(group, Some(value));
            }
            Some(Err(e)) => {
                tracing::warn!(offset, error = %e, "skipping undecodable group metadata");
            }
        },
    }
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

fn sync_error(error: GroupError) -> SyncResponse {
    SyncResponse {
        error: Some(error),
        assignment: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
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
            base: Offset(1),
            log_end: Offset(2),
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
}
