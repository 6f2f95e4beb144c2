//! The classic consumer group state machine (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), as Kafka's group coordinator runs it.
//!
//! Pure: no I/O and no clock. Each call takes the time, changes the group
//! and returns the replies it releases, which may answer other members'
//! earlier requests (a JoinGroup waits until the rebalance completes). The
//! coordinator around it owns the waiting requests, persists the group
//! after a generation or an assignment changes, and calls [`ClassicGroup::tick`]
//! at [`ClassicGroup::next_deadline`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::records::{GroupMetadataValue, MemberMetadata};
use super::settings::GroupSettings;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Kafka's default `group.initial.rebalance.delay.ms`: a new group waits
/// this long for more members before its first generation.
pub const INITIAL_REBALANCE_DELAY_MS: Millis = 3_000;
/// How long a member that joined but never completed a generation is kept.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: Millis = 300_000;

/// A group's state, named as Kafka names it in DescribeGroups and ListGroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members; offsets may still be committed.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's display name.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Why a group request is refused; mapped to Kafka codes in `kafka::errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The member id is not (or no longer) in the group.
    #[error("unknown member id")]
    UnknownMemberId,
    /// The request's generation is not the group's.
    #[error("illegal generation")]
    IllegalGeneration,
    /// The member's protocols share none with the group's.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// A rebalance is under way: rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// The session timeout is outside the broker's bounds.
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    /// A first join without a member id (KIP-394): rejoin with the id given.
    #[error("member id required")]
    MemberIdRequired,
    /// Another member now holds this `group.instance.id`.
    #[error("fenced instance id")]
    FencedInstanceId,
    /// The group was deleted.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    /// The coordinator stopped serving the group (shutdown): find it again.
    #[error("not coordinator")]
    NotCoordinator,
}

/// One protocol a member supports, with its metadata (the subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol (assignor) name, e.g. `range`.
    pub name: String,
    /// Opaque protocol metadata.
    pub metadata: Bytes,
}

/// A JoinGroup request, as the state machine needs it.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// `""` on a first join.
    pub member_id: String,
    /// `group.instance.id`, for static membership.
    pub instance_id: Option<String>,
    /// Client id, for the generated member id and DescribeGroups.
    pub client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
    /// Session timeout in ms.
    pub session_timeout_ms: i32,
    /// Rebalance timeout in ms.
    pub rebalance_timeout_ms: i32,
    /// Protocol type, e.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols in the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+ requires a known member id (KIP-394).
    pub requires_known_member_id: bool,
}

