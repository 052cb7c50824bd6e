//! Throw-away etcd members for tests: the etcd backend's suite and the fault
//! tests (restarts, multi-member clusters) start real `etcd` processes here.
//!
//! This module owns finding the binary, choosing free loopback ports, the
//! temporary data directories, waiting until members answer, and killing the
//! processes. It must never touch an etcd it did not start, must only listen
//! on 127.0.0.1, and must not leave a process behind: every member is killed
//! (and reaped) when the server value is dropped, including when a test
//! panics.
//!
//! The binary is `$ETCD_BIN` if set, else `etcd` on `PATH` (Debian's
//! `etcd-server` package). Tests fail with a clear message when it is missing
//! rather than passing vacuously.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest a start or restart waits for every member to serve reads.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting start polls the members.
const READY_POLL: Duration = Duration::from_millis(50);

/// Port collisions (another process binding a port between our probe and
/// etcd's bind) are retried with fresh ports this many times.
const START_ATTEMPTS: usize = 3;

/// Tuning for the members a test starts.
#[derive(Clone, Debug)]
pub struct EtcdTestOptions {
    /// Members in the cluster.
    pub members: usize,
    /// etcd's `--experimental-watch-progress-notify-interval`: how often the
    /// server itself sends progress notifications to idle watchers. Short,
    /// so that watch-progress tests see them quickly.
    pub progress_notify_interval: Duration,
    /// Raft heartbeat; short so that elections (first start, restarts,
    /// killed leaders) finish quickly on loopback.
    pub heartbeat: Duration,
    /// Raft election timeout; must be several heartbeats.
    pub election_timeout: Duration,
    /// Serve clients over TLS with these files (and require client
    /// certificates); peers still talk plain HTTP on loopback.
    pub tls: Option<EtcdTestTls>,
}

/// PEM files for a TLS test cluster.
#[derive(Clone, Debug)]
pub struct EtcdTestTls {
    /// The CA that signed both the server and the client certificate.
    pub ca_file: PathBuf,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
    /// The certificate the readiness probe presents.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
}

impl Default for EtcdTestOptions {
    fn default() -> Self {
        Self {
            members: 1,
            progress_notify_interval: Duration::from_millis(100),
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(500),
            tls: None,
        }
    }
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// One etcd cluster of throw-away members on loopback ports, in a temporary
/// directory. Dropping it kills every member and removes the directory.
pub struct EtcdTestServer {
    opts: EtcdTestOptions,
    token: String,
    members: Vec<Member>,
    // Declared last so the processes are gone before the directory goes.
    dir: tempfile::TempDir,
}

/// The etcd binary tests run.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn tls_url(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

impl EtcdTestServer {
    /// Starts a single-member etcd with default options.
    pub async fn start() -> Self {
        Self::start_with(EtcdTestOptions::default()).await
    }

