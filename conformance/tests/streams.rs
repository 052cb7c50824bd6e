//! Black-box tests of the streams the API server relays to a kubelet:
//! `kubectl exec` (with exit codes, stdin, and a real terminal under
//! tmux), `kubectl attach`, `kubectl cp` both ways, `kubectl port-forward`
//! (SPDY tunnelled in WebSocket), kube-rs exec and port-forward (WebSocket
//! channels), and the kubelet's `/pods` and `/stats/summary` through
//! `nodes/proxy`. Needs root.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod node;

use node::{phase, Node};

fn running(p: &Value) -> bool {
    phase(p) == "Running"
        && p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["ready"] == true))
}

/// A node with one running busybox pod `name` (`sleep 3600`).
fn node_with_sleeper(name: &str) -> Node {
    let node = Node::start();
    node.cluster
        .ok_stdin(&["create", "-f", "-"], &node.pod_with(name, json!({})));
    node.wait_pod(name, "the pod to run", running);
    node
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn kubectl_exec_carries_stdout_stderr_stdin_and_exit_codes() {
    let node = node_with_sleeper("ex");
    let c = &node.cluster;
    let out = c.kubectl(&[
        "exec",
        "ex",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("err\n"), "{stderr}");
    assert!(
        stderr.contains("command terminated with exit code 3"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(c.ok(&["exec", "ex", "--", "echo", "fine"]), "fine\n");
    // stdin reaches the process, and its end (v5's close) ends `cat`.
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let echoed = c.ok_stdin(
        &["exec", "-i", "ex", "--", "sh", "-c", "cat; echo done"],
        &big,
    );
    assert_eq!(echoed, format!("{big}done\n"));
    // Bad input: a container the pod does not have, a command that is not there.
    let wrong = c.fails(&["exec", "ex", "-c", "nope", "--", "true"]);
    assert!(
        wrong.contains("container nope is not valid for pod ex"),
        "{wrong}"
    );
    let out = c.kubectl(&["exec", "ex", "--", "/no/such/binary"]);
    assert!(!out.status.success());
    assert_eq!(
        c.ok(&["exec", "ex", "--", "echo", "still-fine"]),
        "still-fine\n"
    );
}

#[test]
fn kubectl_exec_into_a_completed_pod_is_refused() {
    let node = Node::start();
    let c = &node.cluster;
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("done", "Never", "true"),
    );
    node.wait_pod("done", "the pod to succeed", |p| phase(p) == "Succeeded");
    let err = c.fails(&["exec", "done", "--", "true"]);
    assert!(
        err.contains("cannot exec into a container in a completed pod; current phase is Succeeded"),
        "{err}"
    );
}

/// Runs `kubectl exec -it` in a tmux pane: a real terminal, with a size.
#[test]
fn kubectl_exec_it_gives_a_terminal_of_the_clients_size() {
    let node = node_with_sleeper("tty");
    let session = format!("rkube-test-{}", std::process::id());
    let kubectl = conformance::kubectl_path();
    let script = format!(
        "KUBECONFIG={} {kubectl} exec -it tty -- sh; echo kubectl-exit=$?; sleep 600",
        node.cluster.kubeconfig.display()
    );
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux").args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    struct KillSession(String);
    impl Drop for KillSession {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .status();
        }
    }
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "97",
        "-y",
        "31",
        &script,
    ]);
    let _guard = KillSession(session.clone());
    let screen = || tmux(&["capture-pane", "-p", "-t", &session]);
    let wait_screen = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {what:?} on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_screen("#");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "tty; stty size; echo mark-$((6*7))",
        "Enter",
    ]);
    let s = wait_screen("mark-42");
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(
        s.contains("31 97"),
        "the terminal has the pane's size:\n{s}"
    );
    // A resize of the client's terminal reaches the process: ask until the
    // new size shows (the resize travels asynchronously).
    tmux(&["resize-window", "-t", &session, "-x", "88", "-y", "22"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !screen().contains("22 88") {
        assert!(
            Instant::now() < deadline,
            "the resize never arrived:\n{}",
            screen()
        );
        tmux(&["send-keys", "-t", &session, "clear; stty size", "Enter"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux(&["send-keys", "-t", &session, "exit 5", "Enter"]);
    wait_screen("kubectl-exit=5");
}

#[test]
fn kubectl_attach_sees_output_and_feeds_stdin() {
    let node = Node::start();
    let c = &node.cluster;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "att"},
        "spec": {"nodeName": node.name, "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": node.image(), "stdin": true,
                "command": ["sh", "-c", "echo ready; read line; echo got:$line"]}]},
    });
    c.ok_stdin(&["create", "-f", "-"], &pod.to_string());
    node.wait_pod("att", "the pod to run", running);
    let out = c.kubectl_stdin(&["attach", "-i", "att"], Some("hello\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("got:hello"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.wait_pod("att", "the pod to succeed", |p| phase(p) == "Succeeded");
    assert_eq!(c.ok(&["logs", "att"]), "ready\ngot:hello\n");
}

#[test]
fn kubectl_cp_copies_files_into_and_out_of_a_pod() {
    let node = node_with_sleeper("cp");
    let c = &node.cluster;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in.txt");
    let content: String = (0..5_000).map(|i| format!("row {i}\n")).collect();
    std::fs::write(&local, &content).unwrap();
    c.ok(&["cp", local.to_str().unwrap(), "cp:/tmp/in.txt"]);
    assert_eq!(c.ok(&["exec", "cp", "--", "cat", "/tmp/in.txt"]), content);
    c.ok(&[
        "exec",
        "cp",
        "--",
        "sh",
        "-c",
        "echo from-pod > /tmp/out.txt",
    ]);
    let back = dir.path().join("out.txt");
    c.ok(&["cp", "cp:/tmp/out.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from-pod\n");
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A node with pod `web` serving `hello-from-pod` on port 8080.
fn node_with_web_server() -> Node {
    let node = Node::start();
    let pod = node.pod_with(
        "web",
        json!({"command": ["sh", "-c",
            "mkdir /tmp/www && echo hello-from-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
            // Ready once httpd listens, not merely once it started.
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}),
    );
    node.cluster.ok_stdin(&["create", "-f", "-"], &pod);
    node.wait_pod("web", "the pod to run", running);
    node
}

#[test]
fn kubectl_port_forward_reaches_a_port_of_the_pod() {
    let node = node_with_web_server();
    // kubectl's first choice (SPDY tunnelled in WebSocket), then the plain
    // SPDY upgrade it falls back to.
    port_forward_with_kubectl(&node, true);
    port_forward_with_kubectl(&node, false);
}

fn port_forward_with_kubectl(node: &Node, websockets: bool) {
    let mut child = Command::new(conformance::kubectl_path())
        .args(["port-forward", "pod/web", ":8080"])
        .env("KUBECONFIG", &node.cluster.kubeconfig)
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl port-forward");
    struct KillChild<'a>(&'a mut std::process::Child);
    impl Drop for KillChild<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let guard = KillChild(&mut child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read kubectl's output");
    // kubectl dies of SIGPIPE if its stdout goes unread: keep draining it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    // "Forwarding from 127.0.0.1:41234 -> 8080"
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output: {line:?}"));
    // Several connections, one after another and at once.
    let mut answers: Vec<std::io::Result<String>> = (0..3).map(|_| http_get(port)).collect();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || http_get(port)))
        .collect();
    answers.extend(threads.into_iter().map(|t| t.join().unwrap()));
    drop(guard);
    let mut kubectl_errors = String::new();
    let _ = stderr.read_to_string(&mut kubectl_errors);
    for a in answers {
        match a {
            Ok(text) => assert!(text.contains("hello-from-pod"), "{text}\n{kubectl_errors}"),
            Err(e) => panic!(
                "{e}; kubectl said:\n{kubectl_errors}\nserver log:\n{}",
                node.cluster.server_log()
            ),
        }
    }
}

#[test]
fn kube_rs_port_forward_over_websocket_channels() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = node_with_web_server();
    block_on(async {
        let client = node.cluster.client().await;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "default");
        let mut pf = pods.portforward("web", &[8080]).await.expect("portforward");
        let mut stream = pf.take_stream(8080).expect("stream");
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        assert!(String::from_utf8_lossy(&out).contains("hello-from-pod"));
        // A port nothing listens on reports an error on its error channel.
        let mut pf = pods.portforward("web", &[9]).await.expect("portforward");
        let error = pf.take_error(9).expect("error channel").await;
        assert!(
            error.is_some_and(|e| e.contains("9")),
            "an error naming the port"
        );
    });
}

