//! Connection tests over loopback TCP on a glommio executor.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutor, Task};

use super::*;
use crate::frame::FrameError;
use crate::header::{HeaderError, RequestHeader};

/// Test handler: body byte 0 is a delay in ms, byte 1 picks the outcome ('n' none, 'c' close).
#[derive(Default)]
struct Scripted {
    active: Cell<usize>,
    peak: Cell<usize>,
}

impl RequestHandler for Scripted {
    fn handle(
        self: &Rc<Self>,
        header: RequestHeader,
        body: Bytes,
    ) -> impl std::future::Future<Output = HandlerOutcome> + 'static {
        let this = Rc::clone(self);
        async move { this.respond(header, body).await }
    }
}

impl Scripted {
    async fn respond(&self, header: RequestHeader, body: Bytes) -> HandlerOutcome {
        self.active.set(self.active.get() + 1);
        self.peak.set(self.peak.get().max(self.active.get()));
        let delay_ms = body.first().copied().unwrap_or(0);
        glommio::timer::sleep(Duration::from_millis(u64::from(delay_ms))).await;
        self.active.set(self.active.get() - 1);
        match body.get(1) {
            Some(b'n') => HandlerOutcome::NoResponse,
            Some(b'c') => HandlerOutcome::Close,
            _ => {
                let mut frame = BytesMut::new();
                frame.put_i32(4);
                frame.put_i32(header.correlation_id);
                HandlerOutcome::Respond(frame)
            }
        }
    }
}

/// A Metadata v1 request frame (null client id) whose body is `body`.
fn request(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    frame.put_i32((10 + body.len()) as i32);
    frame.put_i16(3);
    frame.put_i16(1);
    frame.put_i32(correlation_id);
    frame.put_i16(-1);
    frame.put_slice(body);
    frame.to_vec()
}

/// Reads one response frame and returns its correlation id, `None` at end of stream.
async fn read_correlation_id(client: &mut TcpStream) -> Option<i32> {
    let mut frame = [0u8; 8];
    match client.read_exact(&mut frame).await {
        Ok(()) => {
            assert_eq!(&frame[..4], &4i32.to_be_bytes());
            Some(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]))
        }
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => None,
        Err(error) => panic!("read failed: {error}"),
    }
}

/// Starts a listener that serves its next `connections` connections; returns the address and their results.
fn start_server(
    handler: Rc<Scripted>,
    limits: ConnectionLimits,
    connections: usize,
) -> (std::net::SocketAddr, Task<Vec<Result<(), ConnectionError>>>) {
    start_server_until(handler, limits, connections, Rc::default())
}

/// [`start_server`] whose connections stop at `shutdown`.
fn start_server_until(
    handler: Rc<Scripted>,
    limits: ConnectionLimits,
    connections: usize,
    shutdown: Rc<Shutdown>,
) -> (std::net::SocketAddr, Task<Vec<Result<(), ConnectionError>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = glommio::spawn_local(async move {
        let mut served = Vec::new();
        for _ in 0..connections {
            let stream = listener.accept().await.unwrap();
            served.push(glommio::spawn_local(serve(
                stream,
                handler.clone(),
                limits,
                shutdown.clone(),
            )));
        }
        let mut results = Vec::new();
        for connection in served {
            results.push(connection.await);
        }
        results
    });
    (address, server)
}

fn limits(max_in_flight: usize) -> ConnectionLimits {
    ConnectionLimits {
        max_in_flight,
        ..ConnectionLimits::default()
    }
}

