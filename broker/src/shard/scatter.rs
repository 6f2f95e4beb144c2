//! Splitting a request per owning shard: the parts of a request that live
//! on one shard go there in one call, all shards work in parallel, and the
//! answers come back in request order.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use super::mesh::ShardUnreachable;
use super::Shard;
use crate::topics::ShardId;

/// Runs `run` once per owning shard on that shard's items (in their
/// request order) and returns each item's output in the order of `items`.
/// `run` must return one output per item it gets. Items of a shard that
/// cannot be reached get `Err`.
pub async fn scatter<I, O, F, Fut>(
    shard: &Rc<Shard>,
    items: Vec<(ShardId, I)>,
    run: F,
) -> Vec<Result<O, ShardUnreachable>>
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<O>> + 'static,
{
    let count = items.len();
    let mut groups: BTreeMap<ShardId, (Vec<usize>, Vec<I>)> = BTreeMap::new();
    for (position, (owner, item)) in items.into_iter().enumerate() {
        let group = groups.entry(owner).or_default();
        group.0.push(position);
        group.1.push(item);
    }
    let calls = groups.into_iter().map(|(owner, (positions, items))| {
        let run = run.clone();
        async move {
            let outputs = shard.call(owner, move |s| run(s, items)).await;
            (owner, positions, outputs)
        }
    });
    let mut outputs: Vec<Option<Result<O, ShardUnreachable>>> = (0..count).map(|_| None).collect();
    for (owner, positions, answer) in futures_util::future::join_all(calls).await {
        match answer {
            Ok(answers) => {
                assert_eq!(
                    answers.len(),
                    positions.len(),
                    "shard {} answered {} of {} items",
                    owner.0,
                    answers.len(),
                    positions.len()
                );
                for (position, output) in positions.into_iter().zip(answers) {
                    outputs[position] = Some(Ok(output));
                }
            }
            Err(unreachable) => {
                for position in positions {
                    outputs[position] = Some(Err(unreachable));
                }
            }
        }
    }
    outputs
        .into_iter()
        .map(|o| o.expect("every position belongs to exactly one group"))
        .collect()
}

/// [`scatter`] for a request some of whose items are answered without a
/// shard (an unknown partition): each item is its answer already or is
/// sent to its owner. Returns every answer in order; `unreachable(position)`
/// answers an item whose shard has stopped.
pub async fn scatter_or<I, O, F, Fut>(
    shard: &Rc<Shard>,
    items: Vec<Result<(ShardId, I), O>>,
    run: F,
    unreachable: impl Fn(usize, ShardUnreachable) -> O,
) -> Vec<O>
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<O>> + 'static,
{
    let mut answers: Vec<Option<O>> = Vec::with_capacity(items.len());
    let mut routed = Vec::new();
    let mut routed_positions = Vec::new();
    for (position, item) in items.into_iter().enumerate() {
        match item {
            Ok(item) => {
                routed.push(item);
                routed_positions.push(position);
                answers.push(None);
            }
            Err(answer) => answers.push(Some(answer)),
        }
    }
    for (position, answer) in routed_positions
        .into_iter()
        .zip(scatter(shard, routed, run).await)
    {
        answers[position] = Some(answer.unwrap_or_else(|e| unreachable(position, e)));
    }
    answers
        .into_iter()
        .map(|a| a.expect("every item is answered directly or by its shard"))
        .collect()
}

/// Splits answers in request order back into their topics: each topic
/// comes with the number of answers that belong to it.
pub fn regroup<T, O>(topics: Vec<(T, usize)>, answers: Vec<O>) -> Vec<(T, Vec<O>)> {
    let mut answers = answers.into_iter();
    topics
        .into_iter()
        .map(|(topic, count)| (topic, answers.by_ref().take(count).collect()))
        .collect()
}
