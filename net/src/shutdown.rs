//! A one-shot, single-threaded stop signal: connections watch it to stop
//! reading new requests while the ones in flight finish and are answered.

use crate::signal::Signal;

/// Set once by the broker at shutdown; every waiter wakes.
#[derive(Debug, Default)]
pub struct Shutdown {
    /// Generation 0 until triggered, then 1.
    signal: Signal,
}

impl Shutdown {
    /// Sets the signal and wakes every waiter; later calls do nothing more.
    pub fn trigger(&self) {
        if !self.is_triggered() {
            self.signal.notify();
        }
    }

    /// Whether [`Shutdown::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        self.signal.generation() != 0
    }

    /// Completes once the signal is set (at once if it already is).
    pub async fn triggered(&self) {
        self.signal.changed(0).await;
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
