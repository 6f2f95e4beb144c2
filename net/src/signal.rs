//! A single-threaded "something changed" signal: waiters re-check their
//! condition after each change (a batch was appended, a buffer drained).
//!
//! A generation counter rather than a flag, so a change between checking a
//! condition and starting to wait is never lost: the waiter passes the
//! generation it saw and returns at once if it has moved on.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Wakes every waiter when [`Signal::notify`] is called.
#[derive(Debug, Default)]
pub struct Signal {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Signal {
    /// The current generation; pass it to [`Signal::changed`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Bumps the generation and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        // Taken out first so a woken waiter's re-registration cannot meet a live borrow.
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Resolves once the generation differs from `seen`.
    pub async fn changed(&self, seen: u64) {
        poll_fn(|cx| {
            if self.generation.get() != seen {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_change_after_the_generation_was_read_is_not_missed() {
        glommio::LocalExecutor::default().run(async {
            let signal = Rc::new(Signal::default());
            let seen = signal.generation();
            signal.notify();
            // Changed since `seen`: returns at once.
            signal.changed(seen).await;
            let seen = signal.generation();
            let waiter = {
                let signal = Rc::clone(&signal);
                glommio::spawn_local(async move { signal.changed(seen).await })
            };
            glommio::yield_if_needed().await;
            signal.notify();
            waiter.await;
        });
    }
}
