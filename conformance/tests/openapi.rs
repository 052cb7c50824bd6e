//! The OpenAPI documents of a real `rkube server`: `kubectl explain` over
//! every served kind (it reads `/openapi/v3`; `--output=plaintext-openapiv2`
//! reads the protobuf `/openapi/v2`), kube-apiserver's caching headers, and
//! the documents checked by an OpenAPI validator and against upstream's
//! v1.33 definitions. No upstream conformance test covers these; the names
//! say what each checks.

use std::path::Path;
use std::process::Command;

use conformance::Cluster;
use kube::Client;

#[track_caller]
fn contains_all(out: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
}

#[test]
fn kubectl_explain_describes_served_kinds_and_nested_fields() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "pods.spec.containers.livenessProbe"]);
    contains_all(
        &out,
        &[
            "KIND:       Pod\nVERSION:    v1\n",
            "FIELD: livenessProbe <Probe>",
            "DESCRIPTION:\n    Periodic probe of container liveness.",
            "  httpGet\t<HTTPGetAction>\n",
            "  failureThreshold\t<integer>\n",
        ],
    );

    let out = c.ok(&["explain", "deployments", "--api-version=apps/v1"]);
    contains_all(
        &out,
        &[
            "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n",
            "  spec\t<DeploymentSpec>\n",
            "  status\t<DeploymentStatus>\n",
        ],
    );

    let out = c.ok(&["explain", "pods", "--recursive"]);
    contains_all(
        &out,
        &[
            "  spec\t<PodSpec>\n",
            "    containers\t<[]Container> -required-\n",
            "      livenessProbe\t<Probe>\n",
            "        httpGet\t<HTTPGetAction>\n",
            "          port\t<IntOrString> -required-\n",
            "    nodeSelector\t<map[string]string>\n",
        ],
    );

    let out = c.ok(&["explain", "leases.spec"]);
    contains_all(
        &out,
        &[
            "GROUP:      coordination.k8s.io\nKIND:       Lease\n",
            "FIELD: spec <LeaseSpec>",
            "  holderIdentity\t<string>\n",
            "  leaseDurationSeconds\t<integer>\n",
        ],
    );

    let err = c.fails(&["explain", "pods.spec.nosuchfield"]);
    assert!(
        err.contains("field \"nosuchfield\" does not exist"),
        "{err}"
    );

    // The v2 document in protobuf, as kubectl reads it.
    let out = c.ok(&[
        "explain",
        "pods.spec.containers.ports",
        "--output=plaintext-openapiv2",
    ]);
    contains_all(
        &out,
        &[
            "RESOURCE: ports <[]Object>",
            "containerPort\t<integer> -required-",
        ],
    );

    // Every served kind, by the resource names discovery lists.
    let listing = c.ok(&["api-resources", "--no-headers"]);
    let mut explained = 0;
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (name, api_version, kind) = (cols[0], cols[cols.len() - 3], cols[cols.len() - 1]);
        let out = c.ok(&["explain", name, &format!("--api-version={api_version}")]);
        assert!(
            out.contains(&format!("KIND:       {kind}\n")) && out.contains("DESCRIPTION:"),
            "kubectl explain {name}:\n{out}"
        );
        explained += 1;
    }
    assert!(explained >= 20, "only {explained} resources listed");
}

async fn client(c: &Cluster) -> Client {
    c.client().await
}

