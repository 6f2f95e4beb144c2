//! Cross-shard calls over glommio's channel mesh.
//!
//! A shard sends another a closure to run there and awaits its result, as
//! Seastar's `submit_to`. The closure travels as a `Send` box; the future it
//! makes is built and run on the receiving shard, so it may hold that
//! shard's `Rc` state. The result comes back over the mesh as well, so
//! neither side takes a lock or wakes a task of another thread directly.
//! Payloads such as record batches cross as `bytes::Bytes`: never copied.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::Task;

use super::Shard;
use crate::topics::ShardId;

/// A result on its way back to the calling shard.
type Answer = Box<dyn Any + Send>;

/// Work for another shard: it gets that shard and returns its answer.
type Job = Box<dyn FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, Answer> + Send>;

/// What travels between shards.
pub enum Envelope {
    /// Run `job` and send its answer back tagged `id`.
    Call {
        /// The caller's tag for the answer.
        id: u64,
        /// The work.
        job: Job,
    },
    /// The answer to the caller's call `id`.
    Answer {
        /// The tag of the call.
        id: u64,
        /// Its result.
        value: Answer,
    },
}

/// The shard asked cannot be reached: its executor has stopped (shutdown).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shard {} is not running", .0 .0)]
pub struct ShardUnreachable(pub ShardId);

/// One shard's end of the mesh: senders to every other shard and the calls
/// awaiting an answer.
pub struct Mesh {
    senders: Senders<Envelope>,
    waiting: RefCell<HashMap<u64, LocalSender<Answer>>>,
    next_id: Cell<u64>,
}

impl Mesh {
    /// Wraps this shard's senders.
    pub fn new(senders: Senders<Envelope>) -> Mesh {
        Mesh {
            senders,
            waiting: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// The number of shards in the mesh.
    pub fn shards(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Closes this shard's senders, ending the other shards' receive loops
    /// for it. Called last at shutdown, once no shard sends any more.
    pub fn close(&self) {
        self.senders.close();
    }

    /// Sends `job` to shard `to` and waits for its answer.
    async fn call_remote<T: Send + 'static>(
        &self,
        to: ShardId,
        job: Job,
    ) -> Result<T, ShardUnreachable> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = local_channel::new_bounded(1);
        self.waiting.borrow_mut().insert(id, sender);
        // A caller dropped before the answer (a fetch that stopped waiting)
        // must not leave its slot behind.
        let _forget = Forget { mesh: self, id };
        if self
            .senders
            .send_to(to.0, Envelope::Call { id, job })
            .await
            .is_err()
        {
            return Err(ShardUnreachable(to));
        }
        let answer = receiver.recv().await.ok_or(ShardUnreachable(to))?;
        Ok(*answer
            .downcast::<T>()
            .expect("the answer tagged `id` is what this call's job returns, a T"))
    }

    /// Hands an answer to the call that waits for it, if it still does.
    fn answer(&self, id: u64, value: Answer) {
        if let Some(sender) = self.waiting.borrow_mut().remove(&id) {
            // The receiver may be gone (caller dropped); nothing to do then.
            let _ = sender.try_send(value);
        }
    }
}

/// Removes a call's slot when the call ends, answered or not.
struct Forget<'a> {
    mesh: &'a Mesh,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.mesh.waiting.borrow_mut().remove(&self.id);
    }
}

impl Shard {
    /// Runs `f` on shard `to` (directly when `to` is this shard) and returns
    /// its result.
    pub async fn call<T, F, Fut>(self: &Rc<Self>, to: ShardId, f: F) -> Result<T, ShardUnreachable>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if to == self.id {
            return Ok(f(Rc::clone(self)).await);
        }
        let job: Job =
            Box::new(move |shard| Box::pin(async move { Box::new(f(shard).await) as Answer }));
        self.mesh.call_remote(to, job).await
    }
}

/// Starts one receive loop per other shard: calls run as tasks of their
/// own (so a slow call never holds up the loop), answers go to their
/// callers. A loop ends when that shard closes its senders.
pub fn serve(shard: &Rc<Shard>, mut receivers: Receivers<Envelope>) -> Vec<Task<()>> {
    receivers
        .streams()
        .into_iter()
        .map(|(peer, receiver)| {
            let shard = Rc::clone(shard);
            glommio::spawn_local(async move {
                while let Some(envelope) = receiver.recv().await {
                    match envelope {
                        Envelope::Call { id, job } => {
                            let shard = Rc::clone(&shard);
                            glommio::spawn_local(async move {
                                let value = job(Rc::clone(&shard)).await;
                                // Fails only when the caller's shard has
                                // stopped, and then nobody waits for it.
                                let _ = shard
                                    .mesh
                                    .senders
                                    .send_to(peer, Envelope::Answer { id, value })
                                    .await;
                            })
                            .detach();
                        }
                        Envelope::Answer { id, value } => shard.mesh.answer(id, value),
                    }
                }
            })
        })
        .collect()
}
