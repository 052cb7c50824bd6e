//! ReplicationControllers: generation-tracked, with `status` and the
//! autoscaling/v1 `scale` subresource (served by `registry/subresources.rs`).

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::registry::strategy::{roundtrip, Strategy};
use crate::selector::LabelSelector;

pub struct ReplicationControllers;

impl Strategy for ReplicationControllers {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "",
            version: "v1",
            kind: "ReplicationController",
            resource: "replicationcontrollers",
            singular: "replicationcontroller",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["rc"],
            categories: &["all"],
            subresources: &[
                Subresource {
                    name: "status",
                    group: "",
                    version: "v1",
                    kind: "ReplicationController",
                    verbs: STATUS_VERBS,
                },
                Subresource {
                    name: "scale",
                    group: "autoscaling",
                    version: "v1",
                    kind: "Scale",
                    verbs: STATUS_VERBS,
                },
            ],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::core::v1::ReplicationController>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"replicas": 0});
    }

    /// The equality selector of `spec.selector` (a plain label map).
    fn scale_selector(&self, obj: &Value) -> Result<String, String> {
        let selector = obj.pointer("/spec/selector").unwrap_or(&Value::Null);
        LabelSelector::from_map_json(selector)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string())
    }
}
