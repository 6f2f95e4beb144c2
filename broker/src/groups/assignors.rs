//! Server-side partition assignors of the KIP-848 consumer protocol, as pure functions:
//! - `range`: Kafka's `RangeAssignor` (KAFKA-16944 rewrite), contiguous ranges per topic.
//! - `uniform`: Kafka's `UniformAssignor`, balanced and sticky (homogeneous and
//!   heterogeneous builders).
//!
//! Topics missing from `partition_counts` are ignored, as Kafka never sees them.

use std::collections::{BTreeMap, BTreeSet};

/// What the assignors know about one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// The static instance id, if any (only `range` uses it, for ordering).
    pub instance_id: Option<String>,
    /// The names of the topics the member subscribes to.
    pub subscribed_topics: BTreeSet<String>,
    /// The member's current assignment: topic → sorted partitions.
    pub current: BTreeMap<String, Vec<i32>>,
}

/// The input of an assignor: the members and the partition counts of the topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentSpec {
    /// Member id → member.
    pub members: BTreeMap<String, MemberSpec>,
    /// Topic name → partition count.
    pub partition_counts: BTreeMap<String, i32>,
}

/// The output of an assignor: member id → topic → sorted partitions.
pub type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// The server-side assignors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    /// Kafka's default `uniform` assignor: balanced and sticky.
    Uniform,
    /// Kafka's `range` assignor: contiguous ranges per topic.
    Range,
}

impl Assignor {
    /// The name used in `ServerAssignor` and in ConsumerGroupDescribe.
    pub fn name(&self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The assignor of the given name, if it is supported.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    /// Computes the target assignment; every member appears in the result.
    pub fn assign(&self, spec: &AssignmentSpec) -> Assignment {
        match self {
            Assignor::Uniform => assign_uniform(spec),
            Assignor::Range => assign_range(spec),
        }
    }
}

/// The subscribed topics of a member that exist, with their partition counts.
fn effective_topics<'a>(spec: &'a AssignmentSpec, m: &'a MemberSpec) -> Vec<(&'a str, i32)> {
    let count = |t: &'a String| {
        spec.partition_counts
            .get(t)
            .map(|&c| (t.as_str(), c.max(0)))
    };
    m.subscribed_topics.iter().filter_map(count).collect()
}

/// An assignment with an empty entry for every member.
fn empty_assignment(spec: &AssignmentSpec) -> Assignment {
    spec.members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect()
}

