//! The HTTP edge: TLS termination with client-certificate authentication,
//! request routing (health, version, discovery, resources), body limits, and
//! the single place where errors become `metav1.Status` responses.

pub mod authz;
pub mod discovery;
pub mod duplicate_fields;
pub mod handlers;
pub mod health;
pub mod join;
pub mod negotiate;
pub mod node_proxy;
pub mod openapi_docs;
pub mod request_info;
pub mod swagger;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::error::{ApiError, Reason};
use crate::registry::Registry;
use crate::tls::Identity;

/// Bodies above this size are refused with 413, as kube-apiserver does.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Shared state of one API server.
pub struct ApiServer {
    pub registry: Arc<Registry>,
    /// Set once storage has answered and bootstrap objects exist.
    pub ready: AtomicBool,
    pub started: std::time::Instant,
    /// Advertised in `/api` discovery.
    pub server_address: String,
    /// Upper bound for watches without `timeoutSeconds`.
    pub config_watch_timeout_secs: u64,
    /// How to reach kubelets (`pods/log`): the cluster CA and a client
    /// certificate.
    pub kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    /// What joining nodes need; `None` serves no join endpoints.
    pub node_join: Option<NodeJoin>,
}

/// The server's side of node joining.
pub struct NodeJoin {
    pub token: crate::join::JoinToken,
    pub ca_cert: String,
    /// Holds the CA key the node credentials are signed with.
    pub pki_dir: std::path::PathBuf,
}

impl ApiServer {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Everything discovery lists: the stored kinds and the computed ones.
pub fn served_descriptors(server: &ApiServer) -> Vec<openapi::ResourceDescriptor> {
    let mut d = server.registry.descriptors();
    d.push(health::componentstatus_descriptor());
    d.extend(authz::descriptors());
    d.sort_by_key(|r| (!r.group.is_empty(), r.group, r.resource));
    d
}

/// Paths anyone may read without credentials (upstream grants them to
/// `system:unauthenticated` through the public-info-viewer role).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || join::is_join_path(path)
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Handles one request end to end.
pub async fn dispatch(server: Arc<ApiServer>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let authenticated = req.extensions().get::<Identity>().is_some();
    if !authenticated && !is_public(&path) {
        return negotiate::error_response(&ApiError::new(Reason::Unauthorized, "Unauthorized"));
    }
    match route(&server, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.reason == Reason::InternalError {
                tracing::error!(path, error = %e.message, "internal error");
            }
            negotiate::error_response(&e)
        }
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "failed to read the request body: {e}"
        ))),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        Reason::RequestEntityTooLarge,
        format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
    )
}

async fn route(server: &Arc<ApiServer>, req: Request<Body>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let path = path.as_str();
    let query = handlers::Query::parse(parts.uri.query());
    if let Some(r) = health::handle(server, path, &query).await {
        return Ok(r);
    }
    if let Some(r) = openapi_docs::handle(server, &parts).await {
        return r;
    }
    if swagger::is_swagger_path(path) {
        return swagger::handle(server, path);
    }
    if join::is_join_path(path) {
        let bytes = read_body(body).await?;
        return join::handle(server, &parts.method, path, &bytes);
    }
    let target = request_info::parse(path).ok_or_else(|| {
        ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    })?;
    match target {
        request_info::Target::RootDiscovery { legacy } => {
            discovery::root(server, legacy, &parts.headers, &parts.method)
        }
        request_info::Target::GroupDiscovery { group, version } => {
            discovery::group(server, &group, version.as_deref(), &parts.method)
        }
        request_info::Target::Resource(rp) if node_proxy::is_node_proxy(&rp) => {
            node_proxy::node_proxy(server, rp, &parts.method, parts.uri.query()).await
        }
        request_info::Target::Resource(rp) if node_proxy::is_pod_connect(&rp) => {
            node_proxy::pod_connect(server, rp, Request::from_parts(parts, body)).await
        }
        request_info::Target::Resource(rp) => {
            let declared = parts
                .headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(too_large());
            }
            let bytes = if matches!(parts.method, Method::GET | Method::HEAD) {
                Bytes::new()
            } else {
                read_body(body).await?
            };
            handlers::handle(server, &parts.method, rp, &query, &parts.headers, bytes).await
        }
    }
}

/// Serves HTTPS on `listener` until `shutdown` resolves.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::tls::identity_from_cert(c));
            let service = hyper::service::service_fn(
                move |mut req: Request<hyper::body::Incoming>| {
                    if let Some(id) = &identity {
                        req.extensions_mut().insert(id.clone());
                    }
                    let server = server.clone();
                    let svc = tower::service_fn(move |req: Request<Body>| {
                        let server = server.clone();
                        async move { Ok::<_, std::convert::Infallible>(dispatch(server, req).await) }
                    });
                    svc.oneshot(req.map(Body::new))
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
