//! Tests of the built documents against a fixture of served resources
//! shaped like the registry's (subresources with other groups' kinds,
//! connect subresources, cluster-scoped and namespaced kinds).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::discovery::{ResourceDescriptor, Subresource};
use crate::schemas::definition_for;
use crate::Documents;

use crate::discovery::{ALL_VERBS as VERBS, STATUS_VERBS as STATUS};

const fn r(
    (group, version, kind): (&'static str, &'static str, &'static str),
    resource: &'static str,
    namespaced: bool,
    subresources: &'static [Subresource],
) -> ResourceDescriptor {
    ResourceDescriptor {
        group,
        version,
        kind,
        resource,
        singular: "",
        namespaced,
        verbs: VERBS,
        short_names: &[],
        categories: &[],
        subresources,
    }
}

const fn sub(
    name: &'static str,
    (group, version, kind): (&'static str, &'static str, &'static str),
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

const SCALE: Subresource = sub("scale", ("autoscaling", "v1", "Scale"), STATUS);

const FIXTURE: &[ResourceDescriptor] = &[
    r(
        ("", "v1", "Pod"),
        "pods",
        true,
        &[
            sub("status", ("", "v1", "Pod"), STATUS),
            sub("binding", ("", "v1", "Binding"), &["create"]),
            sub("log", ("", "v1", "Pod"), &["get"]),
            sub("eviction", ("policy", "v1", "Eviction"), &["create"]),
            sub("exec", ("", "v1", "PodExecOptions"), &["create", "get"]),
        ],
    ),
    r(("", "v1", "ConfigMap"), "configmaps", true, &[]),
    r(("", "v1", "Service"), "services", true, &[]),
    r(("", "v1", "Node"), "nodes", false, &[]),
    r(
        ("", "v1", "ReplicationController"),
        "replicationcontrollers",
        true,
        &[SCALE],
    ),
    r(("apps", "v1", "Deployment"), "deployments", true, &[SCALE]),
    r(("coordination.k8s.io", "v1", "Lease"), "leases", true, &[]),
];

fn docs() -> &'static Documents {
    static D: std::sync::OnceLock<Documents> = std::sync::OnceLock::new();
    D.get_or_init(|| Documents::build(FIXTURE, "v1.33.0"))
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON document")
}

fn v3(key: &str) -> Value {
    parse(&docs().v3[key].bytes)
}

/// Every `$ref` string in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_schema_is_reachable() {
    let mut documents: Vec<(Value, &str, &str)> = docs()
        .v3
        .values()
        .map(|d| {
            (
                parse(&d.bytes),
                "/components/schemas",
                "#/components/schemas/",
            )
        })
        .collect();
    documents.push((parse(&docs().v2.bytes), "/definitions", "#/definitions/"));
    for (doc, at, prefix) in &documents {
        let schemas = doc.pointer(at).and_then(Value::as_object).expect("schemas");
        assert!(!schemas.is_empty());
        let mut all = Vec::new();
        refs(doc, &mut all);
        let mut used = BTreeSet::new();
        for r in &all {
            let name = r
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{r} outside {prefix}"));
            assert!(schemas.contains_key(name), "{r} does not resolve");
            used.insert(name.to_string());
        }
        // From the operations alone, everything is reached.
        let mut from_paths = Vec::new();
        refs(&doc["paths"], &mut from_paths);
        let mut reached: BTreeSet<String> = from_paths
            .iter()
            .map(|r| r.trim_start_matches(prefix).to_string())
            .collect();
        let mut todo: Vec<String> = reached.iter().cloned().collect();
        while let Some(n) = todo.pop() {
            let mut next = Vec::new();
            refs(&schemas[&n], &mut next);
            for r in next {
                let r = r.trim_start_matches(prefix).to_string();
                if reached.insert(r.clone()) {
                    todo.push(r);
                }
            }
        }
        let unreached: Vec<&String> = schemas.keys().filter(|k| !reached.contains(*k)).collect();
        assert!(unreached.is_empty(), "unreachable: {unreached:?}");
    }
}

#[test]
fn pod_spec_carries_upstream_list_and_patch_extensions() {
    let doc = v3("api/v1");
    let spec = &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"];
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        containers["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    assert_eq!(spec["required"], serde_json::json!(["containers"]));
    let volumes = &spec["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    assert_eq!(
        spec["properties"]["nodeSelector"]["x-kubernetes-map-type"],
        "atomic"
    );
    let ports =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        serde_json::json!(["containerPort", "protocol"])
    );
    // The same facts in v2.
    let v2 = parse(&docs().v2.bytes);
    let c2 = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(c2["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        c2["items"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Container"
    );
}

#[test]
fn definition_level_extensions_and_upstream_shapes() {
    let doc = v3("api/v1");
    let s = &doc["components"]["schemas"];
    assert_eq!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
        "atomic"
    );
    assert_eq!(
        s["io.k8s.api.core.v1.SeccompProfile"]["x-kubernetes-unions"][0]["discriminator"],
        "type"
    );
    let ios = &s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    assert_eq!(ios["format"], "int-or-string");
    assert!(ios["oneOf"].is_array());
    let q = &s["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert!(q.get("x-kubernetes-int-or-string").is_none());
    let v2 = parse(&docs().v2.bytes);
    assert_eq!(
        v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    // k8s-openapi requires `metadata` (not an Option in Rust); upstream
    // requires nothing of a Pod.
    assert!(s["io.k8s.api.core.v1.Pod"].get("required").is_none());
    // A reference with a description is wrapped in allOf in v3 only.
    let spec = &s["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert!(spec["description"].is_string());
    let spec2 = &v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(spec2["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
}

#[test]
fn every_operation_kind_has_its_schema_in_the_document() {
    // kubectl explain finds the schema whose x-kubernetes-group-version-kind
    // contains the operation's.
    for (key, d) in &docs().v3 {
        let doc = parse(&d.bytes);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(
                    ids.insert(id.to_string()),
                    "{key}: duplicate operationId {id}"
                );
                let gvk = &op["x-kubernetes-group-version-kind"];
                if gvk["kind"].as_str().unwrap().ends_with("Options") {
                    assert_eq!(op["x-kubernetes-action"], "connect", "{path} {method}");
                    continue;
                }
                let found = schemas.values().any(|s| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.contains(gvk))
                });
                assert!(found, "{key} {path} {method}: no schema for {gvk}");
            }
        }
    }
}

#[test]
fn lists_are_built_for_listed_kinds() {
    let doc = v3("apis/apps/v1");
    let list = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(list["required"], serde_json::json!(["items"]));
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    let get = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"];
    assert_eq!(get["operationId"], "listAppsV1NamespacedDeployment");
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    );
    let all = &doc["paths"]["/apis/apps/v1/deployments"]["get"];
    assert_eq!(all["operationId"], "listAppsV1DeploymentForAllNamespaces");
}

#[test]
fn patch_advertises_field_validation_and_subresources_their_own_kinds() {
    let doc = v3("api/v1");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fieldValidation"));
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let scale =
        &doc["paths"]["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]["put"];
    assert_eq!(
        scale["x-kubernetes-group-version-kind"]["group"],
        "autoscaling"
    );
    assert_eq!(
        scale["operationId"],
        "replaceCoreV1NamespacedReplicationControllerScale"
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    let log = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
    assert_eq!(
        log["responses"]["200"]["content"]["text/plain"]["schema"]["type"],
        "string"
    );
    let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["delete"];
    assert_eq!(
        collection["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
}

#[test]
fn index_points_at_each_document_by_its_hash() {
    let d = docs();
    let index = parse(&d.v3_index.bytes);
    for (key, doc) in &d.v3 {
        assert_eq!(doc.hash, crate::documents::hash(&doc.bytes));
        assert_eq!(doc.hash.len(), 128);
        assert_eq!(
            index["paths"][key]["serverRelativeURL"],
            format!("/openapi/v3/{key}?hash={}", doc.hash)
        );
    }
    assert_eq!(index["paths"].as_object().unwrap().len(), 3);
    // Deterministic: the same descriptors give the same bytes.
    let again = Documents::build(FIXTURE, "v1.33.0");
    assert_eq!(again.v2.hash, d.v2.hash);
    assert_eq!(again.v3_index.hash, d.v3_index.hash);
}

#[test]
fn every_catalogued_kind_maps_to_its_definition() {
    for (name, _) in crate::schema_table_generated::KINDS {
        let overlay: Value = serde_json::from_str(
            crate::schema_table_generated::OVERLAYS
                .iter()
                .find(|(n, _)| n == name)
                .expect("an overlay for every kind")
                .1,
        )
        .unwrap();
        for gvk in overlay["x-kubernetes-group-version-kind"]
            .as_array()
            .unwrap()
        {
            let s = |k: &str| gvk[k].as_str().unwrap().to_string();
            assert_eq!(
                definition_for(&s("group"), &s("version"), &s("kind")),
                Some(*name)
            );
        }
    }
    assert_eq!(
        definition_for("", "v1", "PodList"),
        Some("io.k8s.api.core.v1.PodList")
    );
    assert_eq!(definition_for("", "v1", "PodExecOptions"), None);
}
