//! The Swagger UI as a user reaches it: `kubectl proxy` in front of the
//! server, a headless Chromium loading `/swagger-ui/`, and "Try it out"
//! pressed in it. The screenshots are kept in `target/test-artifacts/`
//! (`swagger-ui.png`, `swagger-ui-try-it-out.png`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conformance::Cluster;

/// `kubectl proxy` on a free port, ended (by PID) on drop.
struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(c: &Cluster) -> Proxy {
        let mut child = Command::new(conformance::kubectl_path())
            .args(["proxy", "--port=0", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl proxy");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // "Starting to serve on 127.0.0.1:PORT"
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("kubectl proxy said {line:?}"));
        // Keep draining what it prints so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Proxy { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A plain HTTP/1.0 GET: (status line, headers, body).
    fn get(&self, path: &str) -> (String, String, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
        (
            status.to_string(),
            headers.to_lowercase(),
            raw[split + 4..].to_vec(),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium(profile: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium (scripts/install-deps installs it)")
}

fn artifact_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn swagger_ui_renders_the_core_operations_through_kubectl_proxy() {
    let c = Cluster::start();
    let proxy = Proxy::start(&c);

    // The assets are served with a policy that forbids inline script.
    let (status, headers, body) = proxy.get("/swagger-ui/");
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("content-security-policy: default-src 'self'; script-src 'self';"),
        "{headers}"
    );
    assert!(String::from_utf8_lossy(&body).contains("swagger-ui-bundle.js"));
    let (status, _, body) = proxy.get("/swagger-ui/swagger-initializer.js");
    assert!(status.contains("200"), "{status}");
    let js = String::from_utf8(body).unwrap();
    for doc in ["/openapi/v3/api/v1", "/openapi/v3/apis/apps/v1"] {
        assert!(js.contains(doc), "{doc} listed: {js}");
    }
    // "Try it out" sends requests to the origin the UI came from.
    let (status, _, body) = proxy.get("/api/v1/namespaces/default/pods");
    assert!(status.contains("200"), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("\"kind\":\"PodList\""));
    let (_, _, doc) = proxy.get("/openapi/v3/api/v1");
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    assert!(
        doc["servers"].as_array().is_none_or(|s| s.is_empty()),
        "no other server named: {}",
        doc["servers"]
    );
    let (status, _, _) = proxy.get("/swagger-ui/no-such-file.js");
    assert!(status.contains("404"), "{status}");
    // Without credentials the server itself refuses it, like every path.
    let direct = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/swagger-ui/", c.url()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "401");

    // In the browser the core/v1 document loads and its operations render.
    let profile = tempfile::tempdir().unwrap();
    let url = proxy.url("/swagger-ui/");
    let dom = chromium(
        profile.path(),
        &["--virtual-time-budget=20000", "--dump-dom", &url],
    );
    let html = String::from_utf8_lossy(&dom.stdout);
    for op in [
        "/api/v1/namespaces/{namespace}/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}",
    ] {
        assert!(
            html.contains(&format!("data-path=\"{op}\"")),
            "operation {op} rendered; chromium said {}\n{html}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    assert!(
        html.contains("opblock-summary-method") && html.contains(">GET<"),
        "{html}"
    );
    assert!(
        !html.contains("Failed to load API definition"),
        "the document loaded: {html}"
    );

    let shot = artifact_dir().join("swagger-ui.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        profile.path(),
        &[
            "--virtual-time-budget=20000",
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}

/// "Try it out" in a real browser: Playwright (from PyPI, in a virtualenv
/// the test makes) drives Debian's Chromium through the UI's own buttons
/// and reads the answers the UI shows (`tests/python/swagger_try_it_out.py`).
#[test]
fn swagger_ui_try_it_out_executes_requests_through_kubectl_proxy() {
    let venv = tempfile::tempdir().unwrap();
    let python = conformance::python_venv(venv.path(), &["playwright"]);
    let c = Cluster::start();
    let proxy = Proxy::start(&c);
    let shot = artifact_dir().join("swagger-ui-try-it-out.png");
    let url = proxy.url("/swagger-ui/");
    let stdout = conformance::python_script_ok(
        &python,
        "swagger_try_it_out.py",
        &[url.as_ref(), shot.as_os_str()],
    );
    assert!(
        stdout.contains("list: 200") && stdout.contains("get: 404"),
        "{stdout}"
    );
}
