//! Server-side apply and `metadata.managedFields`, black-box: the stock
//! kubectl (`apply --server-side`, `--force-conflicts`, `--dry-run=server`,
//! `diff`, client-side `apply`, `get --show-managed-fields`) and raw
//! requests against a real `rkube server`. Names mirror upstream
//! conformance tests where one matches.

use conformance::Cluster;
use serde_json::Value;

fn deployment(replicas: u32, image: &str, extra_label: Option<&str>) -> String {
    let extra = extra_label
        .map(|l| format!("\n    {l}: \"yes\""))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{extra}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports: [{{containerPort: 80}}]
"#
    )
}

fn get_json(c: &Cluster, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    let out = c.ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

#[test]
fn server_side_apply_creates_changes_and_records_managed_fields() {
    let c = Cluster::start();
    let out = c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.25", None),
    );
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    let e = entry(&d, "kubectl", "Apply").unwrap_or_else(|| panic!("{d:#}"));
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].is_string());
    let f = &e["fieldsV1"];
    assert_eq!(f["f:spec"]["f:replicas"], serde_json::json!({}));
    assert_eq!(f["f:spec"]["f:selector"], serde_json::json!({}));
    assert_eq!(f["f:metadata"]["f:labels"]["f:app"], serde_json::json!({}));
    let container = &f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert_eq!(container["."], serde_json::json!({}), "{f:#}");
    assert_eq!(container["f:image"], serde_json::json!({}));
    assert!(
        container["f:ports"]
            .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{f:#}"
    );
    // Defaults the server filled in belong to no one.
    assert!(container.get("f:imagePullPolicy").is_none(), "{f:#}");

    // A change: the applier keeps ownership, the object changes.
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(3, "nginx:1.26", None),
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    // One Apply entry; the controllers' status writes are entries of their own.
    let entries = d["metadata"]["managedFields"].as_array().unwrap();
    let applies: Vec<&Value> = entries
        .iter()
        .filter(|e| e["operation"] == "Apply")
        .collect();
    assert_eq!(applies.len(), 1, "{d:#}");
    // (the revision annotation on the main resource, status through
    // `status`), recorded under the User-Agent the controllers send.
    for e in entries.iter().filter(|e| e["operation"] == "Update") {
        assert_eq!(e["manager"], "kube-controller-manager", "{d:#}");
    }
    c.wait_for(
        "the controllers' status entry",
        std::time::Duration::from_secs(30),
        || {
            let d = get_json(&c, &["deployment", "web"]);
            d["metadata"]["managedFields"]
                .as_array()
                .is_some_and(|entries| {
                    entries.iter().any(|e| {
                        e["manager"] == "kube-controller-manager"
                            && e["subresource"] == "status"
                            && e["fieldsV1"].get("f:status").is_some()
                    })
                })
        },
    );

    // Without --show-managed-fields kubectl hides them; with it, they show.
    let plain = c.ok(&["get", "deployment", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");
    let shown = c.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    for needle in [
        "managedFields:",
        "manager: kubectl",
        "operation: Apply",
        "fieldsV1:",
        "f:replicas: {}",
    ] {
        assert!(shown.contains(needle), "{needle} missing:\n{shown}");
    }
}

#[test]
fn server_side_apply_conflicts_with_another_manager_until_forced() {
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.25", None),
    );
    // kubectl scale sends no fieldManager: the manager is the User-Agent's
    // product, "kubectl", recorded with the scale subresource.
    c.ok(&["scale", "deployment", "web", "--replicas=5"]);
    let d = get_json(&c, &["deployment", "web"]);
    let scale = entry(&d, "kubectl", "Update").unwrap_or_else(|| panic!("{d:#}"));
    assert_eq!(scale["subresource"], "scale");
    assert_eq!(
        scale["fieldsV1"],
        serde_json::json!({"f:spec": {"f:replicas": {}}})
    );

    // A different value for a field the scaler owns: 409.
    let out = c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment(3, "nginx:1.25", None)),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    assert_eq!(get_json(&c, &["deployment", "web"])["spec"]["replicas"], 5);

    // The same value as the other manager: no conflict, both own it.
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(5, "nginx:1.25", None),
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert!(entry(&d, "kubectl", "Update").is_some(), "{d:#}");
    assert!(entry(&d, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());

    // --force-conflicts takes the field.
    c.ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &deployment(3, "nginx:1.25", None),
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(entry(&d, "kubectl", "Update").is_none(), "{d:#}");
}

#[test]
fn server_side_apply_removes_fields_no_longer_applied() {
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(1, "nginx:1.25", Some("extra")),
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["metadata"]["labels"]["extra"], "yes");
    // Another manager's label survives the applier's change.
    c.ok(&["label", "deployment", "web", "owner=ops"]);
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(1, "nginx:1.25", None),
    );
    let d = get_json(&c, &["deployment", "web"]);
    let labels = &d["metadata"]["labels"];
    assert!(labels.get("extra").is_none(), "{d:#}");
    assert_eq!(labels["app"], "web");
    assert_eq!(labels["owner"], "ops");
    assert!(entry(&d, "kubectl-label", "Update").is_some(), "{d:#}");
}

