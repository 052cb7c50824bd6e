//! The OpenAPI v2 (Swagger 2.0) document at `/openapi/v2`: every served
//! path and operation, and in `definitions` every definition they reach.
//! Its protobuf form is [`crate::v2_proto`].

use serde_json::{json, Map, Value};

use crate::assemble;
use crate::paths::{response_types, Operation, Paths, Response};
use crate::schemas::{reference, Flavor};

/// What clients ask for in Accept (the deprecated `@` spelling is still
/// what client-go sends).
pub const PROTOBUF_MIME: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// What the response says it is: `@` is not allowed in a media type token,
/// and Go's MIME parser (kubectl's) rejects it, so the version is dotted.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": if p.path { "path" } else { "query" },
                "required": p.path,
                "type": p.ty,
            })
        })
        .collect();
    let mut consumes: Vec<&str> = Vec::new();
    if let Some((d, types)) = op.body {
        params.push(json!({
            "name": "body",
            "in": "body",
            "required": op.body_required,
            "schema": reference(d, Flavor::V2),
        }));
        consumes.extend_from_slice(types);
    }
    let mut responses = Map::new();
    for code in op.codes {
        let text = match *code {
            "200" => "OK",
            "201" => "Created",
            _ => "Accepted",
        };
        let mut r = json!({"description": text});
        match op.response {
            Some(Response::Def(d)) => r["schema"] = reference(d, Flavor::V2),
            Some(Response::Text(_)) => r["schema"] = json!({"type": "string"}),
            None => {}
        }
        responses.insert(code.to_string(), r);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut out = json!({
        "operationId": op.id,
        "parameters": params,
        "produces": match op.response {
            Some(Response::Text(t)) => vec![t],
            _ => response_types().to_vec(),
        },
        "schemes": ["https"],
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": op.group, "version": op.version, "kind": op.kind},
    });
    if !consumes.is_empty() {
        out["consumes"] = json!(consumes);
    }
    out
}

/// The `paths` object of every served group/version.
pub fn paths(paths: &Paths) -> Value {
    assemble::paths_object(paths, operation)
}

/// The whole document from its `paths` object and its definitions, each
/// already serialized (name, JSON).
pub fn document<'a>(
    paths: &Value,
    definitions: impl Iterator<Item = (&'a str, &'a str)>,
    kube_version: &str,
) -> Vec<u8> {
    assemble::document(
        &["definitions"],
        definitions,
        ("swagger", "2.0"),
        paths,
        kube_version,
    )
}
