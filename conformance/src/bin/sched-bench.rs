//! `sched-bench`: scheduler throughput. Starts `rkube server` (its
//! scheduler in-process, the controller-manager off so nothing else
//! writes), creates N Node objects through the API (Ready, 32 CPUs,
//! 128 GiB, 110 pods each; no kubelets), then M pending pods as fast as a
//! few concurrent clients can, and reports pods bound per second and the
//! create→bound latency (as a watch sees `spec.nodeName` set).
//! `RKUBE_BIN=target/release/rkube` measures a release build.
//!
//! `--backlog` measures the scheduler alone: the server runs without its
//! scheduler (`--disable-scheduler`) while the nodes and all the pods are
//! created, then `rkube scheduler` is started as a process of its own and
//! the time from its start until every pod is bound is reported (the
//! latencies are then from the scheduler's start, not the pod's creation).
//!
//! Flags: `--nodes` (1000), `--pods` (10000), `--clients` (8 concurrent
//! creates), `--backlog`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{rkube_binary, Cluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .map(|n| n.parse().expect("a number"))
        .unwrap_or(default)
}

fn node(i: usize) -> Node {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("bench-node-{i}"), "labels": {"kubernetes.io/hostname": format!("bench-node-{i}")}},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))
    .expect("node")
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i}"), "labels": {"bench": "sched"}},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    }))
    .expect("pod")
}

/// `rkube scheduler`, killed when dropped.
struct SchedulerProcess(Child);

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let nodes = arg("--nodes", 1000);
    let pods = arg("--pods", 10_000);
    let clients = arg("--clients", 8);
    let backlog = std::env::args().any(|a| a == "--backlog");
    let cluster = if backlog {
        Cluster::start_with(&["--disable-controller-manager", "--disable-scheduler"])
    } else {
        Cluster::start_with(&["--disable-controller-manager"])
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let client = cluster.client().await;
        let node_api: Api<Node> = Api::all(client.clone());
        let created = futures::stream::iter(0..nodes)
            .map(|i| {
                let api = node_api.clone();
                async move { api.create(&PostParams::default(), &node(i)).await }
            })
            .buffer_unordered(clients)
            .filter(|r| futures::future::ready(r.is_ok()))
            .count()
            .await;
        assert_eq!(created, nodes, "every node created");
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let watch_api = pod_api.clone();
        tokio::spawn(async move {
            let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = stream.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                    if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                        let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                    }
                }
            }
        });
        let begin = Instant::now();
        let created_at: HashMap<String, Instant> = futures::stream::iter(0..pods)
            .map(|i| {
                let api = pod_api.clone();
                async move {
                    let at = Instant::now();
                    api.create(&PostParams::default(), &pod(i))
                        .await
                        .expect("create pod");
                    (format!("p{i}"), at)
                }
            })
            .buffer_unordered(clients)
            .collect()
            .await;
        let created_all = begin.elapsed();
        let mut _scheduler = None;
        let mut scheduler_started = None;
        if backlog {
            let log = std::fs::File::create(cluster.data_dir.path().join("scheduler.log"))
                .expect("scheduler log");
            scheduler_started = Some(Instant::now());
            let child = Command::new(rkube_binary())
                .arg("scheduler")
                .arg("--kubeconfig")
                .arg(&cluster.kubeconfig)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start rkube scheduler");
            _scheduler = Some(SchedulerProcess(child));
        }
        let mut bound: HashMap<String, Instant> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while bound.len() < pods {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((n, t))) => {
                    bound.entry(n).or_insert(t);
                }
                _ => panic!(
                    "only {} of {pods} pods bound within 10 minutes",
                    bound.len()
                ),
            }
        }
        let last = bound.values().max().copied().expect("some");
        let first_create = created_at.values().min().copied().expect("some");
        let from = scheduler_started.unwrap_or(first_create);
        let span = last - from;
        let mut lat: Vec<Duration> = created_at
            .iter()
            .map(|(n, c)| bound[n].saturating_duration_since(scheduler_started.unwrap_or(*c)))
            .collect();
        lat.sort();
        println!("nodes: {nodes}, pods: {pods}, create clients: {clients}");
        if backlog {
            println!("backlog: pods created before `rkube scheduler` started");
        }
        println!(
            "created all pods in {:.1} s; all bound after {:.1} s: {:.0} pods/s",
            created_all.as_secs_f64(),
            span.as_secs_f64(),
            pods as f64 / span.as_secs_f64()
        );
        println!(
            "{}→bound p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
            if backlog { "scheduler start" } else { "create" },
            quantile(&lat, 0.5).as_secs_f64() * 1000.0,
            quantile(&lat, 0.99).as_secs_f64() * 1000.0,
            quantile(&lat, 1.0).as_secs_f64() * 1000.0
        );
    });
}
