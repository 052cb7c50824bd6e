//! Black-box tests of the controller-manager running in `rkube server`:
//! replica managers (with a kubelet running the pods), garbage collection
//! in all three propagation modes, endpoints, service accounts, node
//! lifecycle and pod GC (API only, with Node objects no kubelet serves).
//! Named after the upstream conformance tests they mirror where one does.

use std::time::Duration;

use conformance::Cluster;
use serde_json::{json, Value};

mod node;

use node::Node;

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.ok(&all)).unwrap()
}

fn items(c: &Cluster, args: &[&str]) -> Vec<Value> {
    get(c, args)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn running_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// An RC whose pods run on `node` (bound by name until the scheduler
/// places them).
fn rc(name: &str, replicas: i64, node: Option<&str>, image: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"app": name},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}]}}},
    })
    .to_string()
}

fn live(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

#[test]
fn replication_controller_should_serve_a_basic_image_on_each_replica_and_follow_scale() {
    let node = Node::start();
    let c = &node.cluster;
    c.ok_stdin(
        &["create", "-f", "-"],
        &rc("web", 2, Some(&node.name), &node.image()),
    );
    c.wait_for("2 ready replicas", Duration::from_secs(60), || {
        get(c, &["rc", "web"])["status"]["readyReplicas"] == 2
    });
    let pods = items(c, &["pods", "-l", "app=web"]);
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert!(running_ready(p));
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicationController");
        assert_eq!(owner["controller"], true);
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    }
    // Scale up and down through the scale subresource.
    c.ok(&["scale", "rc", "web", "--replicas=3"]);
    c.wait_for("3 ready replicas", Duration::from_secs(60), || {
        get(c, &["rc", "web"])["status"]["readyReplicas"] == 3
    });
    c.ok(&["scale", "rc", "web", "--replicas=1"]);
    c.wait_for("1 live pod", Duration::from_secs(60), || {
        live(&items(c, &["pods", "-l", "app=web"])).len() == 1
    });
    // A deleted pod is replaced.
    let survivor = live(&items(c, &["pods", "-l", "app=web"]))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["delete", "pod", &survivor, "--wait=false"]);
    c.wait_for("a replacement pod", Duration::from_secs(60), || {
        items(c, &["pods", "-l", "app=web"])
            .iter()
            .any(|p| p["metadata"]["name"] != survivor.as_str() && running_ready(p))
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(events.contains("SuccessfulCreate"), "{events}");
    assert!(events.contains("SuccessfulDelete"), "{events}");
    // Background deletion takes the pods along.
    c.ok(&["delete", "rc", "web"]);
    c.wait_for("the pods to go", Duration::from_secs(60), || {
        items(c, &["pods", "-l", "app=web"]).is_empty()
    });
}

#[test]
fn replication_controller_should_adopt_matching_pods_on_creation_and_release_no_longer_matching_pods(
) {
    let c = &Cluster::start();
    let orphan = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-adoption", "labels": {"name": "pod-adoption"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    c.ok_stdin(&["create", "-f", "-"], &orphan.to_string());
    let controller = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "pod-adoption"},
        "spec": {"replicas": 1, "selector": {"name": "pod-adoption"},
            "template": {"metadata": {"labels": {"name": "pod-adoption"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    });
    c.ok_stdin(&["create", "-f", "-"], &controller.to_string());
    c.wait_for("the orphan to be adopted", Duration::from_secs(20), || {
        get(c, &["pod", "pod-adoption"])["metadata"]["ownerReferences"][0]["name"] == "pod-adoption"
    });
    // The adopted pod counts: no second pod is made.
    c.wait_for("status to count it", Duration::from_secs(20), || {
        get(c, &["rc", "pod-adoption"])["status"]["replicas"] == 1
    });
    assert_eq!(items(c, &["pods"]).len(), 1);
    // Relabelled, it is released and replaced.
    c.ok(&[
        "label",
        "pod",
        "pod-adoption",
        "name=released",
        "--overwrite",
    ]);
    c.wait_for("the pod to be released", Duration::from_secs(20), || {
        get(c, &["pod", "pod-adoption"])["metadata"]["ownerReferences"].is_null()
    });
    c.wait_for("a replacement", Duration::from_secs(20), || {
        items(c, &["pods", "-l", "name=pod-adoption"]).len() == 1
    });
}

#[test]
fn garbage_collector_should_orphan_pods_and_delete_in_the_foreground_when_asked() {
    let c = &Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], &rc("keep", 2, None, "busybox"));
    c.wait_for("2 pods", Duration::from_secs(20), || {
        items(c, &["pods", "-l", "app=keep"]).len() == 2
    });
    // Orphan: the RC goes, its pods stay without a reference to it.
    c.ok(&["delete", "rc", "keep", "--cascade=orphan"]);
    c.wait_for("the rc to go", Duration::from_secs(20), || {
        c.kubectl(&["get", "rc", "keep"]).status.code() == Some(1)
    });
    c.wait_for("references to be dropped", Duration::from_secs(20), || {
        items(c, &["pods", "-l", "app=keep"])
            .iter()
            .all(|p| p["metadata"]["ownerReferences"].is_null())
    });
    assert_eq!(items(c, &["pods", "-l", "app=keep"]).len(), 2);
    // Foreground: the owner stays (with the finalizer) until its pods are
    // gone. The pods carry a finalizer of the test's, so they linger.
    let held: Value = {
        let mut v: Value = serde_json::from_str(&rc("fg", 2, None, "busybox")).unwrap();
        v["spec"]["template"]["metadata"]["finalizers"] = json!(["rkube.test/hold"]);
        v
    };
    c.ok_stdin(&["create", "-f", "-"], &held.to_string());
    c.wait_for("2 pods", Duration::from_secs(20), || {
        items(c, &["pods", "-l", "app=fg"]).len() == 2
    });
    c.ok(&["delete", "rc", "fg", "--cascade=foreground", "--wait=false"]);
    c.wait_for("the pods to be deleted", Duration::from_secs(20), || {
        let pods = items(c, &["pods", "-l", "app=fg"]);
        pods.len() == 2 && live(&pods).is_empty()
    });
    let owner = get(c, &["rc", "fg"]);
    assert_eq!(owner["metadata"]["finalizers"][0], "foregroundDeletion");
    assert!(!owner["metadata"]["deletionTimestamp"].is_null());
    for p in items(c, &["pods", "-l", "app=fg"]) {
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        c.ok(&[
            "patch",
            "pod",
            &name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
    c.wait_for(
        "the owner to go after its pods",
        Duration::from_secs(30),
        || c.kubectl(&["get", "rc", "fg"]).status.code() == Some(1),
    );
    assert!(items(c, &["pods", "-l", "app=fg"]).is_empty());
    // A dependent naming an owner that never existed is collected.
    let dangling = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dangling", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ReplicationController", "name": "ghost",
            "uid": "00000000-0000-0000-0000-000000000001"}]},
    });
    c.ok_stdin(&["create", "-f", "-"], &dangling.to_string());
    c.wait_for(
        "the dangling dependent to go",
        Duration::from_secs(30),
        || c.kubectl(&["get", "configmap", "dangling"]).status.code() == Some(1),
    );
}

