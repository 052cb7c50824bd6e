//! Black-box tests with simulated nodes (`rkube agent --container-runtime
//! fake`: pods go Running without processes): a controller's pods spread
//! over three nodes, and a node whose agent dies has its pods evicted and
//! replaced on the others within the (shortened) eviction timeouts.

use std::time::Duration;

use conformance::{Agent, Cluster};
use serde_json::{json, Value};

fn pods(c: &Cluster) -> Vec<Value> {
    let out = c.ok(&["get", "pods", "-l", "app=spread", "-o", "json"]);
    serde_json::from_str::<Value>(&out).unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn live_running(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running"
        })
        .collect()
}

fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"].as_str().unwrap_or("").to_string()
}

#[test]
fn pods_of_one_controller_spread_over_three_nodes_and_leave_a_failed_one() {
    // The grace period must outlast the kubelets' 10 s Lease renewals, or
    // healthy nodes would flap too.
    let c = &Cluster::start_with(&[
        "--node-monitor-grace-period",
        "15s",
        "--default-unreachable-toleration-seconds",
        "2",
    ]);
    let pid = std::process::id();
    let names: Vec<String> = (0..3).map(|i| format!("sim-{pid}-{i}")).collect();
    let mut agents: Vec<Agent> = names.iter().map(|n| Agent::join_simulated(c, n)).collect();
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "spread"},
        "spec": {"replicas": 3, "selector": {"app": "spread"},
            "template": {"metadata": {"labels": {"app": "spread"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}},
    });
    c.ok_stdin(&["create", "-f", "-"], &rc.to_string());
    c.wait_for("3 running pods", Duration::from_secs(60), || {
        live_running(&pods(c)).len() == 3
    });
    let mut placed: Vec<String> = live_running(&pods(c)).iter().map(|p| node_of(p)).collect();
    placed.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(placed, expected, "one pod per node");

    // The first node's agent dies: its node turns Unknown, its pod is
    // evicted after the 2 s toleration and replaced on a live node.
    let failed = names[0].clone();
    agents[0].kill();
    let moved = || {
        let all = pods(c);
        let live = live_running(&all);
        live.len() == 3 && live.iter().all(|p| node_of(p) != failed)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !moved() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pod did not move off the failed node:\n{}\n{}",
            c.ok(&["get", "pods", "-o", "wide"]),
            c.ok(&["get", "node", &failed, "-o", "yaml"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let node: Value = serde_json::from_str(&c.ok(&["get", "node", &failed, "-o", "json"])).unwrap();
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "Unknown");
    assert!(node["spec"]["taints"]
        .to_string()
        .contains("node.kubernetes.io/unreachable"));
    drop(agents);
}
