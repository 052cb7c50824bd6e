//! Service defaulting: type, session affinity, port protocol and targetPort, traffic
//! policies, LoadBalancer node ports, plus the clusterIP/clusterIPs syncing and
//! single-stack IP family policy that upstream's registry applies on create.

use serde_json::{json, Map, Value};

use super::pod::{each_obj, set_missing, set_str};

/// Defaults a Service object.
pub fn default_service(svc: &mut Value) {
    let Some(obj) = svc.as_object_mut() else {
        return;
    };
    let spec = super::pod::ensure_obj(obj, "spec");
    set_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_str(spec, "type", "ClusterIP");
    for port in each_obj(spec, "ports") {
        set_str(port, "protocol", "TCP");
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset {
            let p = port.get("port").cloned().unwrap_or(Value::from(0));
            port.insert("targetPort".into(), p);
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips) {
        set_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_missing(spec, "internalTrafficPolicy", Value::from("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_missing(spec, "allocateLoadBalancerNodePorts", Value::from(true));
    }
    sync_cluster_ips(spec, &ty);
}

/// Mirrors `clusterIP` and `clusterIPs` into each other and, for services that get a
/// cluster IP, picks the SingleStack policy when none was requested. Headless services
/// without a selector are left to the allocator, which gives them dual-stack policy.
fn sync_cluster_ips(spec: &mut Map<String, Value>, ty: &str) {
    if ty == "ExternalName" {
        return;
    }
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ips: Vec<Value> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ips.is_empty() && !ip.is_empty() {
        spec.insert("clusterIPs".into(), json!([ip]));
    } else if ip.is_empty() {
        if let Some(first) = ips.first() {
            spec.insert("clusterIP".into(), first.clone());
        }
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let has_selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty());
    if !headless || has_selector {
        set_missing(spec, "ipFamilyPolicy", Value::from("SingleStack"));
    }
}