#[test]
fn endpoints_follow_the_pods_a_service_selects_and_namespaces_get_a_default_service_account() {
    let c = &Cluster::start();
    let pod = |name: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "ports": [{"name": "sql", "containerPort": 5432}]}]},
        })
        .to_string()
    };
    for (name, ip, ready) in [("db-1", "10.9.0.1", "True"), ("db-2", "10.9.0.2", "False")] {
        c.ok_stdin(&["create", "-f", "-"], &pod(name));
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": ready}]}});
        c.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
    }
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"name": "sql", "port": 5432, "targetPort": "sql"}]},
    });
    c.ok_stdin(&["create", "-f", "-"], &svc.to_string());
    let mut last = Value::Null;
    c.wait_for("endpoints for the service", Duration::from_secs(20), || {
        let out = c.kubectl(&["get", "endpoints", "db", "-o", "json"]);
        last = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        last["subsets"][0]["addresses"][0]["ip"] == "10.9.0.1"
    });
    let subset = &last["subsets"][0];
    assert_eq!(subset["notReadyAddresses"][0]["ip"], "10.9.0.2");
    // The same addresses as an EndpointSlice, with their readiness.
    c.wait_for("an endpoint slice", Duration::from_secs(20), || {
        let slices = items(
            c,
            &["endpointslices", "-l", "kubernetes.io/service-name=db"],
        );
        let eps = slices
            .first()
            .map(|s| s["endpoints"].clone())
            .unwrap_or_default();
        eps.as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["addresses"][0] == "10.9.0.1" && e["conditions"]["ready"] == true)
                && a.iter()
                    .any(|e| e["addresses"][0] == "10.9.0.2" && e["conditions"]["ready"] == false)
        })
    });
    assert_eq!(subset["ports"][0]["port"], 5432);
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "db-1");
    // Deleting a pod removes its address; deleting the service its Endpoints.
    c.ok(&["delete", "pod", "db-1", "--grace-period=0", "--force"]);
    c.wait_for("the address to go", Duration::from_secs(20), || {
        get(c, &["endpoints", "db"])["subsets"][0]["addresses"].is_null()
    });
    c.ok(&["delete", "service", "db"]);
    c.wait_for("the endpoints to go", Duration::from_secs(20), || {
        c.kubectl(&["get", "endpoints", "db"]).status.code() == Some(1)
    });
    // Service accounts.
    c.ok(&["create", "namespace", "fresh"]);
    c.wait_for("a default service account", Duration::from_secs(20), || {
        c.kubectl(&["get", "serviceaccount", "default", "-n", "fresh"])
            .status
            .success()
    });
    // Both control-plane components report healthy.
    let cs = c.ok(&["get", "componentstatuses"]);
    let healthy = cs
        .lines()
        .filter(|l| l.contains("Healthy") && !l.contains("Unhealthy"))
        .count();
    assert!(cs.contains("controller-manager"), "{cs}");
    assert!(healthy >= 2, "{cs}");
}

