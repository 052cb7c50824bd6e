//! Black-box tests of Deployments end to end: the scheduler places the
//! pods, the kubelet runs them, the deployment and replica-set
//! controllers roll them out, and the stock kubectl drives it all
//! (`create deployment`, `rollout status|history|undo|pause|resume|
//! restart`, `set image`, `scale`). Named after upstream's conformance
//! tests. Needs root.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::Api;
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

/// What a watch of the deployment's pods and ReplicaSets saw while a
/// rollout ran.
#[derive(Debug, Default)]
struct RolloutSeen {
    /// Moments at which fewer than `min_ready` pods were ready (and not
    /// terminating), or the ReplicaSets wanted more than `max_pods`.
    violations: Vec<String>,
    /// The most pods (not terminating) seen at once.
    most_pods: usize,
    events: usize,
}

/// Watches pods and ReplicaSets labelled `app=web` on a thread of its own
/// until `done` fires, checking the rolling-update guarantee after every
/// event: at least `min_ready` ready pods that are not terminating, and
/// ReplicaSets asking for at most `max_pods` pods in all. (Pods are not
/// bounded directly: a pod the old ReplicaSet is about to delete may
/// briefly overlap a new one, as upstream allows; the ReplicaSets'
/// replicas are what the deployment controller bounds.)
fn watch_rollout(
    node: &Node,
    min_ready: usize,
    max_pods: i32,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<RolloutSeen>,
) {
    let (done, mut stop) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let kubeconfig = node.cluster.kubeconfig.clone();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = conformance::kube_client(&kubeconfig).await;
            let config = watcher::Config::default().labels("app=web");
            let pods = watcher::watcher(Api::<Pod>::default_namespaced(client.clone()), config.clone())
                .map(|e| e.map(Watched::Pod));
            let sets = watcher::watcher(Api::<ReplicaSet>::default_namespaced(client), config)
                .map(|e| e.map(Watched::Set));
            let mut events = std::pin::pin!(futures::stream::select(pods, sets));
            let mut pod_state: BTreeMap<String, (bool, bool)> = BTreeMap::new();
            let mut set_replicas: BTreeMap<String, i32> = BTreeMap::new();
            let mut listed = 0;
            let mut seen = RolloutSeen::default();
            loop {
                let event = tokio::select! {
                    _ = &mut stop => return seen,
                    e = events.next() => e.expect("watch streams do not end").expect("watch"),
                };
                match event {
                    Watched::Pod(Event::Apply(p) | Event::InitApply(p)) => {
                        let terminating = p.metadata.deletion_timestamp.is_some();
                        let ready = p.status.iter().flat_map(|s| s.conditions.iter().flatten())
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                        pod_state.insert(p.metadata.name.unwrap(), (terminating, ready));
                    }
                    Watched::Pod(Event::Delete(p)) => {
                        pod_state.remove(&p.metadata.name.unwrap());
                    }
                    Watched::Set(Event::Apply(rs) | Event::InitApply(rs)) => {
                        let replicas = rs.spec.and_then(|s| s.replicas).unwrap_or(1);
                        set_replicas.insert(rs.metadata.name.unwrap(), replicas);
                    }
                    Watched::Set(Event::Delete(rs)) => {
                        set_replicas.remove(&rs.metadata.name.unwrap());
                    }
                    Watched::Pod(Event::InitDone) | Watched::Set(Event::InitDone) => {
                        listed += 1;
                        if listed == 2 {
                            ready_tx.send(()).unwrap();
                        }
                    }
                    Watched::Pod(Event::Init) | Watched::Set(Event::Init) => {}
                }
                if listed < 2 {
                    continue;
                }
                seen.events += 1;
                let live: Vec<_> = pod_state.values().filter(|(t, _)| !t).collect();
                seen.most_pods = seen.most_pods.max(live.len());
                let ready = live.iter().filter(|(_, r)| *r).count();
                let wanted: i32 = set_replicas.values().sum();
                if ready < min_ready || wanted > max_pods {
                    seen.violations.push(format!(
                        "{ready} ready of {} live pods, replica sets want {wanted}: {pod_state:?} {set_replicas:?}",
                        live.len()
                    ));
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the rollout watch to list");
    (done, handle)
}

enum Watched {
    Pod(Event<Pod>),
    Set(Event<ReplicaSet>),
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

    // A new image rolls out through a second ReplicaSet. With 3 replicas
    // the default 25% gives maxSurge 1 and maxUnavailable 0: at every
    // moment 3 pods stay ready and the ReplicaSets want at most 4.
    let (done, watch) = watch_rollout(&node, 3, 4);
    c.ok(&["set", "image", "deployment/web", &format!("busybox={v2}")]);
    rollout_ok(&node);
    done.send(()).unwrap();
    let seen = watch.join().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert!(seen.most_pods >= 4, "the rollout surged: {seen:?}");
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
