//! Black-box tests of Deployments end to end: the scheduler places the
//! pods, the kubelet runs them, the deployment and replica-set
//! controllers roll them out, and the stock kubectl drives it all
//! (`create deployment`, `rollout status|history|undo|pause|resume|
//! restart`, `set image`, `scale`). Named after upstream's conformance
//! tests. Needs root.

use std::time::Duration;

use runtime::testing::images;
use serde_json::Value;

mod node;

use node::Node;

fn get(node: &Node, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&node.cluster.ok(&all)).unwrap()
}

fn replica_sets(node: &Node) -> Vec<Value> {
    get(node, &["rs", "-l", "app=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod_images(node: &Node) -> Vec<String> {
    get(node, &["pods", "-l", "app=web"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn rollout_ok(node: &Node) {
    let out = node
        .cluster
        .ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
}

/// A node whose registry also has `busybox:2.0` (the same image, another tag).
fn node_with_two_tags() -> (Node, String, String) {
    let node = Node::start();
    let host = node.registry.host_port().to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(images::push(&host, &images::busybox(), "busybox", "2.0"));
    let v1 = node.image();
    let v2 = format!("{host}/busybox:2.0");
    (node, v1, v2)
}

#[test]
fn deployment_rolling_update_should_delete_old_pods_and_create_new_ones_and_roll_back() {
    let (node, v1, v2) = node_with_two_tags();
    let c = &node.cluster;
    c.ok(&[
        "create",
        "deployment",
        "web",
        &format!("--image={v1}"),
        "--replicas=3",
        "--",
        "sleep",
        "3600",
    ]);
    rollout_ok(&node);
    let d = get(&node, &["deployment", "web"]);
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let first = replica_sets(&node);
    assert_eq!(first.len(), 1);
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first[0]["metadata"]["name"], format!("web-{hash}"));
    let table = c.ok(&["get", "deployment", "web"]);
    assert!(table.contains("3/3"), "{table}");

    // A new image rolls out through a second ReplicaSet.
    c.ok(&["set", "image", "deployment/web", &format!("busybox={v2}")]);
    rollout_ok(&node);
    assert_eq!(pod_images(&node), vec![v2.clone(); 3]);
    let sets = replica_sets(&node);
    assert_eq!(sets.len(), 2);
    let old = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == format!("web-{hash}"))
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(events.contains("ScalingReplicaSet"), "{events}");

    // Undo goes back to the first template, as revision 3, reusing its ReplicaSet.
    c.ok(&["rollout", "undo", "deployment/web"]);
    rollout_ok(&node);
    assert_eq!(pod_images(&node), vec![v1.clone(); 3]);
    let d = get(&node, &["deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(replica_sets(&node).len(), 2);

    // Paused, a template change waits for resume.
    c.ok(&["rollout", "pause", "deployment/web"]);
    c.ok(&["set", "image", "deployment/web", &format!("busybox={v2}")]);
    // Once the controller has seen the change, still no new ReplicaSet.
    c.wait_for(
        "the paused change to be observed",
        Duration::from_secs(30),
        || {
            let d = get(&node, &["deployment", "web"]);
            d["status"]["observedGeneration"] == d["metadata"]["generation"]
        },
    );
    assert_eq!(replica_sets(&node).len(), 2, "no rollout while paused");
    c.ok(&["rollout", "resume", "deployment/web"]);
    rollout_ok(&node);
    assert_eq!(pod_images(&node), vec![v2.clone(); 3]);

    // Restart makes new pods from the same image.
    c.ok(&["rollout", "restart", "deployment/web"]);
    rollout_ok(&node);
    assert_eq!(replica_sets(&node).len(), 3);

    c.ok(&["scale", "deployment/web", "--replicas=1"]);
    rollout_ok(&node);
    c.wait_for("one pod", Duration::from_secs(60), || {
        pod_images(&node).len() == 1
    });
}

#[test]
fn deployment_recreate_should_delete_old_pods_and_create_new_ones_and_report_a_missed_deadline() {
    let (node, v1, v2) = node_with_two_tags();
    let c = &node.cluster;
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"}, "progressDeadlineSeconds": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "busybox", "image": v1, "command": ["sleep", "3600"]}]}}},
    });
    c.ok_stdin(&["create", "-f", "-"], &deployment.to_string());
    rollout_ok(&node);
    c.ok(&["set", "image", "deployment/web", &format!("busybox={v2}")]);
    rollout_ok(&node);
    assert_eq!(pod_images(&node), vec![v2.clone(); 2]);
    // An image that does not exist never becomes available: the deadline
    // passes and rollout status says so.
    let missing = format!("{}/busybox:missing", node.registry.host_port());
    c.ok(&[
        "set",
        "image",
        "deployment/web",
        &format!("busybox={missing}"),
    ]);
    let out = c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceeded its progress deadline"),
        "{stderr}"
    );
}
