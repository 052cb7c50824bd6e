//! Streaming endpoints of the kubelet: `/exec`, `/attach` and
//! `/portForward`. Finds what the request names (a running container, a
//! ready sandbox), refuses with a plain HTTP error before any upgrade when
//! it cannot, and otherwise switches protocols and hands the connection to
//! the session code. The API server proxies these byte for byte, so every
//! protocol detail is decided here.
//!
//! Protocols: exec and attach speak the WebSocket channel framing
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`), which kubectl 1.32 uses
//! first. Port forwarding speaks the WebSocket channel framing (kube-rs
//! and other WebSocket clients) and SPDY/3.1 (`portforward.k8s.io`),
//! either tunnelled in WebSocket messages (`SPDY/3.1+portforward.k8s.io`,
//! kubectl 1.32's first choice) or over a plain `Upgrade: SPDY/3.1`.

pub mod channel;
pub mod exec;
pub mod portforward;
pub mod spdy;
pub mod websocket;

use std::collections::BTreeMap;

use hyper::{Request, Response, StatusCode};
use runtime::types::{ContainerFilter, ContainerState, SandboxFilter, SandboxState};

use crate::pod::command::{LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE};
use crate::server::{text, Body};
use crate::KubeletConfig;

fn pod_selector(ns: &str, pod: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_POD_NAMESPACE.to_string(), ns.to_string()),
        (LABEL_POD_NAME.to_string(), pod.to_string()),
    ])
}

/// The running container `name` of the pod, newest attempt first.
pub(crate) async fn running_container(
    cfg: &KubeletConfig,
    ns: &str,
    pod: &str,
    name: &str,
) -> Result<String, Response<Body>> {
    let mut selector = pod_selector(ns, pod);
    selector.insert(LABEL_CONTAINER_NAME.to_string(), name.to_string());
    let all = cfg
        .runtime
        .list_containers(&ContainerFilter {
            label_selector: selector,
            ..Default::default()
        })
        .await
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    all.into_iter()
        .filter(|c| c.state == ContainerState::Running)
        .max_by_key(|c| (c.attempt, c.created_at))
        .map(|c| c.id)
        .ok_or_else(|| {
            text(
                StatusCode::NOT_FOUND,
                format!("container \"{name}\" in pod \"{pod}\" is not running"),
            )
        })
}

/// `/exec/<ns>/<pod>/<container>` and `/attach/<ns>/<pod>/<container>`.
pub async fn exec_or_attach(
    cfg: KubeletConfig,
    exec: bool,
    rest: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    // Upstream also accepts the pod's uid between pod and container.
    let (ns, pod, container) = match parts[..] {
        [ns, pod, container] | [ns, pod, _, container] => (ns, pod, container),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "expected /<exec|attach>/<namespace>/<pod>/<container>",
            )
        }
    };
    let opts = match exec::StreamOptions::parse(req.uri().query().unwrap_or(""), exec) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    if !websocket::is_websocket(&req) {
        return text(
            StatusCode::BAD_REQUEST,
            "exec and attach are served over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io)",
        );
    }
    let Some(protocol) = channel::Protocol::negotiate(&websocket::offered_protocols(&req)) else {
        return text(
            StatusCode::BAD_REQUEST,
            "none of the offered subprotocols is served: use v5.channel.k8s.io or v4.channel.k8s.io",
        );
    };
    let id = match running_container(&cfg, ns, pod, container).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    websocket::accept(req, protocol.name(), move |socket| {
        exec::serve(cfg, id, opts, exec, protocol, socket)
    })
}

/// `/portForward/<ns>/<pod>`: finds the pod's ready sandbox, then speaks
/// whichever port-forward protocol the client asked for.
pub async fn port_forward(
    cfg: KubeletConfig,
    rest: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (ns, pod) = match parts[..] {
        [ns, pod] | [ns, pod, _] => (ns, pod),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "expected /portForward/<namespace>/<pod>",
            )
        }
    };
    let sandbox = cfg
        .runtime
        .list_pod_sandboxes(&SandboxFilter {
            state: Some(SandboxState::Ready),
            label_selector: pod_selector(ns, pod),
            ..Default::default()
        })
        .await
        .ok()
        .and_then(|all| all.into_iter().max_by_key(|s| s.created_at));
    let Some(sandbox) = sandbox else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" has no running sandbox on this node"),
        );
    };
    portforward::serve(cfg, sandbox.id, req)
}
