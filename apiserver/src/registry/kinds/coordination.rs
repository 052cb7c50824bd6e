//! `coordination.k8s.io/v1` Leases: node heartbeats (`kube-node-lease`)
//! and leader election. No behaviour beyond the typed shape.

use openapi::ResourceDescriptor;
use serde_json::Value;

use super::ALL_VERBS;
use crate::registry::strategy::{roundtrip, Strategy};

pub struct Leases;

impl Strategy for Leases {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            resource: "leases",
            singular: "lease",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            subresources: &[],
        };
        &D
    }
    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::coordination::v1::Lease>(obj)
    }
}
