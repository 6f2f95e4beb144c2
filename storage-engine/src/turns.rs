//! Work done in the order it was asked for, on one thread, even when some
//! of it must wait and later work could go straight in: each piece takes a
//! ticket when it is asked for and waits for its turn. A log's appends use
//! it (an append that waits for a roll holds back the ones called after
//! it); so does a connection's requests. A ticket dropped before its turn
//! (cancelled work) is skipped, so it never blocks the ones behind it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::poll_fn;
use std::ops::Deref;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Issues tickets and says whose turn it is.
#[derive(Debug, Default)]
pub struct Turns {
    issued: Cell<u64>,
    current: Cell<u64>,
    abandoned: RefCell<BTreeSet<u64>>,
    waiters: RefCell<Vec<Waker>>,
}

/// One piece of work's place in line, held through `P` (a reference, or an
/// `Rc` for work that outlives the borrow); its turn ends when it is dropped.
#[derive(Debug)]
pub struct Turn<P: Deref<Target = Turns>> {
    turns: P,
    ticket: u64,
}

impl Turns {
    /// A ticket behind every one issued before.
    pub fn take(&self) -> Turn<&Turns> {
        Turn {
            ticket: self.issue(),
            turns: self,
        }
    }

    /// [`Turns::take`] for a ticket that may be moved into a task.
    pub fn take_shared(self: &Rc<Self>) -> Turn<Rc<Turns>> {
        Turn {
            ticket: self.issue(),
            turns: Rc::clone(self),
        }
    }

    fn issue(&self) -> u64 {
        let ticket = self.issued.get();
        self.issued.set(ticket + 1);
        ticket
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

impl<P: Deref<Target = Turns>> Turn<P> {
    /// Waits until every earlier ticket is done.
    pub async fn wait(&self) {
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

impl<P: Deref<Target = Turns>> Drop for Turn<P> {
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

    #[test]
    fn shared_tickets_share_the_line() {
        let turns = Rc::new(Turns::default());
        let first = turns.take_shared();
        let second = turns.take();
        drop(first);
        assert_eq!(turns.current.get(), 1);
        drop(second);
        assert_eq!(turns.current.get(), turns.issued.get());
    }
}
