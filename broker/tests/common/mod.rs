//! Starting a real `kelp` process for integration tests: a free loopback
//! port, its own data directory, stopped (SIGTERM) when dropped.
#![allow(dead_code)]

pub mod groups;
pub mod proxy;
pub mod raw;
pub mod txn;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running broker.
pub struct Broker {
    child: Option<Child>,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// An rdkafka admin client for `broker`.
pub fn admin(
    broker: &Broker,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", broker.addr.to_string())
        .create()
        .expect("admin client")
}

/// A port nobody listens on right now, and not handed out before by this
/// test binary: the kernel may offer a port just released to the next
/// caller, and two brokers given the same port would meet each other's
/// clients (the second fails to start while its test talks to the first).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
}

impl Broker {
    /// Starts a broker in a fresh data directory.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker in a fresh data directory with more `kelp start` flags.
    pub fn start_with(flags: &[&str]) -> Broker {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data_dir = dir.path().join("data");
        let mut broker = Broker::start_in_with(&data_dir, free_port(), flags);
        broker._dir = Some(dir);
        broker
    }

    /// Starts a broker on `data_dir` and `port`.
    pub fn start_in(data_dir: &Path, port: u16) -> Broker {
        Broker::start_in_with(data_dir, port, &[])
    }

    /// Starts a broker on `data_dir` and `port` with more `kelp start` flags.
    pub fn start_in_with(data_dir: &Path, port: u16, flags: &[&str]) -> Broker {
        Broker::start_advertising(data_dir, port, port, flags)
    }

    /// Starts a broker on `data_dir` and `port` that tells clients to
    /// connect to `advertised_port` (a proxy in front of it).
    pub fn start_advertising(
        data_dir: &Path,
        port: u16,
        advertised_port: u16,
        flags: &[&str],
    ) -> Broker {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kelp"))
            .args([
                "start",
                "--listen",
                &addr.to_string(),
                "--advertised",
                &format!("127.0.0.1:{advertised_port}"),
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("kelp binary starts");
        let mut broker = Broker {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // An answered request, not just a connection: a killed
            // predecessor's listener may still accept for a moment.
            if answers_api_versions(self.addr) {
                return;
            }
            let child = self.child.as_mut().expect("broker was started");
            if let Some(status) = child.try_wait().unwrap() {
                // Its own error is on stderr, above.
                panic!("broker on {} exited at start: {status}", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "broker on {} did not start listening within 30 s",
            self.addr
        );
    }

    /// Stops with SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.terminate();
        self.wait()
    }

    /// Sends SIGTERM without waiting for the broker to exit.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("broker is running");
        // SAFETY: kill with a pid this process spawned and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }

    /// Waits for the broker to exit; returns the exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        child.wait().unwrap()
    }

    /// Kills with SIGKILL (a crash) and waits.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Keeps the data directory alive after the broker object goes.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }
}

/// Whether a broker on `addr` answers an ApiVersions v0 request.
fn answers_api_versions(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // Size 10: key 18, version 0, correlation id 1, null client id.
    let request = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    let mut size = [0u8; 4];
    stream.write_all(&request).is_ok()
        && stream.read_exact(&mut size).is_ok()
        && u32::from_be_bytes(size) > 0
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
