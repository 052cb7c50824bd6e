//! Resource requests: maps (method, path, query) to a generic-store verb and
//! encodes the answer. Every error becomes a `Status` here, once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Response};
use futures::StreamExt;
use serde_json::json;

use super::negotiate::{self, Form};
use super::request_info::ResourcePath;
use super::ApiServer;
use crate::error::{ApiError, ApiResult, Reason};
use crate::registry::options::{self, DeleteOptions, FieldValidation, ListOptions, WriteOptions};
use crate::registry::patch::PatchType;
use crate::registry::store::Part;
use crate::registry::strategy::Strategy;
use crate::registry::watch::WatchItem;
use crate::selector::field::FieldSelector;
use crate::selector::label::LabelSelector;
use crate::validation::field_error::FieldError;

/// Query parameters; repeated keys keep every value.
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded_pairs(q.unwrap_or("")) {
            map.entry(k).or_default().push(v);
        }
        Query(map)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .get(k)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }
    fn flag(&self, k: &str) -> ApiResult<bool> {
        match self.get(k) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid value {other:?} for {k}: must be true or false"
            ))),
        }
    }
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn list_options(q: &Query) -> ApiResult<ListOptions> {
    let label_selector = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let field_selector = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = match q.get("limit") {
        None | Some("") => None,
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
        ),
    };
    let timeout_seconds = match q.get("timeoutSeconds") {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        ),
    };
    let send_initial_events = match q.get("sendInitialEvents") {
        None | Some("") => None,
        Some(_) => Some(q.flag("sendInitialEvents")?),
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit,
        continue_token: q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(String::from),
        resource_version: options::parse_resource_version(q.get("resourceVersion"))?,
        resource_version_match: options::parse_rv_match(q.get("resourceVersionMatch"))?,
        allow_bookmarks: q.flag("allowWatchBookmarks")?,
        send_initial_events,
        timeout_seconds,
    })
}

