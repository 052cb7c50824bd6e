//! Property-based fuzzing with schemathesis (from PyPI, in a virtualenv
//! the test makes) of every group/version, each driven by its document
//! from rkube's own `/openapi/v3` (core/v1 is `/openapi/v3/api/v1`):
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

use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::Cluster;
use serde_json::{json, Value};

/// Pinned, so that a fixed seed generates the same cases on every run.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// One object of each served kind, all "st", for the fuzzed operations to
/// name.
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
apiVersion: apps/v1
kind: Deployment
metadata: {name: st}
spec:
  replicas: 0
  selector: {matchLabels: {app: st-deploy}}
  template:
    metadata: {labels: {app: st-deploy}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: st}
spec:
  replicas: 0
  selector: {matchLabels: {app: st-rs}}
  template:
    metadata: {labels: {app: st-rs}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: st}
spec:
  selector: {matchLabels: {app: st-ds}}
  template:
    metadata: {labels: {app: st-ds}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: ControllerRevision
metadata: {name: st}
revision: 1
data: {spec: {}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: st}
spec: {holderIdentity: fuzzer}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: st}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: st}
spec: {minAvailable: 1, selector: {matchLabels: {app: st}}}
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

/// What one run of schemathesis needs besides the document.
struct Fuzzer<'a> {
    schemathesis: PathBuf,
    work: &'a Path,
    cluster: &'a Cluster,
    seed: String,
    examples: String,
    phases: String,
}

impl Fuzzer<'_> {
    /// Fuzzes the document at `doc_path` (`/openapi/v3/<doc_path>`);
    /// returns how many `watch` parameters were dropped from it.
    fn run(&self, doc_path: &str) -> usize {
        let raw = self
            .cluster
            .ok(&["get", "--raw", &format!("/openapi/v3/{doc_path}")]);
        let mut doc: Value = serde_json::from_str(&raw).expect("openapi document");
        let dropped = fuzzed_document(&mut doc);
        let name = doc_path.replace('/', "-");
        let file = self.work.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let pki = self.cluster.data_dir.path().join("data/pki");
        let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
        std::fs::create_dir_all(&reports).unwrap();
        let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
        let out = Command::new(&self.schemathesis)
            .arg("run")
            .arg(&file)
            .args(["--url", &self.cluster.url()])
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
                &self.phases,
                "--max-examples",
                &self.examples,
                "--seed",
                &self.seed,
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
            .arg(reports.join(format!("schemathesis-{name}.xml")))
            // Its caches go to the temporary directory, not the checkout.
            .current_dir(self.work)
            .env("PYTHONPATH", &hooks)
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .output()
            .expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "schemathesis found problems in {doc_path} (seed {}):\n{stdout}\n{stderr}",
            self.seed
        );
        // It really ran every operation.
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
        assert!(count("Tested:") > 0, "{stdout}");
        assert_eq!(count("Tested:"), count("Selected:"), "{doc_path}: {stdout}");
        dropped
    }
}

#[test]
fn schemathesis_finds_no_server_errors_or_schema_violations_in_any_group_version() {
    let work = tempfile::tempdir().unwrap();
    let python = conformance::python_venv(work.path(), &[SCHEMATHESIS]);
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS);
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let fuzzer = Fuzzer {
        schemathesis: python.with_file_name("schemathesis"),
        work: work.path(),
        cluster: &c,
        seed: env("RKUBE_SCHEMATHESIS_SEED", "1"),
        examples: env("RKUBE_SCHEMATHESIS_EXAMPLES", "10"),
        phases: env("RKUBE_SCHEMATHESIS_PHASES", "fuzzing"),
    };
    let index: Value = serde_json::from_str(&c.ok(&["get", "--raw", "/openapi/v3"])).unwrap();
    let docs: Vec<&String> = index["paths"].as_object().expect("index").keys().collect();
    assert!(
        docs.iter().any(|d| *d == "api/v1") && docs.len() > 5,
        "{docs:?}"
    );
    let mut dropped = 0;
    for doc in &docs {
        // Only group/version documents have resources to fuzz.
        let group_version =
            *doc == "api/v1" || (doc.starts_with("apis/") && doc.matches('/').count() == 2);
        if !group_version {
            continue;
        }
        dropped += fuzzer.run(doc);
    }
    assert!(
        dropped > 20,
        "the list operations should take watch: {dropped}"
    );
    // The server is still well.
    assert_eq!(c.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    assert!(!c.server_log().contains("panicked"), "{}", c.server_log());
}
