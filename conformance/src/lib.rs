//! The black-box harness: builds and starts the real `rkube` binary on a
//! free loopback port with a temporary data dir, and runs the stock kubectl
//! (path from `$KUBECTL`, default `kubectl`) against it.
//!
//! Owns process lifecycle only: every server started here is killed (by its
//! PID, through `Child`) when its `Cluster` is dropped, also when a test
//! fails. Assertions live in the tests.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `rkube` binary, built once per test process.
pub fn rkube_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("RKUBE_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "RKUBE_BIN={} is not a file", p.display());
            return p;
        }
        // Prefer the value cargo sets when it runs the tests: the one baked
        // in at compile time goes stale when a build is reused elsewhere.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let root = Path::new(&manifest_dir)
            .parent()
            .expect("workspace root")
            .to_path_buf();
        // A target dir of its own: building only `rkube` resolves features
        // differently from the test build, and sharing one dir would make
        // the two rebuild each other's dependencies every run.
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"))
            .join("rkube-under-test");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "rkube", "-p", "rolling-update"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building rkube failed");
        target.join("debug").join("rkube")
    })
}

/// A PATH with the directory of rkube's kubectl plugins (built beside
/// the `rkube` binary) in front, so kubectl finds them.
pub fn path_with_plugins() -> std::ffi::OsString {
    let dir = rkube_binary().parent().expect("a directory").to_path_buf();
    let mut paths = vec![dir];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("joinable PATH")
}

pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Which datastore a test cluster runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    /// A throw-away single-member etcd started for the test.
    Etcd,
}

/// Throw-away etcd members (one, or a cluster) on free loopback ports;
/// killed on drop.
pub struct Etcd {
    members: Vec<EtcdMember>,
    initial_cluster: String,
    dir: tempfile::TempDir,
}

struct EtcdMember {
    child: Option<Child>,
    client_url: String,
    client_port: u16,
    peer_url: String,
}

impl Etcd {
    pub fn start() -> Etcd {
        Self::start_cluster(1)
    }

