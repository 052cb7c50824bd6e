//! Pods: status starts Pending with a QoS class; spec is mostly immutable
//! (validation); `binding` and `eviction` subresources are handled by the
//! registry (`registry/subresources.rs`).

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::registry::strategy::{copy_field, roundtrip, Strategy};

pub struct Pods;

impl Strategy for Pods {
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

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        copy_field(obj, old, "status");
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