#[test]
fn server_side_apply_dry_run_changes_nothing() {
    let c = Cluster::start();
    // Nothing is created.
    let out = c.ok_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &deployment(2, "nginx:1.25", None),
    );
    assert!(out.contains("serverside-applied (server dry run)"), "{out}");
    assert!(!c.fails(&["get", "deployment", "web"]).is_empty());
    // Nothing is changed.
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.25", None),
    );
    let before = get_json(&c, &["deployment", "web"]);
    let out = c.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ],
        &deployment(4, "nginx:1.25", None),
    );
    let answered: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answered["spec"]["replicas"], 4);
    let after = get_json(&c, &["deployment", "web"]);
    assert_eq!(after["spec"]["replicas"], 2);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(
        after["metadata"]["managedFields"][0],
        before["metadata"]["managedFields"][0]
    );
}

#[test]
fn sig_cli_kubectl_client_kubectl_diff_should_check_if_kubectl_diff_finds_a_difference_for_deployments(
) {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], &deployment(1, "httpd:2.4", None));
    // No change: exit 0, no output.
    let same = c.kubectl_stdin(
        &["diff", "-f", "-"],
        Some(&deployment(1, "httpd:2.4", None)),
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    // A change: exit 1 and the line in the diff.
    let changed = c.kubectl_stdin(
        &["diff", "-f", "-"],
        Some(&deployment(1, "httpd:2.5", None)),
    );
    let out = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert!(out.contains("+      - image: httpd:2.5"), "{out}");
    assert!(out.contains("-      - image: httpd:2.4"), "{out}");
    // Server-side diff too (the image belongs to client-side apply, so
    // only a forced apply may change it, as upstream).
    let ssa = c.kubectl_stdin(
        &["diff", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&deployment(1, "httpd:2.5", None)),
    );
    assert_eq!(
        ssa.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&ssa.stderr)
    );
    assert!(String::from_utf8_lossy(&ssa.stdout).contains("image: httpd:2.5"));
    // Diffing changed nothing.
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "httpd:2.4"
    );
}

#[test]
fn client_side_apply_keeps_working_and_is_tracked() {
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &deployment(1, "nginx:1.25", Some("extra")),
    );
    let d = get_json(&c, &["deployment", "web"]);
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("{d:#}"));
    assert!(last.contains("\"extra\":\"yes\""), "{last}");
    let e = entry(&d, "kubectl-client-side-apply", "Update").unwrap_or_else(|| panic!("{d:#}"));
    let f = &e["fieldsV1"];
    assert_eq!(
        f["f:metadata"]["f:labels"]["."],
        serde_json::json!({}),
        "{f:#}"
    );
    assert!(f["f:spec"].get("f:replicas").is_some(), "{f:#}");
    // Client-side apply removes the label it applied before.
    c.ok_stdin(&["apply", "-f", "-"], &deployment(2, "nginx:1.25", None));
    let d = get_json(&c, &["deployment", "web"]);
    assert!(d["metadata"]["labels"].get("extra").is_none(), "{d:#}");
    assert_eq!(d["spec"]["replicas"], 2);
    // Server-side apply of a field client-side apply set differently conflicts.
    let err = c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment(4, "nginx:1.25", None)),
    );
    assert!(!err.status.success());
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains("conflict with \"kubectl-client-side-apply\" using apps/v1")
            && err.contains(".spec.replicas"),
        "{err}"
    );
    // Forced, it succeeds, and kubectl moves client-side apply's fields to
    // its server-side manager (a JSON patch of managedFields).
    c.ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &deployment(4, "nginx:1.25", None),
    );
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 4);
    assert!(
        entry(&d, "kubectl-client-side-apply", "Update").is_none(),
        "{d:#}"
    );
    let applied = entry(&d, "kubectl", "Apply").unwrap_or_else(|| panic!("{d:#}"));
    assert!(applied["fieldsV1"]["f:spec"].get("f:replicas").is_some());
}

