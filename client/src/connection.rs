//! One TCP connection to one broker, with pipelined requests.
//!
//! Requests are written whole, one at a time, under a write lock; each
//! registers its correlation id in a queue just before its frame is written,
//! so the queue's order is the order on the wire. One reader task reads
//! responses and hands each to the request at the queue's front: Kafka
//! answers a connection's requests in the order they were sent. Any number
//! of requests may be in flight; callers bound it (the producer keeps at
//! most `max_in_flight` produce requests per connection, the consumer one
//! fetch per broker).
//!
//! Any failure (I/O, a frame that does not parse, a request timeout) breaks
//! the connection: every request in flight fails with that error and later
//! calls fail at once, so the owner opens a new connection. Dropping the
//! last handle cancels the reader task and closes the socket.
//!
//! At connect the client asks the broker's API versions (ApiVersions) and
//! then uses, per API, the highest version both sides support.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use glommio::timer::Timer;
use glommio::Task;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kelp_net::frame::{FrameDecoder, DEFAULT_MAX_FRAME_BYTES};
use kelp_net::shared_stream::SharedStream;

use crate::config::ClientConfig;
use crate::error::Error;

/// API keys are small numbers; a flat table indexed by key holds the negotiated versions.
const API_KEY_SLOTS: usize = 128;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// The highest version this client speaks, per API, where it is below the codec's.
///
/// Produce v13 and Fetch v13+ name topics by id only; the client names them
/// by name, so it stays below those versions.
fn client_max_version(api: ApiKey) -> i16 {
    match api {
        ApiKey::Produce | ApiKey::Fetch => 12,
        other => other.valid_versions().max,
    }
}

/// A connection to one broker; cheap to clone (all clones share the socket).
#[derive(Clone)]
pub struct Connection {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.shared.addr)
            .field("broken", &self.inner.shared.broken.borrow())
            .finish()
    }
}

struct Inner {
    shared: Rc<Shared>,
    stream: SharedStream<TcpStream>,
    client_id: StrBytes,
    request_timeout: Duration,
    /// One writer at a time, so frames never interleave on the socket.
    write_lock: Semaphore,
    next_correlation_id: Cell<i32>,
    /// Negotiated version per API key; -1 where there is none.
    versions: RefCell<[i16; API_KEY_SLOTS]>,
    /// Dropping the task cancels it: the reader lives exactly as long as the connection.
    _reader: Task<()>,
}

/// What the reader task and the callers share.
struct Shared {
    addr: String,
    pending: RefCell<VecDeque<Pending>>,
    broken: RefCell<Option<Error>>,
}

/// A request written (or being written) whose response has not arrived.
struct Pending {
    correlation_id: i32,
    slot: Rc<Slot>,
}

/// Where the reader leaves one response for its caller.
#[derive(Default)]
struct Slot {
    result: RefCell<Option<Result<Bytes, Error>>>,
    waker: Cell<Option<Waker>>,
}

