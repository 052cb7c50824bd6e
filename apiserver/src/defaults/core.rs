//! Defaulting of the smaller core/v1 kinds: Namespace, Secret, Node, Endpoints,
//! LimitRange, ResourceQuota, PersistentVolumeClaim, ReplicationController and
//! PodTemplate.

use serde_json::{json, Value};

use super::pod::{
    default_pod_template, default_pvc_spec, default_resource_list, each_obj, ensure_obj,
    set_missing, set_str,
};

/// Namespace: the `kubernetes.io/metadata.name` label, the `kubernetes` finalizer the
/// registry adds on create, and the Active phase.
pub fn default_namespace(ns: &mut Value) {
    let Some(obj) = ns.as_object_mut() else {
        return;
    };
    let meta = ensure_obj(obj, "metadata");
    if let Some(name) = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(String::from)
    {
        ensure_obj(meta, "labels").insert("kubernetes.io/metadata.name".into(), Value::from(name));
    }
    set_missing(ensure_obj(obj, "spec"), "finalizers", json!(["kubernetes"]));
    set_str(ensure_obj(obj, "status"), "phase", "Active");
}

/// Secret: type Opaque.
pub fn default_secret(secret: &mut Value) {
    if let Some(obj) = secret.as_object_mut() {
        set_str(obj, "type", "Opaque");
    }
}

/// Node: allocatable starts as capacity; quantities are canonicalized.
pub fn default_node(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if status.get("allocatable").is_none_or(Value::is_null) {
        if let Some(cap) = status.get("capacity").filter(|c| !c.is_null()).cloned() {
            status.insert("allocatable".into(), cap);
        }
    }
    default_resource_list(status, "capacity");
    default_resource_list(status, "allocatable");
}

/// Endpoints: port protocol TCP.
pub fn default_endpoints(ep: &mut Value) {
    let Some(obj) = ep.as_object_mut() else {
        return;
    };
    for subset in each_obj(obj, "subsets") {
        for port in each_obj(subset, "ports") {
            set_str(port, "protocol", "TCP");
        }
    }
}

/// LimitRange: for Container limits, default limit falls back to max, default
/// request to the default limit and then to min.
pub fn default_limit_range(lr: &mut Value) {
    let Some(obj) = lr.as_object_mut() else {
        return;
    };
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for item in each_obj(spec, "limits") {
        for f in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            default_resource_list(item, f);
        }
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let get = |item: &serde_json::Map<String, Value>, f: &str| {
            item.get(f)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (max, min) = (get(item, "max"), get(item, "min"));
        let mut default = get(item, "default");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut request = get(item, "defaultRequest");
        for (k, v) in default.iter().chain(min.iter()) {
            request.entry(k.clone()).or_insert(v.clone());
        }
        // Empty maps are omitted on the wire, so only write non-empty ones.
        if !default.is_empty() {
            item.insert("default".into(), Value::Object(default));
        }
        if !request.is_empty() {
            item.insert("defaultRequest".into(), Value::Object(request));
        }
    }
}

/// ResourceQuota: canonical quantities.
pub fn default_resource_quota(rq: &mut Value) {
    let Some(obj) = rq.as_object_mut() else {
        return;
    };
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        default_resource_list(spec, "hard");
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        default_resource_list(status, "hard");
        default_resource_list(status, "used");
    }
}

/// PersistentVolumeClaim: Filesystem mode and the Pending phase.
pub fn default_persistent_volume_claim(pvc: &mut Value) {
    let Some(obj) = pvc.as_object_mut() else {
        return;
    };
    default_pvc_spec(ensure_obj(obj, "spec"));
    set_str(ensure_obj(obj, "status"), "phase", "Pending");
}

/// ReplicationController: selector and object labels from the template's labels,
/// one replica, and PodSpec defaults in the template.
pub fn default_replication_controller(rc: &mut Value) {
    let Some(obj) = rc.as_object_mut() else {
        return;
    };
    let spec = ensure_obj(obj, "spec");
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned();
    if let Some(labels) = &labels {
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|s| s.is_empty())
        {
            spec.insert("selector".into(), Value::Object(labels.clone()));
        }
    }
    set_missing(spec, "replicas", Value::from(1));
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        default_pod_template(t);
    }
    if let Some(labels) = labels {
        let meta = ensure_obj(obj, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|l| l.is_empty())
        {
            meta.insert("labels".into(), Value::Object(labels));
        }
    }
}

/// PodTemplate: PodSpec defaults in the template.
pub fn default_pod_template_object(pt: &mut Value) {
    if let Some(obj) = pt.as_object_mut() {
        default_pod_template(ensure_obj(obj, "template"));
    }
}