#[test]
fn pods_should_support_remote_command_execution_over_websockets() {
    use futures::StreamExt;
    let node = node_with_sleeper("ws");
    block_on(async {
        let client = node.cluster.client().await;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "default");
        let params = kube::api::AttachParams::default().stderr(false);
        let mut attached = pods
            .exec("ws", ["cat", "/etc/resolv.conf"], &params)
            .await
            .expect("exec");
        let stdout = tokio_util::io::ReaderStream::new(attached.stdout().unwrap());
        let out: Vec<u8> = stdout.map(|b| b.unwrap().to_vec()).concat().await;
        let status = attached.take_status().unwrap().await.expect("a status");
        assert_eq!(status.status.as_deref(), Some("Success"));
        assert!(String::from_utf8_lossy(&out).contains("nameserver"));
        // A failing command's exit code comes back in the status.
        let mut attached = pods
            .exec("ws", ["sh", "-c", "exit 4"], &params)
            .await
            .expect("exec");
        let status = attached.take_status().unwrap().await.expect("a status");
        assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
        let code = status.details.and_then(|d| d.causes).unwrap_or_default();
        assert_eq!(code[0].message.as_deref(), Some("4"));
    });
}

#[test]
fn kubelet_serves_pods_and_stats_summary_through_the_node_proxy() {
    let node = node_with_sleeper("st");
    let c = &node.cluster;
    let pods: Value = serde_json::from_str(&c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/pods", node.name),
    ]))
    .unwrap();
    assert_eq!(pods["kind"], "PodList");
    assert_eq!(pods["items"][0]["metadata"]["name"], "st");
    let summary_path = format!("/api/v1/nodes/{}/proxy/stats/summary", node.name);
    let summary =
        || -> Value { serde_json::from_str(&c.ok(&["get", "--raw", &summary_path])).unwrap() };
    let first = summary();
    assert_eq!(first["node"]["nodeName"], node.name.as_str());
    assert!(first["node"]["memory"]["workingSetBytes"].as_u64().unwrap() > 0);
    let pod = first["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == "st")
        .expect("the pod in the summary");
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "main");
    assert!(container["memory"]["workingSetBytes"].as_u64().unwrap() > 0);
    assert!(container["cpu"]["usageCoreNanoSeconds"].as_u64().is_some());
    // A second reading has rates.
    let second = summary();
    assert!(
        second["node"]["cpu"]["usageNanoCores"].as_u64().is_some(),
        "{}",
        second["node"]
    );
    let healthz = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/healthz", node.name),
    ]);
    assert_eq!(healthz, "ok");
}