impl Slot {
    fn complete(&self, result: Result<Bytes, Error>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    async fn wait(&self) -> Result<Bytes, Error> {
        poll_fn(|cx| match self.result.borrow_mut().take() {
            Some(result) => Poll::Ready(result),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

impl Shared {
    /// Breaks the connection: the first error sticks, every waiting request fails with it.
    fn fail(&self, error: Error) {
        let error = {
            let mut broken = self.broken.borrow_mut();
            broken.get_or_insert(error).clone()
        };
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for request in pending {
            request.slot.complete(Err(error.clone()));
        }
    }

    fn check(&self) -> Result<(), Error> {
        match &*self.broken.borrow() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Hands a response frame to the oldest request; a mismatch breaks the connection.
    fn deliver(&self, frame: Bytes) -> Result<(), Error> {
        let correlation_id = match frame.get(..4) {
            Some(id) => i32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            None => {
                return Err(Error::protocol(
                    &self.addr,
                    "response frame shorter than its header",
                ))
            }
        };
        let request = self.pending.borrow_mut().pop_front();
        match request {
            Some(request) if request.correlation_id == correlation_id => {
                request.slot.complete(Ok(frame));
                Ok(())
            }
            Some(request) => {
                // Put it back so `fail` answers it too.
                self.pending.borrow_mut().push_front(request);
                Err(Error::protocol(
                    &self.addr,
                    format!("response with correlation id {correlation_id} is out of order"),
                ))
            }
            None => Err(Error::protocol(
                &self.addr,
                format!("response with correlation id {correlation_id} answers no request"),
            )),
        }
    }
}

impl Connection {
    /// Opens a connection to `addr` ("host:port") and negotiates API versions.
    pub async fn connect(addr: &str, config: &ClientConfig) -> Result<Connection, Error> {
        let stream = open(addr, config.request_timeout).await?;
        // Requests are whole frames written at once; Nagle would only add latency.
        stream
            .set_nodelay(true)
            .map_err(|e| Error::connect(addr, &io::Error::from(e)))?;
        let shared = Rc::new(Shared {
            addr: addr.to_owned(),
            pending: RefCell::new(VecDeque::new()),
            broken: RefCell::new(None),
        });
        let stream = SharedStream::new(stream);
        let reader = glommio::spawn_local(read_responses(shared.clone(), stream.clone()));
        let connection = Connection {
            inner: Rc::new(Inner {
                shared,
                stream,
                client_id: StrBytes::from_string(config.client_id.clone()),
                request_timeout: config.request_timeout,
                write_lock: Semaphore::new(1),
                next_correlation_id: Cell::new(0),
                versions: RefCell::new([-1; API_KEY_SLOTS]),
                _reader: reader,
            }),
        };
        connection.negotiate_versions().await?;
        Ok(connection)
    }

    /// The broker address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.inner.shared.addr
    }

    /// Whether the connection has failed; a broken connection fails every call.
    pub fn is_broken(&self) -> bool {
        self.inner.shared.broken.borrow().is_some()
    }

    /// Requests sent whose responses have not arrived yet.
    pub fn in_flight(&self) -> usize {
        self.inner.shared.pending.borrow().len()
    }

    /// The version negotiated for `api`, `None` if the two sides share none.
    pub fn version(&self, api: ApiKey) -> Option<i16> {
        let version = *self.inner.versions.borrow().get(api as usize)?;
        (version >= 0).then_some(version)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn call<R: Request>(&self, request: R) -> Result<R::Response, Error> {
        let version = self.version_for::<R>()?;
        self.call_at(&request, version).await
    }

    /// Sends `request` and returns once it is written, expecting no response (Produce with acks=0).
    pub async fn send_without_response<R: Request>(&self, request: R) -> Result<(), Error> {
        let version = self.version_for::<R>()?;
        let (_, frame) = self.encode(&request, version)?;
        self.write(frame, None).await
    }

    fn version_for<R: Request>(&self) -> Result<i16, Error> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| Error::UnsupportedApi {
            addr: self.addr().to_owned(),
            api: format!("API key {}", R::KEY),
        })?;
        self.version(api).ok_or_else(|| Error::UnsupportedApi {
            addr: self.addr().to_owned(),
            api: format!("{api:?}"),
        })
    }

    /// Sends at an explicit version (used before versions are known).
    async fn call_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response, Error> {
        let (correlation_id, frame) = self.encode(request, version)?;
        let slot = Rc::new(Slot::default());
        self.write(
            frame,
            Some(Pending {
                correlation_id,
                slot: slot.clone(),
            }),
        )
        .await?;
        let timeout = self.inner.request_timeout;
        let answer = futures_lite::future::or(async { Some(slot.wait().await) }, async {
            Timer::new(timeout).await;
            None
        })
        .await;
        let Some(frame) = answer else {
            // The response may still come, but nothing can tell how long the broker will
            // take: like Kafka's clients, give the connection up.
            let error = Error::Timeout {
                addr: self.addr().to_owned(),
                after: timeout,
            };
            self.inner.shared.fail(error.clone());
            return Err(error);
        };
        self.decode::<R>(frame?, version)
    }

    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(i32, BytesMut), Error> {
        let correlation_id = self.inner.next_correlation_id.get();
        self.inner
            .next_correlation_id
            .set(correlation_id.wrapping_add(1));
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.inner.client_id.clone()));
        let header_version = R::header_version(version);
        let encode_error = |e: anyhow::Error| Error::Encode(format!("{e:#}"));
        let size = header
            .compute_size(header_version)
            .and_then(|h| Ok(h + request.compute_size(version)?))
            .map_err(encode_error)?;
        let size_prefix = i32::try_from(size)
            .ok()
            .filter(|&s| (s as usize) <= DEFAULT_MAX_FRAME_BYTES)
            .ok_or_else(|| Error::Encode(format!("request of {size} bytes is too large")))?;
        let mut frame = BytesMut::with_capacity(4 + size);
        frame.put_i32(size_prefix);
        header
            .encode(&mut frame, header_version)
            .map_err(encode_error)?;
        request.encode(&mut frame, version).map_err(encode_error)?;
        Ok((correlation_id, frame))
    }

    fn decode<R: Request>(&self, mut frame: Bytes, version: i16) -> Result<R::Response, Error> {
        let addr = self.addr();
        ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| Error::protocol(addr, format!("bad response header: {e:#}")))?;
        R::Response::decode(&mut frame, version).map_err(|e| {
            Error::protocol(
                addr,
                format!(
                    "cannot decode the response to API key {} v{version}: {e:#}",
                    R::KEY
                ),
            )
        })
    }

    /// Writes one frame under the write lock, registering `pending` just before it.
    async fn write(&self, frame: BytesMut, pending: Option<Pending>) -> Result<(), Error> {
        let shared = &self.inner.shared;
        let _permit = self
            .inner
            .write_lock
            .acquire_permit(1)
            .await
            .map_err(|_| Error::Closed)?;
        shared.check()?;
        if let Some(pending) = pending {
            shared.pending.borrow_mut().push_back(pending);
        }
        // A write abandoned half-way leaves a partial frame on the socket; nothing
        // after it could be read by the broker, so the connection must go.
        let guard = BreakOnDrop(shared);
        let mut stream = self.inner.stream.clone();
        let result = stream.write_all(&frame).await;
        std::mem::forget(guard);
        result.map_err(|e| {
            let error = Error::io(&shared.addr, &e);
            shared.fail(error.clone());
            error
        })
    }

    async fn negotiate_versions(&self) -> Result<(), Error> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kelp-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        // KIP-511: a broker that does not know v3 answers UNSUPPORTED_VERSION in the v0
        // format; v0 is then understood by every broker.
        let response = match self.call_at(&request, 3).await {
            Ok(response) if response.error_code != 35 => response,
            Ok(_) | Err(Error::Protocol { .. }) => self.call_at(&request, 0).await?,
            Err(error) => return Err(error),
        };
        if let Some(error) = Error::from_code(response.error_code, None) {
            return Err(error);
        }
        let mut versions = [-1i16; API_KEY_SLOTS];
        for range in &response.api_keys {
            let Ok(api) = ApiKey::try_from(range.api_key) else {
                continue;
            };
            let Some(slot) = versions.get_mut(api as usize) else {
                continue;
            };
            let ours = api.valid_versions();
            let max = client_max_version(api).min(range.max_version);
            if max >= ours.min.max(range.min_version) {
                *slot = max;
            }
        }
        *self.inner.versions.borrow_mut() = versions;
        Ok(())
    }
}

