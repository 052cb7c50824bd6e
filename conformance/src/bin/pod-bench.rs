//! `pod-bench`: pod startup latency as the Kubernetes SLO defines it (pod
//! created → all its containers running, as seen through a watch), for N
//! pods on one node, plus the server's RSS idle and with the pods running
//! (API server and kubelet share the `rkube` process). Starts `rkube
//! server` with its kubelet (youki) and a loopback registry holding
//! busybox. With `--agent` the kubelet is an `rkube agent` of its own
//! joined to a control-plane-only server, and the RSS is the kubelet's
//! alone. With `--containerd` the kubelet uses a private containerd
//! instead of youki. Needs root. `RKUBE_BIN=target/release/rkube` measures a release
//! build.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conformance::Cluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use runtime::testing::{images, registry::TestRegistry};

/// A `/proc/<pid>/status` figure (`VmRSS`, `RssAnon`, `RssFile`) in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Total RSS, and how much of it is the process's own memory (anonymous)
/// rather than pages of the binary shared with the page cache.
fn rss(pid: u32) -> String {
    format!(
        "{:.1} MB ({:.1} MB anonymous)",
        status_mb(pid, "VmRSS"),
        status_mb(pid, "RssAnon")
    )
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn all_running(p: &Pod) -> bool {
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|cs| {
        !cs.is_empty()
            && cs
                .iter()
                .all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
    })
}

fn pod(name: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "startup"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}],
        },
    }))
    .expect("pod")
}

fn main() {
    let pods: usize = std::env::args()
        .skip_while(|a| a != "--pods")
        .nth(1)
        .map(|n| n.parse().expect("--pods N"))
        .unwrap_or(100);
    // --sequential: each pod waits for the previous one to run (latency
    // without queueing); default: all created back to back.
    let sequential = std::env::args().any(|a| a == "--sequential");
    let standalone = std::env::args().any(|a| a == "--agent");
    // --containerd: the kubelet runs pods through a private containerd
    // (started here) instead of youki.
    let containerd_dir = tempfile::tempdir().expect("tempdir");
    let containerd = std::env::args()
        .any(|a| a == "--containerd")
        .then(|| runtime::testing::containerd::ContainerdDaemon::start(containerd_dir.path()));
    let socket = containerd
        .as_ref()
        .map(|d| d.socket.display().to_string())
        .unwrap_or_default();
    let runtime_args: Vec<&str> = if containerd.is_some() {
        vec![
            "--container-runtime",
            "containerd",
            "--containerd-address",
            &socket,
        ]
    } else {
        Vec::new()
    };
    let node = "bench-node";
    let (cluster, agent) = if standalone {
        let cluster = Cluster::start();
        let agent = conformance::Agent::join(&cluster, node, "rkpb0", "10.251.0.0/16");
        (cluster, Some(agent))
    } else {
        let cluster = Cluster::start_with_node_args(node, "rkpb0", "10.251.0.0/16", &runtime_args);
        (cluster, None)
    };
    let what = if standalone {
        "kubelet (rkube agent)"
    } else {
        "rkube (API server + kubelet)"
    };
    let registry = TestRegistry::start();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        images::push(registry.host_port(), &images::busybox(), "busybox", "1.0").await;
        let image = format!("{}/busybox:1.0", registry.host_port());
        let client = cluster.client().await;
        let api: Api<Pod> = Api::namespaced(client, "default");
        let pid = agent.as_ref().map_or(cluster.pid(), |a| a.pid());
        // Warm up: the image is pulled once, outside the measurement.
        api.create(&PostParams::default(), &pod("warmup", node, &image))
            .await
            .expect("create");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let watch_api = api.clone();
        tokio::spawn(async move {
            let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = stream.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                    if all_running(&p) {
                        let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                    }
                }
            }
        });
        let mut running: HashMap<String, Instant> = HashMap::new();
        while !running.contains_key("warmup") {
            let (n, t) = rx.recv().await.expect("watch");
            running.entry(n).or_insert(t);
        }
        let idle = rss(pid);
        let mut created = HashMap::new();
        let begin = Instant::now();
        for i in 0..pods {
            let name = format!("p{i}");
            created.insert(name.clone(), Instant::now());
            api.create(&PostParams::default(), &pod(&name, node, &image))
                .await
                .expect("create");
            while sequential && !running.contains_key(&name) {
                let (n, t) = rx.recv().await.expect("watch");
                running.entry(n).or_insert(t);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while created.keys().any(|n| !running.contains_key(n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((n, t))) => {
                    running.entry(n).or_insert(t);
                }
                _ => panic!("pods did not all run within 5 minutes"),
            }
        }
        let all = begin.elapsed();
        let busy = rss(pid);
        let mut lat: Vec<Duration> = created.iter().map(|(n, c)| running[n] - *c).collect();
        lat.sort();
        let how = if sequential {
            "each after the previous one ran"
        } else {
            "back to back"
        };
        println!(
            "pods: {pods} (created {how}, {:.0} ms for all to run)",
            all.as_secs_f64() * 1000.0
        );
        println!(
            "startup latency p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
            quantile(&lat, 0.5).as_secs_f64() * 1000.0,
            quantile(&lat, 0.99).as_secs_f64() * 1000.0,
            quantile(&lat, 1.0).as_secs_f64() * 1000.0
        );
        println!("{what} RSS: idle {idle}, with {} pods {busy}", pods + 1);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        for name in created.keys().chain(std::iter::once(&"warmup".to_string())) {
            let _ = api.delete(name, &dp).await;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if api
                .list(&Default::default())
                .await
                .map(|l| l.items.is_empty())
                .unwrap_or(false)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