fn write_options(q: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<WriteOptions> {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let field_validation = FieldValidation::parse(q.get("fieldValidation"))?;
    let json = !negotiate::is_protobuf_body(headers);
    let duplicate_fields = if field_validation != FieldValidation::Ignore && json {
        super::duplicate_fields::duplicate_fields(body)
    } else {
        Vec::new()
    };
    Ok(WriteOptions {
        dry_run: options::parse_dry_run(&q.all("dryRun"))?,
        field_validation,
        duplicate_fields,
        field_manager: Some(options::field_manager(q.get("fieldManager"), user_agent)?),
        force: q.flag("force")?,
        ..Default::default()
    })
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        // A quoted-string: quotes and backslashes escaped (RFC 9110).
        let quoted = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

pub async fn handle(
    server: &Arc<ApiServer>,
    method: &Method,
    path: ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response<Body>> {
    let form = negotiate::response_form(headers, query.get("includeObject"))?;
    if path.group.is_empty() && path.version == "v1" && path.resource == "componentstatuses" {
        return super::health::component_statuses(server, method, &path, &form).await;
    }
    if path.group == super::authz::GROUP && path.version == "v1" {
        return super::authz::handle(
            method,
            &path,
            negotiate::decode_body(headers, &body)?,
            &form,
        );
    }
    let registry = &server.registry;
    let strategy = registry
        .find(&path.group, &path.version, &path.resource)
        .ok_or_else(|| {
            ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            )
        })?;
    let d = strategy.descriptor();
    if d.namespaced != path.namespace.is_some()
        && !(d.namespaced && path.name.is_none() && *method == Method::GET)
    {
        if d.namespaced {
            return Err(ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            ));
        }
        return Err(ApiError::new(
            Reason::NotFound,
            format!(
                "the server could not find the requested resource ({} is not namespaced)",
                d.resource
            ),
        ));
    }
    if d.kind == "Binding" {
        return match *method {
            Method::POST => {
                let obj = negotiate::decode_body(headers, &body)?;
                let out = server
                    .registry
                    .bind(
                        path.namespace.as_deref(),
                        None,
                        obj,
                        &write_options(query, headers, &body)?,
                    )
                    .await?;
                Ok(negotiate::object_response(201, &form, "Status", &out))
            }
            _ => Err(ApiError::method_not_allowed(method.as_str(), d.resource)),
        };
    }
    let ns = path.namespace.as_deref();
    // Printers know non-core kinds as "group/Kind".
    let printer_kind = crate::selector::kind_id(d.group, d.kind);
    let kind = printer_kind.as_str();
    match (&path.name, &path.subresource) {
        (None, None) => match *method {
            Method::GET => {
                let opts = list_options(query)?;
                if query.flag("watch")? {
                    return watch_response(server, &strategy, ns, &opts, &form).await;
                }
                if form == Form::Json {
                    let body = registry.list_json(&strategy, ns, &opts).await?;
                    return Ok(negotiate::bytes_response(200, negotiate::JSON, body));
                }
                let list = registry.list(&strategy, ns, &opts).await?;
                Ok(negotiate::object_response(200, &form, kind, &list))
            }
            Method::POST => {
                let obj = negotiate::decode_body(headers, &body)?;
                let (out, warnings) = registry
                    .create(
                        strategy.as_ref(),
                        ns,
                        obj,
                        &write_options(query, headers, &body)?,
                    )
                    .await?;
                Ok(with_warnings(
                    negotiate::object_response(201, &form, kind, &out),
                    &warnings,
                ))
            }
            Method::DELETE => {
                let opts = delete_options(query, headers, &body)?;
                let list_opts = list_options(query)?;
                let out = registry
                    .delete_collection(&strategy, ns, &list_opts, &opts)
                    .await?;
                Ok(negotiate::object_response(200, &form, kind, &out))
            }
            _ => Err(ApiError::method_not_allowed(method.as_str(), d.resource)),
        },
        (Some(name), None) => match *method {
            Method::GET => {
                if query.flag("watch")? {
                    let mut opts = list_options(query)?;
                    opts.field_selector =
                        FieldSelector::parse(&format!("metadata.name={}", escape_field(name)))
                            .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    return watch_response(server, &strategy, ns, &opts, &form).await;
                }
                let obj = registry.get(strategy.as_ref(), ns, name).await?;
                Ok(negotiate::object_response(200, &form, kind, &obj))
            }
            Method::PUT => {
                let obj = negotiate::decode_body(headers, &body)?;
                let (out, warnings) = registry
                    .update(
                        strategy.as_ref(),
                        ns,
                        name,
                        Part::Main,
                        obj,
                        &write_options(query, headers, &body)?,
                    )
                    .await?;
                Ok(with_warnings(
                    negotiate::object_response(200, &form, kind, &out),
                    &warnings,
                ))
            }
            Method::PATCH => {
                patch(
                    server,
                    strategy.as_ref(),
                    ns,
                    name,
                    Part::Main,
                    query,
                    headers,
                    &body,
                    &form,
                )
                .await
            }
            Method::DELETE => {
                let opts = delete_options(query, headers, &body)?;
                let (out, removed) = registry.delete(strategy.as_ref(), ns, name, &opts).await?;
                if removed && !strategy.returns_deleted_object() {
                    let status = crate::registry::store::deleted_status(d, &out);
                    return Ok(negotiate::object_response(200, &form, "Status", &status));
                }
                Ok(negotiate::object_response(200, &form, kind, &out))
            }
            _ => Err(ApiError::method_not_allowed(method.as_str(), d.resource)),
        },
        (Some(name), Some(sub)) => {
            let Some(subres) = d.subresources.iter().find(|s| s.name == sub) else {
                return Err(ApiError::new(
                    Reason::NotFound,
                    "the server could not find the requested resource",
                ));
            };
            match (sub.as_str(), method.clone()) {
                ("log", Method::GET) => {
                    super::node_proxy::pod_log(
                        registry,
                        server.kubelet_tls.clone(),
                        ns.unwrap_or("default"),
                        name,
                        query,
                    )
                    .await
                }
                ("status", Method::GET) => {
                    let obj = registry.get(strategy.as_ref(), ns, name).await?;
                    Ok(negotiate::object_response(200, &form, kind, &obj))
                }
                ("status", Method::PUT) | ("finalize", Method::PUT) => {
                    let obj = negotiate::decode_body(headers, &body)?;
                    let part = if sub == "status" {
                        Part::Status
                    } else {
                        Part::Main
                    };
                    let (out, warnings) = if sub == "finalize" {
                        registry
                            .finalize_namespace(
                                name,
                                obj,
                                &WriteOptions {
                                    subresource: "finalize",
                                    ..write_options(query, headers, &body)?
                                },
                            )
                            .await?
                    } else {
                        registry
                            .update(
                                strategy.as_ref(),
                                ns,
                                name,
                                part,
                                obj,
                                &write_options(query, headers, &body)?,
                            )
                            .await?
                    };
                    Ok(with_warnings(
                        negotiate::object_response(200, &form, kind, &out),
                        &warnings,
                    ))
                }
                ("status", Method::PATCH) => {
                    patch(
                        server,
                        strategy.as_ref(),
                        ns,
                        name,
                        Part::Status,
                        query,
                        headers,
                        &body,
                        &form,
                    )
                    .await
                }
                ("scale", Method::GET) => {
                    let scale = registry.get_scale(strategy.as_ref(), ns, name).await?;
                    Ok(negotiate::object_response(200, &form, "Scale", &scale))
                }
                ("scale", Method::PUT) | ("scale", Method::PATCH) => {
                    let body_v = negotiate::decode_body(headers, &body)?;
                    let patch_type = if *method == Method::PATCH {
                        Some(patch_type(headers)?)
                    } else {
                        None
                    };
                    let scale = registry
                        .update_scale(
                            strategy.as_ref(),
                            ns,
                            name,
                            patch_type,
                            body_v,
                            &WriteOptions {
                                subresource: "scale",
                                ..write_options(query, headers, &body)?
                            },
                        )
                        .await?;
                    Ok(negotiate::object_response(200, &form, "Scale", &scale))
                }
                ("binding", Method::POST) => {
                    let obj = negotiate::decode_body(headers, &body)?;
                    let out = registry
                        .bind(ns, Some(name), obj, &write_options(query, headers, &body)?)
                        .await?;
                    Ok(negotiate::object_response(201, &form, "Status", &out))
                }
                ("eviction", Method::POST) => {
                    let obj = negotiate::decode_body(headers, &body)?;
                    let (code, out) = registry
                        .evict(ns, name, obj, &write_options(query, headers, &body)?)
                        .await?;
                    Ok(negotiate::object_response(code, &form, "Status", &out))
                }
                _ => Err(ApiError::method_not_allowed(
                    method.as_str(),
                    &format!("{}/{}", d.resource, subres.name),
                )),
            }
        }
        (None, Some(_)) => Err(ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )),
    }
}

