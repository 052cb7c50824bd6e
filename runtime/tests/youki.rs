//! The runtime suite against the youki backend (libcontainer through the
//! helper binary), with rkube's image store and the node's CNI plugins.

mod suite;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use runtime::cni::{Cni, CniConfig};
use runtime::image::{ImageStore, StoreOptions};
use runtime::testing::images;
use runtime::youki::{HelperCommand, YoukiOptions, YoukiRuntime};
use runtime::Runtime;
use suite::Harness;

static NEXT: AtomicU32 = AtomicU32::new(0);

async fn youki_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (bridge, subnet) = suite::unique_network(201);
    let cni_state = dir.path().join("cni");
    let cni = Cni::new(CniConfig {
        state_dir: cni_state.clone(),
        network_name: format!("rkube-{bridge}"),
        bridge: bridge.clone(),
        subnet: subnet.clone(),
        ..Default::default()
    })
    .unwrap();
    let images = ImageStore::open(&dir.path().join("images"), StoreOptions::default()).unwrap();
    let cgroup_root = format!(
        "/rkube-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let helper = env!("CARGO_BIN_EXE_rkube-runtime-helper");
    let rt = YoukiRuntime::new(YoukiOptions {
        root: dir.path().join("youki"),
        state_root: dir.path().join("run"),
        helper: HelperCommand {
            program: helper.into(),
            shim_args: vec!["youki-shim".into()],
            exec_args: vec!["youki-exec".into()],
        },
        images: Arc::new(images),
        cni: Some(Arc::new(cni)),
        cgroup_root: cgroup_root.clone(),
        log_max_bytes: 10 << 20,
        log_max_files: 3,
    })
    .unwrap();
    let archive = dir.path().join("busybox.tar");
    images::write_oci_layout_tar(&archive, &[images::busybox()]);
    let imported = rt.import_image(&archive).await.unwrap();
    let busybox = imported[0].repo_tags[0].clone();
    Harness {
        rt: Arc::new(rt),
        dir,
        busybox,
        subnet,
        bridge,
        cni_state,
        cgroup_root: cgroup_root.clone(),
        cleanup: vec![Box::new(move || {
            if let Ok(setup) = runtime::cgroups::CgroupSetup::detect() {
                let _ = runtime::cgroups::remove(&setup, &cgroup_root);
            }
        })],
    }
}

suite_tests!(youki_harness;
    exit_codes_and_reasons,
    env_args_and_working_dir,
    mounts_read_write_and_read_only,
    user_group_and_read_only_rootfs,
    logs_are_cri_files_with_both_streams,
    hostname_and_dns_come_from_the_sandbox,
    exec_without_tty,
    exec_with_tty,
    attach_feeds_stdin_and_streams_output,
    port_forward_reaches_the_sandbox_loopback,
    stop_sends_sigterm_then_sigkill,
    memory_limit_oom_kill_is_reported,
    cpu_limit_is_applied,
    pods_get_distinct_ips_and_reach_each_other,
    sandbox_removal_releases_everything,
    bad_requests_get_typed_errors_and_leak_nothing,
    images_import_pull_and_remove,
    host_port_reaches_the_pod,
);
