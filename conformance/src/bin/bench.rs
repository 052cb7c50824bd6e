//! `bench`: the API benchmark. Starts a release `rkube server` (the API
//! server alone: no kubelet, scheduler or controllers) on a temporary data
//! dir (or targets a running one with `--kubeconfig`) and
//! measures, with a given concurrency, on pods of realistic size:
//! create/get/update/delete throughput and latency, LIST of N pods, watch
//! delivery latency to W watchers, server RSS and start-up time — and the
//! raw embedded store baseline with the same object bytes and concurrency in
//! the same run, so API figures are also printed as a ratio of it.
//!
//! Output: a table on stdout and a JSON file (`--out`). The figures and the
//! exact commands are kept in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::storage::embedded::{EmbeddedOptions, EmbeddedStore};
use apiserver::storage::Storage;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

struct Args {
    server_bin: PathBuf,
    concurrency: usize,
    ops: usize,
    list_sizes: Vec<usize>,
    watchers: Vec<usize>,
    watch_writes: usize,
    out: PathBuf,
    etcd: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        server_bin: PathBuf::from("target/release/rkube"),
        concurrency: 32,
        ops: 5000,
        list_sizes: vec![1000, 10_000],
        watchers: vec![1, 100, 1000],
        watch_writes: 200,
        out: PathBuf::from("target/bench.json"),
        etcd: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |s: &str| {
        s.split(',')
            .map(|x| x.parse().expect("number"))
            .collect::<Vec<usize>>()
    };
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        if argv[i] == "--etcd" {
            a.etcd = true;
            i += 1;
            continue;
        }
        match argv[i].as_str() {
            "--server-bin" => a.server_bin = v.into(),
            "--concurrency" => a.concurrency = v.parse().expect("number"),
            "--ops" => a.ops = v.parse().expect("number"),
            "--list-sizes" => a.list_sizes = list(&v),
            "--watchers" => a.watchers = list(&v),
            "--watch-writes" => a.watch_writes = v.parse().expect("number"),
            "--out" => a.out = v.into(),
            other => {
                eprintln!(
                    "unknown flag {other}\nusage: bench [--server-bin P] [--concurrency N] [--ops N] [--list-sizes a,b] [--watchers a,b] [--watch-writes N] [--out FILE] [--etcd]"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

/// A pod of about 3 KB of JSON, like a typical controller-made pod.
fn pod(name: &str) -> Value {
    let env: Vec<Value> = (0..24)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{}", "x".repeat(40))}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "bench", "tier": "backend", "release": "stable", "pod-template-hash": "7d9f8c6b5"},
            "annotations": {"bench.rkube.dev/description": "a pod of realistic size for the API benchmark", "bench.rkube.dev/owner": "team-benchmarks"},
        },
        "spec": {
            "containers": [{
                "name": "app", "image": "registry.local/bench/app:1.2.3",
                "command": ["/bin/app", "--config=/etc/app/config.yaml", "--verbose"],
                "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "data", "mountPath": "/var/lib/app"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
            }],
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}, {"name": "data", "emptyDir": {}}],
        },
    })
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn summary(&mut self, elapsed: Duration) -> Value {
        self.0.sort();
        let n = self.0.len().max(1);
        let pct = |p: f64| {
            self.0
                .get(((n as f64 * p) as usize).min(n - 1))
                .copied()
                .unwrap_or_default()
        };
        json!({
            "ops": self.0.len(),
            "ops_per_sec": self.0.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": ms(pct(0.50)), "p99_ms": ms(pct(0.99)),
            "max_ms": ms(self.0.last().copied().unwrap_or_default()),
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Runs `op(i)` for i in 0..n with `concurrency` in flight; returns latencies.
async fn run<F, Fut>(n: usize, concurrency: usize, op: F) -> (Latencies, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let lat: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let f = op(i);
            async move {
                let t = Instant::now();
                f.await;
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (Latencies(lat), start.elapsed())
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0)
}

struct Server {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    startup: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(bin: &PathBuf, extra: &[String]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    let start = Instant::now();
    let child = std::process::Command::new(bin)
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--write-kubeconfig")
        .arg(&kubeconfig)
        // The API server alone: a kubelet on this machine would try to run
        // every benchmark pod, and the scheduler and controllers would add
        // their own writes to each one.
        .args([
            "--disable-agent",
            "--disable-scheduler",
            "--disable-controller-manager",
        ])
        .args(extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start {}: {e} (build it with cargo build --release -p rkube)",
                bin.display()
            )
        });
    // Poll /readyz without TLS verification; only readiness matters here.
    loop {
        if let Ok(out) = std::process::Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "1",
                &format!("https://127.0.0.1:{port}/readyz"),
            ])
            .output()
        {
            if out.stdout == b"ok" {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Server {
        child,
        _dir: dir,
        kubeconfig,
        startup: start.elapsed(),
    }
}

async fn client(kubeconfig: &Path) -> kube::Client {
    conformance::kube_client(kubeconfig).await
}

/// The embedded store written directly with the same bytes and concurrency.
async fn raw_store_creates(n: usize, concurrency: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let bytes: Vec<u8> = serde_json::to_vec(&pod("raw")).unwrap();
    let store: Arc<dyn Storage> = store;
    let (mut lat, elapsed) = run(n, concurrency, |i| {
        let store = store.clone();
        let bytes = bytes.clone();
        async move {
            store
                .create(&format!("/registry/pods/default/raw-{i}"), bytes)
                .await
                .unwrap();
        }
    })
    .await;
    lat.summary(elapsed)
}

/// etcd written directly through etcd-client: the same bytes and
/// concurrency, one put per create, as the API server's baseline.
async fn raw_etcd_puts(endpoints: &str, n: usize, concurrency: usize) -> Value {
    let client = etcd_client::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None)
        .await
        .expect("connect etcd");
    let bytes: Vec<u8> = serde_json::to_vec(&pod("raw")).unwrap();
    let (mut lat, elapsed) = run(n, concurrency, |i| {
        let mut kv = client.kv_client();
        let bytes = bytes.clone();
        async move {
            let key = format!("/raw/pods/default/raw-{i}");
            let txn = etcd_client::Txn::new()
                .when([etcd_client::Compare::create_revision(
                    key.clone(),
                    etcd_client::CompareOp::Equal,
                    0,
                )])
                .and_then([etcd_client::TxnOp::put(key, bytes, None)]);
            kv.txn(txn).await.unwrap();
        }
    })
    .await;
    lat.summary(elapsed)
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    // etcd (when asked for) outlives the server: declared first.
    let etcd = args.etcd.then(conformance::Etcd::start);
    let extra: Vec<String> = match &etcd {
        Some(e) => vec!["--etcd-servers".into(), e.client_urls()],
        None => vec![],
    };
    let server = start_server(&args.server_bin, &extra).await;
    let pid = server.child.id();
    let idle_rss = rss_mb(pid);
    let client = client(&server.kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bytes = serde_json::to_vec(&pod("x")).unwrap().len();
    let mut report = json!({
        "pod_json_bytes": bytes, "concurrency": args.concurrency,
        "startup_to_readyz_ms": ms(server.startup), "rss_idle_mb": idle_rss,
    });
    let typed = |name: String| -> Pod { serde_json::from_value(pod(&name)).unwrap() };

    let (mut lat, el) = run(args.ops, args.concurrency, |i| {
        let pods = pods.clone();
        let p = typed(format!("c-{i}"));
        async move {
            pods.create(&PostParams::default(), &p).await.unwrap();
        }
    })
    .await;
    report["create"] = lat.summary(el);
    report["backend"] = json!(if etcd.is_some() { "etcd" } else { "embedded" });
    report["raw_store_create"] = match &etcd {
        Some(e) => raw_etcd_puts(&e.client_urls(), args.ops, args.concurrency).await,
        None => raw_store_creates(args.ops, args.concurrency).await,
    };
    let (mut lat, el) = run(args.ops, args.concurrency, |i| {
        let pods = pods.clone();
        async move {
            pods.get(&format!("c-{i}")).await.unwrap();
        }
    })
    .await;
    report["get"] = lat.summary(el);
    let (mut lat, el) = run(args.ops, args.concurrency, |i| {
        let pods = pods.clone();
        async move {
            let patch = json!({"metadata": {"labels": {"updated": "yes"}}});
            pods.patch(
                &format!("c-{i}"),
                &Default::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
        }
    })
    .await;
    report["update"] = lat.summary(el);
    let (mut lat, el) = run(args.ops, args.concurrency, |i| {
        let pods = pods.clone();
        async move {
            pods.delete(&format!("c-{i}"), &DeleteParams::default())
                .await
                .unwrap();
        }
    })
    .await;
    report["delete"] = lat.summary(el);

    // LIST at growing sizes.
    let mut have = 0;
    let mut lists = Vec::new();
    for &size in &args.list_sizes {
        let (_, _) = run(size - have, args.concurrency, |i| {
            let pods = pods.clone();
            let p = typed(format!("l-{}", have + i));
            async move {
                pods.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .await;
        have = size;
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/default/pods")
            .body(Vec::new())
            .unwrap();
        let body = client.request_text(req).await.unwrap();
        let latency = t.elapsed();
        lists.push(json!({"pods": size, "latency_ms": ms(latency), "bytes": body.len(), "rss_mb": rss_mb(pid)}));
    }
    report["list"] = Value::Array(lists);
    report["rss_after_pods_mb"] = json!(rss_mb(pid));

    // Watch delivery latency: from a write's response to each watcher's event.
    let mut watch_reports = Vec::new();
    for &w in &args.watchers {
        let rv = pods
            .list(&ListParams::default().limit(1))
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let mut tasks = Vec::new();
        for _ in 0..w {
            let pods = pods.clone();
            let tx = tx.clone();
            let rv = rv.clone();
            let expected = args.watch_writes;
            tasks.push(tokio::spawn(async move {
                let mut stream = pods
                    .watch(&WatchParams::default().labels("wave=w"), &rv)
                    .await
                    .unwrap()
                    .boxed();
                let mut seen = 0;
                while seen < expected {
                    match stream.try_next().await {
                        Ok(Some(WatchEvent::Added(p))) => {
                            seen += 1;
                            let _ = tx.send((p.metadata.name.unwrap(), Instant::now()));
                        }
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }));
        }
        drop(tx);
        // Let every watcher register before writing.
        tokio::time::sleep(Duration::from_millis(200 + w as u64)).await;
        let mut acked = std::collections::HashMap::new();
        for i in 0..args.watch_writes {
            let mut p = pod(&format!("w{w}-{i}"));
            p["metadata"]["labels"]["wave"] = json!("w");
            let p: Pod = serde_json::from_value(p).unwrap();
            pods.create(&PostParams::default(), &p).await.unwrap();
            acked.insert(format!("w{w}-{i}"), Instant::now());
        }
        let mut lat = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while lat.len() < w * args.watch_writes && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some((name, at))) => {
                    if let Some(a) = acked.get(&name) {
                        lat.push(at.saturating_duration_since(*a));
                    }
                }
                _ => break,
            }
        }
        for t in tasks {
            t.abort();
        }
        let delivered = lat.len();
        let mut l = Latencies(lat);
        let mut s = l.summary(Duration::from_secs(1));
        s["watchers"] = json!(w);
        s["expected"] = json!(w * args.watch_writes);
        s["delivered"] = json!(delivered);
        watch_reports.push(s);
        for i in 0..args.watch_writes {
            let _ = pods
                .delete(&format!("w{w}-{i}"), &DeleteParams::default())
                .await;
        }
    }
    report["watch"] = Value::Array(watch_reports);
    print_table(&report);
    if let Some(parent) = args.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report).unwrap())
        .expect("write report");
    println!("\nJSON report: {}", args.out.display());
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn print_table(r: &Value) {
    println!(
        "pod JSON bytes: {}   concurrency: {}",
        r["pod_json_bytes"], r["concurrency"]
    );
    println!(
        "startup to /readyz: {:.1} ms   RSS idle: {:.1} MB   RSS after pods: {:.1} MB",
        f(&r["startup_to_readyz_ms"]),
        f(&r["rss_idle_mb"]),
        f(&r["rss_after_pods_mb"])
    );
    println!(
        "\n{:<18} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "operation", "ops/s", "p50 ms", "p99 ms", "max ms", "vs raw"
    );
    let raw = f(&r["raw_store_create"]["ops_per_sec"]).max(1.0);
    for op in ["create", "get", "update", "delete", "raw_store_create"] {
        let o = &r[op];
        let ratio = if op == "create" {
            format!("{:.0}%", f(&o["ops_per_sec"]) / raw * 100.0)
        } else {
            String::new()
        };
        println!(
            "{:<18} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8}",
            op,
            f(&o["ops_per_sec"]),
            f(&o["p50_ms"]),
            f(&o["p99_ms"]),
            f(&o["max_ms"]),
            ratio
        );
    }
    println!(
        "\n{:<10} {:>12} {:>12} {:>8}",
        "LIST pods", "latency ms", "bytes", "RSS MB"
    );
    for l in r["list"].as_array().into_iter().flatten() {
        println!(
            "{:<10} {:>12.1} {:>12} {:>8.1}",
            l["pods"].to_string(),
            f(&l["latency_ms"]),
            l["bytes"].to_string(),
            f(&l["rss_mb"])
        );
    }
    println!(
        "\n{:<10} {:>12} {:>9} {:>9} {:>9}",
        "watchers", "delivered", "p50 ms", "p99 ms", "max ms"
    );
    for w in r["watch"].as_array().into_iter().flatten() {
        println!(
            "{:<10} {:>12} {:>9.2} {:>9.2} {:>9.2}",
            w["watchers"].to_string(),
            format!("{}/{}", w["delivered"], w["expected"]),
            f(&w["p50_ms"]),
            f(&w["p99_ms"]),
            f(&w["max_ms"])
        );
    }
}
