//! The runtime suite against the youki backend (libcontainer through the
//! helper binary), with rkube's image store and the node's CNI plugins.

mod suite;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use runtime::youki::{HelperCommand, YoukiOptions, YoukiRuntime};
use suite::{Harness, NodeParts};

static NEXT: AtomicU32 = AtomicU32::new(0);

async fn youki_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let parts = NodeParts::new(dir.path(), 201);
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
        images: parts.images.clone(),
        cni: Some(parts.cni.clone()),
        cgroup_root: cgroup_root.clone(),
        log_max_bytes: 10 << 20,
        log_max_files: 3,
    })
    .unwrap();
    let root = cgroup_root.clone();
    let cleanup: Vec<Box<dyn FnOnce() + Send>> = vec![Box::new(move || {
        if let Ok(setup) = runtime::cgroups::CgroupSetup::detect() {
            let _ = runtime::cgroups::remove(&setup, &root);
        }
    })];
    Harness::new(Arc::new(rt), dir, parts, cgroup_root, cleanup).await
}

suite_tests!(youki_harness);
