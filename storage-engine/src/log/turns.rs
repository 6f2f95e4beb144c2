//! Appends land in the order they were called, even when some must wait
//! (for the permit, for a roll) and others could go straight in: each
//! append takes a ticket when it is called and waits for its turn before it
//! touches the log. A ticket dropped before its turn (a cancelled append)
//! is skipped, so it never blocks the ones behind it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Issues tickets and says whose turn it is.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    issued: Cell<u64>,
    current: Cell<u64>,
    abandoned: RefCell<BTreeSet<u64>>,
    waiters: RefCell<Vec<Waker>>,
}

/// One append's place in line; its turn ends when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
    ticket: u64,
}

impl Turns {
    /// A ticket behind every one issued before.
    pub(crate) fn take(&self) -> Turn<'_> {
        let ticket = self.issued.get();
        self.issued.set(ticket + 1);
        Turn {
            turns: self,
            ticket,
        }
    }

    fn advance(&self) {
        let mut next = self.current.get() + 1;
        let mut abandoned = self.abandoned.borrow_mut();
        while abandoned.remove(&next) {
            next += 1;
        }
        self.current.set(next);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

impl Turn<'_> {
    /// Waits until every earlier ticket is done.
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.turns.current.get() == self.ticket {
                Poll::Ready(())
            } else {
                self.turns.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.turns.current.get() == self.ticket {
            self.turns.advance();
        } else {
            self.turns.abandoned.borrow_mut().insert(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_go_in_order_and_abandoned_ones_are_skipped() {
        let turns = Turns::default();
        let first = turns.take();
        let second = turns.take();
        let third = turns.take();
        assert_ne!(turns.current.get(), turns.issued.get());
        drop(second); // cancelled before its turn
        assert_eq!(turns.current.get(), 0);
        drop(first);
        // The abandoned second ticket is skipped: the third's turn.
        assert_eq!(turns.current.get(), 2);
        drop(third);
        assert_eq!(turns.current.get(), turns.issued.get());
    }
}