fn escape_field(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Server-side apply's media type (YAML or JSON bodies).
fn is_apply(headers: &HeaderMap) -> bool {
    content_type(headers).split(';').next().unwrap_or("").trim() == "application/apply-patch+yaml"
}

fn patch_type(headers: &HeaderMap) -> ApiResult<PatchType> {
    let ct = content_type(headers);
    PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            Reason::UnsupportedMediaType,
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"),
        )
    })
}

/// An apply body: YAML, of which JSON is a subset.
fn parse_apply_body(body: &[u8]) -> ApiResult<serde_json::Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

#[allow(clippy::too_many_arguments)]
async fn patch(
    server: &Arc<ApiServer>,
    strategy: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    part: Part,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    form: &Form,
) -> ApiResult<Response<Body>> {
    // Upstream validates the PatchOptions first: apply needs a manager,
    // only apply may force.
    let apply = is_apply(headers);
    let option_errs: Vec<FieldError> = match apply {
        true if query.get("fieldManager").is_none_or(str::is_empty) => vec![FieldError::required(
            "fieldManager",
            "is required for apply patch",
        )],
        false if query.get("force").is_some() => vec![FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        )],
        _ => Vec::new(),
    };
    if !option_errs.is_empty() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            &option_errs,
        ));
    }
    if apply {
        let config = parse_apply_body(body)?;
        let (out, warnings, created) = server
            .registry
            .apply(
                strategy,
                ns,
                name,
                part,
                config,
                &write_options(query, headers, body)?,
            )
            .await?;
        let code = if created { 201 } else { 200 };
        return Ok(with_warnings(
            negotiate::object_response(code, form, strategy.descriptor().kind, &out),
            &warnings,
        ));
    }
    let pt = patch_type(headers)?;
    let patch_body = negotiate::parse_json(body)?;
    let (out, warnings) = server
        .registry
        .patch(
            strategy,
            ns,
            name,
            part,
            (pt, &patch_body),
            &write_options(query, headers, body)?,
        )
        .await?;
    Ok(with_warnings(
        negotiate::object_response(200, form, strategy.descriptor().kind, &out),
        &warnings,
    ))
}

