//! policy/v1 PodDisruptionBudgets: generation-tracked, with a `status`
//! subresource written by the disruption controller and by evictions
//! (`registry/eviction.rs`). A new budget's status allows no disruption.

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::registry::strategy::{roundtrip, Strategy};

pub struct PodDisruptionBudgets;

impl Strategy for PodDisruptionBudgets {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "policy",
            version: "v1",
            kind: "PodDisruptionBudget",
            resource: "poddisruptionbudgets",
            singular: "poddisruptionbudget",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["pdb"],
            categories: &[],
            subresources: &[Subresource {
                name: "status",
                group: "policy",
                version: "v1",
                kind: "PodDisruptionBudget",
                verbs: STATUS_VERBS,
            }],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Go's zero PodDisruptionBudgetStatus, as upstream serializes it.
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"currentHealthy": 0, "desiredHealthy": 0,
                               "disruptionsAllowed": 0, "expectedPods": 0});
    }
}
