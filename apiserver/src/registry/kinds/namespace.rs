//! Namespaces: cluster-scoped, created Active with the `kubernetes`
//! finalizer; `spec.finalizers` change only through `/finalize`. Deletion
//! (Terminating, then content removal) is driven by `namespace_lifecycle.rs`.

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::STATUS_VERBS;
use crate::registry::strategy::{copy_field, roundtrip, Strategy};

pub struct Namespaces;

impl Strategy for Namespaces {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "",
            version: "v1",
            kind: "Namespace",
            resource: "namespaces",
            singular: "namespace",
            namespaced: false,
            verbs: &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            short_names: &["ns"],
            categories: &[],
            subresources: &[
                Subresource {
                    name: "status",
                    group: "",
                    version: "v1",
                    kind: "Namespace",
                    verbs: STATUS_VERBS,
                },
                Subresource {
                    name: "finalize",
                    group: "",
                    version: "v1",
                    kind: "Namespace",
                    verbs: &["update"],
                },
            ],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::core::v1::Namespace>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        copy_field(obj, old, "status");
        copy_field(obj, old, "spec");
    }
}
