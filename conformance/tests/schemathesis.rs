//! Property-based fuzzing of core/v1 with schemathesis (from PyPI, in a
//! virtualenv the test makes), driven by rkube's own `/openapi/v3/api/v1`:
//! for a bounded number of generated requests per operation, valid and
//! invalid, no answer may be a server error, and every documented answer
//! must match its schema and content type. Each finding so far became a
//! regression test next to the code it fixed. The hooks (real object names
//! for half the cases; backend failures on connect operations) are in
//! `tests/python/schemathesis_hooks.py`.
//!
//! Set `RKUBE_SCHEMATHESIS_SEED` to explore other cases than CI's fixed
//! seed, `RKUBE_SCHEMATHESIS_EXAMPLES` for more per operation, and
//! `RKUBE_SCHEMATHESIS_PHASES` (e.g. `coverage,fuzzing`) for schemathesis'
//! boundary-value phase too (about 100,000 requests: too long for CI).

use std::path::Path;
use std::process::Command;

use conformance::Cluster;
use serde_json::{json, Value};

/// Pinned, so that a fixed seed generates the same cases on every run.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// One object of each kind the fuzzed operations can name, all "st".
const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: st}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: st}
stringData: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: st}
spec: {ports: [{port: 80}], selector: {app: st}}
---
apiVersion: v1
kind: Pod
metadata: {name: st, labels: {app: st}}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: st}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: st}
template: {spec: {containers: [{name: c, image: busybox}]}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: st}
spec:
  replicas: 0
  selector: {app: st-rc}
  template:
    metadata: {labels: {app: st-rc}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: st}
spec: {hard: {pods: "100"}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: st}
spec: {limits: [{type: Container, default: {cpu: 100m}}]}
---
apiVersion: v1
kind: Event
metadata: {name: st}
involvedObject: {kind: Pod, name: st, namespace: default}
reason: Fuzzing
message: an event to fuzz
---
apiVersion: v1
kind: Namespace
metadata: {name: st}
---
apiVersion: v1
kind: Node
metadata: {name: st}
"#;

/// The document schemathesis is given: rkube's, with two changes that make
/// it describe what a server (rkube or upstream) really answers, where
/// upstream's document is known to be loose:
/// - `watch` is dropped from list operations: `watch=true` answers a
///   stream of WatchEvents, not the List kind the operation documents
///   (watches have their own tests);
/// - a single-object DELETE answers the object itself, not a Status, while
///   the deletion is pending (grace period, finalizers) and for the kinds
///   upstream returns deleted objects of, so its 200/202 answers may be
///   either.
fn fuzzed_document(doc: &mut Value) -> usize {
    let mut dropped = 0;
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().expect("path item");
        let kind_ref = item
            .get("get")
            .and_then(|g| g.pointer("/responses/200/content/application~1json/schema/$ref"))
            .cloned();
        for (key, value) in item.iter_mut() {
            let params = match key.as_str() {
                "parameters" => Some(value),
                _ => value.get_mut("parameters"),
            };
            if let Some(Value::Array(params)) = params {
                let before = params.len();
                params.retain(|p| p["name"] != "watch");
                dropped += before - params.len();
            }
        }
        let (Some(delete), Some(kind_ref)) = (item.get_mut("delete"), kind_ref) else {
            continue;
        };
        if !path.ends_with("}") {
            continue;
        }
        for code in ["200", "202"] {
            let Some(content) = delete
                .pointer_mut(&format!("/responses/{code}/content"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for media in content.values_mut() {
                let status = media["schema"].take();
                media["schema"] = json!({"anyOf": [status, {"$ref": kind_ref}]});
            }
        }
    }
    dropped
}

#[test]
fn schemathesis_finds_no_server_errors_or_schema_violations_in_core_v1() {
    let work = tempfile::tempdir().unwrap();
    let python = conformance::python_venv(work.path(), &[SCHEMATHESIS]);
    let schemathesis = python.with_file_name("schemathesis");
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS);

    let raw = c.ok(&["get", "--raw", "/openapi/v3/api/v1"]);
    let mut doc: Value = serde_json::from_str(&raw).expect("openapi document");
    let dropped = fuzzed_document(&mut doc);
    assert!(
        dropped > 20,
        "the list operations should take watch: {dropped}"
    );
    let doc_path = work.path().join("core-v1.json");
    std::fs::write(&doc_path, serde_json::to_vec(&doc).unwrap()).unwrap();

    let pki = c.data_dir.path().join("data/pki");
    let seed = std::env::var("RKUBE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let examples = std::env::var("RKUBE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let phases = std::env::var("RKUBE_SCHEMATHESIS_PHASES").unwrap_or_else(|_| "fuzzing".into());
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&reports).unwrap();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = Command::new(&schemathesis)
        .arg("run")
        .arg(&doc_path)
        .args(["--url", &c.url()])
        .arg("--tls-verify")
        .arg(pki.join("ca.crt"))
        .arg("--request-cert")
        .arg(pki.join("admin.crt"))
        .arg("--request-cert-key")
        .arg(pki.join("admin.key"))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--phases",
            &phases,
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--request-timeout",
            "10",
            "--workers",
            "2",
            "--warnings",
            "off",
            "--no-color",
            "--report",
            "junit",
        ])
        .arg("--report-junit-path")
        .arg(reports.join("schemathesis-core-v1.xml"))
        // Its caches go to the temporary directory, not the checkout.
        .current_dir(work.path())
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems (seed {seed}):\n{stdout}\n{stderr}"
    );
    // It really ran every operation and the server is still well.
    let count = |label: &str| {
        let at = stdout
            .find(label)
            .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"));
        let digits: String = stdout[at + label.len()..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<usize>().expect("a count")
    };
    assert!(count("Tested:") > 100, "{stdout}");
    assert_eq!(count("Tested:"), count("Selected:"), "{stdout}");
    assert_eq!(c.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    assert!(!c.server_log().contains("panicked"), "{}", c.server_log());
}
