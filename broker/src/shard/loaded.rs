//! Coordinator partitions a shard has loaded from their logs, each loaded
//! once on first use (`__consumer_offsets`, `__transaction_state`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use glommio::sync::Semaphore;

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
