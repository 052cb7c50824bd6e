//! The OpenAPI v2 document at `/openapi/v2`. kubectl downloads it before
//! client-side validation and accepts a document without definitions (it
//! then skips client-side schema checks for those kinds and relies on
//! server-side field validation, advertised in the v3 documents).
//! Schemas arrive with the OpenAPI step; this document is structurally
//! valid and honest about being empty.

use serde_json::{json, Value};

/// What clients ask for in Accept.
pub const PROTOBUF_MIME: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// What the response says it is: `@` is not allowed in a media type token,
/// and Go's MIME parser (kubectl's) rejects it, so the version is dotted.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const TITLE: &str = "Kubernetes";

pub fn document_json(version: &str) -> Value {
    json!({"swagger": "2.0", "info": {"title": TITLE, "version": version}, "paths": {}, "definitions": {}})
}

fn put_string(out: &mut Vec<u8>, field: u8, s: &str) {
    out.push((field << 3) | 2);
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The same document in the protobuf encoding of the OpenAPI v2 message
/// (field 1 `swagger`, field 2 `info` with `title` = 1 and `version` = 2).
pub fn document_protobuf(version: &str) -> Vec<u8> {
    let mut info = Vec::new();
    put_string(&mut info, 1, TITLE);
    put_string(&mut info, 2, version);
    let mut doc = Vec::new();
    put_string(&mut doc, 1, "2.0");
    doc.push((2 << 3) | 2);
    put_varint(&mut doc, info.len() as u64);
    doc.extend_from_slice(&info);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_document_layout() {
        let b = document_protobuf("v1");
        assert_eq!(&b[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(b[5], 0x12);
        assert_eq!(b[6] as usize, b.len() - 7);
    }
}
