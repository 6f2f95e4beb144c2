//! The KIP-848 consumer group (`group.protocol=consumer`): the broker
//! assigns partitions, and members converge on the target assignment by
//! heartbeats, giving partitions up before anyone else is handed them.
//!
//! Pure, like [`super::classic`]: each call takes the time and the topics'
//! partition counts and returns the member's answer. A partition moves in
//! two steps: its owner is told to drop it (keeping its member epoch) and
//! confirms by no longer listing it; only then is it handed to its new
//! owner, whose epoch advances meanwhile with the partition withheld.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::assignors::{AssignmentSpec, Assignor, MemberSpec};
use super::classic::Millis;
use super::settings::GroupSettings;

/// Kafka's default `group.consumer.session.timeout.ms`.
pub const SESSION_TIMEOUT_MS: Millis = 45_000;
/// The member epoch of a leaving member.
pub const LEAVE_EPOCH: i32 = -1;
/// The member epoch of a static member leaving for a while (a restart).
pub const TEMPORARY_LEAVE_EPOCH: i32 = -2;
/// The assignor used when no member asks for one.
pub const DEFAULT_ASSIGNOR: Assignor = Assignor::Uniform;

/// Partitions by topic name.
pub type Partitions = BTreeMap<String, BTreeSet<i32>>;

/// Why a heartbeat is refused; mapped to Kafka codes in `kafka::errors`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerGroupError {
    /// The request breaks a rule of the protocol.
    #[error("{0}")]
    InvalidRequest(String),
    /// The member is not in the group.
    #[error("unknown member id")]
    UnknownMemberId,
    /// The member's epoch is not the group's view of it: rejoin with epoch 0.
    #[error("fenced member epoch")]
    FencedMemberEpoch,
    /// Another member still holds this `group.instance.id`.
    #[error("unreleased instance id")]
    UnreleasedInstanceId,
    /// Another member now holds this `group.instance.id`.
    #[error("fenced instance id")]
    FencedInstanceId,
    /// The requested server assignor does not exist.
    #[error("unsupported assignor")]
    UnsupportedAssignor,
    /// The subscription regex does not compile.
    #[error("{0}")]
    InvalidRegex(String),
}

/// How far a member is from its target assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// It has its whole share of the current assignment epoch.
    Stable,
    /// It must give partitions up before its epoch advances.
    UnrevokedPartitions,
    /// Its epoch advanced; some partitions wait for their old owner.
    UnreleasedPartitions,
}

/// A ConsumerGroupHeartbeat, as the state machine needs it.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    /// Member id; `""` asks the coordinator for one.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member leaving for a while.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// `None` when unchanged.
    pub subscribed: Option<Vec<String>>,
    /// A regex over topic names (RE2 syntax, whole-name match); `None`
    /// when unchanged, `""` to drop it.
    pub subscribed_regex: Option<String>,
    /// The assignor asked for; `None` when unchanged.
    pub assignor: Option<String>,
    /// What the member owns now (topic names); `None` when unchanged.
    pub owned: Option<Partitions>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The member's id.
    pub member_id: String,
    /// Its epoch now.
    pub member_epoch: i32,
    /// What it may own, when that changed or the request was a full one.
    pub assignment: Option<Partitions>,
}

/// A member of a consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerMember {
    /// Member id.
    pub id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// How long it has to give partitions up.
    pub rebalance_timeout_ms: i32,
    /// Topics subscribed to: the names given plus those the regex matches.
    pub subscribed: BTreeSet<String>,
    /// Topic names given.
    pub subscribed_names: BTreeSet<String>,
    /// The subscription regex, if any.
    pub subscribed_regex: Option<String>,
    /// The assignor it asked for.
    pub assignor: Option<String>,
    /// Its epoch.
    pub epoch: i32,
    /// Its epoch before the last advance.
    pub previous_epoch: i32,
    /// How far it is from its target.
    pub state: MemberState,
    /// What it may own.
    pub assigned: Partitions,
    /// What it was told to give up and has not yet confirmed.
    pub revoking: Partitions,
    last_sent: Option<Partitions>,
    session_deadline: Millis,
    revoke_deadline: Option<Millis>,
}

