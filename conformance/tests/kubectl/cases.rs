//! Black-box tests with the stock kubectl against a real `rkube server`,
//! included by `kubectl.rs` (embedded store) and `kubectl_etcd.rs` (etcd).
//! Test names mirror the upstream conformance tests they correspond to
//! (../shared/conformance/kubernetes-conformance-tests.tsv); the others
//! check the kubectl behaviour issue "Step 1" lists.

use std::time::Duration;

use conformance::Cluster;

use crate::BACKEND;
use serde_json::Value;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: busybox
  labels: {app: busybox, tier: tools}
spec:
  containers:
  - name: busybox
    image: busybox:1.36
    command: ["sleep", "3600"]
    imagePullPolicy: IfNotPresent
  restartPolicy: Always
"#;

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: webapp-controller
spec:
  replicas: 2
  selector: {app: webapp}
  template:
    metadata:
      labels: {app: webapp}
    spec:
      containers:
      - name: webapp
        image: registry.local/webapp:0.1
        ports: [{containerPort: 3000}]
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: webapp
spec:
  selector: {app: webapp}
  ports: [{port: 3000}]
  externalIPs: ["192.0.2.10"]
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn sig_cli_kubectl_client_kubectl_version_should_check_is_all_data_is_printed() {
    let c = Cluster::start_on(BACKEND);
    let out = c.ok(&["version"]);
    assert!(out.contains("Client Version: v1."), "{out}");
    assert!(out.contains("Server Version: v1.33"), "{out}");
    let err = String::from_utf8_lossy(&c.kubectl(&["version"]).stderr).into_owned();
    assert!(
        !err.contains("WARNING"),
        "no version-skew warning expected: {err}"
    );
}

#[test]
fn sig_cli_kubectl_client_kubectl_api_versions_should_check_if_v1_is_in_available_api_versions() {
    let c = Cluster::start_on(BACKEND);
    let versions = c.ok(&["api-versions"]);
    assert!(versions.lines().any(|l| l == "v1"), "{versions}");
    assert!(
        versions.lines().any(|l| l == "events.k8s.io/v1"),
        "{versions}"
    );
    let resources = c.ok(&["api-resources"]);
    for (name, short) in [
        ("pods", "po"),
        ("services", "svc"),
        ("replicationcontrollers", "rc"),
        ("namespaces", "ns"),
        ("componentstatuses", "cs"),
        ("configmaps", "cm"),
    ] {
        let line = resources
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{resources}"));
        assert!(line.contains(&format!(" {short} ")), "{line}");
    }
}

#[test]
fn sig_api_machinery_aggregated_discovery_should_support_raw_aggregated_discovery_endpoint_accept_headers(
) {
    let c = Cluster::start_on(BACKEND);
    // kubectl uses aggregated discovery when offered; the raw documents too.
    let api = json(&c.ok(&["get", "--raw", "/api"]));
    assert_eq!(api["kind"], "APIVersions");
    let apis = json(&c.ok(&["get", "--raw", "/apis"]));
    assert_eq!(apis["kind"], "APIGroupList");
    let v1 = json(&c.ok(&["get", "--raw", "/api/v1"]));
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in [
        "pods",
        "pods/status",
        "pods/binding",
        "pods/eviction",
        "replicationcontrollers/scale",
        "namespaces/finalize",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    let verbose = c.kubectl(&["get", "pods", "-v=6"]);
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        !log.contains("/api/v1?timeout"),
        "kubectl should not need legacy discovery: {log}"
    );
}

#[test]
fn kubectl_get_cs_reports_real_component_health() {
    let c = Cluster::start_on(BACKEND);
    let out = c.ok(&["get", "cs"]);
    let store = match BACKEND {
        conformance::Backend::Embedded => "embedded-store",
        conformance::Backend::Etcd => "etcd-0",
    };
    let row = out
        .lines()
        .find(|l| l.starts_with(store))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("Healthy") && !row.contains("Unhealthy"),
        "{row}"
    );
    // The controller-manager and scheduler are healthy once they hold
    // their leader leases, which they take as soon as the API answers.
    c.wait_for(
        "all components healthy",
        std::time::Duration::from_secs(20),
        || {
            let out = c.ok(&["get", "cs"]);
            out.lines()
                .skip(1)
                .all(|l| l.contains("Healthy") && !l.contains("Unhealthy"))
                && out.lines().count() == 4
        },
    );
    // A component that is not running is not faked healthy.
    let without = Cluster::start_on_with(BACKEND, &["--disable-scheduler"]);
    let out = without.ok(&["get", "cs"]);
    let sched = out
        .lines()
        .find(|l| l.starts_with("scheduler"))
        .expect("scheduler row");
    assert!(sched.contains("Unhealthy"), "{sched}");
}