    /// Starts `n` members forming one cluster.
    pub fn start_cluster(n: usize) -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let members: Vec<EtcdMember> = (0..n)
            .map(|_| {
                let client_port = free_port();
                EtcdMember {
                    child: None,
                    client_url: format!("http://127.0.0.1:{client_port}"),
                    client_port,
                    peer_url: format!("http://127.0.0.1:{}", free_port()),
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("m{i}={}", m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members,
            initial_cluster,
            dir,
        };
        for i in 0..n {
            etcd.spawn(i);
        }
        for i in 0..n {
            etcd.wait_listening(i);
        }
        etcd
    }

    /// Every member's client URL, comma-separated (for `--etcd-servers`).
    pub fn client_urls(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let m = &self.members[i];
        let child = Command::new(&bin)
            .args(["--name", &format!("m{i}"), "--data-dir"])
            .arg(self.dir.path().join(format!("m{i}")))
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (install etcd-server): {e}"));
        self.members[i].child = Some(child);
    }

    fn wait_listening(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.members[i].client_port)).is_err() {
            assert!(Instant::now() < deadline, "etcd member {i} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills member `i` (SIGKILL).
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data dir and ports.
    pub fn restart_member(&mut self, i: usize) {
        self.stop_member(i);
        self.spawn(i);
        self.wait_listening(i);
    }

    pub fn stop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    pub fn restart(&mut self) {
        for i in 0..self.members.len() {
            self.restart_member(i);
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A virtualenv made under `dir` with `packages` from PyPI installed;
/// returns its python. The tests that run Python clients and checkers make
/// their own, so nothing is installed on the machine.
pub fn python_venv(dir: &Path, packages: &[&str]) -> PathBuf {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let venv = dir.join("venv");
    let ok = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap_or_else(|e| panic!("{python} -m venv (Python 3 with venv is needed): {e}"));
    assert!(ok.success(), "making the virtualenv failed");
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install {packages:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    venv.join("bin").join("python")
}

/// Runs `conformance/tests/python/<script>` with a virtualenv's `python`
/// and `args`; panics with its output unless it succeeds and its last line
/// is `ok`. Returns what it printed.
#[track_caller]
pub fn python_script_ok(python: &Path, script: &str, args: &[&std::ffi::OsStr]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new(python)
        .arg(path)
        .args(args)
        // Playwright (the Swagger UI test) drives Debian's chromium; it
        // must never try to download a browser of its own.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{script}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// A kube-rs client for the kubeconfig at `path`.
pub async fn kube_client(path: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// One running `rkube server`.
pub struct Cluster {
    child: Option<Child>,
    pub data_dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
    /// Run the kubelet too (off unless a test asks: the API tests need no
    /// node, and parallel clusters would share the host's pod network).
    kubelet: bool,
    /// The kubelet's pod log directory, removed on drop.
    pod_logs: Option<PathBuf>,
    /// (bridge, CIDR) of the kubelet's pod network, torn down on drop.
    pod_network: Option<(String, String)>,
    /// Declared last: dropped after the server is gone.
    etcd: Option<Etcd>,
}

impl Cluster {
    /// Starts a server and waits until `/readyz` passes.
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Starts a server on the given datastore.
    pub fn start_on(backend: Backend) -> Cluster {
        Self::start_on_with(backend, &[])
    }

    /// Starts a server on the given datastore with extra flags.
    pub fn start_on_with(backend: Backend, extra_args: &[&str]) -> Cluster {
        match backend {
            Backend::Embedded => Self::start_full(extra_args, None),
            Backend::Etcd => Self::start_on_etcd_with(Etcd::start(), extra_args),
        }
    }

    /// Starts a server on the given etcd members.
    pub fn start_on_etcd(etcd: Etcd) -> Cluster {
        Self::start_on_etcd_with(etcd, &[])
    }

    fn start_on_etcd_with(etcd: Etcd, extra_args: &[&str]) -> Cluster {
        let urls = etcd.client_urls();
        let mut args = vec!["--etcd-servers", urls.as_str()];
        args.extend_from_slice(extra_args);
        Self::start_full(&args, Some(etcd))
    }

    /// Starts a server with extra `rkube server` flags.
    pub fn start_with(extra_args: &[&str]) -> Cluster {
        Self::start_full(extra_args, None)
    }

    /// Starts a server with its kubelet (youki) as node `node`, pods on
    /// their own bridge and CIDR so that clusters do not share a network.
    pub fn start_with_node(node: &str, bridge: &str, cidr: &str) -> Cluster {
        Self::start_with_node_args(node, bridge, cidr, &[])
    }

    /// As [`Cluster::start_with_node`], with more `rkube server` flags
    /// (e.g. another container runtime).
    pub fn start_with_node_args(node: &str, bridge: &str, cidr: &str, extra: &[&str]) -> Cluster {
        let pod_logs = tempfile::tempdir().expect("tempdir").keep();
        let mut args = vec![
            "--node-name",
            node,
            "--cni-bridge",
            bridge,
            "--cluster-cidr",
            cidr,
            "--pod-log-dir",
            pod_logs.to_str().expect("utf-8 path"),
            "--kubelet-port",
            "0",
        ];
        args.extend_from_slice(extra);
        let mut c = Self::start_full_kubelet(&args, None, true);
        c.pod_logs = Some(pod_logs);
        c.pod_network = Some((bridge.to_string(), cidr.to_string()));
        c
    }

    fn start_full(extra_args: &[&str], etcd: Option<Etcd>) -> Cluster {
        Self::start_full_kubelet(extra_args, etcd, false)
    }

    fn start_full_kubelet(extra_args: &[&str], etcd: Option<Etcd>, kubelet: bool) -> Cluster {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let kubeconfig = data_dir.path().join("kubeconfig");
        let log = data_dir.path().join("server.log");
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let mut c = Cluster {
            child: None,
            data_dir,
            port,
            kubeconfig,
            log,
            extra_args,
            kubelet,
            pod_logs: None,
            pod_network: None,
            etcd,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(rkube_binary())
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
            ])
            .arg(self.data_dir.path().join("data"))
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.extra_args)
            .args((!self.kubelet).then_some("--disable-agent"))
            // The watch cache compares itself with storage while tests run.
            .env("RKUBE_WATCH_CACHE_CHECK", "200ms")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rkube");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    /// Kills the server with SIGKILL (no chance to clean up) and starts it
    /// again on the same data dir and port.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
        self.spawn();
    }

    /// Sends SIGTERM and waits for the server to exit.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rkube did not stop within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn();
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rkube exited early with {status}:\n{}", self.server_log());
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "rkube not ready in time:\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kube-rs client with the cluster's admin credentials.
    pub async fn client(&self) -> kube::Client {
        kube_client(&self.kubeconfig).await
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(kubectl_path());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", path_with_plugins())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout; panics with stderr on failure.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` (or another verb) with YAML/JSON on stdin.
    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl_stdin(args, Some(input));
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} unexpectedly succeeded",
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Polls `check` until it returns true or the timeout passes.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The etcd member behind an etcd-backed cluster.
    pub fn etcd(&mut self) -> &mut Etcd {
        self.etcd.as_mut().expect("an etcd-backed cluster")
    }

    /// The server's process id, for tests that signal it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

/// An `rkube agent` joined to a cluster with its token: a node with its
/// own data dir, bridge and pod CIDR. Killed (by PID) and its pods torn
/// down on drop.
pub struct Agent {
    child: Option<Child>,
    pub name: String,
    pub data_dir: tempfile::TempDir,
    log: PathBuf,
    pod_logs: PathBuf,
    bridge: String,
    cidr: String,
}

impl Agent {
    /// Starts the agent; does not wait.
    pub fn spawn(cluster: &Cluster, name: &str, bridge: &str, cidr: &str, token: &str) -> Agent {
        Self::spawn_with(cluster, name, bridge, cidr, token, &[])
    }

    /// Starts the agent with `extra` flags; no bridge means no pod network
    /// flags (and nothing to tear down).
    fn spawn_with(
        cluster: &Cluster,
        name: &str,
        bridge: &str,
        cidr: &str,
        token: &str,
        extra: &[&str],
    ) -> Agent {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let pod_logs = data_dir.path().join("pod-logs");
        let log = data_dir.path().join("agent.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(rkube_binary())
            .args(["agent", "--server", &cluster.url(), "--node-name", name])
            .arg("--data-dir")
            .arg(data_dir.path().join("data"))
            .args(["--kubelet-port", "0"])
            .args(if bridge.is_empty() {
                Vec::new()
            } else {
                vec!["--cni-bridge", bridge, "--cluster-cidr", cidr]
            })
            .args(extra)
            .arg("--pod-log-dir")
            .arg(&pod_logs)
            .env("RKUBE_TOKEN", token)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start rkube agent");
        Agent {
            child: Some(child),
            name: name.to_string(),
            data_dir,
            log,
            pod_logs,
            bridge: bridge.to_string(),
            cidr: cidr.to_string(),
        }
    }

    /// Joins with the cluster's own token and waits for the Node to be Ready.
    pub fn join(cluster: &Cluster, name: &str, bridge: &str, cidr: &str) -> Agent {
        Self::join_with(cluster, name, bridge, cidr, &[])
    }

    fn join_with(cluster: &Cluster, name: &str, bridge: &str, cidr: &str, extra: &[&str]) -> Agent {
        let token = std::fs::read_to_string(cluster.data_dir.path().join("data").join("token"))
            .expect("the server's join token");
        let mut agent = Self::spawn_with(cluster, name, bridge, cidr, token.trim(), extra);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = agent
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rkube agent exited early with {status}:\n{}", agent.log());
            }
            let out = cluster.kubectl(&[
                "get",
                "node",
                name,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            if out.status.success() && out.stdout == b"True" {
                return agent;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} not Ready:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A simulated node (`--container-runtime fake`): pods go Running
    /// without processes or a pod network. Waits for the Node to be Ready.
    pub fn join_simulated(cluster: &Cluster, name: &str) -> Agent {
        Self::join_with(cluster, name, "", "", &["--container-runtime", "fake"])
    }

    /// Kills the agent with SIGKILL: the node goes silent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the agent to exit by itself; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "rkube agent still running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's process id, for tests that measure it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.bridge.is_empty() {
            tear_down_node(
                &self.data_dir.path().join("data").join("runtime"),
                &self.bridge,
                &self.cidr,
            );
        }
        let _ = std::fs::remove_dir_all(&self.pod_logs);
    }
}

/// Removes every sandbox a killed server's kubelet left running (its
/// containers outlive it by design), then the pod bridge.
fn tear_down_node(runtime_dir: &std::path::Path, bridge: &str, cidr: &str) {
    use runtime::Runtime;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let cni = runtime::cni::Cni::new(runtime::cni::CniConfig {
            state_dir: runtime_dir.join("cni"),
            bridge: bridge.into(),
            subnet: cidr.into(),
            ..Default::default()
        });
        let images =
            runtime::image::ImageStore::open(&runtime_dir.join("images"), Default::default());
        let (Ok(cni), Ok(images)) = (cni, images) else {
            return;
        };
        let rt = runtime::youki::YoukiRuntime::new(runtime::youki::YoukiOptions {
            root: runtime_dir.join("youki"),
            state_root: runtime_dir.join("youki-state"),
            helper: runtime::youki::HelperCommand {
                program: rkube_binary().to_path_buf(),
                shim_args: vec!["youki-shim".into()],
                exec_args: vec!["youki-exec".into()],
            },
            images: std::sync::Arc::new(images),
            cni: Some(std::sync::Arc::new(cni)),
            cgroup_root: "/rkube".into(),
            log_max_bytes: 1 << 20,
            log_max_files: 1,
        });
        let Ok(rt) = rt else { return };
        for sb in rt
            .list_pod_sandboxes(&Default::default())
            .await
            .unwrap_or_default()
        {
            let _ = rt.remove_pod_sandbox(&sb.id).await;
        }
    });
    let _ = Command::new("ip").args(["link", "del", bridge]).output();
    // What the kubelet mounted for its pods' volumes (tmpfs emptyDirs, …):
    // a killed kubelet never unmounted them.
    if let Some(data_dir) = runtime_dir.parent() {
        runtime::testing::unmount_under(data_dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((bridge, cidr)) = &self.pod_network {
            tear_down_node(
                &self.data_dir.path().join("data").join("runtime"),
                bridge,
                cidr,
            );
        }
        if let Some(logs) = &self.pod_logs {
            let _ = std::fs::remove_dir_all(logs);
        }
        // The watch cache's consistency checker runs during every test; a
        // mismatch it found fails the test that saw it.
        let log = self.server_log();
        if !std::thread::panicking() && log.contains("watch cache state differed from storage") {
            panic!("watch cache inconsistency:\n{log}");
        }
    }
}
