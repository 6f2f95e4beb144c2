//! One shard's accept loop: each accepted connection is served on this
//! shard; at shutdown the loop stops, connections stop reading, and the
//! requests they already read are finished and answered.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::net::TcpListener;
use glommio::sync::Gate;
use glommio::Task;
use kelp_net::connection::{serve, ConnectionLimits, HandlerOutcome, RequestHandler};
use kelp_net::header::RequestHeader;
use kelp_storage::turns::Turns;
use socket2::{Domain, Protocol, Socket, Type};

use crate::shard::Shard;

/// Serves the requests of one connection on its shard.
struct BrokerHandler {
    shard: Rc<Shard>,
    /// The connection's line: requests take effect in the order sent.
    turns: Rc<Turns>,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    client_host: Rc<str>,
}

impl RequestHandler for BrokerHandler {
    fn handle(
        self: &Rc<Self>,
        header: RequestHeader,
        body: Bytes,
    ) -> impl Future<Output = HandlerOutcome> + 'static {
        // Taken now, in frame order; waited for inside the handler.
        let turn = self.turns.take_shared();
        let shard = Rc::clone(&self.shard);
        let client_host = Rc::clone(&self.client_host);
        async move { crate::kafka::dispatch(&shard, header, body, turn, client_host).await }
    }
}

/// Binds a shard's listener on `addr`: SO_REUSEPORT so that every shard
/// listens on the port and the kernel spreads connections over them, and
/// SO_REUSEADDR (as Kafka's listener) so that a restart binds at once while
/// connections the previous run closed linger in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the descriptor is a bound, listening TCP socket, and
    // into_raw_fd hands its ownership to the listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// A running accept loop and the connections it started.
pub struct Accepting {
    task: Task<()>,
    connections: Gate,
}

/// Starts accepting connections on `listener` for `shard`.
pub fn accept(shard: &Rc<Shard>, listener: TcpListener) -> Accepting {
    let connections = Gate::new();
    let shard = Rc::clone(shard);
    let limits = ConnectionLimits {
        max_frame_bytes: shard.config.max_frame_bytes,
        ..ConnectionLimits::default()
    };
    let stopping = Rc::clone(&shard.stopping);
    let gate = connections.clone();

    let task = glommio::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let client_host = stream
                        .peer_addr()
                        .map_or_else(|_| "/unknown".to_owned(), |a| format!("/{}", a.ip()));
                    let handler = Rc::new(BrokerHandler {
                        shard: Rc::clone(&shard),
                        turns: Rc::default(),
                        client_host: client_host.into(),
                    });
                    let stopping = Rc::clone(&stopping);
                    let served = gate.spawn(async move {
                        if let Err(e) = serve(stream, handler, limits, stopping).await {
                            tracing::debug!(error = %e, "connection closed");
                        }
                    });
                    match served {
                        Ok(task) => task.detach(),
                        // The gate closes at shutdown; the stream is dropped.
                        Err(_) => return,
                    };
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    Accepting { task, connections }
}

impl Accepting {
    /// Stops accepting, tells connections to stop reading, and waits up to
    /// `limit` for the requests they read to be answered.
    pub async fn drain(self, shard: &Shard, limit: Duration) {
        shard.stopping.trigger();
        let _cancelled = self.task.cancel().await;
        let closed = std::pin::pin!(self.connections.close());
        let timer = std::pin::pin!(glommio::timer::sleep(limit));
        let drained = matches!(
            futures_util::future::select(closed, timer).await,
            futures_util::future::Either::Left(_)
        );
        if !drained {
            tracing::warn!(
                shard = shard.id.0,
                seconds = limit.as_secs(),
                "connections still busy at shutdown; closing anyway"
            );
        }
    }
}
