//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`) as
//! the stock kubectl drives it (`--validate=strict|warn|false`) and as raw
//! JSON clients send it. Named after upstream's conformance tests.

use conformance::Cluster;

const DEPLOYMENT_WITH_UNKNOWN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  bogusSpec: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: busybox
        bogusContainer: yes
"#;

/// Runs kubectl and returns (success, stdout, stderr).
fn run(c: &Cluster, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let out = c.kubectl_stdin(args, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exists(c: &Cluster, args: &[&str]) -> bool {
    c.kubectl(args).status.success()
}

#[test]
fn field_validation_should_detect_unknown_and_duplicate_fields_of_a_typed_object() {
    let c = &Cluster::start();
    // Strict (kubectl's default): rejected, with every unknown field
    // named, and nothing created.
    let (ok, _, err) = run(
        c,
        &["create", "--validate=strict", "-f", "-"],
        Some(DEPLOYMENT_WITH_UNKNOWN),
    );
    assert!(!ok);
    assert!(
        err.contains(
            "Error from server (BadRequest): error when creating \"STDIN\": Deployment in version \
             \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \
             \"spec.bogusSpec\", unknown field \"spec.template.spec.containers[0].bogusContainer\""
        ),
        "{err}"
    );
    assert!(!exists(c, &["get", "deployment", "web"]));

    // Warn: created without the fields, each reported as a warning.
    let (ok, _, err) = run(
        c,
        &["create", "--validate=warn", "-f", "-"],
        Some(DEPLOYMENT_WITH_UNKNOWN),
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: unknown field \"spec.bogusSpec\"")
            && err.contains(
                "Warning: unknown field \"spec.template.spec.containers[0].bogusContainer\""
            ),
        "{err}"
    );
    let stored = c.ok(&["get", "deployment", "web", "-o", "json"]);
    assert!(!stored.contains("bogus"), "{stored}");

    // Ignore: no warnings at all.
    let replaced = DEPLOYMENT_WITH_UNKNOWN.replace("replicas: 1", "replicas: 2");
    let (ok, _, err) = run(
        c,
        &["replace", "--validate=false", "-f", "-"],
        Some(&replaced),
    );
    assert!(ok, "{err}");
    assert!(!err.contains("Warning"), "{err}");

    // Updates and patches are checked the same way.
    let (ok, _, err) = run(
        c,
        &["replace", "--validate=strict", "-f", "-"],
        Some(&replaced),
    );
    assert!(
        !ok && err.contains("unknown field \"spec.bogusSpec\""),
        "{err}"
    );
    let (ok, _, err) = run(
        c,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"bogusPatch":true}}"#,
        ],
        None,
    );
    // kubectl patch sends no directive: the server's default is Warn.
    assert!(
        ok && err.contains("Warning: unknown field \"spec.bogusPatch\""),
        "{err}"
    );

    // Duplicate fields reach the server only from raw JSON.
    let dir = tempfile::tempdir().unwrap();
    let dup = dir.path().join("dup.json");
    std::fs::write(
        &dup,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},
            "data":{"a":"1","a":"2"},"bogus":1}"#,
    )
    .unwrap();
    let dup = dup.to_str().unwrap();
    let path = "/api/v1/namespaces/default/configmaps";
    let (ok, _, err) = run(
        c,
        &[
            "create",
            "--raw",
            &format!("{path}?fieldValidation=Strict"),
            "-f",
            dup,
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains(
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding \
             error: unknown field \"bogus\", duplicate field \"metadata.name\", duplicate field \
             \"data.a\""
        ),
        "{err}"
    );
    assert!(!exists(c, &["get", "configmap", "dup"]));
    let (ok, out, err) = run(
        c,
        &[
            "create",
            "--raw",
            &format!("{path}?fieldValidation=Warn"),
            "-f",
            dup,
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: duplicate field \"data.a\"")
            && err.contains("Warning: unknown field \"bogus\""),
        "{err}"
    );
    // The last of the duplicates is kept, as JSON decoders do.
    assert!(out.contains(r#""data":{"a":"2"}"#), "{out}");
    let (ok, _, err) = run(
        c,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Maybe",
            "-f",
            dup,
        ],
        None,
    );
    assert!(!ok && err.contains("fieldValidation"), "{err}");
}

#[test]
fn field_validation_should_detect_unknown_metadata_fields_of_a_typed_object() {
    let c = &Cluster::start();
    let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: meta
  unknownMeta: x
spec:
  containers:
  - name: main
    image: busybox
"#;
    let (ok, _, err) = run(c, &["create", "--validate=strict", "-f", "-"], Some(pod));
    assert!(
        !ok && err.contains("strict decoding error: unknown field \"metadata.unknownMeta\""),
        "{err}"
    );
    let (ok, _, err) = run(c, &["create", "--validate=warn", "-f", "-"], Some(pod));
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: unknown field \"metadata.unknownMeta\""),
        "{err}"
    );
}
