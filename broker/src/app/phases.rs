//! Points all shards pass together at start-up and shutdown: every shard
//! has opened its partitions (Started), stopped serving (Drained), closed
//! its partitions (Closed). A shard that fails to start aborts them all.
//!
//! Used only at start and stop, so waiting polls a shared counter instead of
//! blocking the thread: a waiting shard keeps answering the others' calls.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a waiting shard looks at the counters.
const POLL: Duration = Duration::from_millis(5);

/// A point all shards pass together.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// Every shard has opened its partitions and bound its listener.
    Started,
    /// Every shard has stopped serving connections.
    Drained,
    /// Every shard has closed its partitions.
    Closed,
}

/// Another shard failed; the phase will never be complete.
#[derive(Debug, Clone, Copy)]
pub struct Aborted;

/// The shards' progress through the phases.
#[derive(Debug)]
pub struct Phases {
    shards: usize,
    arrived: [AtomicUsize; 3],
    aborted: AtomicBool,
}

impl Phases {
    /// Phases for `shards` shards.
    pub fn new(shards: usize) -> Phases {
        Phases {
            shards,
            arrived: Default::default(),
            aborted: AtomicBool::new(false),
        }
    }

    /// Marks this shard at `phase` and waits for every other one.
    pub async fn arrive(&self, phase: Phase) -> Result<(), Aborted> {
        let arrived = &self.arrived[phase as usize];
        arrived.fetch_add(1, Ordering::AcqRel);
        loop {
            // A phase every shard reached stays complete after an abort.
            if arrived.load(Ordering::Acquire) >= self.shards {
                return Ok(());
            }
            if self.aborted.load(Ordering::Acquire) {
                return Err(Aborted);
            }
            glommio::timer::sleep(POLL).await;
        }
    }

    /// Gives up: every wait for a phase not yet complete returns [`Aborted`].
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn shards_pass_together_and_an_abort_releases_everyone() {
        let phases = Arc::new(Phases::new(2));
        let tickets = Arc::new(AtomicUsize::new(0));
        let handles = glommio::LocalExecutorPoolBuilder::new(glommio::PoolPlacement::Unbound(2))
            .on_all_shards({
                let phases = Arc::clone(&phases);
                move || async move {
                    phases.arrive(Phase::Started).await.unwrap();
                    if tickets.fetch_add(1, Ordering::AcqRel) == 0 {
                        // This shard fails before Drained; the other must
                        // not wait for it forever.
                        phases.abort();
                        true
                    } else {
                        phases.arrive(Phase::Drained).await.is_err()
                    }
                }
            })
            .unwrap();
        for result in handles.join_all() {
            assert!(result.unwrap());
        }
    }
}
