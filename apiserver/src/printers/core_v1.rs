//! Rows of the core/v1 kinds other than Pod, PodTemplate and Event:
//! ReplicationController, Service, Namespace, Node, ConfigMap, Secret,
//! Endpoints, ServiceAccount, ResourceQuota and ComponentStatus.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{
    age, at, boolean, col, containers_cells, desired_replicas, int, labels_cell, list, name,
    object, s, text, wide, Column, AGE, CONTAINERS, IMAGES, NAME,
};

pub(super) const RC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Number of replicas the controller should run (spec.replicas).",
    ),
    col(
        "Current",
        "integer",
        "Number of replicas observed (status.replicas).",
    ),
    col(
        "Ready",
        "integer",
        "Number of ready replicas (status.readyReplicas).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "Label selector of the pods the controller manages.",
    ),
];

pub(super) fn rc_row(rc: &Value, now: OffsetDateTime) -> Vec<Value> {
    let [names, images] = containers_cells(at(rc, &["spec", "template", "spec"]));
    vec![
        name(rc),
        json!(desired_replicas(rc)),
        json!(int(rc, &["status", "replicas"])),
        json!(int(rc, &["status", "readyReplicas"])),
        age(rc, now),
        names,
        images,
        labels_cell(rc, &["spec", "selector"]),
    ]
}

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", "How the service is exposed (spec.type)."),
    col("Cluster-IP", "string", "The service's primary cluster IP."),
    col(
        "External-IP",
        "string",
        "External addresses: load balancer ingress and spec.externalIPs.",
    ),
    col(
        "Port(s)",
        "string",
        "Service ports as port[:nodePort]/protocol.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Label selector of the pods behind the service.",
    ),
];

pub(super) fn service_row(svc: &Value, now: OffsetDateTime) -> Vec<Value> {
    let mut cluster_ip = list(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str);
    if cluster_ip.is_none() {
        // Conversion fills clusterIPs from clusterIP when only that is set.
        cluster_ip = Some(text(svc, &["spec", "clusterIP"])).filter(|ip| !ip.is_empty());
    }
    let ports: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let (port, protocol) = (int(p, &["port"]), text(p, &["protocol"]));
            match int(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(svc),
        s(text(svc, &["spec", "type"])),
        s(cluster_ip.unwrap_or("<none>")),
        s(service_external_ip(svc)),
        s(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        age(svc, now),
        labels_cell(svc, &["spec", "selector"]),
    ]
}

/// The External-IP cell. kube-apiserver prints wide, so load balancer
/// addresses are never shortened.
fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = list(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            // A sorted set: duplicates collapse and the order is stable.
            let ingress: BTreeSet<&str> = list(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| {
                    let ip = text(i, &["ip"]);
                    let host = text(i, &["hostname"]);
                    [ip, host].into_iter().find(|v| !v.is_empty())
                })
                .collect();
            let mut all: Vec<&str> = ingress.into_iter().collect();
            if all.is_empty() && external.is_empty() {
                return "<pending>".to_string();
            }
            all.extend(external);
            all.join(",")
        }
        "ExternalName" => text(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "The namespace's phase (Active or Terminating).",
    ),
    AGE,
];

pub(super) fn namespace_row(ns: &Value, now: OffsetDateTime) -> Vec<Value> {
    vec![name(ns), s(text(ns, &["status", "phase"])), age(ns, now)]
}

pub(super) const NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Readiness of the node, and whether scheduling is disabled.",
    ),
    col(
        "Roles",
        "string",
        "Roles from the node's node-role.kubernetes.io/* labels.",
    ),
    AGE,
    col("Version", "string", "Version of the kubelet on the node."),
    wide(
        "Internal-IP",
        "string",
        "The node's first InternalIP address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first ExternalIP address.",
    ),
    wide(
        "OS-Image",
        "string",
        "Operating system image reported by the node.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel version reported by the node.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "Container runtime and version reported by the node.",
    ),
];

