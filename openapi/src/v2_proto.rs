//! The v2 document in the protobuf encoding client-go asks for
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): the
//! `openapi.v2.Document` message of gnostic's OpenAPIv2.proto, written from
//! the JSON document. Vendor extensions travel as `Any.yaml` strings (JSON
//! text is YAML), the way gnostic itself stores them.

use serde_json::{Map, Value};

/// A message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            self.string(field, s.as_str().unwrap_or(""));
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `Any { yaml }`.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

/// `repeated NamedAny vendor_extension` for every `x-` key.
fn extensions(out: &mut Msg, field: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.msg(2, any(v));
        out.msg(field, named);
    }
}

fn schema(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Some(m) = v.as_object() else { return out };
    out.string(1, str_of(m, "$ref"));
    out.string(2, str_of(m, "format"));
    out.string(3, str_of(m, "title"));
    out.string(4, str_of(m, "description"));
    if let Some(d) = m.get("default") {
        out.msg(5, any(d));
    }
    let num = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    out.double(6, num("multipleOf"));
    out.double(7, num("maximum"));
    out.boolean(8, flag("exclusiveMaximum"));
    out.double(9, num("minimum"));
    out.boolean(10, flag("exclusiveMinimum"));
    out.int64(11, int("maxLength"));
    out.int64(12, int("minLength"));
    out.string(13, str_of(m, "pattern"));
    out.int64(14, int("maxItems"));
    out.int64(15, int("minItems"));
    out.boolean(16, flag("uniqueItems"));
    out.int64(17, int("maxProperties"));
    out.int64(18, int("minProperties"));
    out.strings(19, m.get("required"));
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.msg(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            out.msg(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.msg(1, schema(s));
            out.msg(21, item);
        }
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            item.string(1, t);
            out.msg(22, item);
        }
        Some(t @ Value::Array(_)) => {
            let mut item = Msg::default();
            item.strings(1, Some(t));
            out.msg(22, item);
        }
        _ => {}
    }
    if let Some(items) = m.get("items") {
        let mut item = Msg::default();
        match items {
            Value::Array(a) => a.iter().for_each(|s| item.msg(1, schema(s))),
            s => item.msg(1, schema(s)),
        }
        out.msg(23, item);
    }
    for s in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.msg(24, schema(s));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, s) in props {
            p.msg(1, named(name, schema(s)));
        }
        out.msg(25, p);
    }
    out.string(26, str_of(m, "discriminator"));
    out.boolean(27, flag("readOnly"));
    extensions(&mut out, 31, m);
    out
}

fn named(name: &str, value: Msg) -> Msg {
    let mut n = Msg::default();
    n.string(1, name);
    n.msg(2, value);
    n
}

fn parameter(v: &Value) -> Msg {
    let Some(m) = v.as_object() else {
        return Msg::default();
    };
    let mut param = Msg::default();
    if str_of(m, "in") == "body" {
        let mut body = Msg::default();
        body.string(1, str_of(m, "description"));
        body.string(2, str_of(m, "name"));
        body.string(3, "body");
        body.boolean(
            4,
            m.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        body.msg(5, schema(&m["schema"]));
        param.msg(1, body);
    } else {
        // Query (field 3) and path (field 4) sub-schemas share their first
        // fields; `type` is 6 for query, 5 for path.
        let path = str_of(m, "in") == "path";
        let mut sub = Msg::default();
        sub.boolean(
            1,
            m.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        sub.string(2, str_of(m, "in"));
        sub.string(3, str_of(m, "description"));
        sub.string(4, str_of(m, "name"));
        sub.string(if path { 5 } else { 6 }, str_of(m, "type"));
        let mut non_body = Msg::default();
        non_body.msg(if path { 4 } else { 3 }, sub);
        param.msg(2, non_body);
    }
    let mut item = Msg::default();
    item.msg(1, param);
    item
}

fn operation(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Some(m) = v.as_object() else { return out };
    out.string(2, str_of(m, "summary"));
    out.string(3, str_of(m, "description"));
    out.string(5, str_of(m, "operationId"));
    out.strings(6, m.get("produces"));
    out.strings(7, m.get("consumes"));
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.msg(8, parameter(p));
    }
    let mut responses = Msg::default();
    for (code, r) in m
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut response = Msg::default();
        response.string(1, r["description"].as_str().unwrap_or(""));
        if let Some(s) = r.get("schema") {
            let mut item = Msg::default();
            item.msg(1, schema(s));
            response.msg(2, item);
        }
        let mut value = Msg::default();
        value.msg(1, response);
        responses.msg(1, named(code, value));
    }
    out.msg(9, responses);
    out.strings(10, m.get("schemes"));
    extensions(&mut out, 13, m);
    out
}

fn path_item(v: &Value) -> Msg {
    let mut out = Msg::default();
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = v.get(method) {
            out.msg(field, operation(op));
        }
    }
    out
}

/// One entry of `Definitions`: the `NamedSchema` of a v2 definition.
pub fn named_schema(name: &str, v: &Value) -> Vec<u8> {
    named(name, schema(v)).0
}

/// The `Document`: info, the paths of the v2 `paths` object and the
/// definitions encoded by [`named_schema`].
pub fn encode<'a>(
    kube_version: &str,
    paths: &Value,
    definitions: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut out = Msg::default();
    out.string(1, "2.0");
    let mut info = Msg::default();
    info.string(1, "Kubernetes");
    info.string(2, kube_version);
    out.msg(2, info);
    let mut p = Msg::default();
    for (path, item) in paths.as_object().into_iter().flatten() {
        p.msg(2, named(path, path_item(item)));
    }
    out.msg(8, p);
    let mut defs = Msg::default();
    for d in definitions {
        defs.bytes(1, d);
    }
    out.msg(9, defs);
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_header_and_definition_layout() {
        let a = named_schema("A", &json!({"type": "object", "required": ["x"]}));
        let b = encode("v1", &json!({}), [a.as_slice()].into_iter());
        // swagger = "2.0"
        assert_eq!(&b[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // info: title and version
        assert_eq!(b[5], 0x12);
        let info_len = b[6] as usize;
        assert_eq!(&b[7..9], &[0x0a, 10]);
        let rest = &b[7 + info_len..];
        // empty paths, then definitions holding one NamedSchema "A"
        assert_eq!(&rest[..2], &[0x42, 0]);
        assert_eq!(rest[2], 0x4a);
        let defs = &rest[4..];
        assert_eq!(defs[0], 0x0a);
        assert_eq!(&defs[2..5], &[0x0a, 1, b'A']);
        // Schema: required (19, wire 2 → 0x9a 0x01) and type (22 → 0xb2 0x01)
        let s = &defs[7..];
        assert_eq!(&s[..3], &[0x9a, 0x01, 1]);
        assert_eq!(&s[4..6], &[0xb2, 0x01]);
    }
}
