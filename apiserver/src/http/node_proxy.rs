//! The pod subresources served by the pod's kubelet: `pods/log` (the
//! kubelet's `/containerLogs` answer streamed back) and `pods/exec`,
//! `pods/attach`, `pods/portforward` (upgraded connections relayed byte
//! for byte to the kubelet's `/exec`, `/attach`, `/portForward`). The API
//! server connects to the kubelet over TLS, verifying it against the
//! cluster CA and presenting its own client certificate.
//!
//! An upgrade is relayed only after the kubelet has answered 101: any
//! other answer becomes an error `Status` and the client's connection is
//! never switched (an upgraded connection left open to the kubelet after a
//! failed upgrade was CVE-2018-1002105).

use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Reason};
use crate::registry::Registry;

use super::handlers::Query;
use super::request_info::ResourcePath;
use super::ApiServer;

/// Query parameters `kubectl logs` sends that the kubelet understands.
const PASSED_THROUGH: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "limitBytes",
];

fn pod_containers(pod: &Value) -> Vec<String> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Which container to read: the one named, or the only one.
pub fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> ApiResult<String> {
    let all = pod_containers(pod);
    let regular: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if regular.len() == 1 => Ok(regular[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            regular.join(" ")
        ))),
    }
}

/// `host:port` of the node's kubelet, from the Node object.
fn kubelet_address(node: &Value) -> ApiResult<(String, u16)> {
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ip = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addresses
                .iter()
                .find(|a| a["type"] == *t)
                .and_then(|a| a["address"].as_str())
        })
        // Not the server's fault: the node has not reported where its
        // kubelet is (yet), so the backend is unavailable.
        .ok_or_else(|| {
            ApiError::new(
                Reason::ServiceUnavailable,
                format!(
                    "node {:?} has no address to reach its kubelet at",
                    node["metadata"]["name"].as_str().unwrap_or_default()
                ),
            )
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(10250);
    Ok((ip.to_string(), port as u16))
}

/// A fresh HTTP/1.1 connection to the kubelet of `node_name`, over TLS.
struct KubeletConnection {
    sender: hyper::client::conn::http1::SendRequest<Body>,
    host: String,
    port: u16,
}

impl KubeletConnection {
    async fn open(
        registry: &Registry,
        tls: Option<Arc<rustls::ClientConfig>>,
        node_name: &str,
        url: &str,
    ) -> ApiResult<KubeletConnection> {
        let nodes = registry.find("", "v1", "nodes").expect("nodes are served");
        let node = registry.get(nodes.as_ref(), None, node_name).await?;
        let (host, port) = kubelet_address(&node)?;
        let tls = tls.ok_or_else(|| ApiError::internal("no client credentials for kubelets"))?;
        let unreachable =
            |e: String| ApiError::internal(format!("Get \"https://{host}:{port}{url}\": {e}"));
        let tcp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| unreachable("dial timeout".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(server_name, tcp)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(conn.with_upgrades());
        Ok(KubeletConnection { sender, host, port })
    }

    async fn send(
        &mut self,
        req: http::Request<Body>,
    ) -> ApiResult<Response<hyper::body::Incoming>> {
        let (host, port) = (&self.host, self.port);
        let path = req.uri().to_string();
        self.sender
            .send_request(req)
            .await
            .map_err(|e| ApiError::internal(format!("Get \"https://{host}:{port}{path}\": {e}")))
    }
}

/// A kubelet's error answer as the `Status` the client sees.
async fn kubelet_error(resp: Response<hyper::body::Incoming>) -> ApiError {
    use http_body_util::BodyExt;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    match status {
        StatusCode::NOT_FOUND => ApiError::new(Reason::NotFound, message),
        s if s.is_client_error() => ApiError::bad_request(message),
        _ => ApiError::internal(message),
    }
}

fn assigned_node<'a>(pod: &'a Value, name: &str) -> ApiResult<&'a str> {
    pod["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("pod {name} does not have a host assigned")))
}

pub async fn pod_log(
    registry: &Registry,
    kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    ns: &str,
    name: &str,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let pods = registry.find("", "v1", "pods").expect("pods are served");
    let pod = registry.get(pods.as_ref(), Some(ns), name).await?;
    let container = pick_container(&pod, name, query.get("container"))?;
    let node_name = assigned_node(&pod, name)?;
    let mut url = format!("/containerLogs/{ns}/{name}/{container}");
    let passed: Vec<String> = PASSED_THROUGH
        .iter()
        .filter_map(|k| query.get(k).map(|v| format!("{k}={}", encode(v))))
        .collect();
    if !passed.is_empty() {
        url.push('?');
        url.push_str(&passed.join("&"));
    }
    let mut conn = KubeletConnection::open(registry, kubelet_tls, node_name, &url).await?;
    let req = http::Request::get(&url)
        .header("host", format!("{}:{}", conn.host, conn.port))
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = conn.send(req).await?;
    if !resp.status().is_success() {
        return Err(kubelet_error(resp).await);
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    *out.status_mut() = StatusCode::OK;
    out.headers_mut()
        .insert("content-type", "text/plain".parse().expect("valid"));
    Ok(out)
}

/// `pods/exec`, `pods/attach` and `pods/portforward`.
pub fn is_pod_connect(rp: &ResourcePath) -> bool {
    rp.group.is_empty()
        && rp.resource == "pods"
        && rp.name.is_some()
        && matches!(
            rp.subresource.as_deref(),
            Some("exec" | "attach" | "portforward")
        )
}

/// `nodes/<name>/proxy/<path>`.
pub fn is_node_proxy(rp: &ResourcePath) -> bool {
    rp.group.is_empty()
        && rp.resource == "nodes"
        && rp.name.is_some()
        && rp.subresource.as_deref() == Some("proxy")
}

/// Relays a GET to a path of the node's kubelet (`/pods`,
/// `/stats/summary`, `/healthz`, …) and streams its answer back.
pub async fn node_proxy(
    server: &ApiServer,
    rp: ResourcePath,
    method: &http::Method,
    query: Option<&str>,
) -> ApiResult<Response<Body>> {
    if method != http::Method::GET {
        return Err(ApiError::method_not_allowed(method.as_str(), "nodes/proxy"));
    }
    let node_name = rp.name.as_deref().expect("checked by is_node_proxy");
    let mut url = format!("/{}", rp.proxy_path.as_deref().unwrap_or(""));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    let mut conn = KubeletConnection::open(
        &server.registry,
        server.kubelet_tls.clone(),
        node_name,
        &url,
    )
    .await?;
    let upstream = http::Request::get(&url)
        .header("host", format!("{}:{}", conn.host, conn.port))
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = conn.send(upstream).await?;
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        out.headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.clone());
    }
    Ok(out)
}

