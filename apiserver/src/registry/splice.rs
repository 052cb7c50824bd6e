//! Writes a stored object with its `resourceVersion` without decoding it:
//! finds the top-level `metadata` object in the JSON bytes and inserts the
//! field at its start. Stored objects never carry a `resourceVersion`
//! (`Registry::encode` strips it), so the result has exactly one. Pure.

/// Index of the first byte of the value of top-level key `key`.
fn top_level_value(obj: &[u8], key: &[u8]) -> Option<usize> {
    let n = obj.len();
    let mut depth = 0usize;
    let mut expecting_key = false;
    let mut i = 0;
    while i < n {
        match obj[i] {
            b'{' => {
                depth += 1;
                expecting_key = depth == 1;
                i += 1;
            }
            b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            b',' => {
                expecting_key = depth == 1;
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < n && obj[i] != b'"' {
                    if obj[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = i.min(n);
                i += 1;
                if depth == 1 && expecting_key {
                    expecting_key = false;
                    while i < n && obj[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if i < n && obj[i] == b':' {
                        i += 1;
                    }
                    while i < n && obj[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if &obj[start..end] == key {
                        return (i < n).then_some(i);
                    }
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Appends `obj` to `out` with `"resourceVersion":"<rv>"` first in its
/// metadata; false (and nothing appended) when `obj` has no metadata object.
pub fn append_with_resource_version(out: &mut Vec<u8>, obj: &[u8], rv: u64) -> bool {
    let Some(pos) = top_level_value(obj, b"metadata").filter(|p| obj[*p] == b'{') else {
        return false;
    };
    let rest = &obj[pos + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    out.extend_from_slice(&obj[..=pos]);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.to_string().as_bytes());
    out.push(b'"');
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn splice(v: &Value, rv: u64) -> Option<Value> {
        let mut out = Vec::new();
        append_with_resource_version(&mut out, &serde_json::to_vec(v).unwrap(), rv)
            .then(|| serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn inserts_into_top_level_metadata_only() {
        let v = json!({
            "apiVersion": "v1",
            "data": {"metadata": "{\"metadata\":{}}", "x": "a\"b"},
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "b"}},
            "spec": {"template": {"metadata": {"name": "inner"}}},
        });
        let out = splice(&v, 42).unwrap();
        assert_eq!(out["metadata"]["resourceVersion"], "42");
        assert_eq!(out["metadata"]["name"], "c");
        assert!(out["spec"]["template"]["metadata"]
            .get("resourceVersion")
            .is_none());
        assert_eq!(out["data"], v["data"]);
    }

    #[test]
    fn empty_metadata_and_missing_metadata() {
        assert_eq!(
            splice(&json!({"metadata": {}}), 7).unwrap(),
            json!({"metadata": {"resourceVersion": "7"}})
        );
        assert!(splice(&json!({"kind": "X"}), 7).is_none());
        assert!(splice(&json!({"metadata": "not an object"}), 7).is_none());
        let mut out = Vec::new();
        assert!(!append_with_resource_version(&mut out, b"{\"metadata\"", 1));
        assert!(out.is_empty());
    }

    #[test]
    fn metadata_inside_arrays_is_not_top_level() {
        let v = json!({"items": [{"metadata": {"name": "x"}}], "metadata": {"name": "top"}});
        let out = splice(&v, 3).unwrap();
        assert!(out["items"][0]["metadata"].get("resourceVersion").is_none());
        assert_eq!(out["metadata"]["resourceVersion"], "3");
    }
}
