//! Content negotiation at the HTTP edge: decoding request bodies (JSON or
//! protobuf) and choosing the response form (JSON, protobuf, Table,
//! PartialObjectMetadata) from the Accept header. No storage access.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult, Reason};
use crate::meta;

pub const JSON: &str = "application/json";
pub const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// The response form a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    Json,
    Protobuf,
    /// Server-side printing; `include_object` is None, Metadata or Object.
    Table {
        version: &'static str,
        include_object: String,
    },
    PartialMetadata {
        version: &'static str,
    },
}

struct MediaType<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn media_types(accept: &str) -> Vec<MediaType<'_>> {
    accept
        .split(',')
        .map(|part| {
            let mut it = part.split(';');
            let essence = it.next().unwrap_or("").trim();
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaType { essence, params }
        })
        .collect()
}

impl MediaType<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Picks the first acceptable form; `NotAcceptable` if none is.
pub fn response_form(headers: &HeaderMap, include_object: Option<&str>) -> ApiResult<Form> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Form::Json);
    }
    for mt in media_types(accept) {
        match mt.essence {
            "application/json" | "application/*" | "*/*" => match mt.param("as") {
                None => return Ok(Form::Json),
                Some("Table") if mt.param("g") == Some("meta.k8s.io") => {
                    let version = match mt.param("v") {
                        Some("v1") => "v1",
                        Some("v1beta1") => "v1beta1",
                        _ => continue,
                    };
                    let include = include_object.unwrap_or("Metadata").to_string();
                    return Ok(Form::Table {
                        version,
                        include_object: include,
                    });
                }
                Some("PartialObjectMetadata") | Some("PartialObjectMetadataList")
                    if mt.param("g") == Some("meta.k8s.io") =>
                {
                    let version = if mt.param("v") == Some("v1beta1") {
                        "v1beta1"
                    } else {
                        "v1"
                    };
                    return Ok(Form::PartialMetadata { version });
                }
                _ => continue,
            },
            "application/vnd.kubernetes.protobuf" if mt.param("as").is_none() => {
                return Ok(Form::Protobuf)
            }
            "application/yaml" => return Ok(Form::Json),
            _ => continue,
        }
    }
    Err(ApiError::new(Reason::NotAcceptable, format!("only the following media types are accepted: {JSON}, {TABLE_V1}, application/vnd.kubernetes.protobuf")))
}

/// Whether the request body is protobuf (by its Content-Type).
pub fn is_protobuf_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .starts_with("application/vnd.kubernetes.protobuf")
        })
}

/// Decodes a request body by its Content-Type.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(JSON);
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" | "" | "application/json-patch+json" | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => parse_json(body),
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(body).map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))
        }
        other => Err(ApiError::new(
            Reason::UnsupportedMediaType,
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf (got {other})"),
        )),
    }
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    bytes_response(
        code,
        JSON,
        serde_json::to_vec(v).expect("JSON values always serialize"),
    )
}

pub fn bytes_response(code: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(JSON)),
    );
    r
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut r = json_response(err.code(), &err.to_status());
    if let Some(s) = err.details.as_ref().and_then(|d| d.retry_after_seconds) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// Encodes an object (or list) in the requested form. `kind` is the printer
/// kind for Tables.
pub fn object_response(code: u16, form: &Form, kind: &str, obj: &Value) -> Response<Body> {
    match form {
        Form::Json => json_response(code, obj),
        Form::Protobuf => match crate::protobuf::encode(obj) {
            Ok(bytes) => bytes_response(code, crate::protobuf::CONTENT_TYPE, bytes),
            Err(_) => json_response(code, obj),
        },
        Form::Table {
            version,
            include_object,
        } => {
            let t = to_table(version, kind, obj, include_object, true);
            bytes_response(
                code,
                &format!("application/json;as=Table;v={version};g=meta.k8s.io"),
                serde_json::to_vec(&t).expect("json"),
            )
        }
        Form::PartialMetadata { version } => {
            let v = to_partial_metadata(version, obj);
            let as_ = if obj.get("items").is_some() {
                "PartialObjectMetadataList"
            } else {
                "PartialObjectMetadata"
            };
            bytes_response(
                code,
                &format!("application/json;as={as_};v={version};g=meta.k8s.io"),
                serde_json::to_vec(&v).expect("json"),
            )
        }
    }
}

fn partial(version: &str, obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn to_partial_metadata(version: &str, obj: &Value) -> Value {
    match obj.get("items").and_then(Value::as_array) {
        Some(items) => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": format!("meta.k8s.io/{version}"),
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            "items": items.iter().map(|i| partial(version, i)).collect::<Vec<_>>(),
        }),
        None => partial(version, obj),
    }
}

/// Builds a meta.k8s.io Table for one object or a list of them.
pub fn to_table(
    version: &str,
    kind: &str,
    obj: &Value,
    include_object: &str,
    with_columns: bool,
) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let (items, list_meta): (Vec<&Value>, Value) = match obj.get("items").and_then(Value::as_array)
    {
        Some(items) => (
            items.iter().collect(),
            obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        ),
        None => (
            vec![obj],
            json!({"resourceVersion": meta::str_at(obj, &["metadata", "resourceVersion"]).unwrap_or("")}),
        ),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = Map::new();
            row.insert(
                "cells".into(),
                Value::Array(crate::printers::row(kind, item, now)),
            );
            match include_object {
                "None" => {}
                "Object" => {
                    row.insert("object".into(), (*item).clone());
                }
                _ => {
                    row.insert("object".into(), partial(version, item));
                }
            }
            Value::Object(row)
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "rows": rows,
    });
    if with_columns {
        let cols: Vec<Value> = crate::printers::columns(kind)
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
            })
            .collect();
        table["columnDefinitions"] = Value::Array(cols);
    } else {
        table["columnDefinitions"] = Value::Null;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn kubectl_table_accept_header_picks_table_v1() {
        let h = headers("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
        assert_eq!(
            response_form(&h, None).unwrap(),
            Form::Table {
                version: "v1",
                include_object: "Metadata".into()
            }
        );
    }

    #[test]
    fn protobuf_first_then_json() {
        let h = headers("application/vnd.kubernetes.protobuf,application/json");
        assert_eq!(response_form(&h, None).unwrap(), Form::Protobuf);
        assert_eq!(
            response_form(&headers("text/html"), None)
                .unwrap_err()
                .code(),
            406
        );
    }

    #[test]
    fn bodies_by_content_type() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(decode_body(&h, b"{}").unwrap_err().code(), 415);
        assert_eq!(
            decode_body(&HeaderMap::new(), b"{not json")
                .unwrap_err()
                .code(),
            400
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            decode_body(&HeaderMap::new(), deep.as_bytes())
                .unwrap_err()
                .code(),
            400
        );
    }
}