    /// Starts `members` members as one cluster.
    pub async fn start_cluster(members: usize) -> Self {
        Self::start_with(EtcdTestOptions {
            members,
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(opts: EtcdTestOptions) -> Self {
        assert!(opts.members > 0, "a cluster needs at least one member");
        let mut last_error = String::new();
        for attempt in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("rkube-etcd-test-")
                .tempdir()
                .expect("tempdir for etcd");
            let members = (0..opts.members)
                .map(|i| Member {
                    name: format!("m{i}"),
                    client_port: free_port(),
                    peer_port: free_port(),
                    child: None,
                })
                .collect();
            let mut server = Self {
                token: format!("rkube-test-{}-{attempt}", std::process::id()),
                opts: opts.clone(),
                members,
                dir,
            };
            match server.launch_all().await {
                Ok(()) => return server,
                // Dropping `server` kills whatever did start.
                Err(e) => last_error = e,
            }
        }
        panic!("etcd did not start after {START_ATTEMPTS} attempts: {last_error}");
    }

    /// The first member's client URL.
    pub fn client_url(&self) -> String {
        self.member_url(0)
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.member_url(i))
            .collect()
    }

    fn member_url(&self, index: usize) -> String {
        let port = self.members[index].client_port;
        match self.opts.tls {
            Some(_) => tls_url(port),
            None => url(port),
        }
    }

    /// The temporary directory holding data directories and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills every member (SIGKILL: a crash, not a graceful stop). The data
    /// directories stay, so `restart` brings the same cluster back.
    pub fn stop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    /// Kills one member.
    pub fn stop_member(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            // The child may already have exited; either way it is reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts every stopped member again on the same ports and data, and
    /// waits until all answer.
    pub async fn restart(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                self.spawn_member(i).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        self.wait_ready(&(0..self.members.len()).collect::<Vec<_>>())
            .await
            .unwrap_or_else(|e| panic!("etcd did not come back: {e}"));
    }

    /// Starts one stopped member again and waits until it answers (which
    /// needs a quorum of the cluster up).
    pub async fn restart_member(&mut self, index: usize) {
        if self.members[index].child.is_none() {
            self.spawn_member(index).unwrap_or_else(|e| panic!("{e}"));
        }
        self.wait_ready(&[index])
            .await
            .unwrap_or_else(|e| panic!("etcd member {index} did not come back: {e}"));
    }

    /// Whether the member's process is still running.
    pub fn is_running(&mut self, index: usize) -> bool {
        match self.members[index].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The tail of a member's log, for failure messages.
    pub fn log_tail(&self, index: usize) -> String {
        let path = self.log_path(index);
        let Ok(mut f) = File::open(&path) else {
            return format!("(no log at {})", path.display());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
        let mut tail = String::new();
        let _ = f.read_to_string(&mut tail);
        tail
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[index].name))
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, url(m.peer_port)))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn launch_all(&mut self) -> Result<(), String> {
        for i in 0..self.members.len() {
            self.spawn_member(i)?;
        }
        self.wait_ready(&(0..self.members.len()).collect::<Vec<_>>())
            .await
    }

    fn spawn_member(&mut self, index: usize) -> Result<(), String> {
        let cluster = self.initial_cluster();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))
            .map_err(|e| format!("etcd log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("etcd log file: {e}"))?;
        let client_url = self.member_url(index);
        let m = &self.members[index];
        let data_dir = self.dir.path().join(&m.name);
        let mut command = Command::new(etcd_binary());
        if let Some(tls) = &self.opts.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert_file)
                .arg("--key-file")
                .arg(&tls.server_key_file)
                .arg("--trusted-ca-file")
                .arg(&tls.ca_file)
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(url(m.peer_port))
            .arg("--initial-advertise-peer-urls")
            .arg(url(m.peer_port))
            .arg("--initial-cluster")
            .arg(&cluster)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--heartbeat-interval")
            .arg(self.opts.heartbeat.as_millis().to_string())
            .arg("--election-timeout")
            .arg(self.opts.election_timeout.as_millis().to_string())
            .arg("--experimental-watch-progress-notify-interval")
            .arg(format!(
                "{}ms",
                self.opts.progress_notify_interval.as_millis()
            ))
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {}: {e} (install Debian's etcd-server or set ETCD_BIN)",
                    etcd_binary().display()
                )
            })?;
        self.members[index].child = Some(child);
        Ok(())
    }

    /// Waits until each listed member serves a linearizable read (which
    /// needs an elected leader), failing early if a member exits.
    async fn wait_ready(&mut self, indices: &[usize]) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for &i in indices {
            let endpoint = self.member_url(i);
            loop {
                if !self.is_running(i) {
                    return Err(format!(
                        "etcd member {i} exited; log tail:\n{}",
                        self.log_tail(i)
                    ));
                }
                if answers(&endpoint, self.opts.tls.as_ref()).await {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "etcd member {i} at {endpoint} did not answer within {READY_TIMEOUT:?}; log tail:\n{}",
                        self.log_tail(i)
                    ));
                }
                tokio::time::sleep(READY_POLL).await;
            }
        }
        Ok(())
    }
}

/// Whether a linearizable read on exactly this endpoint succeeds now.
async fn answers(endpoint: &str, tls: Option<&EtcdTestTls>) -> bool {
    let probe = async {
        let options = match tls {
            Some(tls) => {
                let pem = |p: &PathBuf| std::fs::read(p).ok();
                let config = etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(pem(&tls.ca_file)?))
                    .identity(etcd_client::Identity::from_pem(
                        pem(&tls.client_cert_file)?,
                        pem(&tls.client_key_file)?,
                    ));
                Some(etcd_client::ConnectOptions::new().with_tls(config))
            }
            None => None,
        };
        let mut client = etcd_client::Client::connect([endpoint], options)
            .await
            .ok()?;
        client.get("rkube-test-ready-probe", None).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(_))
    )
}

impl Drop for EtcdTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
