//! `pods/log`: finds the pod's node and container, then streams the
//! kubelet's `/containerLogs` answer back to the client. The API server
//! connects to the kubelet over TLS, verifying it against the cluster CA
//! and presenting its own client certificate.

use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;

use super::handlers::Query;

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
        .ok_or_else(|| ApiError::internal("the node has no address"))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(10250);
    Ok((ip.to_string(), port as u16))
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
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let nodes = registry.find("", "v1", "nodes").expect("nodes are served");
    let node = registry.get(nodes.as_ref(), None, node_name).await?;
    let (host, port) = kubelet_address(&node)?;
    let tls =
        kubelet_tls.ok_or_else(|| ApiError::internal("no client credentials for kubelets"))?;
    let mut url = format!("/containerLogs/{ns}/{name}/{container}");
    let passed: Vec<String> = PASSED_THROUGH
        .iter()
        .filter_map(|k| query.get(k).map(|v| format!("{k}={}", encode(v))))
        .collect();
    if !passed.is_empty() {
        url.push('?');
        url.push_str(&passed.join("&"));
    }
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
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(conn);
    let req = http::Request::get(&url)
        .header("host", format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        use http_body_util::BodyExt;
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&body).trim().to_string();
        return Err(if status.is_client_error() {
            ApiError::bad_request(message)
        } else {
            ApiError::internal(message)
        });
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    *out.status_mut() = StatusCode::OK;
    out.headers_mut()
        .insert("content-type", "text/plain".parse().expect("valid"));
    Ok(out)
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
}
