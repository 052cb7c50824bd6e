//! The plugin's command line as a user meets it. (Being an integration
//! test also makes `cargo test --workspace` build the plugin, which the
//! black-box suite puts on kubectl's PATH.)

use std::process::Command;

#[test]
fn bad_durations_and_missing_arguments_are_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_kubectl-rolling_update");
    let out = Command::new(bin).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<OLD>"));
    let out = Command::new(bin)
        .args(["web", "--image=x", "--update-period=soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--update-period"));
}