pub(super) fn node_row(node: &Value, now: OffsetDateTime) -> Vec<Value> {
    // Only the Ready condition is shown; with duplicates the last one counts.
    let ready = list(node, &["status", "conditions"])
        .iter()
        .rfind(|c| text(c, &["type"]) == "Ready");
    let mut status = match ready {
        Some(c) if text(c, &["status"]) == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if boolean(node, &["spec", "unschedulable"]) {
        status.push_str(",SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    for (key, value) in object(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == "kubernetes.io/role" {
            if let Some(role) = value.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role.to_string());
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };

    let address = |kind: &str| {
        list(node, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == kind)
            .map_or("<none>", |a| text(a, &["address"]))
            .to_string()
    };
    let info = |field: &str| match text(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(node),
        s(status),
        s(roles),
        age(node, now),
        s(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

pub(super) const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Number of entries in data and binaryData.",
    ),
    AGE,
];

pub(super) fn config_map_row(cm: &Value, now: OffsetDateTime) -> Vec<Value> {
    let count = |field: &str| object(cm, &[field]).map_or(0, |m| m.len());
    vec![
        name(cm),
        json!(count("data") + count("binaryData")),
        age(cm, now),
    ]
}

pub(super) const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", "The secret's type."),
    col("Data", "string", "Number of entries in data."),
    AGE,
];

pub(super) fn secret_row(secret: &Value, now: OffsetDateTime) -> Vec<Value> {
    // stringData is merged into data when a secret is decoded.
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|f| object(secret, &[f]))
        .flat_map(|m| m.keys())
        .collect();
    vec![
        name(secret),
        s(text(secret, &["type"])),
        json!(keys.len()),
        age(secret, now),
    ]
}

pub(super) const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Ready addresses with their ports, the first few.",
    ),
    AGE,
];

pub(super) fn endpoints_row(ep: &Value, now: OffsetDateTime) -> Vec<Value> {
    vec![
        name(ep),
        s(format_endpoints(list(ep, &["subsets"]))),
        age(ep, now),
    ]
}

/// `ip:port` for every ready address and port (just `ip` for subsets without
/// ports), the first three, then `+ N more...`.
fn format_endpoints(subsets: &[Value]) -> String {
    const MAX: usize = 3;
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut shown = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        let ips = addresses.iter().map(|a| text(a, &["ip"]));
        if ports.is_empty() {
            count += addresses.len();
            shown.extend(
                ips.map(str::to_string)
                    .take(MAX.saturating_sub(shown.len())),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            let port = int(port, &["port"]);
            let room = MAX.saturating_sub(shown.len());
            shown.extend(ips.clone().take(room).map(|ip| join_host_port(ip, port)));
        }
    }
    let joined = shown.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's net.JoinHostPort: IPv6 addresses get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed by the service account.",
    ),
    AGE,
];

pub(super) fn service_account_row(sa: &Value, now: OffsetDateTime) -> Vec<Value> {
    vec![name(sa), json!(list(sa, &["secrets"]).len()), age(sa, now)]
}

pub(super) const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col("Holder", "string", "Who holds the lease now."),
    AGE,
];

pub(super) fn lease_row(lease: &Value, now: OffsetDateTime) -> Vec<Value> {
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or("");
    vec![name(lease), json!(holder), age(lease, now)]
}

pub(super) const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "Request",
        "string",
        "Used and hard amounts of the quota's non-limit resources.",
    ),
    col(
        "Limit",
        "string",
        "Used and hard amounts of the quota's limits.* resources.",
    ),
];

pub(super) fn resource_quota_row(rq: &Value, now: OffsetDateTime) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    // Sorted by resource name, as upstream; explicit so that it holds even if
    // serde_json's `preserve_order` feature gets enabled.
    let mut hard: Vec<_> = object(rq, &["status", "hard"])
        .into_iter()
        .flatten()
        .collect();
    hard.sort_by(|a, b| a.0.cmp(b.0));
    for (resource, hard_amount) in hard {
        let used = at(rq, &["status", "used", resource]).map_or("0".to_string(), quantity);
        let entry = format!("{resource}: {used}/{}", quantity(hard_amount));
        if resource.split('.').next() == Some("limits") && resource.contains('.') {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(rq),
        age(rq, now),
        s(requests.join(", ")),
        s(limits.join(", ")),
    ]
}

/// A resource quantity as stored (already canonical when written by a
/// controller).
fn quantity(v: &Value) -> String {
    match v {
        Value::String(q) => q.clone(),
        other => other.to_string(),
    }
}