/// The first steps a user takes: `kubectl run` (the scheduler places the
/// pod), then exec into it to reach another pod.
#[test]
fn kubectl_run_pod_should_create_a_pod_from_an_image_when_restart_is_never() {
    let node = Node::start();
    let c = &node.cluster;
    let image = format!("--image={}", node.image());
    c.ok(&[
        "run",
        "once",
        "--restart=Never",
        &image,
        "--",
        "sh",
        "-c",
        "echo hello-run",
    ]);
    node.wait_pod("once", "the pod to succeed", |p| phase(p) == "Succeeded");
    assert_eq!(node.pod("once")["spec"]["nodeName"], node.name.as_str());
    assert_eq!(c.ok(&["logs", "once"]), "hello-run\n");
    c.ok(&["run", "b", &image, "--", "sleep", "3600"]);
    c.ok(&["run", "other", &image, "--", "sleep", "3600"]);
    node.wait_pod("b", "b to run", running);
    let other = node.wait_pod("other", "other to run", running);
    let ip = other["status"]["podIP"].as_str().unwrap().to_string();
    let ping = c.ok(&["exec", "b", "--", "ping", "-c1", "-W5", &ip]);
    assert!(ping.contains("1 packets received"), "{ping}");
    let events = c.ok(&["get", "events", "--field-selector", "involvedObject.name=b"]);
    assert!(events.contains("Scheduled"), "{events}");
}