/// Breaks the connection if dropped (the write was abandoned).
struct BreakOnDrop<'a>(&'a Shared);

impl Drop for BreakOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fail(Error::Io {
            addr: self.0.addr.clone(),
            reason: "a request was abandoned half-written".to_owned(),
        });
    }
}

/// Resolves `addr` and connects to the first address that answers.
async fn open(addr: &str, timeout: Duration) -> Result<TcpStream, Error> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::Connect {
            addr: addr.to_owned(),
            reason: format!("cannot resolve the address: {e}"),
        })?
        .collect();
    let mut last = Error::Connect {
        addr: addr.to_owned(),
        reason: "the name resolves to no address".to_owned(),
    };
    for socket_addr in resolved {
        // glommio refuses a zero timeout; a zero request timeout means "as short as possible".
        let timeout = timeout.max(Duration::from_millis(1));
        match TcpStream::connect_timeout(socket_addr, timeout).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Error::connect(addr, &io::Error::from(error)),
        }
    }
    Err(last)
}

/// The reader task: frames in, each handed to its waiting request.
async fn read_responses(shared: Rc<Shared>, mut stream: SharedStream<TcpStream>) {
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(error) = shared.deliver(frame.freeze()) {
                        shared.fail(error);
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    shared.fail(Error::protocol(&shared.addr, error));
                    return;
                }
            }
        }
        if shared.broken.borrow().is_some() {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) => {
                let closed = io::Error::from(io::ErrorKind::UnexpectedEof);
                shared.fail(Error::io(&shared.addr, &closed));
                return;
            }
            Ok(read) => decoder.extend(&chunk[..read]),
            Err(error) => {
                shared.fail(Error::io(&shared.addr, &error));
                return;
            }
        }
    }
}