/// GET `uri` with extra headers: status, headers, body.
async fn get(
    client: &Client,
    uri: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut req = http::Request::builder().method("GET").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .send(req.body(kube::client::Body::empty()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("GET {uri}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect_bytes()
        .await
        .expect("body")
        .to_vec();
    (status, headers, body)
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn openapi_documents_carry_etags_hashes_and_the_protobuf_form() {
    let c = Cluster::start();
    let client = client(&c).await;

    let (status, h, body) = get(&client, "/openapi/v3", &[]).await;
    assert_eq!(status, 200);
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("api/v1 in the index")
        .to_string();
    assert!(index["paths"]["apis/apps/v1"].is_object(), "{index}");
    let index_etag = header(&h, "etag").to_string();
    let (status, _, _) = get(&client, "/openapi/v3", &[("If-None-Match", &index_etag)]).await;
    assert_eq!(status, 304);

    // The hashed URL is immutable; its ETag is the hash.
    let (status, h, body) = get(&client, &url, &[("Accept", "application/json")]).await;
    assert_eq!(status, 200);
    let hash = url.split("hash=").nth(1).unwrap();
    assert_eq!(header(&h, "etag"), format!("\"{hash}\""));
    assert!(
        header(&h, "cache-control").starts_with("public, immutable"),
        "{h:?}"
    );
    assert!(header(&h, "cache-control").contains("max-age="), "{h:?}");
    assert!(header(&h, "expires").ends_with(" GMT"), "{h:?}");
    assert_eq!(header(&h, "vary"), "Accept");
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());

    let etag = format!("\"{hash}\"");
    let (status, _, body) = get(&client, "/openapi/v3/api/v1", &[("If-None-Match", &etag)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    // Without the hash: no immutable caching.
    let (status, h, _) = get(&client, "/openapi/v3/api/v1", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "cache-control"), "");
    // A stale hash is sent to the current one.
    let (status, h, _) = get(&client, "/openapi/v3/api/v1?hash=0123", &[]).await;
    assert_eq!(status, 301);
    assert_eq!(header(&h, "location"), url);
    // v3 is served as JSON only.
    let pb3 = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf";
    let (status, _, _) = get(&client, "/openapi/v3/api/v1", &[("Accept", pb3)]).await;
    assert_eq!(status, 406);
    let (status, _, _) = get(&client, "/openapi/v3/apis/nosuch.k8s.io/v1", &[]).await;
    assert_eq!(status, 404);

    // v2: JSON with an ETag, 304 on a match, protobuf for client-go's Accept.
    let (status, h, body) = get(&client, "/openapi/v2", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/json");
    let v2: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
    let v2_etag = header(&h, "etag").to_string();
    assert_eq!(v2_etag.len(), 130, "{v2_etag}");
    let (status, _, _) = get(&client, "/openapi/v2", &[("If-None-Match", &v2_etag)]).await;
    assert_eq!(status, 304);
    let pb2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let (status, h, body) = get(&client, "/openapi/v2", &[("Accept", pb2)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "content-type"),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert_eq!(header(&h, "etag"), v2_etag);
    assert_eq!(&body[..5], b"\x0a\x032.0", "Document.swagger first");
    assert!(body.len() > 100_000, "definitions included");
    let (status, _, _) = get(&client, "/openapi/v2", &[("Accept", "text/html")]).await;
    assert_eq!(status, 406);
}

/// Validates the documents (openapi-spec-validator) and compares every
/// definition with kubernetes-validate's copy of upstream's v1.33
/// definitions: property names, types and formats (through references,
/// arrays and maps), required lists and `x-kubernetes-*` extensions.
const CHECK: &str = r#"
import json, os, sys
from openapi_spec_validator import validate
import kubernetes_validate

base = os.path.dirname(kubernetes_validate.__file__)
upstream = json.load(open(os.path.join(
    base, "kubernetes-json-schema", "v1.33.0-local", "_definitions.json")))["$defs"]

def kind(t):
    if isinstance(t, list):
        t = [x for x in t if x != "null"]
        return t[0] if len(t) == 1 else tuple(sorted(t))
    return t

def shape(s):
    if "allOf" in s and len(s["allOf"]) == 1:
        s = dict(s, **s["allOf"][0])
    if "$ref" in s:
        return "ref:" + s["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in s:
        return "oneOf:" + ",".join(sorted(kind(x.get("type")) for x in s["oneOf"]))
    t = kind(s.get("type"))
    if t == "array":
        return "[]" + shape(s.get("items", {}))
    if t == "object" and isinstance(s.get("additionalProperties"), dict):
        return "map:" + shape(s["additionalProperties"])
    return "%s/%s" % (t, s.get("format", ""))

def ext(s):
    return {k: v for k, v in s.items() if k.startswith("x-kubernetes-") and k != "x-kubernetes-int-or-string"}

problems, compared = [], set()
for path in sys.argv[1:]:
    doc = json.load(open(path))
    try:
        validate(doc)
    except Exception as e:
        problems.append("%s: invalid: %s" % (path, str(e)[:1500]))
        continue
    v2 = "swagger" in doc
    schemas = doc["definitions"] if v2 else doc["components"]["schemas"]
    for name, ours in schemas.items():
        up = upstream.get(name)
        if up is None:
            problems.append("%s: %s is not an upstream definition" % (path, name))
            continue
        compared.add(name)
        if v2 and "oneOf" in up:
            # Swagger 2.0 has no oneOf: upstream's v2 says string.
            if ours.get("type") != "string":
                problems.append("%s: %s is not a string" % (path, name))
            continue
        if shape(ours) != shape(up):
            problems.append("%s: %s is %s, upstream %s" % (path, name, shape(ours), shape(up)))
        op, up_p = ours.get("properties", {}), up.get("properties", {})
        if set(op) != set(up_p):
            problems.append("%s: %s fields differ: %s" % (path, name, sorted(set(op) ^ set(up_p))))
        for f in set(op) & set(up_p):
            if shape(op[f]) != shape(up_p[f]):
                problems.append("%s: %s.%s is %s, upstream %s" % (path, name, f, shape(op[f]), shape(up_p[f])))
            if ext(op[f]) != ext(up_p[f]):
                problems.append("%s: %s.%s extensions %s, upstream %s" % (path, name, f, ext(op[f]), ext(up_p[f])))
        if sorted(ours.get("required", [])) != sorted(up.get("required", [])):
            problems.append("%s: %s requires %s, upstream %s" % (path, name, ours.get("required"), up.get("required")))
        if ext(ours) != ext(up):
            problems.append("%s: %s extensions %s, upstream %s" % (path, name, ext(ours), ext(up)))
    print("valid:", path, len(schemas), "schemas")
for p in problems:
    print(p)
print("compared %d definitions with upstream v1.33, %d differences" % (len(compared), len(problems)))
sys.exit(1 if problems or not compared else 0)
"#;

/// A virtualenv with the checker's packages, made under `dir`.
fn venv(dir: &Path) -> std::path::PathBuf {
    conformance::python_venv(
        dir,
        &[
            "openapi-spec-validator>=0.7,<1",
            "kubernetes-validate>=1.33",
        ],
    )
}

#[test]
fn openapi_documents_are_valid_and_match_upstream_v1_33_definitions() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let mut save = |name: &str, raw: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, c.ok(&["get", "--raw", raw])).expect("write document");
        files.push(path);
    };
    save("v2.json", "/openapi/v2");
    let index: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/openapi/v3"])).unwrap();
    let paths = index["paths"].as_object().expect("index paths");
    assert!(paths.len() >= 6, "{index}");
    for (key, entry) in paths {
        let url = entry["serverRelativeURL"].as_str().unwrap();
        save(&format!("{}.json", key.replace('/', "_")), url);
    }
    let python = venv(dir.path());
    let script = dir.path().join("check.py");
    std::fs::write(&script, CHECK).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .args(&files)
        .output()
        .expect("run the checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the documents do not check out:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(", 0 differences"), "{stdout}");
    eprintln!("{stdout}");
}