/// The answer to a JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    /// Error, if refused.
    pub error: Option<GroupError>,
    /// The member's id (generated on a first join).
    pub member_id: String,
    /// The generation joined, -1 if none.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The protocol chosen.
    pub protocol: Option<String>,
    /// The leader's member id (`""` if none).
    pub leader: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    /// A refusal of `member_id`'s join.
    pub fn error(error: GroupError, member_id: &str) -> JoinResponse {
        JoinResponse {
            error: Some(error),
            member_id: member_id.to_owned(),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    /// Error, if refused.
    pub error: Option<GroupError>,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// A reply released by a call: it answers the request filed under the
/// given member id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// To a JoinGroup, for this member id.
    Join(String, JoinResponse),
    /// To a SyncGroup, for this member id.
    Sync(String, SyncResponse),
}

/// A member of the group.
#[derive(Clone, Debug)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout in ms.
    pub session_timeout_ms: i32,
    /// Rebalance timeout in ms.
    pub rebalance_timeout_ms: i32,
    /// Protocols in preference order.
    pub protocols: Vec<Protocol>,
    /// The assignment of the current generation.
    pub assignment: Bytes,
    awaiting_join: bool,
    awaiting_sync: bool,
    is_new: bool,
    heartbeat_deadline: Millis,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// One classic group.
#[derive(Clone, Debug)]
pub struct ClassicGroup {
    /// Group id.
    pub id: String,
    state: GroupState,
    /// The state before the last transition: a rebalance that started from
    /// Empty waits out the initial delay, as Kafka's does.
    previous_state: GroupState,
    /// When the state last changed (offset expiry counts from an Empty group's).
    pub state_since: Millis,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// Members in join order (the first becomes leader when one is needed).
    members: BTreeMap<u64, Member>,
    next_seq: u64,
    static_members: HashMap<String, String>,
    /// KIP-394: ids handed out, not yet used to join, with their expiry.
    pending_join: HashMap<String, Millis>,
    pending_sync: BTreeSet<String>,
    /// The initial rebalance waits for more members while this is set.
    new_member_added: bool,
    join_deadline: Option<Millis>,
    /// Remaining time of the initial rebalance's extensions.
    initial_remaining: Millis,
    sync_deadline: Option<Millis>,
    uuid_seed: u64,
    settings: GroupSettings,
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str, now: Millis) -> ClassicGroup {
        ClassicGroup {
            id: id.to_owned(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_since: now,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            next_seq: 0,
            static_members: HashMap::new(),
            pending_join: HashMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_deadline: None,
            initial_remaining: 0,
            sync_deadline: None,
            uuid_seed: now as u64 ^ 0x9e37_79b9_7f4a_7c15,
            settings: GroupSettings::default(),
        }
    }

    /// The group under the broker's settings instead of Kafka's defaults.
    pub fn with_settings(mut self, settings: GroupSettings) -> ClassicGroup {
        self.settings = settings;
        self
    }

    /// The group as its metadata record stores it.
    pub fn snapshot(&self) -> GroupMetadataValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_since,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group rebuilt from its metadata record: Stable with its members,
    /// each given a full session from `now` to heartbeat again, or Empty.
    pub fn restore(
        id: &str,
        value: &GroupMetadataValue,
        now: Millis,
        settings: GroupSettings,
    ) -> ClassicGroup {
        let mut group = ClassicGroup::new(id, now).with_settings(settings);
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol = value.protocol.clone();
        group.leader = value.leader.clone();
        if value.current_state_timestamp_ms >= 0 {
            group.state_since = value.current_state_timestamp_ms;
        }
        for member in &value.members {
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            let seq = group.next_seq;
            group.next_seq += 1;
            group.members.insert(
                seq,
                Member {
                    id: member.member_id.clone(),
                    instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    session_timeout_ms: member.session_timeout_ms,
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    protocols: vec![Protocol {
                        name: value.protocol.clone().unwrap_or_default(),
                        metadata: member.subscription.clone(),
                    }],
                    assignment: member.assignment.clone(),
                    awaiting_join: false,
                    awaiting_sync: false,
                    is_new: false,
                    heartbeat_deadline: now + i64::from(member.session_timeout_ms),
                },
            );
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        group
    }

    /// The group's state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The protocol type, once a member has joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The chosen protocol of the current generation.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The members in join order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Whether `member_id` is a member.
    pub fn has_member(&self, member_id: &str) -> bool {
        self.find(member_id).is_some()
    }

    /// Checks a member's identity: Kafka's `validateMember`.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(holder) if holder != member_id => return Err(GroupError::FencedInstanceId),
                Some(_) => {}
            }
        }
        if self.has_member(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Checks an OffsetCommit against the group (Kafka's
    /// `validateOffsetCommit`); a member's commit also counts as a heartbeat.
    pub fn validate_offset_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            // A commit from outside the group (manual assignment, admin).
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(GroupError::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            self.touch(member_id, now);
        }
        Ok(())
    }

    /// The topics the members subscribe to, from their `consumer` protocol
    /// metadata; `None` when unknown (another protocol type, or metadata
    /// that does not parse).
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(parse_subscription(&member.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// Whether offsets of `topic` are in use by the group's members.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match self.subscribed_topics() {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type.as_deref() == Some("consumer") && !self.members.is_empty(),
        }
    }

    /// Marks the group deleted.
    pub fn mark_dead(&mut self, now: Millis) {
        self.transition(GroupState::Dead, now);
    }

    /// The earliest time [`ClassicGroup::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let heartbeats = self.members.values().map(|m| m.heartbeat_deadline);
        let pending = self.pending_join.values().copied();
        heartbeats
            .chain(pending)
            .chain(self.join_deadline)
            .chain(self.sync_deadline)
            .min()
    }

    /// Handles a JoinGroup: the member id the request is filed under, and
    /// the replies released. The reply to this request is among them when
    /// it is answered at once; otherwise it comes when the rebalance
    /// completes.
    pub fn join(&mut self, request: JoinRequest, now: Millis) -> (String, Vec<Reply>) {
        let me = request.member_id.clone();
        let refuse = |e| {
            (
                me.clone(),
                vec![Reply::Join(me.clone(), JoinResponse::error(e, &me))],
            )
        };
        if !(self.settings.min_session_timeout_ms..=self.settings.max_session_timeout_ms)
            .contains(&request.session_timeout_ms)
        {
            return refuse(GroupError::InvalidSessionTimeout);
        }
        if self.state == GroupState::Dead {
            return refuse(GroupError::CoordinatorNotAvailable);
        }
        if !self.supports(&request.protocol_type, &request.protocols) {
            return refuse(GroupError::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            let new_id = self.generate_member_id(&request);
            if let Some(instance) = request.instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&instance).cloned() {
                    let replies = self.replace_static_member(&old_id, new_id.clone(), request, now);
                    return (new_id, replies);
                }
                return (new_id.clone(), self.add_member(new_id, request, now));
            }
            if request.requires_known_member_id {
                let expiry = now + i64::from(request.session_timeout_ms);
                self.pending_join.insert(new_id.clone(), expiry);
                let response = JoinResponse::error(GroupError::MemberIdRequired, &new_id);
                return (new_id.clone(), vec![Reply::Join(new_id, response)]);
            }
            return (new_id.clone(), self.add_member(new_id, request, now));
        }
        if self.pending_join.remove(&request.member_id).is_some() {
            return (me.clone(), self.add_member(me, request, now));
        }
        if let Err(e) = self.validate_member(&request.member_id, request.instance_id.as_deref()) {
            return refuse(e);
        }
        let id = me.clone();
        let replies = match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&id, request);
                self.maybe_complete_join(now)
            }
            GroupState::CompletingRebalance => {
                if self
                    .find(&id)
                    .is_some_and(|m| m.protocols == request.protocols)
                {
                    vec![Reply::Join(id.clone(), self.join_response(&id))]
                } else {
                    self.update_member(&id, request);
                    self.prepare_rebalance(now)
                }
            }
            GroupState::Stable => {
                let same = self
                    .find(&id)
                    .is_some_and(|m| m.protocols == request.protocols);
                if self.leader.as_deref() == Some(&*id) || !same {
                    self.update_member(&id, request);
                    self.prepare_rebalance(now)
                } else {
                    let mut response = self.join_response(&id);
                    response.members.clear();
                    vec![Reply::Join(id.clone(), response)]
                }
            }
            GroupState::Empty | GroupState::Dead => return refuse(GroupError::UnknownMemberId),
        };
        (id, replies)
    }

    /// Handles a SyncGroup. The leader's assignment releases every member's
    /// waiting sync; the coordinator persists the group before sending them.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Millis,
    ) -> Vec<Reply> {
        let refuse = |e| {
            vec![Reply::Sync(
                member_id.to_owned(),
                SyncResponse {
                    error: Some(e),
                    assignment: Bytes::new(),
                },
            )]
        };
        match self.state {
            GroupState::Empty => return refuse(GroupError::UnknownMemberId),
            GroupState::Dead => return refuse(GroupError::CoordinatorNotAvailable),
            _ => {}
        }
        if let Err(e) = self.validate_member(member_id, instance_id) {
            return refuse(e);
        }
        if generation != self.generation {
            return refuse(GroupError::IllegalGeneration);
        }
        match self.state {
            GroupState::PreparingRebalance => refuse(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(member_id);
                self.touch(member_id, now);
                if let Some(member) = self.find_mut(member_id) {
                    member.awaiting_sync = true;
                }
                if self.leader.as_deref() != Some(member_id) {
                    return Vec::new();
                }
                let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = given.get(&member.id).cloned().unwrap_or_default();
                }
                self.sync_deadline = None;
                self.transition(GroupState::Stable, now);
                let mut replies = Vec::new();
                for member in self.members.values_mut() {
                    if std::mem::take(&mut member.awaiting_sync) {
                        replies.push(Reply::Sync(
                            member.id.clone(),
                            SyncResponse {
                                error: None,
                                assignment: member.assignment.clone(),
                            },
                        ));
                    }
                }
                replies
            }
            GroupState::Stable => {
                self.pending_sync.remove(member_id);
                self.touch(member_id, now);
                let assignment = self
                    .find(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                vec![Reply::Sync(
                    member_id.to_owned(),
                    SyncResponse {
                        error: None,
                        assignment,
                    },
                )]
            }
            GroupState::Empty | GroupState::Dead => Vec::new(),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.touch(member_id, now);
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.touch(member_id, now);
                Ok(())
            }
        }
    }

    /// Handles the members of a LeaveGroup: one result per member, and the
    /// replies a resulting rebalance releases.
    pub fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        now: Millis,
    ) -> (Vec<Result<(), GroupError>>, Vec<Reply>) {
        let mut results = Vec::with_capacity(leaving.len());
        let mut replies = Vec::new();
        let mut anyone_left = false;
        for (member_id, instance_id) in leaving {
            let result = if member_id.is_empty() {
                match instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i))
                    .cloned()
                {
                    Some(holder) => {
                        replies.extend(self.remove_member(&holder));
                        anyone_left = true;
                        Ok(())
                    }
                    None => Err(GroupError::UnknownMemberId),
                }
            } else if self.pending_join.remove(member_id).is_some() {
                Ok(())
            } else {
                self.validate_member(member_id, instance_id.as_deref())
                    .map(|()| {
                        replies.extend(self.remove_member(member_id));
                        anyone_left = true;
                    })
            };
            results.push(result);
        }
        if anyone_left {
            replies.extend(self.after_member_removed(now));
        }
        (results, replies)
    }

    /// Expires sessions, pending member ids and rebalance timeouts due by `now`.
    pub fn tick(&mut self, now: Millis) -> Vec<Reply> {
        let mut replies = Vec::new();
        self.pending_join.retain(|_, expiry| *expiry > now);
        if self.join_deadline.is_some_and(|d| d <= now) {
            replies.extend(self.join_timer_fired(now));
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.sync_deadline = None;
            let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
            if !missing.is_empty()
                && matches!(
                    self.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                )
            {
                for id in &missing {
                    replies.extend(self.remove_member(id));
                }
                replies.extend(self.prepare_rebalance(now));
            }
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.heartbeat_deadline <= now && (m.is_new || !(m.awaiting_join || m.awaiting_sync))
            })
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                replies.extend(self.remove_member(id));
            }
            replies.extend(self.after_member_removed(now));
        }
        replies
    }

    // --- internals ---

    fn find(&self, member_id: &str) -> Option<&Member> {
        self.members.values().find(|m| m.id == member_id)
    }

    fn find_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.values_mut().find(|m| m.id == member_id)
    }

    fn touch(&mut self, member_id: &str, now: Millis) {
        if let Some(member) = self.find_mut(member_id) {
            member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
        }
    }

    fn transition(&mut self, state: GroupState, now: Millis) {
        self.previous_state = self.state;
        self.state = state;
        self.state_since = now;
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    /// Kafka's member id: `(instance id or client id)-UUID`.
    fn generate_member_id(&mut self, request: &JoinRequest) -> String {
        let prefix = request.instance_id.as_deref().unwrap_or(&request.client_id);
        let mut uuid = [0u8; 16];
        for chunk in uuid.chunks_mut(8) {
            // xorshift64*: unique enough within a group, and no lock or syscall.
            self.uuid_seed ^= self.uuid_seed << 13;
            self.uuid_seed ^= self.uuid_seed >> 7;
            self.uuid_seed ^= self.uuid_seed << 17;
            let value = self.uuid_seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
            chunk.copy_from_slice(&value.to_be_bytes());
        }
        let uuid = uuid::Builder::from_random_bytes(uuid).into_uuid();
        format!("{prefix}-{uuid}")
    }

    fn add_member(&mut self, id: String, request: JoinRequest, now: Millis) -> Vec<Reply> {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.members.insert(
            seq,
            Member {
                id,
                instance_id: request.instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: request.protocols,
                assignment: Bytes::new(),
                awaiting_join: true,
                awaiting_sync: false,
                is_new: true,
                heartbeat_deadline: now + NEW_MEMBER_JOIN_TIMEOUT_MS,
            },
        );
        self.maybe_prepare_rebalance_or_complete_join(now)
    }

    fn update_member(&mut self, id: &str, request: JoinRequest) {
        if let Some(member) = self.find_mut(id) {
            member.protocols = request.protocols;
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.awaiting_join = true;
        }
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        request: JoinRequest,
        now: Millis,
    ) -> Vec<Reply> {
        let mut replies = Vec::new();
        let instance = request.instance_id.clone().unwrap_or_default();
        if let Some(member) = self.find_mut(old_id) {
            if std::mem::take(&mut member.awaiting_join) {
                replies.push(Reply::Join(
                    old_id.to_owned(),
                    JoinResponse::error(GroupError::FencedInstanceId, old_id),
                ));
            }
            if std::mem::take(&mut member.awaiting_sync) {
                replies.push(Reply::Sync(
                    old_id.to_owned(),
                    SyncResponse {
                        error: Some(GroupError::FencedInstanceId),
                        assignment: Bytes::new(),
                    },
                ));
            }
            member.id = new_id.clone();
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        self.static_members.insert(instance, new_id.clone());
        self.touch(&new_id, now);
        let same = self
            .find(&new_id)
            .is_some_and(|m| m.protocols == request.protocols);
        self.update_member(&new_id, request);
        match self.state {
            GroupState::Stable if same => {
                // The same subscription: no rebalance; the member gets its
                // assignment back with SyncGroup. It is not told it leads,
                // so it runs no assignment of its own.
                if let Some(member) = self.find_mut(&new_id) {
                    member.awaiting_join = false;
                }
                let mut response = self.join_response(&new_id);
                response.members.clear();
                if response.leader == new_id {
                    response.leader = old_id.to_owned();
                }
                replies.push(Reply::Join(new_id.clone(), response));
            }
            GroupState::Stable | GroupState::Empty => {
                replies.extend(self.maybe_prepare_rebalance_or_complete_join(now));
            }
            GroupState::CompletingRebalance => replies.extend(self.prepare_rebalance(now)),
            GroupState::PreparingRebalance => replies.extend(self.maybe_complete_join(now)),
            GroupState::Dead => {}
        }
        replies
    }

    fn remove_member(&mut self, member_id: &str) -> Vec<Reply> {
        let Some((&seq, _)) = self.members.iter().find(|(_, m)| m.id == member_id) else {
            return Vec::new();
        };
        let member = self.members.remove(&seq).expect("found just above");
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.values().next().map(|m| m.id.clone());
        }
        let mut replies = Vec::new();
        if member.awaiting_join {
            replies.push(Reply::Join(
                member.id.clone(),
                JoinResponse::error(GroupError::UnknownMemberId, ""),
            ));
        }
        if member.awaiting_sync {
            replies.push(Reply::Sync(
                member.id,
                SyncResponse {
                    error: Some(GroupError::UnknownMemberId),
                    assignment: Bytes::new(),
                },
            ));
        }
        replies
    }

    fn after_member_removed(&mut self, now: Millis) -> Vec<Reply> {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(now)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => Vec::new(),
        }
    }

    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    fn all_joined(&self) -> bool {
        self.pending_join.is_empty() && self.members.values().all(|m| m.awaiting_join)
    }

    fn rebalance_timeout(&self) -> Millis {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, now: Millis) -> Vec<Reply> {
        if self.can_rebalance() {
            self.prepare_rebalance(now)
        } else {
            self.maybe_complete_join(now)
        }
    }

    /// Completes the join phase early when everyone has rejoined, except
    /// for a new group's first generation, which waits out its delay.
    fn maybe_complete_join(&mut self, now: Millis) -> Vec<Reply> {
        if self.state == GroupState::PreparingRebalance && self.generation > 0 && self.all_joined()
        {
            self.complete_join(now)
        } else {
            Vec::new()
        }
    }

    fn prepare_rebalance(&mut self, now: Millis) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if std::mem::take(&mut member.awaiting_sync) {
                    replies.push(Reply::Sync(
                        member.id.clone(),
                        SyncResponse {
                            error: Some(GroupError::RebalanceInProgress),
                            assignment: Bytes::new(),
                        },
                    ));
                }
            }
        }
        self.sync_deadline = None;
        self.pending_sync.clear();
        let initial = self.state == GroupState::Empty;
        self.transition(GroupState::PreparingRebalance, now);
        if initial {
            self.new_member_added = false;
            let delay = self.settings.initial_rebalance_delay_ms;
            self.join_deadline = Some(now + delay);
            self.initial_remaining = (self.rebalance_timeout() - delay).max(0);
        } else if self.all_joined() {
            replies.extend(self.complete_join(now));
        } else {
            self.join_deadline = Some(now + self.rebalance_timeout());
        }
        replies
    }

    fn join_timer_fired(&mut self, now: Millis) -> Vec<Reply> {
        self.join_deadline = None;
        if self.state != GroupState::PreparingRebalance {
            return Vec::new();
        }
        if self.previous_state == GroupState::Empty
            && self.new_member_added
            && self.initial_remaining > 0
        {
            // More members came during the initial delay: wait a little more.
            self.new_member_added = false;
            let delay = self
                .settings
                .initial_rebalance_delay_ms
                .min(self.initial_remaining);
            self.initial_remaining = (self.initial_remaining - delay).max(0);
            self.join_deadline = Some(now + delay);
            return Vec::new();
        }
        self.complete_join(now)
    }

    fn complete_join(&mut self, now: Millis) -> Vec<Reply> {
        self.join_deadline = None;
        let mut replies = Vec::new();
        // Dynamic members that did not rejoin are dropped; static ones stay.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            replies.extend(self.remove_member(id));
        }
        if !self.members.is_empty() {
            let leader_joined = self
                .leader
                .as_deref()
                .and_then(|l| self.find(l))
                .is_some_and(|m| m.awaiting_join);
            if !leader_joined {
                match self.members.values().find(|m| m.awaiting_join) {
                    Some(m) => self.leader = Some(m.id.clone()),
                    None => {
                        // Nobody rejoined: wait another rebalance timeout.
                        self.join_deadline = Some(now + self.rebalance_timeout());
                        return replies;
                    }
                }
            }
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(GroupState::Empty, now);
            return replies;
        }
        self.protocol = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = self.members.values().map(|m| m.id.clone()).collect();
        for id in &ids {
            let response = self.join_response(id);
            if let Some(member) = self.find_mut(id) {
                let was_waiting = std::mem::take(&mut member.awaiting_join);
                member.is_new = false;
                member.heartbeat_deadline = now + i64::from(member.session_timeout_ms);
                if was_waiting {
                    replies.push(Reply::Join(id.clone(), response));
                }
            }
            self.pending_sync.insert(id.clone());
        }
        self.sync_deadline = Some(now + self.rebalance_timeout());
        replies
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|p| p.name == *name))
            })
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(vote) = member
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()))
            {
                *votes.entry(vote.name.as_str()).or_default() += 1;
            }
        }
        // Most votes wins; ties go to the first member's preference.
        candidates
            .iter()
            .max_by_key(|name| {
                let rank =
                    candidates.len() - candidates.iter().position(|c| c == *name).unwrap_or(0);
                (votes.get(*name).copied().unwrap_or(0), rank)
            })
            .map(|name| (*name).to_owned())
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            member_id: member_id.to_owned(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            members,
        }
    }
}

