//! Raw bytes over TCP: an oversized length, a truncated request, an unknown
//! API key and garbage close that connection (or are answered), and a
//! normal request on a new connection still works afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Broker;

/// An ApiVersions v0 request with correlation id `id`.
fn api_versions(id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Reads one response frame; `None` if the broker closed the connection.
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

fn assert_still_serves(broker: &Broker) {
    let mut stream = connect(broker);
    stream.write_all(&api_versions(77)).unwrap();
    let body = read_frame(&mut stream).expect("a normal client is answered");
    assert_eq!(
        i32::from_be_bytes(body[..4].try_into().unwrap()),
        77,
        "correlation id"
    );
    assert_eq!(
        i16::from_be_bytes(body[4..6].try_into().unwrap()),
        0,
        "no error"
    );
}

#[test]
fn hostile_frames_close_only_their_connection() {
    let broker = Broker::start();
    assert_still_serves(&broker);

    // A frame size of 2 GiB: closed before anything is allocated.
    let mut stream = connect(&broker);
    stream.write_all(&i32::MAX.to_be_bytes()).unwrap();
    assert!(
        read_frame(&mut stream).is_none(),
        "oversized frame closes the connection"
    );
    assert_still_serves(&broker);

    // A negative size.
    let mut stream = connect(&broker);
    stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(read_frame(&mut stream).is_none());
    assert_still_serves(&broker);

    // An unknown API key.
    let mut stream = connect(&broker);
    let mut frame = api_versions(5);
    frame[4..6].copy_from_slice(&999i16.to_be_bytes());
    stream.write_all(&frame).unwrap();
    assert!(
        read_frame(&mut stream).is_none(),
        "unknown API key closes the connection"
    );
    assert_still_serves(&broker);

    // A truncated Metadata request (frame says 6 bytes: header cut short).
    let mut stream = connect(&broker);
    stream.write_all(&[0, 0, 0, 6, 0, 3, 0, 9, 0, 0]).unwrap();
    assert!(read_frame(&mut stream).is_none());
    assert_still_serves(&broker);

    // Garbage: a Metadata v9 frame of random bytes.
    let mut stream = connect(&broker);
    let mut frame = vec![0, 0, 0, 40, 0, 3, 0, 9, 0, 0, 0, 1];
    frame.extend((0..36u8).map(|i| i.wrapping_mul(97).wrapping_add(13)));
    stream.write_all(&frame).unwrap();
    let _ = read_frame(&mut stream);
    assert_still_serves(&broker);

    // ApiVersions at a version from the future: the v0 body with
    // UNSUPPORTED_VERSION (35) and the right correlation id (KIP-511).
    let mut stream = connect(&broker);
    let mut frame = api_versions(31);
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    stream.write_all(&frame).unwrap();
    let body = read_frame(&mut stream).expect("answered");
    assert_eq!(i32::from_be_bytes(body[..4].try_into().unwrap()), 31);
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 35);
    assert_still_serves(&broker);
}