fn delete_options(query: &Query, headers: &HeaderMap, body: &Bytes) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions {
        dry_run: options::parse_dry_run(&query.all("dryRun"))?,
        ..Default::default()
    };
    if let Some(g) = query.get("gracePeriodSeconds").filter(|g| !g.is_empty()) {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if let Some(p) = query.get("propagationPolicy").filter(|p| !p.is_empty()) {
        opts.propagation = Some(options::parse_propagation(p)?);
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v = negotiate::decode_body(headers, body)?;
        opts.merge_body(&v)?;
    }
    Ok(opts)
}

/// Streams watch events as newline-delimited JSON (or Tables, or protobuf
/// frames) until the client goes away, the timeout passes, or the watch
/// fails.
async fn watch_response(
    server: &Arc<ApiServer>,
    strategy: &Arc<dyn Strategy>,
    ns: Option<&str>,
    opts: &ListOptions,
    form: &Form,
) -> ApiResult<Response<Body>> {
    let d = strategy.descriptor();
    let events = server
        .registry
        .watch(strategy, ns, opts, *form == Form::Json)
        .await?;
    let timeout = std::time::Duration::from_secs(
        opts.timeout_seconds
            .unwrap_or(server.config_watch_timeout_secs),
    );
    let kind = d.kind;
    let printer_kind = crate::selector::kind_id(d.group, d.kind);
    let api_version = d.group_version();
    let form = form.clone();
    let protobuf = form == Form::Protobuf && crate::protobuf::supports(&api_version, kind);
    let mut first_table = true;
    let stream = events
        .take_until(tokio::time::sleep(timeout))
        .map(move |item| {
            let (event_type, object) = match item {
                WatchItem::RawEvent { kind: t, json } => {
                    let mut line = Vec::with_capacity(json.len() + 32);
                    line.extend_from_slice(b"{\"type\":\"");
                    line.extend_from_slice(t.as_bytes());
                    line.extend_from_slice(b"\",\"object\":");
                    line.extend_from_slice(&json);
                    line.extend_from_slice(b"}\n");
                    return Ok::<_, std::convert::Infallible>(Bytes::from(line));
                }
                WatchItem::Event {
                    kind: t,
                    mut object,
                } => {
                    if let Some(m) = object.as_object_mut() {
                        m.insert("kind".into(), json!(kind));
                        m.insert("apiVersion".into(), json!(api_version));
                    }
                    let object = match &form {
                        Form::Table {
                            version,
                            include_object,
                        } => {
                            let t = negotiate::to_table(
                                version,
                                &printer_kind,
                                &object,
                                include_object,
                                first_table,
                            );
                            first_table = false;
                            t
                        }
                        _ => object,
                    };
                    (t, object)
                }
                WatchItem::Bookmark {
                    revision,
                    initial_events_end,
                } => {
                    let mut meta = json!({"resourceVersion": revision.to_string()});
                    if initial_events_end {
                        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                    }
                    (
                        "BOOKMARK",
                        json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
                    )
                }
                WatchItem::Error(e) => ("ERROR", e.to_status()),
            };
            if protobuf {
                // A protobuf stream must stay protobuf: an object that cannot be
                // encoded becomes an ERROR event the client can read.
                let frame = crate::protobuf::encode_watch_event(event_type, &object).or_else(|e| {
                    let status =
                        ApiError::internal(format!("cannot encode watch event: {e}")).to_status();
                    crate::protobuf::encode_watch_event("ERROR", &status)
                });
                return Ok::<_, std::convert::Infallible>(Bytes::from(frame.unwrap_or_default()));
            }
            let mut line =
                serde_json::to_vec(&json!({"type": event_type, "object": object})).expect("json");
            line.push(b'\n');
            Ok(Bytes::from(line))
        });
    let content_type = if protobuf {
        "application/vnd.kubernetes.protobuf;stream=watch"
    } else {
        "application/json"
    };
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&dryRun=All&dryRun=All&x=%zz",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.all("dryRun").len(), 2);
        assert_eq!(q.get("x"), Some("%zz"));
    }

    #[test]
    fn bad_list_options_are_400() {
        assert_eq!(
            list_options(&Query::parse(Some("limit=abc")))
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            list_options(&Query::parse(Some("resourceVersion=x")))
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            list_options(&Query::parse(Some("allowWatchBookmarks=maybe")))
                .unwrap_err()
                .code(),
            400
        );
    }
}
