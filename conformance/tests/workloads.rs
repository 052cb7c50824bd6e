//! Black-box tests of DaemonSets and of draining a node under a
//! PodDisruptionBudget, with the kubelet running the pods and the
//! scheduler placing them. Needs root.

use std::time::Duration;

use serde_json::{json, Value};

mod node;

use node::Node;

fn get(node: &Node, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&node.cluster.ok(&all)).unwrap()
}

fn live_pods(node: &Node, selector: &str) -> Vec<Value> {
    get(node, &["pods", "-l", selector])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
}

#[test]
fn daemon_set_should_run_and_stop_simple_daemon_and_roll_out_updates() {
    let node = Node::start();
    let c = &node.cluster;
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "daemon"},
        "spec": {"selector": {"matchLabels": {"app": "daemon"}},
            "template": {"metadata": {"labels": {"app": "daemon"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": node.image(), "command": ["sleep", "3600"]}]}}},
    });
    c.ok_stdin(&["create", "-f", "-"], &ds.to_string());
    c.wait_for("the daemon to run", Duration::from_secs(60), || {
        let pods = live_pods(&node, "app=daemon");
        pods.len() == 1 && running(&pods[0])
    });
    let pod = &live_pods(&node, "app=daemon")[0];
    assert_eq!(pod["spec"]["nodeName"], node.name.as_str());
    let first_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    c.wait_for("status to count it", Duration::from_secs(30), || {
        let s = get(&node, &["ds", "daemon"])["status"].clone();
        s["desiredNumberScheduled"] == 1 && s["numberAvailable"] == 1
    });
    // A template change replaces the daemon.
    c.ok(&["set", "env", "ds/daemon", "GENERATION=2"]);
    let out = c.ok(&["rollout", "status", "ds/daemon", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = live_pods(&node, "app=daemon");
    assert_eq!(pods.len(), 1);
    assert_ne!(pods[0]["metadata"]["name"], first_name.as_str());
    let history = c.ok(&["rollout", "history", "ds/daemon"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    // Deleting the DaemonSet takes its pods.
    c.ok(&["delete", "ds", "daemon"]);
    c.wait_for("the pods to go", Duration::from_secs(60), || {
        get(&node, &["pods", "-l", "app=daemon"])["items"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    });
}

#[test]
fn kubectl_drain_evicts_within_the_disruption_budget_and_uncordon_lets_pods_back() {
    let node = Node::start();
    let c = &node.cluster;
    let image = format!("--image={}", node.image());
    c.ok(&[
        "create",
        "deployment",
        "web",
        &image,
        "--replicas=2",
        "--",
        "sleep",
        "3600",
    ]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    });
    c.ok_stdin(&["create", "-f", "-"], &pdb.to_string());
    c.wait_for(
        "the budget to allow one disruption",
        Duration::from_secs(30),
        || get(&node, &["pdb", "web"])["status"]["disruptionsAllowed"] == 1,
    );
    // One pod may go; its replacement cannot be scheduled on the cordoned
    // node, so the second eviction is refused until the drain gives up.
    let out = c.kubectl(&[
        "drain",
        &node.name,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=15s",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("disruption budget"), "{stderr}");
    assert_eq!(
        get(&node, &["node", &node.name])["spec"]["unschedulable"],
        true
    );
    let running_now: Vec<Value> = live_pods(&node, "app=web")
        .into_iter()
        .filter(running)
        .collect();
    assert_eq!(running_now.len(), 1, "one pod kept by the budget");
    // The replacement waits, unschedulable, until the node is uncordoned.
    c.ok(&["uncordon", &node.name]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert_eq!(live_pods(&node, "app=web").len(), 2);
}