/// One consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Bumped by every change of members, subscriptions or topics.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    /// The target assignment by member.
    pub target: BTreeMap<String, Partitions>,
    members: BTreeMap<String, ConsumerMember>,
    static_members: HashMap<String, String>,
    /// Partition counts of the subscribed topics at the last assignment.
    partition_counts: BTreeMap<String, i32>,
    /// When the group last became empty or non-empty.
    pub state_since: Millis,
    /// Restored from the log: the next heartbeat learns the counts and
    /// resolves regex subscriptions without taking them for a change.
    counts_unknown: bool,
    subscriptions_unresolved: bool,
    id_seed: u64,
    /// How long a silent member stays, in ms.
    session_timeout_ms: Millis,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(id: &str, now: Millis) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_owned(),
            group_epoch: 0,
            assignment_epoch: 0,
            target: BTreeMap::new(),
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            partition_counts: BTreeMap::new(),
            state_since: now,
            counts_unknown: false,
            subscriptions_unresolved: false,
            id_seed: now as u64 ^ 0x2545_f491_4f6c_dd1d,
            session_timeout_ms: SESSION_TIMEOUT_MS,
        }
    }

    /// The group under the broker's settings instead of Kafka's defaults.
    pub fn with_settings(mut self, settings: GroupSettings) -> ConsumerGroup {
        self.session_timeout_ms = Millis::from(settings.consumer_session_timeout_ms);
        self
    }

    /// The group's durable state: what its records hold.
    pub fn snapshot(&self) -> ConsumerSnapshot {
        ConsumerSnapshot {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            target: self.target.clone(),
            members: self
                .members
                .values()
                .map(|m| {
                    let mut m = m.clone();
                    m.last_sent = None;
                    m
                })
                .collect(),
        }
    }

    /// A group rebuilt from its records; each member gets a full session
    /// from `now` to heartbeat again.
    pub fn restore(
        id: &str,
        snapshot: ConsumerSnapshot,
        now: Millis,
        settings: GroupSettings,
    ) -> ConsumerGroup {
        let mut group = ConsumerGroup::new(id, now).with_settings(settings);
        group.group_epoch = snapshot.group_epoch;
        group.assignment_epoch = snapshot.assignment_epoch;
        group.target = snapshot.target;
        for mut member in snapshot.members {
            member.session_deadline = now + group.session_timeout_ms;
            member.revoke_deadline = (member.state == MemberState::UnrevokedPartitions)
                .then(|| now + i64::from(member.rebalance_timeout_ms.max(0)));
            if let Some(instance) = &member.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.id.clone());
            }
            group.members.insert(member.id.clone(), member);
        }
        // The counts the target was computed for: those of its topics.
        group.partition_counts = BTreeMap::new();
        group.counts_unknown = true;
        group.subscriptions_unresolved = true;
        group
    }

    /// Kafka's name of the group's state.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The members, by id.
    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The assignor the group uses: the one most members ask for.
    pub fn assignor(&self) -> Assignor {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self.members.values().filter_map(|m| m.assignor.as_deref()) {
            *votes.entry(name).or_default() += 1;
        }
        votes
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .and_then(|(name, _)| Assignor::from_name(name))
            .unwrap_or(DEFAULT_ASSIGNOR)
    }

    /// Every topic some member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// Checks an OffsetCommit (v9+: the member epoch) against the group.
    /// A commit sent just before the member's epoch advanced is taken when
    /// it holds every committed partition still (as Kafka 4.2 relaxes it,
    /// KAFKA-20066): a heartbeat and a commit sent together otherwise race.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        epoch: i32,
        partitions: &[(String, i32)],
    ) -> Result<(), CommitRefusal> {
        if member_id.is_empty() && epoch < 0 {
            // A commit from outside the group: only while nobody consumes.
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(CommitRefusal::UnknownMember)
            };
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(CommitRefusal::UnknownMember)?;
        let held = || {
            partitions
                .iter()
                .all(|(t, p)| member.assigned.get(t).is_some_and(|set| set.contains(p)))
        };
        if epoch == member.epoch || (epoch == member.previous_epoch && epoch > 0 && held()) {
            Ok(())
        } else {
            Err(CommitRefusal::StaleEpoch)
        }
    }

    /// The earliest time [`ConsumerGroup::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.revoke_deadline])
            .flatten()
            .min()
    }

    /// Removes members whose session expired or that kept partitions past
    /// their rebalance timeout; the ids removed.
    pub fn tick(&mut self, now: Millis) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove(id, now);
        }
        gone
    }

    /// Handles a heartbeat; `partition_counts` holds every existing topic's
    /// partition count.
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        partition_counts: &BTreeMap<String, i32>,
        now: Millis,
    ) -> Result<HeartbeatAnswer, ConsumerGroupError> {
        validate(&request)?;
        if let Some(name) = &request.assignor {
            if Assignor::from_name(name).is_none() {
                return Err(ConsumerGroupError::UnsupportedAssignor);
            }
        }
        match request.member_epoch {
            LEAVE_EPOCH => return self.leave(&request, now),
            TEMPORARY_LEAVE_EPOCH => return self.leave_for_a_while(&request),
            _ => {}
        }
        let full = request.member_epoch == 0
            || (request.rebalance_timeout_ms != -1
                && request.subscribed.is_some()
                && request.owned.is_some());
        let (id, joined) = if request.member_epoch == 0 {
            self.join(&request, now)?
        } else {
            self.check_epoch(&request)?;
            (request.member_id.clone(), false)
        };
        let updated = self.update_member(&id, &request);
        let resolved = self.resolve_subscriptions(partition_counts);
        let topics_changed = self.refresh_partition_counts(partition_counts);
        // One bump for whatever this heartbeat changed.
        if joined || updated || resolved || topics_changed {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(partition_counts);
        }
        self.reconcile(&id, request.owned.as_ref(), now);
        let member = self
            .members
            .get_mut(&id)
            .expect("the member was added or checked above");
        member.session_deadline = now + self.session_timeout_ms;
        let changed = member.last_sent.as_ref() != Some(&member.assigned);
        let assignment = (full || changed).then(|| member.assigned.clone());
        if assignment.is_some() {
            member.last_sent = Some(member.assigned.clone());
        }
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: member.epoch,
            assignment,
        })
    }

    fn leave(
        &mut self,
        request: &Heartbeat,
        now: Millis,
    ) -> Result<HeartbeatAnswer, ConsumerGroupError> {
        let id = self.resolve_member(request)?;
        self.remove(&id, now);
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: LEAVE_EPOCH,
            assignment: None,
        })
    }

    /// A static member stepping away: it keeps its partitions for the
    /// instance that comes back.
    fn leave_for_a_while(
        &mut self,
        request: &Heartbeat,
    ) -> Result<HeartbeatAnswer, ConsumerGroupError> {
        let id = self.resolve_member(request)?;
        let member = self
            .members
            .get_mut(&id)
            .ok_or(ConsumerGroupError::UnknownMemberId)?;
        if member.instance_id.is_none() {
            return Err(ConsumerGroupError::InvalidRequest(
                "Member epoch -2 is only for static members".to_owned(),
            ));
        }
        member.previous_epoch = member.epoch;
        member.epoch = TEMPORARY_LEAVE_EPOCH;
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: TEMPORARY_LEAVE_EPOCH,
            assignment: None,
        })
    }

    /// The member a leave names, by instance id for static members.
    fn resolve_member(&self, request: &Heartbeat) -> Result<String, ConsumerGroupError> {
        if let Some(instance) = &request.instance_id {
            let holder = self
                .static_members
                .get(instance)
                .ok_or(ConsumerGroupError::UnknownMemberId)?;
            if !request.member_id.is_empty() && *holder != request.member_id {
                return Err(ConsumerGroupError::FencedInstanceId);
            }
            return Ok(holder.clone());
        }
        if self.members.contains_key(&request.member_id) {
            Ok(request.member_id.clone())
        } else {
            Err(ConsumerGroupError::UnknownMemberId)
        }
    }

    /// Epoch 0: a new member, a fenced one coming back, or a static member
    /// taking its place again. The member's id, and whether the group changed.
    fn join(
        &mut self,
        request: &Heartbeat,
        now: Millis,
    ) -> Result<(String, bool), ConsumerGroupError> {
        let id = if request.member_id.is_empty() {
            self.generate_member_id()
        } else {
            request.member_id.clone()
        };
        if let Some(instance) = &request.instance_id {
            if let Some(holder) = self.static_members.get(instance).cloned() {
                let away = self
                    .members
                    .get(&holder)
                    .is_some_and(|m| m.epoch == TEMPORARY_LEAVE_EPOCH);
                if holder != id && !away {
                    return Err(ConsumerGroupError::UnreleasedInstanceId);
                }
                if holder != id {
                    // Back after a restart: the new id takes the old place,
                    // partitions and target included, with no rebalance.
                    let mut member = self.members.remove(&holder).expect("mapped members exist");
                    member.id = id.clone();
                    member.epoch = member.previous_epoch.max(0);
                    member.last_sent = None;
                    if let Some(target) = self.target.remove(&holder) {
                        self.target.insert(id.clone(), target);
                    }
                    self.members.insert(id.clone(), member);
                    self.static_members.insert(instance.clone(), id.clone());
                    return Ok((id, false));
                }
            }
        }
        if self.members.is_empty() {
            self.state_since = now;
        }
        // A member joining again with its own id was fenced: it owns nothing.
        self.members.remove(&id);
        self.members.insert(
            id.clone(),
            ConsumerMember {
                id: id.clone(),
                instance_id: request.instance_id.clone(),
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                subscribed: BTreeSet::new(),
                subscribed_names: BTreeSet::new(),
                subscribed_regex: None,
                assignor: None,
                epoch: 0,
                previous_epoch: 0,
                state: MemberState::Stable,
                assigned: Partitions::new(),
                revoking: Partitions::new(),
                last_sent: None,
                session_deadline: now + self.session_timeout_ms,
                revoke_deadline: None,
            },
        );
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        Ok((id, true))
    }

    /// Kafka's epoch rules for a member already in the group.
    fn check_epoch(&self, request: &Heartbeat) -> Result<(), ConsumerGroupError> {
        let member = self
            .members
            .get(&request.member_id)
            .ok_or(ConsumerGroupError::UnknownMemberId)?;
        if let Some(instance) = &request.instance_id {
            if self.static_members.get(instance) != Some(&request.member_id) {
                return Err(ConsumerGroupError::FencedInstanceId);
            }
        }
        let epoch = request.member_epoch;
        if epoch > member.epoch {
            return Err(ConsumerGroupError::FencedMemberEpoch);
        }
        if epoch < member.epoch {
            // The answer that carried the new epoch may have been lost.
            let retried = epoch == member.previous_epoch
                && request
                    .owned
                    .as_ref()
                    .is_some_and(|owned| is_subset(owned, &member.assigned));
            if !retried {
                return Err(ConsumerGroupError::FencedMemberEpoch);
            }
        }
        Ok(())
    }

    /// Records what the heartbeat tells of the member; whether its
    /// subscription or assignor changed.
    fn update_member(&mut self, id: &str, request: &Heartbeat) -> bool {
        let Some(member) = self.members.get_mut(id) else {
            return false;
        };
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        if request.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        let mut bump = false;
        if let Some(topics) = &request.subscribed {
            member.subscribed_names = topics.iter().cloned().collect();
        }
        if let Some(regex) = &request.subscribed_regex {
            member.subscribed_regex = Some(regex.clone()).filter(|r| !r.is_empty());
        }
        if request.assignor.is_some() && request.assignor != member.assignor {
            member.assignor = request.assignor.clone();
            bump = true;
        }
        bump
    }

    /// Every member's topics: its names plus the existing topics its regex
    /// matches (as a whole name, as Kafka matches). Whether any changed.
    fn resolve_subscriptions(&mut self, all: &BTreeMap<String, i32>) -> bool {
        let mut changed = false;
        for member in self.members.values_mut() {
            let mut topics = member.subscribed_names.clone();
            if let Some(pattern) = &member.subscribed_regex {
                // Checked when the member sent it.
                if let Ok(regex) = regex::Regex::new(&format!("^(?:{pattern})$")) {
                    topics.extend(all.keys().filter(|t| regex.is_match(t)).cloned());
                }
            }
            if topics != member.subscribed {
                member.subscribed = topics;
                changed = true;
            }
        }
        changed && !std::mem::take(&mut self.subscriptions_unresolved)
    }

    /// A topic created, deleted or grown under a subscription changes the
    /// group epoch, as a subscription change does; whether one did.
    fn refresh_partition_counts(&mut self, all: &BTreeMap<String, i32>) -> bool {
        let counts: BTreeMap<String, i32> = self
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| all.get(&t).map(|c| (t, *c)))
            .collect();
        if counts == self.partition_counts {
            return false;
        }
        self.partition_counts = counts;
        !std::mem::take(&mut self.counts_unknown)
    }

    fn compute_target(&mut self, all: &BTreeMap<String, i32>) {
        let spec = AssignmentSpec {
            members: self
                .members
                .values()
                .map(|m| {
                    let current = self
                        .target
                        .get(&m.id)
                        .map(|t| {
                            t.iter()
                                .map(|(topic, p)| (topic.clone(), p.iter().copied().collect()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        m.id.clone(),
                        MemberSpec {
                            instance_id: m.instance_id.clone(),
                            subscribed_topics: m.subscribed.clone(),
                            current,
                        },
                    )
                })
                .collect(),
            partition_counts: self
                .subscribed_topics()
                .into_iter()
                .filter_map(|t| all.get(&t).map(|c| (t, *c)))
                .collect(),
        };
        self.target = self
            .assignor()
            .assign(&spec)
            .into_iter()
            .map(|(member, topics)| {
                let topics = topics
                    .into_iter()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(t, p)| (t, p.into_iter().collect()))
                    .collect();
                (member, topics)
            })
            .collect();
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves a member towards its target: revoke first, then advance the
    /// epoch, then take up partitions as their old owners release them.
    fn reconcile(&mut self, id: &str, owned: Option<&Partitions>, now: Millis) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let Some(member) = self.members.get(id) else {
            return;
        };
        if member.state == MemberState::UnrevokedPartitions {
            let released = owned.is_some_and(|o| intersection(o, &member.revoking).is_empty());
            let member = self.members.get_mut(id).expect("checked above");
            // The target may have moved on meanwhile: drop what left it too.
            let stale = difference(&member.assigned, &target);
            member.assigned = intersection(&member.assigned, &target);
            member.revoking = union(&member.revoking, &stale);
            if !released {
                return;
            }
            member.revoking.clear();
            member.revoke_deadline = None;
            self.advance(id, &target, epoch);
            return;
        }
        if member.epoch < epoch {
            let revoke = difference(&member.assigned, &target);
            if revoke.is_empty() {
                self.advance(id, &target, epoch);
            } else {
                let member = self.members.get_mut(id).expect("checked above");
                member.assigned = intersection(&member.assigned, &target);
                member.revoking = revoke;
                member.state = MemberState::UnrevokedPartitions;
                member.revoke_deadline = Some(now + i64::from(member.rebalance_timeout_ms.max(0)));
            }
            return;
        }
        if member.state == MemberState::UnreleasedPartitions {
            self.advance(id, &target, epoch);
        }
    }

    /// The member reaches `epoch` with every target partition nobody else
    /// still holds.
    fn advance(&mut self, id: &str, target: &Partitions, epoch: i32) {
        let held = self.held_by_others(id);
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        let free = difference(target, &held);
        let withheld = free != *target;
        if member.epoch != epoch {
            member.previous_epoch = member.epoch;
            member.epoch = epoch;
        }
        member.assigned = free;
        member.state = if withheld {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Partitions other members may still own.
    fn held_by_others(&self, id: &str) -> Partitions {
        let mut held = Partitions::new();
        for member in self.members.values().filter(|m| m.id != id) {
            held = union(&held, &member.assigned);
            held = union(&held, &member.revoking);
        }
        held
    }

    fn remove(&mut self, id: &str, now: Millis) {
        if let Some(member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            self.target.remove(id);
            self.group_epoch += 1;
            if self.members.is_empty() {
                self.state_since = now;
            }
        }
    }

    /// A 22-character URL-safe base64 id, as Kafka's `Uuid.randomUuid()` prints.
    fn generate_member_id(&mut self) -> String {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(8) {
            self.id_seed ^= self.id_seed << 13;
            self.id_seed ^= self.id_seed >> 7;
            self.id_seed ^= self.id_seed << 17;
            chunk.copy_from_slice(
                &self
                    .id_seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .to_be_bytes(),
            );
        }
        base64_url(
            &uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .into_bytes(),
        )
    }
}

/// The durable state of a consumer group.
#[derive(Clone, Debug, Default)]
pub struct ConsumerSnapshot {
    /// Group epoch.
    pub group_epoch: i32,
    /// Assignment epoch.
    pub assignment_epoch: i32,
    /// Target assignment by member.
    pub target: BTreeMap<String, Partitions>,
    /// Members with their metadata and current assignment.
    pub members: Vec<ConsumerMember>,
}

impl ConsumerMember {
    /// A member rebuilt from its records, before its current assignment is known.
    pub fn restored(id: &str) -> ConsumerMember {
        ConsumerMember {
            id: id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            subscribed: BTreeSet::new(),
            subscribed_names: BTreeSet::new(),
            subscribed_regex: None,
            assignor: None,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            last_sent: None,
            session_deadline: 0,
            revoke_deadline: None,
        }
    }
}

/// Why an OffsetCommit of a consumer group is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The member is not in the group.
    UnknownMember,
    /// The member's epoch is not its current one.
    StaleEpoch,
}

/// Kafka's request checks (`throwIfConsumerGroupHeartbeatRequestIsInvalid`),
/// made before the group is even looked up.
pub fn validate(request: &Heartbeat) -> Result<(), ConsumerGroupError> {
    let invalid = |m: &str| Err(ConsumerGroupError::InvalidRequest(m.to_owned()));
    if request.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if request.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if let Some(pattern) = request
        .subscribed_regex
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        if let Err(e) = regex::Regex::new(pattern) {
            return Err(ConsumerGroupError::InvalidRegex(format!(
                "SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}"
            )));
        }
    }
    match request.member_epoch {
        0 => {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            let names = request.subscribed.as_ref().is_some_and(|n| !n.is_empty());
            let regex = request
                .subscribed_regex
                .as_ref()
                .is_some_and(|r| !r.is_empty());
            if !names && !regex {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        }
        LEAVE_EPOCH | TEMPORARY_LEAVE_EPOCH => {
            if request.member_id.is_empty() && request.instance_id.is_none() {
                return invalid("MemberId can't be empty.");
            }
        }
        epoch if epoch > 0 => {
            if request.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        _ => return invalid("MemberEpoch is invalid."),
    }
    Ok(())
}

fn is_subset(small: &Partitions, big: &Partitions) -> bool {
    small
        .iter()
        .all(|(t, p)| p.is_empty() || big.get(t).is_some_and(|b| p.is_subset(b)))
}

fn intersection(a: &Partitions, b: &Partitions) -> Partitions {
    a.iter()
        .filter_map(|(t, p)| {
            let common: BTreeSet<i32> = b.get(t).map(|q| p.intersection(q).copied().collect())?;
            (!common.is_empty()).then(|| (t.clone(), common))
        })
        .collect()
}

fn difference(a: &Partitions, b: &Partitions) -> Partitions {
    a.iter()
        .filter_map(|(t, p)| {
            let rest: BTreeSet<i32> = match b.get(t) {
                Some(q) => p.difference(q).copied().collect(),
                None => p.clone(),
            };
            (!rest.is_empty()).then(|| (t.clone(), rest))
        })
        .collect()
}

fn union(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = a.clone();
    for (t, p) in b {
        out.entry(t.clone()).or_default().extend(p.iter().copied());
    }
    out
}

/// Unpadded URL-safe base64.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> BTreeMap<String, i32> {
        [("t".to_owned(), 6), ("u".to_owned(), 2)]
            .into_iter()
            .collect()
    }

    fn parts(list: &[i32]) -> Partitions {
        if list.is_empty() {
            return Partitions::new();
        }
        [("t".to_owned(), list.iter().copied().collect())]
            .into_iter()
            .collect()
    }

    fn join(group: &mut ConsumerGroup, now: Millis) -> HeartbeatAnswer {
        group
            .heartbeat(
                Heartbeat {
                    member_epoch: 0,
                    rebalance_timeout_ms: 30_000,
                    subscribed: Some(vec!["t".to_owned()]),
                    owned: Some(Partitions::new()),
                    ..Heartbeat::default()
                },
                &counts(),
                now,
            )
            .unwrap()
    }

    fn beat(
        group: &mut ConsumerGroup,
        id: &str,
        epoch: i32,
        owned: Option<Partitions>,
        now: Millis,
    ) -> Result<HeartbeatAnswer, ConsumerGroupError> {
        group.heartbeat(
            Heartbeat {
                member_id: id.to_owned(),
                member_epoch: epoch,
                rebalance_timeout_ms: -1,
                owned,
                ..Heartbeat::default()
            },
            &counts(),
            now,
        )
    }

    /// A (epoch 1, owning all six partitions) is told to give some up to a
    /// member that joined, confirms at `now + 1`, and advances; what A keeps.
    fn hand_over(group: &mut ConsumerGroup, a: &str, now: Millis) -> Partitions {
        let all = Some(parts(&[0, 1, 2, 3, 4, 5]));
        let kept = beat(group, a, 1, all, now)
            .unwrap()
            .assignment
            .expect("told to give partitions up");
        let advanced = beat(group, a, 1, Some(kept.clone()), now + 1).unwrap();
        assert_eq!(advanced.member_epoch, group.assignment_epoch);
        kept
    }

    /// No partition is ever handed to two members at once.
    fn assert_exclusive(group: &ConsumerGroup) {
        let mut seen = BTreeSet::new();
        for member in group.members() {
            for p in union(&member.assigned, &member.revoking)
                .get("t")
                .into_iter()
                .flatten()
            {
                assert!(seen.insert(*p), "partition {p} held twice");
            }
        }
    }

    #[test]
    fn a_first_member_gets_every_partition() {
        let mut group = ConsumerGroup::new("g", 0);
        let answer = join(&mut group, 0);
        assert_eq!(answer.member_id.len(), 22, "{}", answer.member_id);
        assert_eq!(answer.member_epoch, 1);
        assert_eq!(answer.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])));
        assert_eq!(group.state_name(), "Stable");
        let again = beat(&mut group, &answer.member_id, 1, None, 1_000).unwrap();
        assert_eq!(again.assignment, None, "unchanged: not sent again");
    }

    #[test]
    fn partitions_move_only_after_their_owner_gives_them_up() {
        let mut group = ConsumerGroup::new("g", 0);
        let a = join(&mut group, 0);
        let b = join(&mut group, 10);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(
            b.assignment,
            Some(Partitions::new()),
            "withheld while A owns them"
        );
        assert_exclusive(&group);
        assert_eq!(group.state_name(), "Reconciling");

        // A is told to give three up and keeps its epoch.
        let told = beat(
            &mut group,
            &a.member_id,
            1,
            Some(parts(&[0, 1, 2, 3, 4, 5])),
            20,
        )
        .unwrap();
        assert_eq!(told.member_epoch, 1);
        let kept = told.assignment.expect("a new assignment");
        assert_eq!(kept["t"].len(), 3);
        assert_exclusive(&group);
        // Still owning them: nothing moves.
        let b_waits = beat(&mut group, &b.member_id, 2, Some(Partitions::new()), 30).unwrap();
        assert_eq!(b_waits.assignment, None);
        // A confirms: it advances, and B gets the rest on its next heartbeat.
        let done = beat(&mut group, &a.member_id, 1, Some(kept.clone()), 40).unwrap();
        assert_eq!(done.member_epoch, 2);
        let b_gets = beat(&mut group, &b.member_id, 2, Some(Partitions::new()), 50).unwrap();
        let given = b_gets.assignment.expect("released partitions");
        assert_eq!(given["t"].len(), 3);
        assert!(intersection(&given, &kept).is_empty());
        assert_exclusive(&group);
        assert_eq!(group.state_name(), "Stable");
    }

    #[test]
    fn leaving_and_silent_members_hand_their_partitions_back() {
        let mut group = ConsumerGroup::new("g", 0);
        let a = join(&mut group, 0);
        let b = join(&mut group, 0);
        let kept = hand_over(&mut group, &a.member_id, 1);
        beat(&mut group, &b.member_id, 2, Some(Partitions::new()), 3).unwrap();

        let left = beat(&mut group, &b.member_id, LEAVE_EPOCH, None, 4).unwrap();
        assert_eq!(left.member_epoch, LEAVE_EPOCH);
        let all = beat(&mut group, &a.member_id, 2, Some(kept), 5).unwrap();
        assert_eq!(all.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])));

        let c = join(&mut group, 10);
        // A (last heard at 5) goes silent; C keeps heartbeating.
        beat(
            &mut group,
            &c.member_id,
            c.member_epoch,
            Some(Partitions::new()),
            20_000,
        )
        .unwrap();
        assert!(group.tick(5 + SESSION_TIMEOUT_MS - 1).is_empty());
        let gone = group.tick(5 + SESSION_TIMEOUT_MS);
        assert_eq!(gone, vec![a.member_id.clone()]);
        let c_all = beat(
            &mut group,
            &c.member_id,
            c.member_epoch,
            Some(Partitions::new()),
            50_000,
        )
        .unwrap();
        assert_eq!(c_all.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])));
        assert_eq!(
            beat(&mut group, &a.member_id, 2, None, 50_001),
            Err(ConsumerGroupError::UnknownMemberId)
        );
    }

    #[test]
    fn epochs_out_of_step_are_fenced_unless_an_answer_was_lost() {
        let mut group = ConsumerGroup::new("g", 0);
        let a = join(&mut group, 0);
        assert_eq!(
            beat(&mut group, &a.member_id, 5, None, 1),
            Err(ConsumerGroupError::FencedMemberEpoch)
        );
        // B joins: A advances from 1 to 3 after giving partitions up.
        let _b = join(&mut group, 2);
        let kept = hand_over(&mut group, &a.member_id, 3);
        // The answer was lost: A retries with its previous epoch and owns no more than assigned.
        let retried = beat(&mut group, &a.member_id, 1, Some(kept), 5).unwrap();
        assert_eq!(retried.member_epoch, 2);
        assert_eq!(
            beat(
                &mut group,
                &a.member_id,
                1,
                Some(parts(&[0, 1, 2, 3, 4, 5])),
                6
            ),
            Err(ConsumerGroupError::FencedMemberEpoch),
            "claims partitions it no longer has"
        );
    }

    /// Instance "i-1" joining.
    fn static_join() -> Heartbeat {
        Heartbeat {
            member_epoch: 0,
            instance_id: Some("i-1".to_owned()),
            rebalance_timeout_ms: 30_000,
            subscribed: Some(vec!["t".to_owned()]),
            owned: Some(Partitions::new()),
            ..Heartbeat::default()
        }
    }

    #[test]
    fn a_static_member_returns_to_its_partitions_without_a_rebalance() {
        let mut group = ConsumerGroup::new("g", 0);
        let first = group.heartbeat(static_join(), &counts(), 0).unwrap();
        let epoch_before = group.group_epoch;
        let away = group
            .heartbeat(
                Heartbeat {
                    member_id: first.member_id.clone(),
                    member_epoch: TEMPORARY_LEAVE_EPOCH,
                    instance_id: Some("i-1".to_owned()),
                    rebalance_timeout_ms: -1,
                    ..Heartbeat::default()
                },
                &counts(),
                1,
            )
            .unwrap();
        assert_eq!(away.member_epoch, TEMPORARY_LEAVE_EPOCH);
        let back = group.heartbeat(static_join(), &counts(), 2).unwrap();
        assert_ne!(back.member_id, first.member_id);
        assert_eq!(back.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])));
        assert_eq!(group.group_epoch, epoch_before, "no rebalance");
        // While the instance is active, another process may not take it.
        let other = group.heartbeat(static_join(), &counts(), 3);
        assert_eq!(other, Err(ConsumerGroupError::UnreleasedInstanceId));
    }

    #[test]
    fn a_restored_group_goes_on_where_it_was() {
        let mut group = ConsumerGroup::new("g", 0);
        let a = join(&mut group, 0);
        let b = join(&mut group, 1);
        let snapshot = group.snapshot();
        let mut restored = ConsumerGroup::restore("g", snapshot, 100, GroupSettings::default());
        assert_eq!(restored.group_epoch, group.group_epoch);
        // A carries on with its epoch: no new assignment, no fencing.
        let told = beat(
            &mut restored,
            &a.member_id,
            1,
            Some(parts(&[0, 1, 2, 3, 4, 5])),
            200,
        )
        .unwrap();
        assert_eq!(told.member_epoch, 1);
        assert_eq!(
            restored.group_epoch, group.group_epoch,
            "counts learnt, not a change"
        );
        let kept = told.assignment.unwrap();
        beat(&mut restored, &a.member_id, 1, Some(kept), 300).unwrap();
        let b_gets = beat(&mut restored, &b.member_id, 2, Some(Partitions::new()), 400).unwrap();
        assert_eq!(b_gets.assignment.unwrap()["t"].len(), 3);
        assert_exclusive(&restored);
    }

    #[test]
    fn a_regex_subscribes_to_every_matching_topic_and_later_ones() {
        let mut group = ConsumerGroup::new("g", 0);
        let join = Heartbeat {
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed: Some(Vec::new()),
            subscribed_regex: Some("t|v.*".to_owned()),
            owned: Some(Partitions::new()),
            ..Heartbeat::default()
        };
        let a = group.heartbeat(join, &counts(), 0).unwrap();
        assert_eq!(a.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])), "t, not u");
        let mut more = counts();
        more.insert("v1".to_owned(), 1);
        let next = group
            .heartbeat(
                Heartbeat {
                    member_id: a.member_id.clone(),
                    member_epoch: a.member_epoch,
                    rebalance_timeout_ms: -1,
                    owned: Some(parts(&[0, 1, 2, 3, 4, 5])),
                    ..Heartbeat::default()
                },
                &more,
                1,
            )
            .unwrap();
        let assigned = next.assignment.expect("a topic created under the regex");
        assert_eq!(assigned.get("v1"), Some(&BTreeSet::from([0])));
        let bad = Heartbeat {
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_regex: Some("(".to_owned()),
            owned: Some(Partitions::new()),
            ..Heartbeat::default()
        };
        assert!(matches!(
            group.heartbeat(bad, &counts(), 2),
            Err(ConsumerGroupError::InvalidRegex(_))
        ));
    }

    #[test]
    fn malformed_heartbeats_are_refused() {
        let mut group = ConsumerGroup::new("g", 0);
        let no_subscription = Heartbeat {
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            owned: Some(Partitions::new()),
            ..Heartbeat::default()
        };
        assert!(matches!(
            group.heartbeat(no_subscription, &counts(), 0),
            Err(ConsumerGroupError::InvalidRequest(_))
        ));
        let bad_assignor = Heartbeat {
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed: Some(vec!["t".to_owned()]),
            assignor: Some("nope".to_owned()),
            owned: Some(Partitions::new()),
            ..Heartbeat::default()
        };
        assert_eq!(
            group.heartbeat(bad_assignor, &counts(), 0),
            Err(ConsumerGroupError::UnsupportedAssignor)
        );
        let bad_epoch = Heartbeat {
            member_id: "m".to_owned(),
            member_epoch: -3,
            ..Heartbeat::default()
        };
        assert!(matches!(
            group.heartbeat(bad_epoch, &counts(), 0),
            Err(ConsumerGroupError::InvalidRequest(_))
        ));
        assert!(group.is_empty());
    }

    #[test]
    fn commits_need_the_members_current_epoch() {
        let mut group = ConsumerGroup::new("g", 0);
        let p0 = [("t".to_owned(), 0)];
        group.validate_offset_commit("", -1, &p0).unwrap();
        let a = join(&mut group, 0);
        group.validate_offset_commit(&a.member_id, 1, &p0).unwrap();
        assert_eq!(
            group.validate_offset_commit(&a.member_id, 0, &p0),
            Err(CommitRefusal::StaleEpoch)
        );
        assert_eq!(
            group.validate_offset_commit("x", 1, &p0),
            Err(CommitRefusal::UnknownMember)
        );
        assert_eq!(
            group.validate_offset_commit("", -1, &p0),
            Err(CommitRefusal::UnknownMember)
        );
        // B joins; A gives partitions up and advances from epoch 1 to 2. A
        // commit A sent at epoch 1 is taken for partitions it still holds.
        let _b = join(&mut group, 1);
        let kept = hand_over(&mut group, &a.member_id, 2);
        let still: Vec<(String, i32)> = kept["t"].iter().map(|p| ("t".to_owned(), *p)).collect();
        group
            .validate_offset_commit(&a.member_id, 1, &still)
            .unwrap();
        let given_up = (0..6).find(|p| !kept["t"].contains(p)).unwrap();
        assert_eq!(
            group.validate_offset_commit(&a.member_id, 1, &[("t".to_owned(), given_up)]),
            Err(CommitRefusal::StaleEpoch),
            "not for a partition it gave up"
        );
    }

    #[test]
    fn random_joins_and_leaves_never_hand_a_partition_to_two_members() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut group = ConsumerGroup::new("g", 0);
        let mut live: Vec<(String, i32, Partitions)> = Vec::new();
        for step in 0..400i64 {
            match next(10) {
                0 if live.len() < 5 => {
                    let a = join(&mut group, step);
                    live.push((
                        a.member_id,
                        a.member_epoch,
                        a.assignment.unwrap_or_default(),
                    ));
                }
                1 if !live.is_empty() => {
                    let (id, _, _) = live.remove(next(live.len() as u64) as usize);
                    beat(&mut group, &id, LEAVE_EPOCH, None, step).unwrap();
                }
                _ if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    let (id, epoch, owned) = live[i].clone();
                    let answer = beat(&mut group, &id, epoch, Some(owned.clone()), step).unwrap();
                    // A client gives up what it is told to and takes what it is given.
                    live[i] = (id, answer.member_epoch, answer.assignment.unwrap_or(owned));
                }
                _ => {}
            }
            assert_exclusive(&group);
            let mut owned_now = BTreeSet::new();
            for (_, _, owned) in &live {
                for p in owned.get("t").into_iter().flatten() {
                    assert!(
                        owned_now.insert(*p),
                        "two clients own partition {p} at step {step}"
                    );
                }
            }
        }
        // With everyone heartbeating, the group settles with every partition owned.
        for _ in 0..4 {
            for entry in &mut live {
                let answer =
                    beat(&mut group, &entry.0, entry.1, Some(entry.2.clone()), 1_000).unwrap();
                entry.1 = answer.member_epoch;
                if let Some(a) = answer.assignment {
                    entry.2 = a;
                }
            }
        }
        if !live.is_empty() {
            let total: usize = live
                .iter()
                .map(|(_, _, o)| o.get("t").map_or(0, BTreeSet::len))
                .sum();
            assert_eq!(total, 6);
            assert_eq!(group.state_name(), "Stable");
        }
    }
}
