//! The runtime test suite: one set of cases, generic over the `Runtime`
//! trait, run against every real backend (each backend's test file builds
//! a [`Harness`] and expands [`suite_tests!`]). Cases need root, the CNI
//! plugins and busybox-static, which `.ci/run` installs.

#![allow(dead_code)]

pub mod cases;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::types::*;
use runtime::{Runtime, RuntimeError};

/// A runtime under test plus what its cases need, cleaned up on drop.
pub struct Harness {
    pub rt: Arc<dyn Runtime>,
    pub dir: tempfile::TempDir,
    /// The busybox image's reference, already present in the runtime.
    pub busybox: String,
    /// The pod subnet this harness's CNI network uses.
    pub subnet: String,
    pub bridge: String,
    pub cni_state: PathBuf,
    /// The runtime's cgroup root (relative to each hierarchy).
    pub cgroup_root: String,
    pub cleanup: Vec<Box<dyn FnOnce() + Send>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Remove whatever sandboxes a failed case left, on a runtime of its
        // own (drop cannot await).
        let rt = self.rt.clone();
        let _ = std::thread::spawn(move || {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tokio.block_on(async {
                if let Ok(list) = rt.list_pod_sandboxes(&SandboxFilter::default()).await {
                    for s in list {
                        let _ = rt.remove_pod_sandbox(&s.id).await;
                    }
                }
            });
        })
        .join();
        for f in self.cleanup.drain(..) {
            f();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// What every backend's harness shares: a CNI network of its own and an
/// image store, under `dir`.
pub struct NodeParts {
    pub cni: Arc<runtime::cni::Cni>,
    pub images: Arc<runtime::image::ImageStore>,
    pub bridge: String,
    pub subnet: String,
    pub cni_state: PathBuf,
}

impl NodeParts {
    pub fn new(dir: &Path, second_octet: u8) -> NodeParts {
        let (bridge, subnet) = unique_network(second_octet);
        let cni_state = dir.join("cni");
        let cni = runtime::cni::Cni::new(runtime::cni::CniConfig {
            state_dir: cni_state.clone(),
            network_name: format!("rkube-{bridge}"),
            bridge: bridge.clone(),
            subnet: subnet.clone(),
            ..Default::default()
        })
        .unwrap();
        let images =
            runtime::image::ImageStore::open(&dir.join("images"), Default::default()).unwrap();
        NodeParts {
            cni: Arc::new(cni),
            images: Arc::new(images),
            bridge,
            subnet,
            cni_state,
        }
    }
}

impl Harness {
    /// The harness for `rt`, with busybox imported into it.
    pub async fn new(
        rt: Arc<dyn Runtime>,
        dir: tempfile::TempDir,
        parts: NodeParts,
        cgroup_root: String,
        cleanup: Vec<Box<dyn FnOnce() + Send>>,
    ) -> Harness {
        let archive = dir.path().join("busybox.tar");
        let images = runtime::testing::images::busybox();
        runtime::testing::images::write_oci_layout_tar(&archive, &[images]);
        let imported = rt.import_image(&archive).await.unwrap();
        let busybox = imported[0].repo_tags[0].clone();
        Harness {
            rt,
            dir,
            busybox,
            subnet: parts.subnet,
            bridge: parts.bridge,
            cni_state: parts.cni_state,
            cgroup_root,
            cleanup,
        }
    }
}

/// A fresh (bridge, subnet) pair; `second_octet` keeps backends apart.
pub fn unique_network(second_octet: u8) -> (String, String) {
    let n = NEXT_NET.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id() % 1000;
    (
        format!("rkt{pid}x{n}"),
        format!("10.{second_octet}.{n}.0/24"),
    )
}

/// Polls `f` until it yields `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Harness {
    pub fn sandbox_config(&self, name: &str) -> SandboxConfig {
        let uid = format!("uid-{name}-{}", NEXT_NET.fetch_add(1, Ordering::SeqCst));
        SandboxConfig {
            metadata: PodMetadata {
                name: name.into(),
                namespace: "default".into(),
                uid: uid.clone(),
                attempt: 0,
            },
            hostname: name.into(),
            log_directory: self
                .dir
                .path()
                .join("logs")
                .join(format!("default_{name}_{uid}")),
            dns: DnsConfig {
                servers: vec!["10.96.0.10".into()],
                searches: vec!["default.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            },
            labels: BTreeMap::from([("app".into(), name.into())]),
            ..Default::default()
        }
    }

    pub fn container(&self, name: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: self.busybox.clone(),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: PathBuf::from(format!("{name}/0.log")),
            ..Default::default()
        }
    }

    pub async fn sandbox(&self, name: &str) -> (String, SandboxConfig) {
        let config = self.sandbox_config(name);
        let id = self
            .rt
            .run_pod_sandbox(&config)
            .await
            .expect("run_pod_sandbox");
        (id, config)
    }

    /// Creates and starts a container; returns its id.
    pub async fn start(&self, sb: &(String, SandboxConfig), config: ContainerConfig) -> String {
        let id = self
            .rt
            .create_container(&sb.0, &config, &sb.1)
            .await
            .expect("create_container");
        self.rt.start_container(&id).await.expect("start_container");
        id
    }

    pub async fn wait_exited(&self, id: &str) -> ContainerStatus {
        let rt = self.rt.clone();
        eventually(Duration::from_secs(30), "the container to exit", || {
            let rt = rt.clone();
            async move {
                let s = rt.container_status(id).await.expect("container_status");
                (s.state == ContainerState::Exited).then_some(s)
            }
        })
        .await
    }

    pub fn logs(&self, status: &ContainerStatus) -> String {
        let out =
            runtime::cri_log::read_logs(&status.log_path, &Default::default()).unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Runs `command` in a fresh container to completion: (exit code, logs).
    pub async fn run_to_exit(
        &self,
        sb: &(String, SandboxConfig),
        config: ContainerConfig,
    ) -> (i32, String, ContainerStatus) {
        let id = self.start(sb, config).await;
        let status = self.wait_exited(&id).await;
        (status.exit_code.unwrap(), self.logs(&status), status)
    }

    pub async fn exec_output(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        use tokio::io::AsyncReadExt;
        let request = ExecRequest {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut s = self.rt.exec(id, request).await.expect("exec");
        let mut out = String::new();
        let mut err = String::new();
        let mut o = s.stdout.take().unwrap();
        let mut e = s.stderr.take().unwrap();
        let (a, b) = tokio::join!(o.read_to_string(&mut out), e.read_to_string(&mut err));
        a.unwrap();
        b.unwrap();
        let code = s.exit.await.expect("exec exit");
        (code, out, err)
    }
}

pub fn kind_of<T>(r: Result<T, RuntimeError>) -> runtime::ErrorKind {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e.kind,
    }
}

/// Pod cgroups still present under the harness's cgroup root, in any
/// hierarchy.
pub fn leftover_pod_cgroups(h: &Harness) -> Vec<PathBuf> {
    let setup = runtime::cgroups::CgroupSetup::detect().unwrap();
    let mut out = Vec::new();
    for dir in setup.dirs(&h.cgroup_root).unwrap_or_default() {
        for parent in [dir.join("pods"), dir.clone()] {
            if let Ok(entries) = std::fs::read_dir(&parent) {
                out.extend(
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "pods")),
                );
            }
        }
    }
    out
}

pub fn mount_lines_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

/// Expands to one `#[tokio::test]` per case of the suite for a harness
/// constructor (every case, unless a list is given).
#[macro_export]
macro_rules! suite_tests {
    ($make:path) => {
        $crate::suite_tests!($make;
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
    };
    ($make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let h = $make().await;
                suite::cases::$case(&h).await;
            }
        )*
    };
}