#[tokio::test]
async fn apply_requests_need_a_field_manager_and_accept_yaml() {
    let c = Cluster::start();
    let client = c.client().await;
    let uri = "/api/v1/namespaces/default/configmaps/cm";
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n";
    let send = |uri: String| {
        let client = client.clone();
        async move {
            let req = http::Request::builder()
                .method("PATCH")
                .uri(uri)
                .header("Content-Type", "application/apply-patch+yaml")
                .body(yaml.as_bytes().to_vec())
                .unwrap();
            client.request_text(req).await
        }
    };
    match send(uri.to_string()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert_eq!(s.reason, "Invalid");
            assert_eq!(
                s.message,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
            );
        }
        other => panic!("{other:?}"),
    }
    let created = send(format!("{uri}?fieldManager=tester")).await.unwrap();
    let cm: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(cm["data"]["a"], "1");
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "tester");
    assert_eq!(
        cm["metadata"]["managedFields"][0]["fieldsV1"],
        serde_json::json!({"f:data": {"f:a": {}}})
    );
    // A plain update by another client, named after its User-Agent product.
    let req = http::Request::builder()
        .method("PATCH")
        .uri(uri)
        .header("Content-Type", "application/merge-patch+json")
        .header("User-Agent", "curl/8.5.0")
        .body(br#"{"data":{"a":"2","b":"3"}}"#.to_vec())
        .unwrap();
    let patched: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    let curl = patched["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "curl")
        .unwrap_or_else(|| panic!("{patched:#}"));
    assert_eq!(curl["operation"], "Update");
    assert_eq!(
        curl["fieldsV1"],
        serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}})
    );
    // Only apply may force.
    let req = http::Request::builder()
        .method("PATCH")
        .uri(format!("{uri}?force=true"))
        .header("Content-Type", "application/merge-patch+json")
        .body(br#"{"data":{"c":"4"}}"#.to_vec())
        .unwrap();
    match client.request_text(req).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert_eq!(
                s.message,
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
            );
        }
        other => panic!("{other:?}"),
    }
    // Re-applying a=1 now conflicts with curl.
    match send(format!("{uri}?fieldManager=tester")).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"curl\" using v1: .data.a"
            );
        }
        other => panic!("{other:?}"),
    }
    // Clearing managedFields with one empty entry.
    let req = http::Request::builder()
        .method("PATCH")
        .uri(uri)
        .header("Content-Type", "application/merge-patch+json")
        .body(br#"{"metadata":{"managedFields":[{}]}}"#.to_vec())
        .unwrap();
    let cleared: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert!(
        cleared["metadata"].get("managedFields").is_none(),
        "{cleared:#}"
    );
}

/// Upstream keeps at most ten `Update` managers: the oldest are folded into
/// an `ancient-changes` entry per API version, which keeps their fields.
#[test]
fn more_than_ten_update_managers_fold_into_ancient_changes() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "many"]);
    for i in 0..12 {
        c.ok(&[
            "annotate",
            "configmap",
            "many",
            &format!("n{i}=v"),
            &format!("--field-manager=m{i:02}"),
        ]);
    }
    let cm = get_json(&c, &["configmap", "many"]);
    let entries = cm["metadata"]["managedFields"].as_array().unwrap();
    let updaters: Vec<&str> = entries
        .iter()
        .filter(|e| e["operation"] == "Update")
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(updaters.len(), 10, "{updaters:?}");
    let ancient = entry(&cm, "ancient-changes", "Update").expect("an ancient-changes entry");
    // The folded managers' annotations are still owned, now by the bucket.
    let owned = ancient["fieldsV1"]["f:metadata"]["f:annotations"]
        .as_object()
        .map(|a| a.len())
        .unwrap_or(0);
    assert!(owned >= 2, "{ancient}");
    for i in 0..12 {
        assert_eq!(cm["metadata"]["annotations"][format!("n{i}")], "v");
    }
}

/// `namespaces/<n>/finalize` is written by a client, so it is recorded as
/// an `Update` of the `finalize` subresource, as upstream does.
#[test]
fn namespace_finalize_records_its_manager() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "fin"]);
    let body = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fin"},"spec":{"finalizers":["kubernetes","example.com/keep"]}}"#;
    c.ok_stdin(
        &[
            "replace",
            "--raw",
            "/api/v1/namespaces/fin/finalize",
            "-f",
            "-",
        ],
        body,
    );
    let ns = get_json(&c, &["namespace", "fin"]);
    assert_eq!(ns["spec"]["finalizers"][1], "example.com/keep", "{ns}");
    let fin = ns["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "finalize")
        .unwrap_or_else(|| panic!("no finalize entry: {ns}"));
    assert_eq!(fin["operation"], "Update");
    assert!(
        fin["fieldsV1"]["f:spec"]["f:finalizers"].is_object(),
        "{fin}"
    );
}
