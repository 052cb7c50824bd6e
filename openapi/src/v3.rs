//! OpenAPI v3 documents: the index at `/openapi/v3` and one document per
//! group/version. Each resource path carries its operations, the
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action` extensions
//! and the query parameters the server accepts — kubectl reads the
//! `fieldValidation` parameter of PATCH operations to decide that the
//! server validates fields itself. Component schemas come with the
//! OpenAPI step.

use serde_json::{json, Map, Value};

use crate::discovery::ResourceDescriptor;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable content hash so clients can cache documents.
fn hash(s: &str) -> String {
    // FNV-1a, 64 bit: tiny and deterministic; not a security boundary.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: where each group/version's document lives.
pub fn index(resources: &[ResourceDescriptor], kube_version: &str) -> Value {
    let mut paths = Map::new();
    let mut seen = Vec::new();
    for r in resources {
        let p = gv_path(r.group, r.version);
        if seen.contains(&p) {
            continue;
        }
        seen.push(p.clone());
        let doc = group_version(resources, r.group, r.version, kube_version).to_string();
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str, in_: &str) -> Value {
    json!({"name": name, "in": in_, "schema": {"type": "string", "uniqueItems": true}, "required": in_ == "path"})
}

fn operation(
    r: &ResourceDescriptor,
    action: &str,
    kind: &str,
    query: &[&str],
    path_params: &[&str],
) -> Value {
    let mut params: Vec<Value> = path_params.iter().map(|p| param(p, "path")).collect();
    params.extend(query.iter().map(|q| param(q, "query")));
    json!({
        "operationId": format!("{action}{}", kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": kind},
    })
}

const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "pretty"];
const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "pretty",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];

/// The document of one group/version; `None`-like empty paths when nothing
/// is served there.
pub fn group_version(
    resources: &[ResourceDescriptor],
    group: &str,
    version: &str,
    kube_version: &str,
) -> Value {
    let mut paths = Map::new();
    let prefix = format!("/{}", gv_path(group, version));
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let (collection, path_params): (String, Vec<&str>) = if r.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", r.resource),
                vec!["namespace"],
            )
        } else {
            (format!("{prefix}/{}", r.resource), vec![])
        };
        let has = |v: &str| r.verbs.contains(&v);
        let mut coll = Map::new();
        if has("list") {
            coll.insert(
                "get".into(),
                operation(r, "list", r.kind, LIST_PARAMS, &path_params),
            );
        }
        if has("create") {
            coll.insert(
                "post".into(),
                operation(r, "post", r.kind, WRITE_PARAMS, &path_params),
            );
        }
        if has("deletecollection") {
            coll.insert(
                "delete".into(),
                operation(r, "deletecollection", r.kind, LIST_PARAMS, &path_params),
            );
        }
        if !coll.is_empty() {
            paths.insert(collection.clone(), Value::Object(coll));
        }
        let mut item_params = path_params.clone();
        item_params.insert(0, "name");
        let item = format!("{collection}/{{name}}");
        let mut ops = Map::new();
        if has("get") {
            ops.insert(
                "get".into(),
                operation(r, "get", r.kind, &["pretty"], &item_params),
            );
        }
        if has("update") {
            ops.insert(
                "put".into(),
                operation(r, "put", r.kind, WRITE_PARAMS, &item_params),
            );
        }
        if has("patch") {
            ops.insert(
                "patch".into(),
                operation(
                    r,
                    "patch",
                    r.kind,
                    &[WRITE_PARAMS, &["force"]].concat(),
                    &item_params,
                ),
            );
        }
        if has("delete") {
            ops.insert(
                "delete".into(),
                operation(
                    r,
                    "delete",
                    r.kind,
                    &[
                        "dryRun",
                        "gracePeriodSeconds",
                        "propagationPolicy",
                        "pretty",
                    ],
                    &item_params,
                ),
            );
        }
        if !ops.is_empty() {
            paths.insert(item.clone(), Value::Object(ops));
        }
        for s in r.subresources {
            let mut ops = Map::new();
            let kind = s.kind;
            for verb in s.verbs {
                let (method, action, query): (&str, &str, &[&str]) = match *verb {
                    "get" => ("get", "get", &["pretty"]),
                    "update" => ("put", "put", WRITE_PARAMS),
                    "patch" => ("patch", "patch", WRITE_PARAMS),
                    "create" => ("post", "post", WRITE_PARAMS),
                    _ => continue,
                };
                let mut op = operation(r, action, kind, query, &item_params);
                op["x-kubernetes-group-version-kind"] =
                    json!({"group": s.group, "version": s.version, "kind": kind});
                ops.insert(method.into(), op);
            }
            paths.insert(format!("{item}/{}", s.name), Value::Object(ops));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": kube_version},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ResourceDescriptor = ResourceDescriptor {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        resource: "configmaps",
        singular: "configmap",
        namespaced: true,
        verbs: &["create", "get", "list", "patch", "update", "delete"],
        short_names: &[],
        categories: &[],
        subresources: &[],
    };

    #[test]
    fn patch_operations_advertise_field_validation_with_their_gvk() {
        let doc = group_version(&[R], "", "v1", "v1.33.0");
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        let idx = index(&[R], "v1.33.0");
        assert!(idx["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
    }
}
