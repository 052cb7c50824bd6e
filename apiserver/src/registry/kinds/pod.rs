//! Pods: status starts Pending with a QoS class; spec is mostly immutable
//! (validation); `binding` and `eviction` subresources are handled by the
//! registry (`registry/subresources.rs`).

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::error::ApiResult;
use crate::registry::strategy::{copy_field, roundtrip, Strategy};
use crate::registry::{PodAdmission, Registry};

pub struct Pods;

impl Strategy for Pods {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "",
            version: "v1",
            kind: "Pod",
            resource: "pods",
            singular: "pod",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["po"],
            categories: &["all"],
            subresources: &[
                Subresource {
                    name: "status",
                    group: "",
                    version: "v1",
                    kind: "Pod",
                    verbs: STATUS_VERBS,
                },
                Subresource {
                    name: "binding",
                    group: "",
                    version: "v1",
                    kind: "Binding",
                    verbs: &["create"],
                },
                Subresource {
                    name: "log",
                    group: "",
                    version: "v1",
                    kind: "Pod",
                    verbs: &["get"],
                },
                Subresource {
                    name: "exec",
                    group: "",
                    version: "v1",
                    kind: "PodExecOptions",
                    verbs: &["create", "get"],
                },
                Subresource {
                    name: "attach",
                    group: "",
                    version: "v1",
                    kind: "PodAttachOptions",
                    verbs: &["create", "get"],
                },
                Subresource {
                    name: "portforward",
                    group: "",
                    version: "v1",
                    kind: "PodPortForwardOptions",
                    verbs: &["create", "get"],
                },
                Subresource {
                    name: "eviction",
                    group: "policy",
                    version: "v1",
                    kind: "Eviction",
                    verbs: &["create"],
                },
            ],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::core::v1::Pod>(obj)
    }

    fn admit_create(&self, registry: &Registry, obj: &mut Value) -> ApiResult<()> {
        add_default_tolerations(obj, &registry.pod_admission);
        Ok(())
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        copy_field(obj, old, "status");
    }
}

/// Upstream's DefaultTolerationSeconds admission: a pod that does not
/// tolerate the `not-ready` / `unreachable` NoExecute taints itself gets
/// bounded tolerations of them, so it leaves a failed node after a while.
pub fn add_default_tolerations(pod: &mut Value, admission: &PodAdmission) {
    let defaults = [
        (
            "node.kubernetes.io/not-ready",
            admission.not_ready_toleration_seconds,
        ),
        (
            "node.kubernetes.io/unreachable",
            admission.unreachable_toleration_seconds,
        ),
    ];
    let existing = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let covers = |key: &str| {
        existing.iter().any(|t| {
            let effect_ok = t["effect"]
                .as_str()
                .is_none_or(|e| e.is_empty() || e == "NoExecute");
            let key_ok = match t["operator"].as_str() {
                Some("Exists") => t["key"].as_str().is_none_or(|k| k.is_empty() || k == key),
                _ => t["key"] == key,
            };
            effect_ok && key_ok
        })
    };
    let mut tolerations = existing.clone();
    for (key, seconds) in defaults {
        if !covers(key) {
            tolerations.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds,
            }));
        }
    }
    if tolerations.len() != existing.len() && pod["spec"].is_object() {
        pod["spec"]["tolerations"] = Value::Array(tolerations);
    }
}

/// The pod's quality-of-service class, from its containers' requests and
/// limits: BestEffort with none, Guaranteed when every container limits cpu
/// and memory with requests equal to limits, Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&serde_json::Map<String, Value>>| {
            m.map(|m| m.keys().any(|k| k == "cpu" || k == "memory"))
                .unwrap_or(false)
        };
        if relevant(requests) || relevant(limits) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_pods_tolerate_node_failures_for_a_while_unless_they_say_otherwise() {
        let admission = PodAdmission {
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 30,
        };
        let mut pod = json!({"spec": {"containers": []}});
        add_default_tolerations(&mut pod, &admission);
        let t = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1]["key"], "node.kubernetes.io/unreachable");
        assert_eq!(t[1]["tolerationSeconds"], 30);
        // A pod tolerating everything keeps exactly its own tolerations.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_tolerations(&mut all, &admission);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
        let mut own = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        add_default_tolerations(&mut own, &admission);
        let t = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn create_resets_client_status() {
        let mut pod =
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running"}});
        Pods.prepare_for_create(&mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }
}
