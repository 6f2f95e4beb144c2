//! When a dependency is missing, `kelp start` says what failed and how to
//! fix it, and exits non-zero, instead of panicking.

mod common;

use std::process::Command;

use common::{free_port, Broker};

fn start_output(data_dir: &std::path::Path, port: u16) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kelp"))
        .args(["start", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_held_data_dir_and_a_taken_port_are_explained() {
    let mut running = Broker::start();
    let dir = running.take_dir();

    let (ok, stderr) = start_output(&running.data_dir, free_port());
    assert!(!ok);
    assert!(
        stderr.contains("in use by another running Kelp"),
        "{stderr}"
    );

    let other = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (ok, stderr) = start_output(other.path(), running.addr.port());
    assert!(!ok);
    assert!(
        stderr.contains("already in use") && stderr.contains("--listen"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_kelp"))
        .args(["start", "--listen", "localhost"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("IP:PORT"), "{stderr}");
    drop(dir);
}
