//! A throwaway local registry for tests: Debian's `docker-registry`
//! (package docker-registry) on `127.0.0.1:<free port>`, storing into a
//! temp dir, optionally behind htpasswd basic auth. Drop kills the process
//! (by its PID) and removes the temp dir.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct TestRegistry {
    child: Child,
    host_port: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts an anonymous registry and waits until `GET /v2/` answers.
    pub fn start() -> TestRegistry {
        Self::spawn(None)
    }

    /// Starts a registry that wants basic auth as `user`/`password`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> TestRegistry {
        Self::spawn(Some((user, password)))
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The registry's temp dir (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(auth: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let host_port = format!("127.0.0.1:{port}");
        let storage = dir.path().join("data");
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host_port}\n",
            storage.display()
        );
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 5).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rkube-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {REGISTRY_BIN}: {e} (install docker-registry)"));
        let mut registry = TestRegistry {
            child,
            host_port,
            dir,
        };
        registry.wait_ready();
        registry
    }

    /// Polls `GET /v2/` until it answers (200, or 401 with auth), the
    /// process dies, or the deadline passes.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("registry status") {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if let Some(code) = probe(&self.host_port) {
                if code == 200 || code == 401 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// The HTTP status of `GET /v2/`, if the server answers at all.
fn probe(host_port: &str) -> Option<u16> {
    let addr = host_port.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {host_port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