/// The topics of a `ConsumerProtocolSubscription` (any version: all start
/// with an int16 version, then the topics as an int32-counted string array).
fn parse_subscription(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata.get(2..)?;
    let count = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    rest = &rest[4..];
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        let len = usize::try_from(i16::from_be_bytes(rest.get(..2)?.try_into().ok()?)).ok()?;
        let name = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
        topics.push(name.to_owned());
        rest = &rest[2 + len..];
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(member_id: &str, instance: Option<&str>, protocols: &[(&str, &str)]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_owned(),
            instance_id: instance.map(str::to_owned),
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".to_owned(),
            protocols: protocols
                .iter()
                .map(|(name, meta)| Protocol {
                    name: (*name).to_owned(),
                    metadata: Bytes::copy_from_slice(meta.as_bytes()),
                })
                .collect(),
            requires_known_member_id: true,
        }
    }

    /// When [`stable_group`]'s group is stable.
    const T: Millis = 10_000;

    fn joins(replies: &[Reply]) -> Vec<(&str, &JoinResponse)> {
        replies
            .iter()
            .filter_map(|r| match r {
                Reply::Join(to, response) => Some((to.as_str(), response)),
                Reply::Sync(..) => None,
            })
            .collect()
    }

    /// Joins a new dynamic member the KIP-394 way; returns its id.
    fn first_join(group: &mut ClassicGroup, now: Millis) -> (String, Vec<Reply>) {
        let (id, replies) = group.join(request("", None, &[("range", "m")]), now);
        assert_eq!(
            joins(&replies)[0].1.error,
            Some(GroupError::MemberIdRequired)
        );
        assert!(id.starts_with("client-"), "{id}");
        group.join(request(&id, None, &[("range", "m")]), now)
    }

    /// A stable group of `n` members at generation 1, stable by time `T`.
    fn stable_group(n: usize) -> (ClassicGroup, Vec<String>) {
        let mut group = ClassicGroup::new("g", 0);
        let mut ids = Vec::new();
        for _ in 0..n {
            let (id, replies) = first_join(&mut group, 0);
            assert!(
                replies.is_empty(),
                "the first generation waits out its delay"
            );
            ids.push(id);
        }
        // Members joined during the delay, so it is extended once.
        let mut replies = group.tick(INITIAL_REBALANCE_DELAY_MS);
        if n > 1 {
            assert!(replies.is_empty(), "extended while members arrived");
            replies = group.tick(2 * INITIAL_REBALANCE_DELAY_MS);
        }
        assert_eq!(joins(&replies).len(), n);
        let leader = group.leader().unwrap().to_owned();
        let assignments = ids
            .iter()
            .map(|id| (id.clone(), Bytes::from(format!("a-{id}"))))
            .collect();
        for id in ids.iter().filter(|id| **id != leader) {
            assert!(
                group.sync(id, None, 1, Vec::new(), T - 200).is_empty(),
                "followers wait"
            );
        }
        let replies = group.sync(&leader, None, 1, assignments, T - 100);
        assert_eq!(
            replies.len(),
            n,
            "the leader's assignment releases every sync"
        );
        assert_eq!(group.state(), GroupState::Stable);
        (group, ids)
    }

    #[test]
    fn first_join_needs_a_member_id_then_waits_for_the_initial_delay() {
        let mut group = ClassicGroup::new("g", 0);
        let (id, replies) = first_join(&mut group, 0);
        assert!(replies.is_empty());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert!(group.tick(INITIAL_REBALANCE_DELAY_MS - 1).is_empty());
        let replies = group.tick(INITIAL_REBALANCE_DELAY_MS);
        let joined = joins(&replies);
        assert_eq!(joined.len(), 1);
        let (to, response) = joined[0];
        assert_eq!(to, id);
        assert_eq!(response.error, None);
        assert_eq!(response.generation, 1);
        assert_eq!(response.leader, id);
        assert_eq!(response.protocol.as_deref(), Some("range"));
        assert_eq!(response.members, vec![(id.clone(), None, Bytes::from("m"))]);
        assert_eq!(group.state(), GroupState::CompletingRebalance);
    }

    #[test]
    fn only_the_leader_gets_the_members_and_every_member_its_assignment() {
        let (group, ids) = stable_group(3);
        assert_eq!(group.generation(), 1);
        for member in group.members() {
            assert_eq!(member.assignment, Bytes::from(format!("a-{}", member.id)));
        }
        assert_eq!(group.leader(), Some(ids[0].as_str()));
    }

    #[test]
    fn a_member_leaving_starts_a_rebalance_that_completes_when_the_rest_rejoin() {
        let (mut group, ids) = stable_group(3);
        let (results, replies) = group.leave(&[(ids[1].clone(), None)], T + 2000);
        assert_eq!(results, vec![Ok(())]);
        assert!(replies.is_empty());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(
            group.heartbeat(&ids[0], None, 1, T + 2100),
            Err(GroupError::RebalanceInProgress)
        );
        let (_, replies) = group.join(request(&ids[0], None, &[("range", "m")]), T + 2200);
        assert!(replies.is_empty(), "waits for the other member");
        let (_, replies) = group.join(request(&ids[2], None, &[("range", "m")]), T + 2300);
        let joined = joins(&replies);
        assert_eq!(joined.len(), 2, "both released at once");
        assert!(joined.iter().all(|(_, r)| r.generation == 2));
        assert_eq!(
            group.heartbeat(&ids[1], None, 2, T + 2400),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[test]
    fn a_silent_member_is_removed_after_its_session_timeout() {
        let (mut group, ids) = stable_group(2);
        let mut now = T + 200;
        while now < T + 200 + 12_000 {
            now += 2_000;
            // Refused with REBALANCE_IN_PROGRESS once the other expired.
            let _ = group.heartbeat(&ids[0], None, 1, now);
            group.tick(now);
        }
        assert!(group.has_member(&ids[0]));
        assert!(!group.has_member(&ids[1]), "10 s without a heartbeat");
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        let (_, replies) = group.join(request(&ids[0], None, &[("range", "m")]), now);
        assert_eq!(joins(&replies)[0].1.generation, 2);
    }

    #[test]
    fn a_member_not_rejoining_within_the_rebalance_timeout_is_dropped() {
        let (mut group, ids) = stable_group(2);
        let (_, replies) = group.join(request(&ids[1], None, &[("range", "other")]), T + 1000);
        assert!(replies.is_empty());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        group.heartbeat(&ids[1], None, 1, T + 7000).unwrap_err();
        let replies = group.tick(T + 1000 + 20_000);
        let joined = joins(&replies);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].0, ids[1]);
        assert_eq!(
            joined[0].1.leader, ids[1],
            "leadership moves to a member that rejoined"
        );
        assert!(!group.has_member(&ids[0]));
    }

    #[test]
    fn stale_generations_and_unknown_members_are_refused() {
        let (mut group, ids) = stable_group(1);
        assert_eq!(
            group.heartbeat(&ids[0], None, 0, T + 1000),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            group.heartbeat("nobody", None, 1, T + 1000),
            Err(GroupError::UnknownMemberId)
        );
        let replies = group.sync(&ids[0], None, 7, Vec::new(), T + 1000);
        assert!(matches!(
            &replies[0],
            Reply::Sync(
                _,
                SyncResponse {
                    error: Some(GroupError::IllegalGeneration),
                    ..
                }
            )
        ));
        let mut bad = request("", None, &[("range", "m")]);
        bad.session_timeout_ms = 1_000;
        let (_, replies) = group.join(bad, T + 1000);
        assert_eq!(
            joins(&replies)[0].1.error,
            Some(GroupError::InvalidSessionTimeout)
        );
        let (_, replies) = group.join(request("", None, &[("roundrobin", "m")]), T + 1000);
        assert_eq!(
            joins(&replies)[0].1.error,
            Some(GroupError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn a_static_member_returns_without_a_rebalance_and_fences_its_old_id() {
        let mut group = ClassicGroup::new("g", 0);
        let (old_id, _) = group.join(request("", Some("i-1"), &[("range", "m")]), 0);
        assert!(old_id.starts_with("i-1-"), "{old_id}");
        group.tick(INITIAL_REBALANCE_DELAY_MS);
        group.sync(
            &old_id,
            Some("i-1"),
            1,
            vec![(old_id.clone(), Bytes::from("p0"))],
            3_100,
        );
        assert_eq!(group.state(), GroupState::Stable);
        // Restarted: the same instance id, no member id.
        let (new_id, replies) = group.join(request("", Some("i-1"), &[("range", "m")]), 5_000);
        assert_ne!(new_id, old_id);
        let joined = joins(&replies);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].1.error, None);
        assert_eq!(joined[0].1.generation, 1, "no new generation");
        assert_eq!(group.state(), GroupState::Stable);
        let replies = group.sync(&new_id, Some("i-1"), 1, Vec::new(), 5_100);
        assert!(matches!(
            &replies[0],
            Reply::Sync(_, SyncResponse { error: None, assignment }) if assignment == "p0"
        ));
        assert_eq!(
            group.heartbeat(&old_id, Some("i-1"), 1, 5_200),
            Err(GroupError::FencedInstanceId)
        );
    }

    #[test]
    fn a_restored_group_keeps_its_members_generation_and_assignments() {
        let (group, ids) = stable_group(2);
        let snapshot = group.snapshot();
        let mut restored =
            ClassicGroup::restore("g", &snapshot, T + 50_000, GroupSettings::default());
        assert_eq!(restored.state(), GroupState::Stable);
        assert_eq!(restored.generation(), 1);
        assert_eq!(restored.leader(), group.leader());
        assert_eq!(restored.snapshot().members, snapshot.members);
        restored.heartbeat(&ids[1], None, 1, T + 50_001).unwrap();
        let replies = restored.sync(&ids[1], None, 1, Vec::new(), T + 50_002);
        assert!(matches!(
            &replies[0],
            Reply::Sync(_, SyncResponse { error: None, assignment }) if *assignment == format!("a-{}", ids[1])
        ));
    }

    #[test]
    fn offset_commits_are_checked_against_generation_and_member() {
        let (mut group, ids) = stable_group(1);
        group.validate_offset_commit(&ids[0], None, 1, T).unwrap();
        assert_eq!(
            group.validate_offset_commit(&ids[0], None, 0, T),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            group.validate_offset_commit("", None, -1, T),
            Err(GroupError::UnknownMemberId),
            "an outsider may not commit for an active group"
        );
        let mut empty = ClassicGroup::new("simple", 0);
        empty.validate_offset_commit("", None, -1, 0).unwrap();
    }

    #[test]
    fn subscriptions_are_read_from_consumer_protocol_metadata() {
        // Version 1: topics ["a", "bc"], then user data and owned partitions.
        let metadata =
            b"\x00\x01\x00\x00\x00\x02\x00\x01a\x00\x02bc\xff\xff\xff\xff\x00\x00\x00\x00";
        let mut group = ClassicGroup::new("g", 0);
        let mut join = request("", None, &[]);
        join.protocols = vec![Protocol {
            name: "range".to_owned(),
            metadata: Bytes::from_static(metadata),
        }];
        join.requires_known_member_id = false;
        group.join(join, 0);
        group.tick(INITIAL_REBALANCE_DELAY_MS);
        let topics = group.subscribed_topics().unwrap();
        assert_eq!(topics.into_iter().collect::<Vec<_>>(), ["a", "bc"]);
        assert!(group.is_subscribed_to("a"));
        assert!(!group.is_subscribed_to("z"));
        assert_eq!(
            parse_subscription(b"\x00\x00\x00\x00\x00\x05"),
            None,
            "truncated"
        );
    }

    #[test]
    fn an_emptied_group_waits_out_the_initial_delay_again() {
        let (mut group, ids) = stable_group(1);
        group.leave(&[(ids[0].clone(), None)], T);
        assert_eq!(group.state(), GroupState::Empty);
        let (_, replies) = first_join(&mut group, T + 1_000);
        assert!(
            replies.is_empty(),
            "members coming back may arrive a little apart"
        );
        assert!(group
            .tick(T + 1_000 + INITIAL_REBALANCE_DELAY_MS - 1)
            .is_empty());
        let replies = group.tick(T + 1_000 + INITIAL_REBALANCE_DELAY_MS);
        assert_eq!(joins(&replies)[0].1.generation, 3);
    }

    #[test]
    fn the_last_member_leaving_empties_the_group() {
        let (mut group, ids) = stable_group(1);
        let (results, _) = group.leave(&[(ids[0].clone(), None), ("ghost".to_owned(), None)], T);
        assert_eq!(results, vec![Ok(()), Err(GroupError::UnknownMemberId)]);
        assert_eq!(group.state(), GroupState::Empty);
        assert_eq!(group.generation(), 2);
        assert_eq!(group.leader(), None);
    }
}
