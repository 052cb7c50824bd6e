//! The runtime suite against the containerd backend, plus cases of its
//! own (containerd down, an explicit OCI runtime binary, a restarted
//! rkube). Each harness starts a private containerd (Debian's
//! `/usr/bin/containerd`, CRI plugin off) in the harness's temporary
//! directory and takes it down again on drop: its shims and the
//! containers' processes are killed, whatever it mounted is unmounted.

mod suite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::cni::Cni;
use runtime::containerd::{ContainerdOptions, ContainerdRuntime, DEFAULT_NAMESPACE};
use runtime::image::{ImageStore, StoreOptions};
use runtime::testing::containerd::ContainerdDaemon;
use runtime::testing::images;
use runtime::types::*;
use runtime::{ErrorKind, Runtime};
use suite::{Harness, NodeParts};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Kills every process left in the cgroups under `cgroup_root` (a failed
/// case's containers), then removes the cgroups.
fn kill_and_remove_cgroups(cgroup_root: &str) {
    let memory = Path::new("/sys/fs/cgroup/memory").join(cgroup_root.trim_start_matches('/'));
    let mut stack = vec![memory];
    while let Some(dir) = stack.pop() {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    if let Ok(setup) = runtime::cgroups::CgroupSetup::detect() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while runtime::cgroups::remove(&setup, cgroup_root).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What a runtime over the harness's daemon is built from; kept so a
/// case can build a second runtime on the same state.
#[derive(Clone)]
struct Setup {
    socket: PathBuf,
    root: PathBuf,
    images: Arc<ImageStore>,
    cni: Arc<Cni>,
    cgroup_root: String,
}

impl Setup {
    fn options(&self, runtime_binary: Option<PathBuf>) -> ContainerdOptions {
        ContainerdOptions {
            socket: self.socket.clone(),
            namespace: DEFAULT_NAMESPACE.into(),
            root: self.root.clone(),
            runtime_binary,
            images: self.images.clone(),
            cni: Some(self.cni.clone()),
            cgroup_root: self.cgroup_root.clone(),
            log_max_bytes: 10 << 20,
            log_max_files: 3,
        }
    }
}

async fn harness_with(runtime_binary: Option<PathBuf>) -> (Harness, Setup) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = ContainerdDaemon::start(&dir.path().join("ctrd"));
    let parts = NodeParts::new(dir.path(), 202);
    let cgroup_root = format!(
        "/rkube-ctrd-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let setup = Setup {
        socket: daemon.socket.clone(),
        root: dir.path().join("containerd"),
        images: parts.images.clone(),
        cni: parts.cni.clone(),
        cgroup_root: cgroup_root.clone(),
    };
    let rt = ContainerdRuntime::new(setup.options(runtime_binary)).unwrap();
    let root = cgroup_root.clone();
    let cleanup: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new(move || kill_and_remove_cgroups(&root)),
        Box::new(move || drop(daemon)),
    ];
    let harness = Harness::new(Arc::new(rt), dir, parts, cgroup_root, cleanup).await;
    (harness, setup)
}

async fn containerd_harness() -> Harness {
    harness_with(None).await.0
}

suite_tests!(containerd_harness);

/// A runtime pointed at a containerd that is not there answers
/// `Unavailable` at once, for a missing socket and for a refused one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_down_is_unavailable_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let images = ImageStore::open(&dir.path().join("images"), StoreOptions::default()).unwrap();
    let stale = dir.path().join("stale.sock");
    // A socket file nobody listens on any more: connecting is refused.
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [dir.path().join("missing.sock"), stale] {
        let rt = ContainerdRuntime::new(ContainerdOptions {
            socket: socket.clone(),
            namespace: DEFAULT_NAMESPACE.into(),
            root: dir.path().join("containerd"),
            runtime_binary: None,
            images: Arc::new(images.clone()),
            cni: None,
            cgroup_root: "/rkube-ctrd-down".into(),
            log_max_bytes: 1 << 20,
            log_max_files: 1,
        })
        .expect("the runtime is made without dialling containerd");
        let begin = Instant::now();
        let err = rt.version().await.expect_err("containerd is down");
        assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
        assert!(err.message.contains(&socket.display().to_string()), "{err}");
        let archive = dir.path().join("busybox.tar");
        images::write_oci_layout_tar(&archive, &[images::busybox()]);
        let err = rt
            .import_image(&archive)
            .await
            .expect_err("containerd is down");
        assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
        assert!(
            begin.elapsed() < Duration::from_secs(6),
            "took {:?}",
            begin.elapsed()
        );
    }
}

/// `runtime_binary` selects the OCI runtime the shim runs; runc named
/// explicitly runs containers like the default does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_runc_binary_runs_containers() {
    let (h, _) = harness_with(Some(PathBuf::from("/usr/sbin/runc"))).await;
    let v = h.rt.version().await.unwrap();
    assert_eq!(v.runtime_name, "containerd");
    let sb = h.sandbox("runc").await;
    let (code, logs, status) = h
        .run_to_exit(&sb, h.container("hello", &["echo", "via runc"]))
        .await;
    assert_eq!(
        (code, logs.as_str(), status.reason.as_str()),
        (0, "via runc\n", "Completed")
    );
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

/// A new runtime on the same root (a restarted rkube) finds a running
/// container, and its output keeps reaching the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runtime_finds_running_containers() {
    let (h, setup) = harness_with(None).await;
    let first = ContainerdRuntime::new(setup.options(None)).unwrap();
    let sb_config = h.sandbox_config("restart");
    let sb = first.run_pod_sandbox(&sb_config).await.unwrap();
    // The second line comes while no runtime reads the output or after
    // the second one has taken over; either way it must reach the log.
    let c = h.container(
        "ticker",
        &["sh", "-c", "echo one; sleep 2; echo two; sleep 1000"],
    );
    let id = first.create_container(&sb, &c, &sb_config).await.unwrap();
    first.start_container(&id).await.unwrap();
    let before = first.container_status(&id).await.unwrap();
    let log = before.log_path.clone();
    suite::eventually(Duration::from_secs(10), "the first line", || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|s| s.contains("one"))
        }
    })
    .await;
    drop(first);
    let second = ContainerdRuntime::new(setup.options(None)).unwrap();
    let after = second.container_status(&id).await.unwrap();
    assert_eq!(
        (after.state, after.pid),
        (ContainerState::Running, before.pid)
    );
    suite::eventually(
        Duration::from_secs(10),
        "the line after the restart",
        || {
            let log = log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .ok()
                    .filter(|s| s.contains("two"))
            }
        },
    )
    .await;
    second.remove_pod_sandbox(&sb).await.unwrap();
    assert!(second
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap()
        .is_empty());
}