#[test]
fn a_silent_node_becomes_unknown_gets_tainted_and_its_pods_are_evicted_and_replaced() {
    let c = &Cluster::start_with(&[
        "--node-monitor-grace-period",
        "3s",
        "--default-unreachable-toleration-seconds",
        "2",
    ]);
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "silent"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": "2020-01-01T00:00:00Z"}],
            "allocatable": {"cpu": "2", "memory": "2Gi", "pods": "10"}},
    });
    c.ok_stdin(&["create", "-f", "-"], &node.to_string());
    c.ok_stdin(
        &["create", "-f", "-"],
        &rc("victim", 1, Some("silent"), "busybox"),
    );
    c.wait_for("the pod", Duration::from_secs(20), || {
        items(c, &["pods", "-l", "app=victim"]).len() == 1
    });
    let first = items(c, &["pods", "-l", "app=victim"])[0]["metadata"]["name"].clone();
    let tolerations = items(c, &["pods", "-l", "app=victim"])[0]["spec"]["tolerations"].clone();
    assert!(
        tolerations.to_string().contains("\"tolerationSeconds\":2"),
        "{tolerations}"
    );
    c.wait_for("Ready=Unknown", Duration::from_secs(30), || {
        get(c, &["node", "silent"])["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|cond| cond["type"] == "Ready" && cond["status"] == "Unknown")
    });
    c.wait_for("the unreachable taints", Duration::from_secs(20), || {
        let taints = get(c, &["node", "silent"])["spec"]["taints"].to_string();
        taints.contains("node.kubernetes.io/unreachable") && taints.contains("NoExecute")
    });
    // Evicted after its 2 s toleration; the RC makes a new one.
    c.wait_for("eviction and replacement", Duration::from_secs(30), || {
        let pods = items(c, &["pods", "-l", "app=victim"]);
        let evicted = pods.iter().any(|p| {
            p["metadata"]["name"] == first && !p["metadata"]["deletionTimestamp"].is_null()
        });
        evicted && live(&pods).iter().any(|p| p["metadata"]["name"] != first)
    });
}

#[test]
fn pods_bound_to_a_deleted_node_are_collected() {
    let c = &Cluster::start();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stranded"},
        "spec": {"nodeName": "never-was", "containers": [{"name": "c", "image": "busybox"}]},
    });
    c.ok_stdin(&["create", "-f", "-"], &pod.to_string());
    c.wait_for("the stranded pod to go", Duration::from_secs(40), || {
        c.kubectl(&["get", "pod", "stranded"]).status.code() == Some(1)
    });
}

