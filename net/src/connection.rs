//! One client connection on glommio: read frames, hand requests to the broker, write responses.
//!
//! Pipelined: up to `max_in_flight` requests of a connection (and at most
//! `max_in_flight_bytes` of their frames) are handled concurrently, each in
//! its own spawned task, while responses are written strictly in request
//! order (Kafka requires it per connection). When the limit is reached the
//! connection stops reading, so TCP pushes back on the client.
//!
//! A malformed frame or an unparsable header ends this connection only:
//! responses to the requests before it are still written, then
//! [`serve`] returns the error. Handler tasks are never cancelled by the
//! connection: if it ends early, those still running are detached and their
//! outcomes dropped, so a half-done request (say a produce) finishes.
//!
//! At shutdown ([`Shutdown::trigger`]) a connection stops reading: requests
//! already read are still handled and answered in order, then it closes.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_lite::future::or;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::Task;

use crate::frame::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
use crate::header::{parse_request, HeaderError, RequestHeader};
use crate::shared_stream::SharedStream;
use crate::shutdown::Shutdown;

/// Limits of one connection, set at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Largest request frame accepted, size prefix excluded.
    pub max_frame_bytes: usize,
    /// Requests handled concurrently before reading pauses (at least 1).
    pub max_in_flight: usize,
    /// Frame bytes of in-flight requests before reading pauses (one frame is always admitted).
    pub max_in_flight_bytes: usize,
    /// Bytes asked of the socket per read.
    pub read_chunk_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_in_flight: 16,
            max_in_flight_bytes: DEFAULT_MAX_FRAME_BYTES,
            read_chunk_bytes: 64 * 1024,
        }
    }
}

/// What the broker wants done after a request.
#[derive(Debug)]
pub enum HandlerOutcome {
    /// Write this complete frame (size prefix included) in the request's turn.
    Respond(BytesMut),
    /// Write nothing for this request (Produce with acks=0).
    NoResponse,
    /// Close the connection once the earlier responses are written.
    Close,
}

/// The broker's side of a connection.
pub trait RequestHandler: 'static {
    /// Starts one request. The call happens in frame order, before the next
    /// frame is read, so what it does before returning (taking a ticket in
    /// line) follows the order requests arrived in; the future it returns
    /// runs concurrently with up to `max_in_flight - 1` others.
    fn handle(
        self: &Rc<Self>,
        header: RequestHeader,
        body: Bytes,
    ) -> impl Future<Output = HandlerOutcome> + 'static;

    /// Answers a frame whose header did not parse; the default closes the connection.
    fn header_error(&self, error: &HeaderError) -> HandlerOutcome {
        let _ = error;
        HandlerOutcome::Close
    }
}

/// Why a connection ended other than by the peer closing it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Reading or writing the socket failed.
    #[error("connection I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The peer sent an invalid frame size.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request header did not parse and the handler chose to close.
    #[error(transparent)]
    Header(HeaderError),
}

/// Serves one accepted TCP connection until the peer closes it, it breaks,
/// the handler closes it, or `shutdown` is triggered and what was read is answered.
pub async fn serve<H: RequestHandler>(
    stream: glommio::net::TcpStream,
    handler: Rc<H>,
    limits: ConnectionLimits,
    shutdown: Rc<Shutdown>,
) -> Result<(), ConnectionError> {
    // Kafka sets TCP_NODELAY on accepted sockets: responses are whole frames, written at once.
    stream.set_nodelay(true).map_err(io::Error::from)?;
    serve_stream(stream, handler, limits, shutdown).await
}

