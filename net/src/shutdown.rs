//! A one-shot, single-threaded stop signal: connections watch it to stop
//! reading new requests while the ones in flight finish and are answered.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Set once by the broker at shutdown; every waiter wakes.
#[derive(Debug, Default)]
pub struct Shutdown {
    triggered: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Shutdown {
    /// Sets the signal and wakes every waiter; later calls do nothing more.
    pub fn trigger(&self) {
        self.triggered.set(true);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Whether [`Shutdown::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.get()
    }

    /// Completes once the signal is set (at once if it already is).
    pub async fn triggered(&self) {
        poll_fn(|cx| {
            if self.triggered.get() {
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
    fn waiters_wake_on_trigger_and_late_waiters_complete_at_once() {
        glommio::LocalExecutor::default().run(async {
            let shutdown = Rc::new(Shutdown::default());
            let waiter = {
                let shutdown = Rc::clone(&shutdown);
                glommio::spawn_local(async move { shutdown.triggered().await })
            };
            glommio::yield_if_needed().await;
            assert!(!shutdown.is_triggered());
            shutdown.trigger();
            waiter.await;
            shutdown.triggered().await;
            assert!(shutdown.is_triggered());
        });
    }
}