#[test]
fn kubectl_get_all_lists_the_kubernetes_service() {
    let c = Cluster::start_on(BACKEND);
    let out = c.ok(&["get", "all", "-A"]);
    assert!(out.contains("service/kubernetes"), "{out}");
    assert!(out.contains("10.96.0.1"), "{out}");
    let ns = c.ok(&["get", "ns", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
}

#[test]
fn sig_cli_kubectl_client_guestbook_application_should_create_and_stop_a_working_application() {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    c.ok_stdin(&["apply", "-f", "-"], RC);
    c.ok_stdin(&["apply", "-f", "-"], SERVICE);
    let pod = json(&c.ok(&["get", "pod", "busybox", "-o", "json"]));
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    assert!(pod["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    let svc = json(&c.ok(&["get", "svc", "webapp", "-o", "json"]));
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.") && ip != "10.96.0.1", "{ip}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 3000);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let wide = c.ok(&["get", "svc", "webapp", "-o", "wide"]);
    assert!(
        wide.contains("192.0.2.10") && wide.contains("3000/TCP") && wide.contains("app=webapp"),
        "{wide}"
    );
    let rc = c.ok(&["get", "rc"]);
    assert!(rc.contains("webapp-controller"), "{rc}");
    c.ok(&["delete", "pod", "busybox"]);
    c.ok(&["delete", "rc", "webapp-controller"]);
    c.ok(&["delete", "svc", "webapp"]);
    assert!(c.fails(&["get", "pod", "busybox"]).contains("NotFound"));
}

#[test]
fn kubectl_get_output_formats_selectors_and_sorting() {
    let c = Cluster::start_on(BACKEND);
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        c.ok_stdin(
            &["apply", "-f", "-"],
            &POD.replace(
                "name: busybox\n  labels: {app: busybox, tier: tools}",
                &format!("name: {name}\n  labels: {{app: demo, tier: {tier}}}"),
            ),
        );
    }
    let names = c.ok(&["get", "pods", "-l", "tier=front", "-o", "name"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["pod/a", "pod/c"]);
    let names = c.ok(&["get", "pods", "-l", "tier in (back),app", "-o", "name"]);
    assert_eq!(names.trim(), "pod/b");
    let names = c.ok(&["get", "pods", "-l", "tier!=front", "-o", "name"]);
    assert_eq!(names.trim(), "pod/b");
    let names = c.ok(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=c",
        "-o",
        "name",
    ]);
    assert_eq!(names.trim(), "pod/c");
    let names = c.ok(&[
        "get",
        "pods",
        "--field-selector",
        "status.phase=Pending,spec.restartPolicy=Always",
        "-o",
        "name",
    ]);
    assert_eq!(names.lines().count(), 3);
    let err = c.fails(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(err.contains("field label not supported"), "{err}");
    let jp = c.ok(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(jp, "a b c");
    let cc = c.ok(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier",
        "--sort-by",
        ".metadata.labels.tier",
    ]);
    let rows: Vec<&str> = cc
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(rows, ["b", "a", "c"]);
    let labels = c.ok(&["get", "pods", "--show-labels"]);
    assert!(labels.contains("app=demo,tier=front"), "{labels}");
    let table = c.ok(&["get", "pods"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let yaml = c.ok(&["get", "pod", "a", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let desc = c.ok(&["describe", "pod", "a"]);
    assert!(
        desc.contains("Name:") && desc.contains("busybox:1.36"),
        "{desc}"
    );
    c.ok(&["delete", "pods", "-l", "tier=front"]);
    assert_eq!(c.ok(&["get", "pods", "-o", "name"]).trim(), "pod/b");
}

#[test]
fn sig_cli_kubectl_client_kubectl_label_should_update_the_label_on_a_resource() {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    c.ok(&[
        "label",
        "pods",
        "busybox",
        "testing-label=testing-label-value",
    ]);
    let v = c.ok(&["get", "pod", "busybox", "-L", "testing-label"]);
    assert!(v.contains("testing-label-value"), "{v}");
    c.ok(&["label", "pods", "busybox", "testing-label-"]);
    let v = c.ok(&["get", "pod", "busybox", "-o", "jsonpath={.metadata.labels}"]);
    assert!(!v.contains("testing-label"), "{v}");
    c.ok(&["annotate", "pods", "busybox", "note=hello"]);
    let v = c.ok(&[
        "get",
        "pod",
        "busybox",
        "-o",
        "jsonpath={.metadata.annotations.note}",
    ]);
    assert_eq!(v, "hello");
}

#[test]
fn sig_cli_kubectl_client_kubectl_patch_should_add_annotations_for_pods_in_rc() {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    c.ok(&[
        "patch",
        "pod",
        "busybox",
        "-p",
        r#"{"metadata":{"annotations":{"x":"true"}}}"#,
    ]);
    c.ok(&[
        "patch",
        "pod",
        "busybox",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":null}}}"#,
    ]);
    c.ok(&[
        "patch",
        "pod",
        "busybox",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#,
    ]);
    // Strategic merge by container name keeps the other fields of the container.
    c.ok(&[
        "patch",
        "pod",
        "busybox",
        "-p",
        r#"{"spec":{"containers":[{"name":"busybox","image":"busybox:1.37"}]}}"#,
    ]);
    let pod = json(&c.ok(&["get", "pod", "busybox", "-o", "json"]));
    assert_eq!(pod["metadata"]["annotations"]["x"], "true");
    assert!(pod["metadata"]["labels"].get("tier").is_none());
    assert_eq!(pod["metadata"]["labels"]["json"], "yes");
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.37");
    assert_eq!(pod["spec"]["containers"][0]["command"][0], "sleep");
    let err = c.fails(&[
        "patch",
        "pod",
        "busybox",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
    ]);
    assert!(!err.contains("InternalError"), "{err}");
}

#[test]
fn sig_cli_kubectl_client_kubectl_replace_should_update_a_single_container_pods_image() {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    let mut pod = json(&c.ok(&["get", "pod", "busybox", "-o", "json"]));
    pod["spec"]["containers"][0]["image"] = "busybox:1.99".into();
    c.ok_stdin(&["replace", "-f", "-"], &pod.to_string());
    let img = c.ok(&[
        "get",
        "pod",
        "busybox",
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(img, "busybox:1.99");
    // The same object again carries a stale resourceVersion: 409.
    let out = c.kubectl_stdin(&["replace", "-f", "-"], Some(&pod.to_string()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the object has been modified"),
        "{err}"
    );
}

#[test]
fn sig_cli_kubectl_client_update_demo_should_scale_a_replication_controller() {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], RC);
    for n in ["3", "2", "1", "2"] {
        c.ok(&[
            "scale",
            "rc",
            "webapp-controller",
            &format!("--replicas={n}"),
        ]);
        let r = c.ok(&[
            "get",
            "rc",
            "webapp-controller",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        assert_eq!(r, n);
    }
    let generation = c.ok(&[
        "get",
        "rc",
        "webapp-controller",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_eq!(generation, "5");
    // Re-applying the unchanged file is a no-op (no new generation).
    c.ok_stdin(&["apply", "-f", "-"], RC);
    let generation = c.ok(&[
        "get",
        "rc",
        "webapp-controller",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_eq!(generation, "5");
    // The controller's status writes are writes too: let them settle first.
    c.wait_for("the RC status to settle", Duration::from_secs(30), || {
        c.ok(&[
            "get",
            "rc",
            "webapp-controller",
            "-o",
            "jsonpath={.status.observedGeneration}/{.status.replicas}/{.status.fullyLabeledReplicas}",
        ]) == "5/2/2"
    });
    let rv1 = c.ok(&[
        "get",
        "rc",
        "webapp-controller",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    c.ok_stdin(&["apply", "-f", "-"], RC);
    let rv2 = c.ok(&[
        "get",
        "rc",
        "webapp-controller",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(rv1, rv2, "an unchanged apply writes nothing");
}

#[test]
fn sig_api_machinery_namespaces_should_ensure_that_all_pods_are_removed_when_a_namespace_is_deleted(
) {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scratch\n",
    );
    c.ok_stdin(&["apply", "-n", "scratch", "-f", "-"], POD);
    c.ok_stdin(&["apply", "-n", "scratch", "-f", "-"], SERVICE);
    c.ok(&["delete", "ns", "scratch", "--timeout=60s"]);
    assert!(c.fails(&["get", "ns", "scratch"]).contains("NotFound"));
    // Recreating it yields an empty namespace.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scratch\n",
    );
    let pods = c.kubectl(&["get", "pods", "-n", "scratch", "-o", "name"]);
    assert!(String::from_utf8_lossy(&pods.stdout).trim().is_empty());
    let err = c.fails(&["delete", "ns", "default"]);
    assert!(err.contains("forbidden"), "{err}");
    let out = c.kubectl_stdin(&["create", "-n", "missing", "-f", "-"], Some(POD));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("namespaces \"missing\" not found"),
        "{err}"
    );
}

#[test]
fn api_errors_are_statuses_and_the_server_survives_them() {
    let c = Cluster::start_on(BACKEND);
    // Missing object: 404.
    assert!(c.fails(&["get", "pod", "nope"]).contains("NotFound"));
    // Invalid name: 422 with the field named.
    let bad = POD.replace("name: busybox\n  labels", "name: Bad_Name\n  labels");
    let out = c.kubectl_stdin(&["create", "-f", "-"], Some(&bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    // Too large: 413.
    let big = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"x\":\"{}\"}}}}",
        "a".repeat(4 * 1024 * 1024)
    );
    let path = c.data_dir.path().join("big.json");
    std::fs::write(&path, big).unwrap();
    let out = c.kubectl(&["create", "-f", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.to_lowercase().contains("too large"),
        "{err}"
    );
    // Malformed JSON: 400, not 500.
    let bad_json = c.data_dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"kind\": \"ConfigMap\", oops").unwrap();
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad_json.to_str().unwrap(),
    ]);
    assert!(
        err.contains("BadRequest") || err.contains("not valid JSON"),
        "{err}"
    );
    // Still serving.
    c.ok(&["get", "ns", "default"]);
}

#[test]
fn requests_without_credentials_get_401() {
    let c = Cluster::start_on(BACKEND);
    // A kubeconfig that trusts the cluster CA but presents no client
    // certificate, only a bearer token rkube does not know.
    let path = c.data_dir.path().join("anon.kubeconfig");
    let ca = c.data_dir.path().join("data/pki/ca.crt");
    let anon = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: anon\n  user: {{token: not-a-valid-token}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: anon}}\ncurrent-context: c\n",
        c.url(),
        ca.display()
    );
    std::fs::write(&path, anon).unwrap();
    let out = std::process::Command::new(conformance::kubectl_path())
        .args(["--kubeconfig", path.to_str().unwrap(), "get", "pods"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // kubectl words a 401 two ways, depending on whether discovery or the
    // request itself met it first; both are the Unauthorized status.
    let unauthorized = err.contains("provide credentials") || err.contains("(Unauthorized)");
    assert!(!out.status.success() && unauthorized, "{err}");
    let out = std::process::Command::new(conformance::kubectl_path())
        .args([
            "--kubeconfig",
            path.to_str().unwrap(),
            "get",
            "--raw",
            "/readyz",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "health endpoints are public");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut c = Cluster::start_on(BACKEND);
    for i in 0..20 {
        c.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  i: \"{i}\"\n"
            ),
        );
    }
    // kubectl wraps -o json lists in its own List without a resourceVersion:
    // take the newest item's.
    let rv = |item: &Value| {
        item["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = json(&c.ok(&["get", "cm", "-o", "json"]))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(rv)
        .max()
        .unwrap();
    c.kill9_and_restart();
    let list = json(&c.ok(&["get", "cm", "-o", "json"]));
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names.len(), 20, "{names:?}");
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n",
    );
    let after: u64 = c
        .ok(&[
            "get",
            "cm",
            "after",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(
        after > before,
        "resourceVersion went backwards: {after} <= {before}"
    );
    c.wait_for("server still ready", Duration::from_secs(5), || {
        c.kubectl(&["get", "--raw", "/readyz"]).status.success()
    });
}

#[test]
fn kubectl_generators_send_protobuf_and_it_round_trips() {
    let c = Cluster::start_on(BACKEND);
    c.ok(&["create", "namespace", "proto"]);
    c.ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "proto",
        "--from-literal=k=v",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "sec",
        "-n",
        "proto",
        "--from-literal=p=secret",
    ]);
    c.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        "proto",
        "--tcp=80:8080",
    ]);
    c.ok(&[
        "run",
        "runner",
        "-n",
        "proto",
        "--image=busybox:1.36",
        "--restart=Never",
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "proto",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "v"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "secret",
            "sec",
            "-n",
            "proto",
            "-o",
            "jsonpath={.data.p}"
        ]),
        "c2VjcmV0"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "secret",
            "sec",
            "-n",
            "proto",
            "-o",
            "jsonpath={.type}"
        ]),
        "Opaque"
    );
    let np: u64 = c
        .ok(&[
            "get",
            "svc",
            "np",
            "-n",
            "proto",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&np), "{np}");
    assert_eq!(c.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    // The body really was protobuf (as kubectl logs it at -v=8).
    let out = c.kubectl(&[
        "create",
        "configmap",
        "cfg2",
        "-n",
        "proto",
        "--from-literal=a=b",
        "-v=8",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "{log}"
    );
}

#[test]
fn sig_cli_kubectl_client_kubectl_server_side_dry_run_should_check_if_kubectl_can_dry_run_update_pods(
) {
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    c.ok(&[
        "patch",
        "pod",
        "busybox",
        "-p",
        r#"{"spec":{"containers":[{"name":"busybox","image":"busybox:dry"}]}}"#,
        "--dry-run=server",
    ]);
    let img = c.ok(&[
        "get",
        "pod",
        "busybox",
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(img, "busybox:1.36", "a dry run changes nothing");
    c.ok(&["run", "dry", "--image=busybox", "--dry-run=server"]);
    assert!(c.fails(&["get", "pod", "dry"]).contains("NotFound"));
    c.ok(&["delete", "pod", "busybox", "--dry-run=server"]);
    c.ok(&["get", "pod", "busybox"]);
}

#[test]
fn delete_options_grace_period_preconditions_and_collections() {
    let c = Cluster::start_on(BACKEND);
    for i in 0..3 {
        c.ok_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: del-{i}\n  labels: {{set: del}}\n"),
        );
    }
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n",
    );
    // A finalizer keeps the object, marked, until it is removed.
    c.ok(&[
        "patch",
        "cm",
        "del-0",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    c.ok(&["delete", "cm", "del-0", "--wait=false"]);
    let ts = c.ok(&[
        "get",
        "cm",
        "del-0",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!ts.is_empty(), "deletionTimestamp set");
    c.ok(&[
        "patch",
        "cm",
        "del-0",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.wait_for("finalized object to go", Duration::from_secs(10), || {
        !c.kubectl(&["get", "cm", "del-0"]).status.success()
    });
    // Deletecollection by label leaves the rest.
    c.ok(&["delete", "cm", "-l", "set=del", "--grace-period=0"]);
    let left = c.ok(&["get", "cm", "-o", "name"]);
    assert!(
        left.contains("configmap/keep") && !left.contains("del-"),
        "{left}"
    );
}

#[test]
fn kubectl_create_from_a_list_validates_and_creates_every_item() {
    // A v1 List makes kubectl validate on the client side with the OpenAPI
    // v2 document, which it must be able to download and parse.
    let c = Cluster::start_on(BACKEND);
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l1"}},
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l2"}}]}"#;
    let out = c.ok_stdin(&["create", "-f", "-", "-o", "name"], list);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["configmap/l1", "configmap/l2"]
    );
}

#[test]
fn kubectl_get_watch_shows_changes_live() {
    use std::io::{BufRead, BufReader};
    let c = Cluster::start_on(BACKEND);
    c.ok_stdin(&["apply", "-f", "-"], POD);
    let mut watcher = std::process::Command::new(conformance::kubectl_path())
        .args(["get", "pods", "--watch-only", "--output-watch-events"])
        .env("KUBECONFIG", &c.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl get --watch-only");
    let stdout = watcher.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch is live once a change made after it started shows up.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<String> = Vec::new();
    let mut round = 0;
    let mut deleted = false;
    while !seen
        .iter()
        .any(|l| l.contains("DELETED") && l.contains("busybox"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no live events: {seen:?}"
        );
        if !seen.iter().any(|l| l.contains("MODIFIED")) {
            // Until the watch shows a change, keep making them.
            round += 1;
            c.ok(&[
                "label",
                "pod",
                "busybox",
                &format!("round={round}"),
                "--overwrite",
            ]);
        } else if !deleted {
            c.ok(&["delete", "pod", "busybox", "--wait=false"]);
            deleted = true;
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
            seen.push(line);
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let first = seen
        .iter()
        .find(|l| l.contains("MODIFIED"))
        .expect("a MODIFIED row");
    assert!(
        first.contains("busybox") && first.contains("Pending"),
        "{first}"
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("ADDED")),
        "--watch-only lists nothing first: {seen:?}"
    );
}