fn assign_range(spec: &AssignmentSpec) -> Assignment {
    let mut result = empty_assignment(spec);
    let mut members: Vec<(&String, &MemberSpec)> = spec.members.iter().collect();
    // Static members first, by instance id; then the others by member id (already sorted).
    members.sort_by(
        |(a_id, a), (b_id, b)| match (&a.instance_id, &b.instance_id) {
            (Some(x), Some(y)) => x.cmp(y).then_with(|| a_id.cmp(b_id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a_id.cmp(b_id),
        },
    );
    let mut subscribers: BTreeMap<&str, (i32, Vec<&String>)> = BTreeMap::new();
    for (id, m) in &members {
        for (topic, count) in effective_topics(spec, m) {
            let entry = subscribers.entry(topic).or_insert((count, Vec::new()));
            entry.1.push(id);
        }
    }
    for (topic, (count, subs)) in subscribers {
        let n = subs.len() as i32; // >= 1: entries are created with a subscriber.
        let (min_quota, mut extra) = (count / n, count % n);
        let mut next = 0;
        for id in subs {
            let mut quota = min_quota;
            if extra > 0 {
                quota += 1;
                extra -= 1;
            }
            let end = (next + quota).min(count);
            if next < end {
                if let Some(a) = result.get_mut(id) {
                    a.insert(topic.to_string(), (next..end).collect());
                }
            }
            next = end;
        }
    }
    result
}

/// Mutable state shared by the two uniform builders.
struct Uniform<'a> {
    /// Member ids, sorted; members are referred to by index.
    ids: Vec<&'a String>,
    /// Topic → owner of each partition in the target assignment.
    owners: BTreeMap<&'a str, Vec<Option<usize>>>,
    /// Number of partitions each member holds in the target assignment.
    load: Vec<usize>,
}

impl<'a> Uniform<'a> {
    /// Collects the subscribed topics and the valid, deduplicated owned partitions.
    fn new(spec: &'a AssignmentSpec) -> Uniform<'a> {
        let ids: Vec<&String> = spec.members.keys().collect();
        let mut owners: BTreeMap<&str, Vec<Option<usize>>> = BTreeMap::new();
        for m in spec.members.values() {
            for (topic, count) in effective_topics(spec, m) {
                let partitions = || vec![None; count as usize];
                owners.entry(topic).or_insert_with(partitions);
            }
        }
        let load = vec![0; ids.len()];
        let mut u = Uniform { ids, owners, load };
        for (idx, m) in spec.members.values().enumerate() {
            for (topic, parts) in &m.current {
                if !m.subscribed_topics.contains(topic) {
                    continue; // Unsubscribed topics are revoked.
                }
                for &p in parts {
                    u.set_if_free(topic, p, idx);
                }
            }
        }
        u
    }

    /// Gives partition `p` of `topic` to `idx` if it exists and has no owner yet.
    fn set_if_free(&mut self, topic: &str, p: i32, idx: usize) {
        let slot = self
            .owners
            .get_mut(topic)
            .and_then(|o| o.get_mut(p as usize));
        if let Some(slot @ None) = slot.filter(|_| p >= 0) {
            *slot = Some(idx);
            self.load[idx] += 1;
        }
    }

    fn into_assignment(self, spec: &AssignmentSpec) -> Assignment {
        let mut result = empty_assignment(spec);
        for (topic, owners) in &self.owners {
            for (p, owner) in owners.iter().enumerate() {
                if let Some(a) = owner.and_then(|o| result.get_mut(self.ids[o])) {
                    a.entry(topic.to_string()).or_default().push(p as i32);
                }
            }
        }
        result
    }
}

fn assign_uniform(spec: &AssignmentSpec) -> Assignment {
    let mut subscriptions = spec.members.values().map(|m| effective_topics(spec, m));
    let first = subscriptions.next();
    let homogeneous = subscriptions.all(|s| Some(&s) == first.as_ref());
    let mut u = Uniform::new(spec);
    if homogeneous {
        uniform_homogeneous(&mut u);
    } else {
        uniform_heterogeneous(spec, &mut u);
    }
    u.into_assignment(spec)
}

/// Every member subscribes to the same topics: sizes differ by at most one.
fn uniform_homogeneous(u: &mut Uniform) {
    let n = u.ids.len();
    if n == 0 {
        return;
    }
    let total: usize = u.owners.values().map(Vec::len).sum();
    let (min_quota, extra) = (total / n, total % n);
    // The extra partitions go to the members that own the most, to move as little as possible.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(u.load[i]), i));
    let mut quota = vec![min_quota; n];
    for &i in order.iter().take(extra) {
        quota[i] += 1;
    }
    // Revoke what exceeds the quota, keeping the lowest topic-partitions.
    let mut kept = vec![0; n];
    let mut unassigned = Vec::new();
    for (&topic, owners) in u.owners.iter_mut() {
        for (p, owner) in owners.iter_mut().enumerate() {
            match *owner {
                Some(i) if kept[i] < quota[i] => kept[i] += 1,
                Some(_) | None => {
                    *owner = None;
                    unassigned.push((topic, p));
                }
            }
        }
    }
    // Fill the members with room, in member id order.
    let mut next = unassigned.into_iter();
    for i in 0..n {
        while kept[i] < quota[i] {
            let Some((topic, p)) = next.next() else { break };
            if let Some(slot) = u.owners.get_mut(topic).and_then(|o| o.get_mut(p)) {
                *slot = Some(i);
            }
            kept[i] += 1;
        }
    }
    u.load = kept;
}

/// Members subscribe to different topics: keep owned partitions, assign the rest to the
/// least loaded subscriber, then move partitions from the most to the least loaded
/// subscriber of each topic until no topic can improve.
fn uniform_heterogeneous(spec: &AssignmentSpec, u: &mut Uniform) {
    let mut subscribers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in spec.members.values().enumerate() {
        for (topic, _) in effective_topics(spec, m) {
            subscribers.entry(topic).or_default().push(i);
        }
    }
    // Kafka's topic order: most partitions per subscriber first, then fewer subscribers.
    let mut topics: Vec<(&str, usize, usize)> = subscribers
        .iter()
        .map(|(&t, s)| (t, u.owners.get(t).map_or(0, Vec::len), s.len()))
        .collect();
    topics.sort_by(|a, b| {
        // a.1 / a.2 > b.1 / b.2  <=>  a.1 * b.2 > b.1 * a.2 (subscriber counts are >= 1).
        let by_ratio = (b.1 * a.2).cmp(&(a.1 * b.2));
        by_ratio.then(a.2.cmp(&b.2)).then(a.0.cmp(b.0))
    });
    for &(topic, _, _) in &topics {
        let Some(owners) = u.owners.get_mut(topic) else {
            continue;
        };
        let mut by_load: BTreeSet<(usize, usize)> =
            subscribers[topic].iter().map(|&i| (u.load[i], i)).collect();
        for owner in owners.iter_mut().filter(|o| o.is_none()) {
            let Some((load, i)) = by_load.pop_first() else {
                break;
            };
            *owner = Some(i);
            u.load[i] += 1;
            by_load.insert((load + 1, i));
        }
    }
    // Each move lowers the sum of squared loads, so this terminates.
    loop {
        let mut moved = false;
        for &(topic, _, subs) in &topics {
            if subs >= 2 {
                moved |= balance_topic(u, topic, &subscribers[topic]);
            }
        }
        if !moved {
            break;
        }
    }
}

/// Moves partitions of `topic` from its most to its least loaded subscribers while their
/// loads differ by more than one; returns whether anything moved.
fn balance_topic(u: &mut Uniform, topic: &str, subs: &[usize]) -> bool {
    let Some(owners) = u.owners.get_mut(topic) else {
        return false;
    };
    let mut owned: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (p, o) in owners.iter().enumerate() {
        if let Some(i) = *o {
            owned.entry(i).or_default().push(p);
        }
    }
    let mut by_load: BTreeSet<(usize, usize)> = subs.iter().map(|&i| (u.load[i], i)).collect();
    let mut moved = false;
    while let Some(&(min_load, to)) = by_load.first() {
        let most = by_load
            .iter()
            .rev()
            .find(|(_, i)| owned.get(i).is_some_and(|v| !v.is_empty()))
            .copied();
        let Some((max_load, from)) = most else { break };
        if max_load <= min_load + 1 {
            break;
        }
        // `from` was found with a non-empty list just above.
        let Some(p) = owned.get_mut(&from).and_then(Vec::pop) else {
            break;
        };
        owners[p] = Some(to);
        owned.entry(to).or_default().push(p);
        by_load.remove(&(max_load, from));
        by_load.remove(&(min_load, to));
        by_load.insert((max_load - 1, from));
        by_load.insert((min_load + 1, to));
        u.load[from] -= 1;
        u.load[to] += 1;
        moved = true;
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use Assignor::{Range, Uniform};

    type Owned<'a> = &'a [(&'a str, &'a [i32])];

    fn spec(members: &[(&str, &[&str], Owned)], topics: &[(&str, i32)]) -> AssignmentSpec {
        let member = |subs: &[&str], cur: Owned| MemberSpec {
            instance_id: None,
            subscribed_topics: subs.iter().map(|t| t.to_string()).collect(),
            current: cur
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_vec()))
                .collect(),
        };
        AssignmentSpec {
            members: members
                .iter()
                .map(|(m, s, c)| (m.to_string(), member(s, c)))
                .collect(),
            partition_counts: topics.iter().map(|(t, c)| (t.to_string(), *c)).collect(),
        }
    }

    /// Every partition of a subscribed topic is assigned once, to a subscriber; others never.
    fn check_valid(s: &AssignmentSpec, a: &Assignment) {
        assert!(a.keys().eq(s.members.keys()));
        let mut seen = BTreeSet::new();
        for (m, topics) in a {
            for (t, parts) in topics {
                assert!(s.members[m].subscribed_topics.contains(t), "{m}: {t}");
                assert!(!parts.is_empty() && parts.windows(2).all(|w| w[0] < w[1]));
                for &p in parts {
                    assert!(p >= 0 && p < s.partition_counts[t]);
                    assert!(seen.insert((t.clone(), p)), "{t}-{p} assigned twice");
                }
            }
        }
        for (t, &c) in &s.partition_counts {
            let subscribed = s.members.values().any(|m| m.subscribed_topics.contains(t));
            for p in 0..c {
                assert_eq!(seen.contains(&(t.clone(), p)), subscribed, "{t}-{p}");
            }
        }
    }

    fn load(m: &BTreeMap<String, Vec<i32>>) -> usize {
        m.values().map(Vec::len).sum()
    }

    fn sizes(a: &Assignment) -> Vec<usize> {
        a.values().map(load).collect()
    }

    fn with_current(s: &AssignmentSpec, a: &Assignment) -> AssignmentSpec {
        let mut s = s.clone();
        for (m, spec) in s.members.iter_mut() {
            spec.current = a.get(m).cloned().unwrap_or_default();
        }
        s
    }

    #[test]
    fn names_and_range_layout() {
        for a in [Uniform, Range] {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("sticky"), None);
        let abc = [
            ("a", &["t"][..], &[][..]),
            ("b", &["t"], &[]),
            ("c", &["t"], &[]),
        ];
        let s = spec(&abc, &[("t", 7)]);
        let a = Range.assign(&s);
        check_valid(&s, &a);
        let got = [&a["a"]["t"], &a["b"]["t"], &a["c"]["t"]];
        assert_eq!(got, [&vec![0, 1, 2], &vec![3, 4], &vec![5, 6]]);
    }

    #[test]
    fn range_co_partitions_and_orders_static_members_first() {
        let subs: &[&str] = &["t1", "t2"];
        let members = [("m0", subs, &[][..]), ("m1", subs, &[])];
        let mut s = spec(&members, &[("t1", 3), ("t2", 3)]);
        let a = Range.assign(&s);
        let both = |p: Vec<i32>| BTreeMap::from([("t1".into(), p.clone()), ("t2".into(), p)]);
        assert_eq!((&a["m0"], &a["m1"]), (&both(vec![0, 1]), &both(vec![2])));
        if let Some(m) = s.members.get_mut("m1") {
            m.instance_id = Some("i".into());
        }
        let a = Range.assign(&s);
        assert_eq!((&a["m1"], &a["m0"]), (&both(vec![0, 1]), &both(vec![2])));
    }

    #[test]
    fn heterogeneous_and_edge_cases() {
        let s = spec(
            &[
                (
                    "a",
                    &["t1", "t2", "gone"],
                    &[("t1", &[0, 1, 2, 3]), ("t3", &[0])],
                ),
                ("b", &["t2"], &[("t2", &[0, 1, 2, 99, -1])]),
                ("c", &["t1", "t3"], &[("t1", &[0, 1])]),
                ("d", &[], &[("t1", &[5])]),
            ],
            &[("t1", 6), ("t2", 5), ("t3", 2), ("t4", 3), ("empty", 0)],
        );
        let no_subs = spec(&[("a", &[], &[]), ("b", &[], &[])], &[("t", 3)]);
        for assignor in [Uniform, Range] {
            let a = assignor.assign(&s);
            check_valid(&s, &a);
            assert!(a["d"].is_empty());
            assert!(assignor.assign(&spec(&[], &[("t", 3)])).is_empty());
            check_valid(&no_subs, &assignor.assign(&no_subs));
        }
    }

    #[test]
    fn uniform_balanced_and_sticky_on_join_and_leave() {
        let subs: &[&str] = &["t1", "t2"];
        let members = [("a", subs, &[][..]), ("b", subs, &[]), ("c", subs, &[])];
        let three = spec(&members, &[("t1", 5), ("t2", 7)]);
        let a3 = Uniform.assign(&three);
        check_valid(&three, &a3);
        assert_eq!(sizes(&a3), vec![4, 4, 4]);
        assert_eq!(Uniform.assign(&with_current(&three, &a3)), a3);

        let mut four = with_current(&three, &a3);
        let d = three.members["a"].subscribed_topics.clone();
        let d = MemberSpec {
            subscribed_topics: d,
            ..Default::default()
        };
        four.members.insert("d".into(), d);
        let a4 = Uniform.assign(&four);
        check_valid(&four, &a4);
        assert_eq!(sizes(&a4), vec![3, 3, 3, 3]);
        for id in ["a", "b", "c"] {
            let kept = a4[id]
                .iter()
                .map(|(t, ps)| ps.iter().filter(|p| a3[id][t].contains(p)));
            assert_eq!(kept.flatten().count(), 3, "{id} keeps 3 of 4");
        }

        // The extra partition stays with whoever already owns one more.
        let t: &[&str] = &["t"];
        let (a, b, c): (Owned, Owned, Owned) =
            (&[("t", &[0, 1])], &[("t", &[2, 3])], &[("t", &[4, 5, 6])]);
        let s = spec(&[("a", t, a), ("b", t, b), ("c", t, c)], &[("t", 7)]);
        assert_eq!(Uniform.assign(&s)["c"]["t"], vec![4, 5, 6]);

        // Removing "b" only moves b's partitions.
        let mut three_again = with_current(&four, &a4);
        three_again.members.remove("b");
        let a = Uniform.assign(&three_again);
        check_valid(&three_again, &a);
        assert_eq!(sizes(&a), vec![4, 4, 4]);
        for id in ["a", "c", "d"] {
            for (t, ps) in &a4[id] {
                assert!(ps.iter().all(|p| a[id][t].contains(p)), "{id} lost {t}");
            }
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }

        /// Each item with probability (n - 1) / n.
        fn subset<T: Clone + Ord>(&mut self, items: &[T], n: u64) -> BTreeSet<T> {
            items.iter().filter(|_| self.next(n) > 0).cloned().collect()
        }
    }

    #[test]
    fn random_properties() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let topics: Vec<String> = (0..1 + rng.next(5)).map(|t| format!("t{t}")).collect();
            let mut s = AssignmentSpec::default();
            for t in &topics {
                s.partition_counts.insert(t.clone(), rng.next(13) as i32);
            }
            let homogeneous = round % 2 == 0;
            let shared = rng.subset(&topics, 3);
            for m in 0..rng.next(7) {
                let mut member = MemberSpec {
                    instance_id: (rng.next(3) == 0).then(|| format!("i{}", rng.next(5))),
                    subscribed_topics: rng.subset(&topics, 2),
                    current: BTreeMap::new(),
                };
                if homogeneous {
                    member.subscribed_topics = shared.clone();
                }
                for t in &topics {
                    let all: Vec<i32> = (0..s.partition_counts[t] + 2).collect();
                    let owned = rng.subset(&all, 4).into_iter().collect();
                    member.current.insert(t.clone(), owned);
                }
                s.members.insert(format!("m{m}"), member);
            }
            check_valid(&s, &Range.assign(&s));
            let a = Uniform.assign(&s);
            check_valid(&s, &a);
            // Stable: feeding the result back changes nothing.
            assert_eq!(Uniform.assign(&with_current(&s, &a)), a, "round {round}");
            // No owner of a topic's partition holds two more than another subscriber of it.
            for t in &topics {
                let subs = a
                    .iter()
                    .filter(|(m, _)| s.members[*m].subscribed_topics.contains(t));
                let min = subs.clone().map(|(_, x)| load(x)).min().unwrap_or(0);
                let mut owners = subs.filter(|(_, x)| x.contains_key(t));
                assert!(owners.all(|(_, x)| load(x) <= min + 1), "round {round}");
            }
            let (sz, ok) = (sizes(&a), |(x, y): (&usize, &usize)| x - y <= 1);
            assert!(!homogeneous || sz.iter().max().zip(sz.iter().min()).is_none_or(ok));
        }
    }
}
