//! The text of an OpenAPI document (v2 or v3) from its parts: the
//! `paths` object, rendered by the version's own operation function, and
//! the schemas, which are kept as serialized JSON and spliced in rather
//! than parsed again. No knowledge of either version's operation shape.

use serde_json::{json, Map, Value};

use crate::paths::{Operation, Paths};

/// `{"<path>": {"<method>": <operation>}}` for every path.
pub(crate) fn paths_object(paths: &Paths, operation: fn(&Operation) -> Value) -> Value {
    let out: Map<String, Value> = paths
        .iter()
        .map(|(p, ops)| {
            let item: Map<String, Value> = ops
                .iter()
                .map(|op| (op.method.to_string(), operation(op)))
                .collect();
            (p.clone(), Value::Object(item))
        })
        .collect();
    Value::Object(out)
}

/// The document: the schemas (name, JSON) nested at `schemas_at`
/// (`["definitions"]`, `["components", "schemas"]`), then `info`, then
/// `paths` and the `spec` member (`swagger` or `openapi`) in key order.
pub(crate) fn document<'a>(
    schemas_at: &[&str],
    schemas: impl Iterator<Item = (&'a str, &'a str)>,
    spec: (&str, &str),
    paths: &Value,
    kube_version: &str,
) -> Vec<u8> {
    let mut out = String::new();
    for key in schemas_at {
        out.push('{');
        out.push_str(&Value::from(*key).to_string());
        out.push(':');
    }
    raw_object(&mut out, schemas);
    for _ in 1..schemas_at.len() {
        out.push('}');
    }
    out.push_str(r#","info":"#);
    out.push_str(&json!({"title": "Kubernetes", "version": kube_version}).to_string());
    let paths = ("paths", paths.to_string());
    let spec = (spec.0, Value::from(spec.1).to_string());
    let mut members = [paths, spec];
    members.sort();
    for (key, value) in members {
        out.push(',');
        out.push_str(&Value::from(key).to_string());
        out.push(':');
        out.push_str(&value);
    }
    out.push('}');
    out.into_bytes()
}

/// Appends a JSON object made of keys and values that are JSON text
/// already.
pub(crate) fn raw_object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(k).to_string());
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_nest_their_schemas_and_order_their_members() {
        let paths = json!({"/a": {}});
        let v2 = document(
            &["definitions"],
            [("x", "{}")].into_iter(),
            ("swagger", "2.0"),
            &paths,
            "v1",
        );
        assert_eq!(
            String::from_utf8(v2).unwrap(),
            r#"{"definitions":{"x":{}},"info":{"title":"Kubernetes","version":"v1"},"paths":{"/a":{}},"swagger":"2.0"}"#
        );
        let v3 = document(
            &["components", "schemas"],
            [("x", "{}"), ("y", "[]")].into_iter(),
            ("openapi", "3.0.0"),
            &paths,
            "v1",
        );
        assert_eq!(
            String::from_utf8(v3).unwrap(),
            r#"{"components":{"schemas":{"x":{},"y":[]}},"info":{"title":"Kubernetes","version":"v1"},"openapi":"3.0.0","paths":{"/a":{}}}"#
        );
    }
}
