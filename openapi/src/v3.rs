//! OpenAPI v3 documents: one per group/version (its paths and operations,
//! and in `components.schemas` every definition they reach) and the index
//! at `/openapi/v3` that points at each with its content hash.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::assemble;
use crate::paths::{response_types, Operation, Paths, Response};
use crate::schemas::{reference, Flavor};

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": ...}}}` from
/// each document's path (`api/v1`, `apis/apps/v1`) and hash.
pub fn index(hashes: &BTreeMap<String, String>) -> Value {
    let paths: Map<String, Value> = hashes
        .iter()
        .map(|(p, h)| {
            (
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h}")}),
            )
        })
        .collect();
    json!({"paths": paths})
}

fn code_text(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        _ => "Unauthorized",
    }
}

fn content(definition: &str, types: &[&str]) -> Value {
    let schema = reference(definition, Flavor::V3);
    Value::Object(
        types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": schema})))
            .collect(),
    )
}

fn operation(op: &Operation) -> Value {
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": if p.path { "path" } else { "query" },
                "required": p.path,
                "schema": {"type": p.ty},
            })
        })
        .collect();
    let mut responses = Map::new();
    for code in op.codes {
        let mut r = json!({"description": code_text(code)});
        match op.response {
            Some(Response::Def(d)) => r["content"] = content(d, response_types()),
            Some(Response::Text(t)) => {
                r["content"] = json!({t: {"schema": {"type": "string"}}});
            }
            None => {}
        }
        responses.insert(code.to_string(), r);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut out = json!({
        "operationId": op.id,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": op.group, "version": op.version, "kind": op.kind},
    });
    if let Some((d, types)) = op.body {
        out["requestBody"] = json!({"required": op.body_required, "content": content(d, types)});
    }
    out
}

/// The `paths` object of one group/version.
pub fn paths(paths: &Paths) -> Value {
    assemble::paths_object(paths, operation)
}

/// The document of one group/version from its `paths` object and its
/// schemas, each already serialized (name, JSON).
pub fn document<'a>(
    paths: &Value,
    schemas: impl Iterator<Item = (&'a str, &'a str)>,
    kube_version: &str,
) -> Vec<u8> {
    assemble::document(
        &["components", "schemas"],
        schemas,
        ("openapi", "3.0.0"),
        paths,
        kube_version,
    )
}