#[test]
fn pipelined_requests_are_handled_concurrently_and_answered_in_order() {
    LocalExecutor::default().run(async {
        let handler = Rc::new(Scripted::default());
        let (address, server) = start_server(handler.clone(), limits(3), 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        // The first requests take longest, so handlers finish in reverse order.
        let mut wire = Vec::new();
        for (correlation_id, delay_ms) in [40u8, 30, 20, 10, 5, 1].iter().enumerate() {
            wire.extend(request(correlation_id as i32, &[*delay_ms]));
        }
        client.write_all(&wire).await.unwrap();
        for expected in 0..6 {
            assert_eq!(read_correlation_id(&mut client).await, Some(expected));
        }
        drop(client);
        let results = server.await;
        assert!(results[0].is_ok(), "{results:?}");
        assert!(
            handler.peak.get() > 1,
            "requests were not handled concurrently"
        );
        assert!(
            handler.peak.get() <= 3,
            "in-flight limit exceeded: {}",
            handler.peak.get()
        );
    });
}

#[test]
fn a_single_slot_handles_requests_one_at_a_time() {
    LocalExecutor::default().run(async {
        let handler = Rc::new(Scripted::default());
        let (address, server) = start_server(handler.clone(), limits(1), 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        let wire: Vec<u8> = (0..4).flat_map(|id| request(id, &[3])).collect();
        client.write_all(&wire).await.unwrap();
        for expected in 0..4 {
            assert_eq!(read_correlation_id(&mut client).await, Some(expected));
        }
        drop(client);
        assert!(server.await[0].is_ok());
        assert_eq!(handler.peak.get(), 1);
    });
}

#[test]
fn requests_without_a_response_are_skipped_in_order() {
    LocalExecutor::default().run(async {
        let (address, server) = start_server(Rc::new(Scripted::default()), limits(16), 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        let mut wire = request(0, &[10]);
        wire.extend(request(1, &[0, b'n']));
        wire.extend(request(2, &[0]));
        client.write_all(&wire).await.unwrap();
        assert_eq!(read_correlation_id(&mut client).await, Some(0));
        assert_eq!(read_correlation_id(&mut client).await, Some(2));
        drop(client);
        assert!(server.await[0].is_ok());
    });
}

#[test]
fn a_malformed_frame_closes_only_its_connection_after_earlier_responses() {
    LocalExecutor::default().run(async {
        let (address, server) = start_server(Rc::new(Scripted::default()), limits(16), 2);
        let mut bad = TcpStream::connect(address).await.unwrap();
        let mut good = TcpStream::connect(address).await.unwrap();
        let mut wire = request(7, &[20]);
        wire.extend((-5i32).to_be_bytes());
        bad.write_all(&wire).await.unwrap();
        // The request before the bad frame is still answered, then the connection ends.
        assert_eq!(read_correlation_id(&mut bad).await, Some(7));
        assert_eq!(read_correlation_id(&mut bad).await, None);
        // The other connection is unaffected.
        good.write_all(&request(8, &[0])).await.unwrap();
        assert_eq!(read_correlation_id(&mut good).await, Some(8));
        drop(good);
        let results = server.await;
        assert!(
            matches!(
                results[0],
                Err(ConnectionError::Frame(FrameError::Negative { size: -5 }))
            ),
            "{results:?}"
        );
        assert!(results[1].is_ok(), "{results:?}");
    });
}

#[test]
fn an_oversized_frame_closes_the_connection() {
    LocalExecutor::default().run(async {
        let limits = ConnectionLimits {
            max_frame_bytes: 1024,
            ..ConnectionLimits::default()
        };
        let (address, server) = start_server(Rc::new(Scripted::default()), limits, 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
        assert_eq!(read_correlation_id(&mut client).await, None);
        let results = server.await;
        assert!(
            matches!(
                results[0],
                Err(ConnectionError::Frame(FrameError::TooLarge {
                    max: 1024,
                    ..
                }))
            ),
            "{results:?}"
        );
    });
}

#[test]
fn an_unparsable_header_closes_the_connection_by_default() {
    LocalExecutor::default().run(async {
        let (address, server) = start_server(Rc::new(Scripted::default()), limits(16), 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        let mut wire = request(1, &[0]);
        wire.extend([0, 0, 0, 3, 0, 3, 0]); // a 3-byte frame: no room for a header
        client.write_all(&wire).await.unwrap();
        assert_eq!(read_correlation_id(&mut client).await, Some(1));
        assert_eq!(read_correlation_id(&mut client).await, None);
        let results = server.await;
        assert!(
            matches!(
                results[0],
                Err(ConnectionError::Header(HeaderError::Truncated { len: 3 }))
            ),
            "{results:?}"
        );
    });
}

#[test]
fn a_close_outcome_ends_the_connection_after_earlier_responses() {
    LocalExecutor::default().run(async {
        let (address, server) = start_server(Rc::new(Scripted::default()), limits(16), 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        let mut wire = request(1, &[5]);
        wire.extend(request(2, &[0, b'c']));
        wire.extend(request(3, &[0]));
        client.write_all(&wire).await.unwrap();
        assert_eq!(read_correlation_id(&mut client).await, Some(1));
        assert_eq!(read_correlation_id(&mut client).await, None);
        assert!(server.await[0].is_ok());
    });
}

#[test]
fn frames_split_across_reads_are_reassembled() {
    LocalExecutor::default().run(async {
        let limits = ConnectionLimits {
            read_chunk_bytes: 3,
            ..ConnectionLimits::default()
        };
        let (address, server) = start_server(Rc::new(Scripted::default()), limits, 1);
        let mut client = TcpStream::connect(address).await.unwrap();
        let wire: Vec<u8> = (0..3)
            .flat_map(|id| request(id, &[0, b'x', b'y']))
            .collect();
        for piece in wire.chunks(5) {
            client.write_all(piece).await.unwrap();
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        for expected in 0..3 {
            assert_eq!(read_correlation_id(&mut client).await, Some(expected));
        }
        drop(client);
        assert!(server.await[0].is_ok());
    });
}

#[test]
fn shutdown_answers_requests_in_flight_then_closes() {
    LocalExecutor::default().run(async {
        let shutdown = Rc::new(Shutdown::default());
        let (address, server) = start_server_until(
            Rc::new(Scripted::default()),
            limits(16),
            1,
            shutdown.clone(),
        );
        let mut client = TcpStream::connect(address).await.unwrap();
        let mut wire = request(1, &[40]);
        wire.extend(request(2, &[0]));
        client.write_all(&wire).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(10)).await;
        shutdown.trigger();
        assert_eq!(read_correlation_id(&mut client).await, Some(1));
        assert_eq!(read_correlation_id(&mut client).await, Some(2));
        assert_eq!(read_correlation_id(&mut client).await, None);
        assert!(server.await[0].is_ok());
    });
}
