//! Health (`/healthz`, `/livez`, `/readyz`, with `?verbose`), `/version`, and
//! the computed ComponentStatus list behind `kubectl get cs`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Response};
use serde_json::{json, Value};

use super::handlers::Query;
use super::negotiate::{self, bytes_response, json_response, Form};
use super::request_info::ResourcePath;
use super::ApiServer;
use crate::error::{ApiError, ApiResult, Reason};

/// The Kubernetes version whose API rkube serves.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const GIT_VERSION: &str = "v1.33.0-rkube";

fn text(code: u16, body: String) -> Response<Body> {
    bytes_response(code, "text/plain; charset=utf-8", body.into_bytes())
}

fn checks_response(
    checks: &[(&str, Result<(), String>)],
    verbose: bool,
    name: &str,
) -> Response<Body> {
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    if !verbose {
        return if ok {
            text(200, "ok".into())
        } else {
            let mut out = String::new();
            for (n, r) in checks {
                if let Err(e) = r {
                    out.push_str(&format!("[-]{n} failed: {e}\n"));
                }
            }
            out.push_str(&format!("{name} check failed"));
            text(500, out)
        };
    }
    let mut out = String::new();
    for (n, r) in checks {
        match r {
            Ok(()) => out.push_str(&format!("[+]{n} ok\n")),
            Err(e) => out.push_str(&format!("[-]{n} failed: {e}\n")),
        }
    }
    out.push_str(&if ok {
        format!("{name} check passed\n")
    } else {
        format!("{name} check failed\n")
    });
    text(if ok { 200 } else { 500 }, out)
}

async fn storage_check(server: &ApiServer) -> Result<(), String> {
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        server.registry.storage.current_revision(),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("storage did not answer within 2s".into()),
    }
}

/// Answers health and version paths; `None` for anything else.
pub async fn handle(server: &Arc<ApiServer>, path: &str, query: &Query) -> Option<Response<Body>> {
    let verbose = query.get("verbose").is_some();
    match path {
        "/version" | "/version/" => Some(json_response(200, &version())),
        "/livez" | "/healthz" => Some(checks_response(
            &[("ping", Ok(())), ("log", Ok(()))],
            verbose,
            &path[1..],
        )),
        "/readyz" => {
            let storage = storage_check(server).await;
            let bootstrap = if server.is_ready() {
                Ok(())
            } else {
                Err("bootstrap objects are not created yet".to_string())
            };
            let checks = [
                ("ping", Ok(())),
                ("storage", storage),
                ("bootstrap", bootstrap),
            ];
            Some(checks_response(&checks, verbose, "readyz"))
        }
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            let check = p.rsplit('/').next().unwrap_or("");
            let result = match check {
                "ping" | "log" => Ok(()),
                "storage" | "etcd" => storage_check(server).await,
                _ => return Some(text(404, format!("no such health check: {check}"))),
            };
            Some(match result {
                Ok(()) => text(200, "ok".into()),
                Err(e) => text(500, format!("[-]{check} failed: {e}")),
            })
        }
        _ => None,
    }
}

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

fn component(name: &str, healthy: Result<String, String>) -> Value {
    let condition = match healthy {
        Ok(message) => json!({"type": "Healthy", "status": "True", "message": message}),
        Err(error) => {
            json!({"type": "Healthy", "status": "False", "message": error.clone(), "error": error})
        }
    };
    json!({"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name}, "conditions": [condition]})
}

async fn components(server: &Arc<ApiServer>) -> Vec<Value> {
    // "embedded+watch-cache" → the datastore itself.
    let storage_name = server
        .registry
        .storage
        .name()
        .split('+')
        .next()
        .unwrap_or("")
        .to_string();
    let storage = storage_check(server).await.map(|()| "ok".to_string());
    let datastore = if storage_name == "etcd" {
        "etcd-0".to_string()
    } else {
        format!("{storage_name}-store")
    };
    vec![
        component(
            "controller-manager",
            leader_health(server, "kube-controller-manager").await,
        ),
        component("scheduler", leader_health(server, "kube-scheduler").await),
        component(&datastore, storage),
    ]
}

/// A component is healthy while some instance holds its leader-election
/// Lease (in kube-system) and keeps renewing it.
async fn leader_health(server: &Arc<ApiServer>, lease: &str) -> Result<String, String> {
    let kind = server
        .registry
        .find("coordination.k8s.io", "v1", "leases")
        .ok_or("leases are not served")?;
    let obj = server
        .registry
        .get(kind.as_ref(), Some("kube-system"), lease)
        .await
        .map_err(|_| format!("no instance holds the {lease} lease"))?;
    lease_freshness(&obj, time::OffsetDateTime::now_utc())
}

/// `Ok` when the Lease's holder renewed it within its duration.
pub fn lease_freshness(lease: &Value, now: time::OffsetDateTime) -> Result<String, String> {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap_or("");
    let renewed = spec["renewTime"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .ok_or("the lease was never renewed")?;
    let duration = time::Duration::seconds(spec["leaseDurationSeconds"].as_i64().unwrap_or(15));
    if holder.is_empty() || renewed + duration < now {
        return Err(format!("the leader ({holder}) stopped renewing its lease"));
    }
    Ok("ok".into())
}

pub async fn component_statuses(
    server: &Arc<ApiServer>,
    method: &Method,
    path: &ResourcePath,
    form: &Form,
) -> ApiResult<Response<Body>> {
    if *method != Method::GET {
        return Err(ApiError::method_not_allowed(
            method.as_str(),
            "componentstatuses",
        ));
    }
    if path.subresource.is_some() || path.namespace.is_some() {
        return Err(ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        ));
    }
    let all = components(server).await;
    match &path.name {
        Some(name) => {
            let c = all
                .into_iter()
                .find(|c| c["metadata"]["name"] == name.as_str())
                .ok_or_else(|| ApiError::not_found("", "componentstatuses", name))?;
            Ok(negotiate::object_response(200, form, "ComponentStatus", &c))
        }
        None => {
            let items: Vec<Value> = all
                .into_iter()
                .map(|mut c| {
                    let m = c.as_object_mut().expect("object");
                    m.remove("kind");
                    m.remove("apiVersion");
                    c
                })
                .collect();
            let list = json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items});
            Ok(negotiate::object_response(
                200,
                form,
                "ComponentStatus",
                &list,
            ))
        }
    }
}

/// ComponentStatus is computed on request, never stored.
pub fn componentstatus_descriptor() -> openapi::ResourceDescriptor {
    openapi::ResourceDescriptor {
        group: "",
        version: "v1",
        kind: "ComponentStatus",
        resource: "componentstatuses",
        singular: "componentstatus",
        namespaced: false,
        verbs: &["get", "list"],
        short_names: &["cs"],
        categories: &[],
        subresources: &[],
    }
}
