//! A consumer group (KIP-848) as records of `__consumer_offsets`, in
//! Kafka's formats: writing a group's state after a change, and rebuilding
//! groups from the records read back at load.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

use super::classic::Millis;
use super::consumer::{ConsumerGroup, ConsumerMember, ConsumerSnapshot, MemberState, Partitions};
use super::consumer_records::{
    ConsumerGroupMetadataValue, ConsumerRecordKey, CurrentMemberAssignmentValue,
    MemberMetadataValue, TargetAssignmentMemberValue, TargetAssignmentMetadataValue,
};
use super::settings::GroupSettings;

/// A record's key and value (`None`: a tombstone).
pub type Record = (Bytes, Option<Bytes>);

/// Kafka's codes of a member's reconciliation state.
fn state_code(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn state_of(code: i8) -> MemberState {
    match code {
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => MemberState::Stable,
    }
}

/// The records that bring the log from `before` to `after`: the group and
/// every member as they are now, and tombstones for members gone.
/// `id_of` maps a topic name to its id (topics deleted meanwhile are left out).
pub fn records(
    group: &str,
    before: Option<&ConsumerSnapshot>,
    after: &ConsumerSnapshot,
    id_of: &dyn Fn(&str) -> Option<Uuid>,
) -> Vec<Record> {
    let by_ids = |partitions: &Partitions| -> Vec<(Uuid, Vec<i32>)> {
        partitions
            .iter()
            .filter_map(|(topic, p)| Some((id_of(topic)?, p.iter().copied().collect())))
            .collect()
    };
    let key = |k: ConsumerRecordKey| k.encode();
    let g = group.to_owned();
    let mut out = vec![
        (
            key(ConsumerRecordKey::GroupMetadata { group: g.clone() }),
            Some(
                ConsumerGroupMetadataValue {
                    epoch: after.group_epoch,
                }
                .encode(),
            ),
        ),
        (
            key(ConsumerRecordKey::TargetAssignmentMetadata { group: g.clone() }),
            Some(
                TargetAssignmentMetadataValue {
                    assignment_epoch: after.assignment_epoch,
                }
                .encode(),
            ),
        ),
    ];
    for member in &after.members {
        let m = member.id.clone();
        // A set: sorted, as Kafka writes them.
        let subscribed: Vec<String> = member.subscribed_names.iter().cloned().collect();
        out.push((
            key(ConsumerRecordKey::MemberMetadata {
                group: g.clone(),
                member: m.clone(),
            }),
            Some(
                MemberMetadataValue {
                    instance_id: member.instance_id.clone(),
                    rack_id: member.rack_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    subscribed_topic_names: subscribed,
                    subscribed_topic_regex: member.subscribed_regex.clone(),
                    server_assignor: member.assignor.clone(),
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                }
                .encode(),
            ),
        ));
        let target = after.target.get(&member.id).cloned().unwrap_or_default();
        out.push((
            key(ConsumerRecordKey::TargetAssignmentMember {
                group: g.clone(),
                member: m.clone(),
            }),
            Some(
                TargetAssignmentMemberValue {
                    topic_partitions: by_ids(&target),
                }
                .encode(),
            ),
        ));
        out.push((
            key(ConsumerRecordKey::CurrentMemberAssignment {
                group: g.clone(),
                member: m,
            }),
            Some(
                CurrentMemberAssignmentValue {
                    member_epoch: member.epoch,
                    previous_member_epoch: member.previous_epoch,
                    state: state_code(member.state),
                    assigned_partitions: by_ids(&member.assigned),
                    partitions_pending_revocation: by_ids(&member.revoking),
                }
                .encode(),
            ),
        ));
    }
    let now: BTreeSet<&str> = after.members.iter().map(|m| m.id.as_str()).collect();
    for gone in before
        .into_iter()
        .flat_map(|b| b.members.iter())
        .filter(|m| !now.contains(m.id.as_str()))
    {
        out.extend(member_tombstones(group, &gone.id));
    }
    out
}

/// Tombstones of a whole group: its members' records, then the group's.
pub fn tombstones(group: &str, snapshot: &ConsumerSnapshot) -> Vec<Record> {
    let mut out: Vec<Record> = snapshot
        .members
        .iter()
        .flat_map(|m| member_tombstones(group, &m.id))
        .collect();
    out.push((
        ConsumerRecordKey::TargetAssignmentMetadata {
            group: group.to_owned(),
        }
        .encode(),
        None,
    ));
    out.push((
        ConsumerRecordKey::GroupMetadata {
            group: group.to_owned(),
        }
        .encode(),
        None,
    ));
    out
}

fn member_tombstones(group: &str, member: &str) -> Vec<Record> {
    let (g, m) = (group.to_owned(), member.to_owned());
    vec![
        (
            ConsumerRecordKey::CurrentMemberAssignment {
                group: g.clone(),
                member: m.clone(),
            }
            .encode(),
            None,
        ),
        (
            ConsumerRecordKey::TargetAssignmentMember {
                group: g.clone(),
                member: m.clone(),
            }
            .encode(),
            None,
        ),
        (
            ConsumerRecordKey::MemberMetadata {
                group: g,
                member: m,
            }
            .encode(),
            None,
        ),
    ]
}

/// Consumer groups being rebuilt from records, in log order.
#[derive(Default)]
pub struct Loader {
    groups: BTreeMap<String, Loading>,
}

#[derive(Default)]
struct Loading {
    epoch: Option<i32>,
    assignment_epoch: i32,
    metadata: BTreeMap<String, MemberMetadataValue>,
    targets: BTreeMap<String, Vec<(Uuid, Vec<i32>)>>,
    current: BTreeMap<String, CurrentMemberAssignmentValue>,
}

impl Loader {
    /// Applies one record; a value that does not decode is skipped with a warning.
    pub fn apply(&mut self, key: ConsumerRecordKey, value: Option<&[u8]>) {
        let group = self.groups.entry(key.group().to_owned()).or_default();
        let warn = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "skipping an undecodable consumer group record");
        };
        match key {
            ConsumerRecordKey::GroupMetadata { .. } => {
                match value.map(ConsumerGroupMetadataValue::decode) {
                    None => group.epoch = None,
                    Some(Ok(v)) => group.epoch = Some(v.epoch),
                    Some(Err(e)) => warn(&e),
                }
            }
            ConsumerRecordKey::PartitionMetadata { .. } => {}
            ConsumerRecordKey::TargetAssignmentMetadata { .. } => {
                match value.map(TargetAssignmentMetadataValue::decode) {
                    None => group.assignment_epoch = 0,
                    Some(Ok(v)) => group.assignment_epoch = v.assignment_epoch,
                    Some(Err(e)) => warn(&e),
                }
            }
            ConsumerRecordKey::MemberMetadata { member, .. } => {
                match value.map(MemberMetadataValue::decode) {
                    None => {
                        group.metadata.remove(&member);
                    }
                    Some(Ok(v)) => {
                        group.metadata.insert(member, v);
                    }
                    Some(Err(e)) => warn(&e),
                }
            }
            ConsumerRecordKey::TargetAssignmentMember { member, .. } => {
                match value.map(TargetAssignmentMemberValue::decode) {
                    None => {
                        group.targets.remove(&member);
                    }
                    Some(Ok(v)) => {
                        group.targets.insert(member, v.topic_partitions);
                    }
                    Some(Err(e)) => warn(&e),
                }
            }
            ConsumerRecordKey::CurrentMemberAssignment { member, .. } => {
                match value.map(CurrentMemberAssignmentValue::decode) {
                    None => {
                        group.current.remove(&member);
                    }
                    Some(Ok(v)) => {
                        group.current.insert(member, v);
                    }
                    Some(Err(e)) => warn(&e),
                }
            }
        }
    }

    /// The groups that still exist, rebuilt; `name_of` maps topic ids to
    /// names (partitions of deleted topics are dropped).
    pub fn finish(
        self,
        name_of: &dyn Fn(&Uuid) -> Option<String>,
        now: Millis,
        settings: GroupSettings,
    ) -> Vec<ConsumerGroup> {
        let by_names = |list: &[(Uuid, Vec<i32>)]| -> Partitions {
            list.iter()
                .filter_map(|(id, p)| Some((name_of(id)?, p.iter().copied().collect())))
                .collect()
        };
        self.groups
            .into_iter()
            .filter_map(|(id, loading)| {
                let epoch = loading.epoch?;
                let members = loading
                    .metadata
                    .iter()
                    .map(|(member_id, meta)| {
                        let mut member = ConsumerMember::restored(member_id);
                        member.instance_id = meta.instance_id.clone();
                        member.rack_id = meta.rack_id.clone();
                        member.client_id = meta.client_id.clone();
                        member.client_host = meta.client_host.clone();
                        member.subscribed_names =
                            meta.subscribed_topic_names.iter().cloned().collect();
                        member.subscribed_regex = meta.subscribed_topic_regex.clone();
                        // Resolved against the topics at the next heartbeat.
                        member.subscribed = member.subscribed_names.clone();
                        member.assignor = meta.server_assignor.clone();
                        member.rebalance_timeout_ms = meta.rebalance_timeout_ms;
                        if let Some(current) = loading.current.get(member_id) {
                            member.epoch = current.member_epoch;
                            member.previous_epoch = current.previous_member_epoch;
                            member.state = state_of(current.state);
                            member.assigned = by_names(&current.assigned_partitions);
                            member.revoking = by_names(&current.partitions_pending_revocation);
                        }
                        member
                    })
                    .collect();
                let target = loading
                    .targets
                    .iter()
                    .map(|(member, list)| (member.clone(), by_names(list)))
                    .collect();
                let snapshot = ConsumerSnapshot {
                    group_epoch: epoch,
                    assignment_epoch: loading.assignment_epoch,
                    target,
                    members,
                };
                Some(ConsumerGroup::restore(&id, snapshot, now, settings))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::consumer::Heartbeat;

    #[test]
    fn a_group_written_as_records_reads_back_the_same() {
        let topic_id = Uuid::from_u128(7);
        let counts: BTreeMap<String, i32> = [("t".to_owned(), 4)].into_iter().collect();
        let mut group = ConsumerGroup::new("g", 0);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let answer = group
                .heartbeat(
                    Heartbeat {
                        member_epoch: 0,
                        rebalance_timeout_ms: 30_000,
                        subscribed: Some(vec!["t".to_owned()]),
                        owned: Some(Partitions::new()),
                        client_id: "c".to_owned(),
                        ..Heartbeat::default()
                    },
                    &counts,
                    0,
                )
                .unwrap();
            ids.push(answer.member_id);
        }
        let before = group.snapshot();
        let written = records("g", None, &before, &|t| (t == "t").then_some(topic_id));
        let mut loader = Loader::default();
        for (key, value) in &written {
            loader.apply(ConsumerRecordKey::decode(key).unwrap(), value.as_deref());
        }
        let name_of = |id: &Uuid| (*id == topic_id).then(|| "t".to_owned());
        let rebuilt = loader.finish(&name_of, 10, GroupSettings::default());
        assert_eq!(rebuilt.len(), 1);
        let after = rebuilt[0].snapshot();
        assert_eq!(after.group_epoch, before.group_epoch);
        assert_eq!(after.assignment_epoch, before.assignment_epoch);
        assert_eq!(after.target, before.target);
        let summary = |s: &ConsumerSnapshot| -> Vec<_> {
            s.members
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.epoch,
                        m.state,
                        m.assigned.clone(),
                        m.subscribed.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(summary(&after), summary(&before));

        // One member leaves: its records are tombstoned; deleting the group removes it.
        group
            .heartbeat(
                Heartbeat {
                    member_id: ids[1].clone(),
                    member_epoch: -1,
                    rebalance_timeout_ms: -1,
                    ..Heartbeat::default()
                },
                &counts,
                20,
            )
            .unwrap();
        let later = group.snapshot();
        let mut loader = Loader::default();
        for (key, value) in written
            .iter()
            .chain(&records("g", Some(&before), &later, &|_| Some(topic_id)))
        {
            loader.apply(ConsumerRecordKey::decode(key).unwrap(), value.as_deref());
        }
        assert_eq!(
            loader.finish(&name_of, 30, GroupSettings::default())[0]
                .members()
                .count(),
            1
        );
        let mut loader = Loader::default();
        for (key, value) in written.iter().chain(&tombstones("g", &later)) {
            loader.apply(ConsumerRecordKey::decode(key).unwrap(), value.as_deref());
        }
        assert!(
            loader
                .finish(&name_of, 30, GroupSettings::default())
                .is_empty(),
            "a deleted group stays deleted"
        );
    }
}
