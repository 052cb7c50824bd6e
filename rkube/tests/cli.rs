//! The binary's command line as a user meets it: bad flags fail before
//! anything starts, with the flag named and usage's exit code.
//!
//! Being an integration test of this package also makes `cargo test
//! --workspace` build the `rkube` binary that the black-box suite runs.

use std::process::Command;

fn rkube(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(args)
        .output()
        .expect("run rkube")
}

#[test]
fn version_names_the_binary() {
    let out = rkube(&["--version"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("rkube "), "{stdout}");
}

#[test]
fn a_malformed_listen_address_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let out = rkube(&[
        "server",
        "--data-dir",
        data_dir,
        "--listen",
        "not-an-address",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
    // Nothing was started, so nothing was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let out = rkube(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"));
}

#[test]
fn a_malformed_duration_flag_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let args = [
        "server",
        "--data-dir",
        data_dir,
        "--node-monitor-grace-period",
        "soon",
    ];
    let out = rkube(&args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--node-monitor-grace-period"), "{stderr}");
    assert!(stderr.contains("invalid duration"), "{stderr}");
}
