//! Read-only accessors over the JSON object model and field-path builders.
//!
//! Validation works on `serde_json::Value` rather than typed structs, so every rule
//! needs the same tolerant lookups: an absent field, an explicit `null` and a value of
//! the wrong JSON type all read as "unset". Type errors are the decoder's business
//! (upstream rejects them with 400 before validation runs), not validation's.

use serde_json::{Map, Value};

/// The field `key` of `v` if it is present and not null.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The string field `key`, or "" when unset (Go's zero value).
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The string field `key` when present as a string.
pub fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The array field `key`, or an empty slice.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object field `key` when present as an object.
pub fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The integer field `key` when present as an integral number.
pub fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The boolean field `key` when present.
pub fn boolean(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// A shared empty object so callers can treat a missing sub-object as `{}`.
pub fn empty() -> &'static Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Value::Object(Map::new()))
}

/// The object field `key`, or `{}` when unset.
pub fn sub<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v.get(key) {
        Some(x) if x.is_object() => x,
        _ => empty(),
    }
}

/// `path.name` (or `name` at the root).
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `path[i]`
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path[key]` — upstream does not quote map keys in paths.
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}