pub(super) const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Healthy or Unhealthy, from the Healthy condition.",
    ),
    col("Message", "string", "Message of the Healthy condition."),
    col("Error", "string", "Error of the Healthy condition."),
];

pub(super) fn component_status_row(cs: &Value) -> Vec<Value> {
    let healthy = list(cs, &["conditions"])
        .iter()
        .find(|c| text(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if text(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            text(c, &["message"]),
            text(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![name(cs), s(status), s(message), s(error)]
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::{json, Value};

    fn cells(kind: &str, obj: &Value) -> Vec<Value> {
        row(kind, obj, NOW)
    }

    #[test]
    fn replication_controller() {
        let rc = json!({
            "metadata": {"name": "frontend", "creationTimestamp": ago(90)},
            "spec": {"replicas": 3, "selector": {"tier": "frontend", "app": "guestbook"},
                     "template": {"spec": {"containers": [
                         {"name": "php-redis", "image": "gcr.io/google-samples/gb-frontend:v5"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        assert_eq!(
            cells("ReplicationController", &rc),
            [
                json!("frontend"),
                json!(3),
                json!(3),
                json!(2),
                json!("90s"),
                json!("php-redis"),
                json!("gcr.io/google-samples/gb-frontend:v5"),
                json!("app=guestbook,tier=frontend")
            ]
        );
        let fresh = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            cells("ReplicationController", &fresh)[1..4],
            [json!(1), json!(0), json!(0)]
        );
        assert_eq!(cells("ReplicationController", &fresh)[7], json!("<none>"));
    }

    #[test]
    fn node_port_service() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3600 * 5)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.12.7", "clusterIPs": ["10.96.12.7"],
                     "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 443, "protocol": "TCP"}]}
        });
        assert_eq!(
            cells("Service", &svc),
            [
                json!("web"),
                json!("NodePort"),
                json!("10.96.12.7"),
                json!("<none>"),
                json!("80:30080/TCP,443/TCP"),
                json!("5h"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn load_balancer_service() {
        let mut svc = json!({
            "metadata": {"name": "lb", "creationTimestamp": ago(30)},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.20"],
                     "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            cells("Service", &svc),
            [
                json!("lb"),
                json!("LoadBalancer"),
                json!("10.96.0.20"),
                json!("<pending>"),
                json!("443:31443/TCP"),
                json!("30s"),
                json!("<none>")
            ]
        );
        svc["status"]["loadBalancer"]["ingress"] = json!([
            {"ip": "203.0.113.9"}, {"hostname": "a1b2c3d4e5f6-1234567890.elb.example.com"},
            {"ip": "203.0.113.9"}
        ]);
        assert_eq!(
            cells("Service", &svc)[3],
            json!("203.0.113.9,a1b2c3d4e5f6-1234567890.elb.example.com")
        );
        svc["spec"]["externalIPs"] = json!(["198.51.100.1"]);
        assert_eq!(
            cells("Service", &svc)[3],
            json!("203.0.113.9,a1b2c3d4e5f6-1234567890.elb.example.com,198.51.100.1")
        );
        svc["status"] = json!({});
        assert_eq!(cells("Service", &svc)[3], json!("198.51.100.1"));
    }

    #[test]
    fn other_service_types() {
        let headless = json!({
            "metadata": {"name": "db"},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                     "externalIPs": ["1.2.3.4", "5.6.7.8"]}
        });
        assert_eq!(
            cells("Service", &headless)[1..5],
            [
                json!("ClusterIP"),
                json!("None"),
                json!("1.2.3.4,5.6.7.8"),
                json!("<none>")
            ]
        );
        let ext = json!({"metadata": {"name": "e"},
                         "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(
            cells("Service", &ext)[2..4],
            [json!("<none>"), json!("db.example.com")]
        );
        let legacy = json!({"metadata": {"name": "l"}, "spec": {"clusterIP": "10.0.0.1",
                            "ports": [{"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            cells("Service", &legacy)[1..5],
            [
                json!(""),
                json!("10.0.0.1"),
                json!("<unknown>"),
                json!("53/UDP")
            ]
        );
    }

    #[test]
    fn namespace() {
        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(86400 * 45)},
                        "status": {"phase": "Active"}});
        assert_eq!(
            cells("Namespace", &ns),
            [json!("kube-system"), json!("Active"), json!("45d")]
        );
    }

    #[test]
    fn node() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(86400 * 10),
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/": "", "kubernetes.io/role": "master",
                                    "kubernetes.io/hostname": "n1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                               {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"},
                              {"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "InternalIP", "address": "192.168.1.11"}],
                "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
            }
        });
        assert_eq!(
            cells("Node", &node),
            [
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("10d"),
                json!("v1.32.4"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0-18-amd64"),
                json!("containerd://1.7.13")
            ]
        );
        let bare = json!({"metadata": {"name": "n2"}});
        assert_eq!(
            cells("Node", &bare),
            [
                json!("n2"),
                json!("Unknown"),
                json!("<none>"),
                json!("<unknown>"),
                json!(""),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        let not_ready = json!({"metadata": {"name": "n3"},
                               "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cells("Node", &not_ready)[1], json!("NotReady"));
    }

    #[test]
    fn config_maps_secrets_service_accounts() {
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(5)},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            cells("ConfigMap", &cm),
            [json!("cfg"), json!(3), json!("5s")]
        );
        let secret = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
                            "data": {"tls.crt": "", "tls.key": ""}, "stringData": {"tls.key": "x", "ca": "y"}});
        assert_eq!(
            cells("Secret", &secret)[..3],
            [json!("tls"), json!("kubernetes.io/tls"), json!(3)]
        );
        let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
        assert_eq!(
            cells("ServiceAccount", &sa)[..2],
            [json!("default"), json!(1)]
        );
        let empty_sa = json!({"metadata": {"name": "default"}});
        assert_eq!(cells("ServiceAccount", &empty_sa)[1], json!(0));
    }

    #[test]
    fn endpoints() {
        let ep = |subsets: Value| json!({"metadata": {"name": "svc"}, "subsets": subsets});
        assert_eq!(cells("Endpoints", &ep(json!([])))[1], json!("<none>"));
        assert_eq!(
            cells("Endpoints", &json!({"metadata": {"name": "s"}}))[1],
            json!("<none>")
        );
        let one = ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                             "ports": [{"port": 8080}]}]),
        );
        assert_eq!(
            cells("Endpoints", &one)[1],
            json!("10.0.0.1:8080,[fd00::1]:8080")
        );
        let many = ep(json!([
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
             "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "10.0.1.1"}], "ports": [{"port": 80}]}
        ]));
        assert_eq!(
            cells("Endpoints", &many)[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...")
        );
        let headless = ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"},
                                                {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}]}]),
        );
        assert_eq!(
            cells("Endpoints", &headless)[1],
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
        );
        let not_ready =
            ep(json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]));
        assert_eq!(cells("Endpoints", &not_ready)[1], json!(""));
    }

    #[test]
    fn resource_quota() {
        let rq = json!({
            "metadata": {"name": "compute", "creationTimestamp": ago(700)},
            "status": {
                "hard": {"requests.cpu": "1", "pods": "10", "limits.memory": "2Gi",
                         "limits.cpu": "2", "requests.memory": "1Gi"},
                "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1"}
            }
        });
        assert_eq!(
            cells("ResourceQuota", &rq),
            [
                json!("compute"),
                json!("11m"),
                json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi"),
                json!("limits.cpu: 1/2, limits.memory: 0/2Gi")
            ]
        );
        let empty = json!({"metadata": {"name": "q"}});
        assert_eq!(cells("ResourceQuota", &empty)[2..], [json!(""), json!("")]);
    }

    #[test]
    fn component_status() {
        let cs = json!({"metadata": {"name": "etcd-0"},
                        "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            cells("ComponentStatus", &cs),
            [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
        let bad = json!({"metadata": {"name": "scheduler"},
                         "conditions": [{"type": "Healthy", "status": "False", "message": "",
                                         "error": "connection refused"}]});
        assert_eq!(
            cells("ComponentStatus", &bad)[1..],
            [json!("Unhealthy"), json!(""), json!("connection refused")]
        );
        let unknown = json!({"metadata": {"name": "x"}});
        assert_eq!(cells("ComponentStatus", &unknown)[1], json!("Unknown"));
    }
}