/// Headers that describe the hop to the API server, not the request.
const NOT_RELAYED: &[&str] = &["host", "authorization", "content-length"];

/// Relays an upgrade request for a pod's streams to its kubelet.
pub async fn pod_connect(
    server: &ApiServer,
    rp: ResourcePath,
    mut req: http::Request<Body>,
) -> ApiResult<Response<Body>> {
    let ns = rp.namespace.as_deref().unwrap_or("default");
    let name = rp.name.as_deref().expect("checked by is_pod_connect");
    let sub = rp
        .subresource
        .as_deref()
        .expect("checked by is_pod_connect");
    if !matches!(*req.method(), http::Method::GET | http::Method::POST) {
        return Err(ApiError::method_not_allowed(req.method().as_str(), "pods"));
    }
    let registry = &server.registry;
    let pods = registry.find("", "v1", "pods").expect("pods are served");
    let pod = registry.get(pods.as_ref(), Some(ns), name).await?;
    let query = Query::parse(req.uri().query());
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let url = match sub {
        "portforward" => format!("/portForward/{ns}/{name}?{raw_query}"),
        _ => {
            let container = pick_container(&pod, name, query.get("container"))?;
            let phase = pod["status"]["phase"].as_str().unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                let verb = if sub == "exec" {
                    "exec into"
                } else {
                    "attach to"
                };
                return Err(ApiError::bad_request(format!(
                    "cannot {verb} a container in a completed pod; current phase is {phase}"
                )));
            }
            let path = if sub == "exec" { "exec" } else { "attach" };
            format!("/{path}/{ns}/{name}/{container}?{raw_query}")
        }
    };
    if !req.headers().contains_key(http::header::UPGRADE) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let node_name = assigned_node(&pod, name)?;
    let mut conn =
        KubeletConnection::open(registry, server.kubelet_tls.clone(), node_name, &url).await?;
    let mut upstream = http::Request::builder()
        .method(req.method().clone())
        .uri(&url)
        .header("host", format!("{}:{}", conn.host, conn.port));
    for (k, v) in req.headers() {
        if !NOT_RELAYED.contains(&k.as_str()) {
            upstream = upstream.header(k, v);
        }
    }
    let upstream = upstream
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = conn.send(upstream).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(kubelet_error(resp).await);
    }
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in resp.headers() {
        answer.headers_mut().append(k, v.clone());
    }
    let client_side = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let (Ok(client), Ok(kubelet)) = tokio::join!(client_side, hyper::upgrade::on(resp)) else {
            return;
        };
        let (mut client, mut kubelet) = (TokioIo::new(client), TokioIo::new(kubelet));
        let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
    });
    Ok(answer)
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_must_be_named_unless_there_is_one() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "a");
        let two = json!({"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]}});
        let err = pick_container(&two, "p", None).unwrap_err();
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(pick_container(&two, "p", Some("i")).unwrap(), "i");
        let err = pick_container(&two, "p", Some("zz")).unwrap_err();
        assert_eq!(err.message, "container zz is not valid for pod p");
    }

    #[test]
    fn the_kubelet_is_found_from_the_node_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(
            kubelet_address(&node).unwrap(),
            ("10.0.0.5".to_string(), 12345)
        );
        assert_eq!(encode("2026-11-22T05:00:00Z"), "2026-11-22T05%3A00%3A00Z");
    }

    /// A schemathesis finding: a node that never reported an address made
    /// `nodes/<n>/proxy` a 500; it is the backend that is unavailable.
    #[test]
    fn a_node_without_addresses_is_unavailable_not_a_server_error() {
        let node = json!({"metadata": {"name": "st"}, "status": {}});
        let err = kubelet_address(&node).unwrap_err();
        assert_eq!(err.reason, Reason::ServiceUnavailable);
        assert_eq!(
            err.message,
            r#"node "st" has no address to reach its kubelet at"#
        );
    }
}
