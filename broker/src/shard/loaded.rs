//! Coordinator partitions (`__consumer_offsets`, `__transaction_state`):
//! each loaded from its log once, on first use, by the shard that owns it,
//! and the calls that reach them there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::Shard;
use crate::groups::coordinator::partition_for;
use crate::kafka::errors::ErrorCode;
use crate::topics::{ShardId, TopicMeta};

/// Loaded partitions by index.
pub struct Loaded<T> {
    partitions: RefCell<HashMap<i32, Rc<T>>>,
    /// One load at a time, so a partition is loaded once.
    loading: Semaphore,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            partitions: RefCell::default(),
            loading: Semaphore::new(1),
        }
    }
}

impl<T> Loaded<T> {
    /// The partition, loaded by `load` if it is not yet.
    pub async fn get_or_load<E, Fut>(
        &self,
        index: i32,
        load: impl FnOnce() -> Fut,
    ) -> Result<Rc<T>, E>
    where
        Fut: Future<Output = Result<Rc<T>, E>>,
    {
        if let Some(partition) = self.partitions.borrow().get(&index) {
            return Ok(Rc::clone(partition));
        }
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self
            .loading
            .acquire_permit(1)
            .await
            .expect("the load semaphore is never closed");
        if let Some(partition) = self.partitions.borrow().get(&index) {
            return Ok(Rc::clone(partition));
        }
        let partition = load().await?;
        self.partitions
            .borrow_mut()
            .insert(index, Rc::clone(&partition));
        Ok(partition)
    }
}

/// A coordinator whose state lives in the partitions of an internal topic
/// (`__consumer_offsets`, `__transaction_state`), each loaded on the shard
/// that owns it.
pub trait CoordinatorPartition: Sized + 'static {
    /// The internal topic.
    const TOPIC: &'static str;

    /// Partition `index` on `shard`, loaded on first use.
    fn get(shard: &Rc<Shard>, index: i32) -> impl Future<Output = Result<Rc<Self>, ErrorCode>>;
}

/// Runs `f` on the partition of `meta` (the internal topic) that `key`
/// hashes to, on the shard that owns it, as Kafka places a group or a
/// transactional id.
pub async fn on_partition_of<P, T, F, Fut>(
    shard: &Rc<Shard>,
    meta: TopicMeta,
    key: &str,
    f: F,
) -> Result<T, ErrorCode>
where
    P: CoordinatorPartition,
    F: FnOnce(Rc<Shard>, Rc<P>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let index = partition_for(key, meta.partition_shards.len() as i32);
    let owner = *meta
        .partition_shards
        .get(index as usize)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    shard
        .call(owner, move |owner| async move {
            let partition = P::get(&owner, index).await?;
            Ok(f(owner, partition).await)
        })
        .await
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?
}

/// Runs `f` on every partition of `P`'s topic, on every shard.
pub async fn on_every_partition_of<P, T, F, Fut>(
    shard: &Rc<Shard>,
    f: F,
) -> Result<Vec<T>, ErrorCode>
where
    P: CoordinatorPartition,
    F: Fn(Rc<P>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let mut all = Vec::new();
    for to in 0..shard.shards() {
        let f = f.clone();
        let answers = shard
            .call(ShardId(to), move |owner| async move {
                let indexes: Vec<i32> = owner
                    .logs()
                    .into_iter()
                    .filter(|((topic, _), _)| topic == P::TOPIC)
                    .map(|((_, index), _)| index)
                    .collect();
                let mut answers = Vec::with_capacity(indexes.len());
                for index in indexes {
                    answers.push(f(P::get(&owner, index).await?).await);
                }
                Ok::<_, ErrorCode>(answers)
            })
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        all.extend(answers);
    }
    Ok(all)
}