/// [`serve`] on any byte stream (a TLS stream, a test double).
pub async fn serve_stream<S, H>(
    stream: S,
    handler: Rc<H>,
    limits: ConnectionLimits,
    shutdown: Rc<Shutdown>,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: RequestHandler,
{
    let stream = SharedStream::new(stream);
    let (sender, receiver) = local_channel::new_unbounded();
    let admission = Rc::new(Admission::new(&limits));
    let reader = read_requests(
        stream.clone(),
        handler,
        limits,
        sender,
        admission,
        &shutdown,
    );
    let mut writer = pin!(write_responses(stream, &receiver));
    // The reader finishing first (peer closed, bad frame) lets the writer drain what is
    // queued; the writer finishing first (write failed, handler closed) drops the reader.
    let first = or(async { First::Reader(reader.await) }, async {
        First::Writer(writer.as_mut().await)
    })
    .await;
    match first {
        First::Writer(result) => result,
        First::Reader(read_result) => {
            let write_result = writer.await;
            read_result.and(write_result)
        }
    }
}

/// Which half of the connection ended first.
enum First {
    Reader(Result<(), ConnectionError>),
    Writer(Result<(), ConnectionError>),
}

/// Reads frames, admits them, starts their handlers, and queues them for the writer in order.
async fn read_requests<S: AsyncRead + Unpin, H: RequestHandler>(
    mut stream: SharedStream<S>,
    handler: Rc<H>,
    limits: ConnectionLimits,
    queue: LocalSender<Pending>,
    admission: Rc<Admission>,
    shutdown: &Shutdown,
) -> Result<(), ConnectionError> {
    let mut decoder = FrameDecoder::new(limits.max_frame_bytes);
    let mut chunk = vec![0u8; limits.read_chunk_bytes.max(1)];
    loop {
        while let Some(frame) = decoder.next_frame()? {
            let slot = admission.admit(frame.len()).await;
            let outcome = match parse_request(frame) {
                Ok((header, body)) => PendingOutcome::Running(Some(glommio::spawn_local(
                    handler.handle(header, body),
                ))),
                Err(error) => match handler.header_error(&error) {
                    HandlerOutcome::Close => return Err(ConnectionError::Header(error)),
                    outcome => PendingOutcome::Ready(Some(outcome)),
                },
            };
            // The queue is unbounded (admission bounds it); sending fails only once the
            // writer is gone, and then the connection is ending anyway.
            if queue
                .try_send(Pending {
                    outcome,
                    _slot: slot,
                })
                .is_err()
            {
                return Ok(());
            }
        }
        // Requests already read are handled; nothing more is read after shutdown.
        let read = or(async { Some(stream.read(&mut chunk).await) }, async {
            shutdown.triggered().await;
            None
        })
        .await;
        let Some(read_bytes) = read else {
            return Ok(());
        };
        let read_bytes = read_bytes?;
        if read_bytes == 0 {
            // Peer closed (a partial frame at the end is simply dropped, like Kafka).
            return Ok(());
        }
        decoder.extend(&chunk[..read_bytes]);
    }
}

/// Waits for each queued request's outcome in order and writes it.
async fn write_responses<S: AsyncWrite + Unpin>(
    mut stream: SharedStream<S>,
    queue: &LocalReceiver<Pending>,
) -> Result<(), ConnectionError> {
    while let Some(mut pending) = queue.recv().await {
        match pending.outcome().await {
            HandlerOutcome::Respond(frame) => stream.write_all(&frame).await?,
            HandlerOutcome::NoResponse => {}
            HandlerOutcome::Close => return Ok(()),
        }
    }
    Ok(())
}

/// A request between its frame being read and its response being written.
struct Pending {
    outcome: PendingOutcome,
    /// Released (and the reader woken) when the request is done with.
    _slot: Slot,
}

enum PendingOutcome {
    Ready(Option<HandlerOutcome>),
    Running(Option<Task<HandlerOutcome>>),
}

impl Pending {
    /// The handler's outcome; the task stays owned by `self` while awaited, so dropping detaches it.
    async fn outcome(&mut self) -> HandlerOutcome {
        match &mut self.outcome {
            PendingOutcome::Ready(outcome) => outcome.take().unwrap_or(HandlerOutcome::NoResponse),
            PendingOutcome::Running(task) => {
                let outcome = match task.as_mut() {
                    Some(running) => running.await,
                    None => HandlerOutcome::NoResponse,
                };
                *task = None;
                outcome
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let PendingOutcome::Running(task) = &mut self.outcome {
            if let Some(task) = task.take() {
                // Let the handler finish (a produce half applied must complete); drop its outcome.
                drop(task.detach());
            }
        }
    }
}

/// Bounds the requests and frame bytes in flight on one connection.
struct Admission {
    max_requests: usize,
    max_bytes: usize,
    requests: Cell<usize>,
    bytes: Cell<usize>,
    /// Only the connection's reader ever waits.
    waiter: Cell<Option<Waker>>,
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            max_requests: limits.max_in_flight.max(1),
            max_bytes: limits.max_in_flight_bytes,
            requests: Cell::new(0),
            bytes: Cell::new(0),
            waiter: Cell::new(None),
        }
    }

    /// Waits until one more request of `bytes` fits, and takes its slot.
    async fn admit(self: &Rc<Self>, bytes: usize) -> Slot {
        poll_fn(|cx| {
            let requests = self.requests.get();
            let in_flight_bytes = self.bytes.get();
            // A frame larger than the byte budget is admitted alone.
            let fits_bytes = in_flight_bytes == 0 || in_flight_bytes + bytes <= self.max_bytes;
            if requests < self.max_requests && fits_bytes {
                self.requests.set(requests + 1);
                self.bytes.set(in_flight_bytes + bytes);
                Poll::Ready(Slot {
                    admission: self.clone(),
                    bytes,
                })
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// One admitted request; gives its share back when dropped.
struct Slot {
    admission: Rc<Admission>,
    bytes: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let admission = &self.admission;
        admission
            .requests
            .set(admission.requests.get().saturating_sub(1));
        admission
            .bytes
            .set(admission.bytes.get().saturating_sub(self.bytes));
        if let Some(waker) = admission.waiter.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests;