/// A Deployment of `replicas` busybox pods (no node runs them: the test
/// looks only at the objects the controllers write).
fn deployment(name: &str, replicas: i64) -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
    })
    .to_string()
}

/// Creates deployment `name` and waits for its ReplicaSet and pods.
fn deployment_with_pods(c: &Cluster, name: &str, replicas: usize) -> String {
    c.ok_stdin(&["create", "-f", "-"], &deployment(name, replicas as i64));
    let selector = format!("app={name}");
    c.wait_for(
        "the replica set and its pods",
        Duration::from_secs(30),
        || {
            items(c, &["rs", "-l", &selector]).len() == 1
                && items(c, &["pods", "-l", &selector]).len() == replicas
        },
    );
    items(c, &["rs", "-l", &selector])[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn garbage_collector_should_delete_rs_created_by_deployment_when_not_orphaning() {
    let c = &Cluster::start();
    deployment_with_pods(c, "web", 2);
    c.ok(&["delete", "deployment", "web"]);
    c.wait_for(
        "the replica set and pods to go",
        Duration::from_secs(30),
        || {
            items(c, &["rs", "-l", "app=web"]).is_empty()
                && items(c, &["pods", "-l", "app=web"]).is_empty()
        },
    );
}

#[test]
fn garbage_collector_should_orphan_rs_created_by_deployment_when_delete_options_propagation_policy_is_orphan(
) {
    let c = &Cluster::start();
    let rs = deployment_with_pods(c, "web", 2);
    c.ok(&["delete", "deployment", "web", "--cascade=orphan"]);
    c.wait_for("the deployment to go", Duration::from_secs(20), || {
        c.kubectl(&["get", "deployment", "web"]).status.code() == Some(1)
    });
    c.wait_for(
        "the replica set to lose its owner",
        Duration::from_secs(20),
        || get(c, &["rs", &rs])["metadata"]["ownerReferences"].is_null(),
    );
    // Orphaned, the ReplicaSet keeps its pods (and still owns them).
    let pods = items(c, &["pods", "-l", "app=web"]);
    assert_eq!(live(&pods).len(), 2);
    for p in &pods {
        assert_eq!(p["metadata"]["ownerReferences"][0]["name"], rs.as_str());
    }
}

#[test]
fn namespaces_should_ensure_that_all_workloads_budgets_leases_and_slices_are_removed_when_a_namespace_is_deleted(
) {
    let c = &Cluster::start();
    c.ok(&["create", "namespace", "scratch"]);
    let create = |manifest: Value| {
        c.ok_stdin(
            &["create", "-n", "scratch", "-f", "-"],
            &manifest.to_string(),
        );
    };
    create(serde_json::from_str(&deployment("web", 2)).unwrap());
    create(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
    }));
    create(json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev"},
        "revision": 1, "data": {"spec": {}},
    }));
    create(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 10},
    }));
    create(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "eps"},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}],
    }));
    create(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }));
    c.wait_for("the deployment's pods", Duration::from_secs(30), || {
        items(c, &["pods", "-n", "scratch", "-l", "app=web"]).len() == 2
    });
    let kinds = "deployments,replicasets,daemonsets,controllerrevisions,leases,endpointslices,poddisruptionbudgets,pods";
    let names = |c: &Cluster| {
        let out = c.ok(&["get", kinds, "-n", "scratch", "-o", "name"]);
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let before = names(c);
    for expected in [
        "deployment.apps/web",
        "controllerrevision.apps/rev",
        "lease.coordination.k8s.io/lock",
        "endpointslice.discovery.k8s.io/eps",
        "poddisruptionbudget.policy/pdb",
        "daemonset.apps/agent",
    ] {
        assert!(
            before.iter().any(|n| n == expected),
            "{expected} in {before:?}"
        );
    }
    c.ok(&["delete", "namespace", "scratch", "--timeout=60s"]);
    assert!(c
        .fails(&["get", "namespace", "scratch"])
        .contains("NotFound"));
    // Recreated, the namespace is empty of every kind.
    c.ok(&["create", "namespace", "scratch"]);
    assert_eq!(names(c), Vec::<String>::new());
}
