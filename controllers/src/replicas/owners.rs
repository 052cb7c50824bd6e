//! The two kinds a replica manager serves, ReplicationControllers
//! (core/v1, map selector) and ReplicaSets (apps/v1, label selector),
//! seen through one trait so the manager is written once.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::NamespaceResourceScope;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::logic::ReplicaCounts;
use crate::selector::Selector;

pub trait ReplicaOwner:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The reporting controller's name in Events.
    const CONTROLLER: &'static str;
    fn selector(&self) -> Option<Selector>;
    fn desired(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
    /// The status as it is now, in the shape [`status`] builds.
    fn current_status(&self) -> Value;
}

/// The status a manager writes: counts, observed generation, and a
/// `ReplicaFailure` condition while pods cannot be created or deleted.
pub fn status(counts: &ReplicaCounts, generation: Option<i64>, failure: Option<&str>) -> Value {
    let mut s = json!({
        "replicas": counts.replicas,
        "fullyLabeledReplicas": counts.fully_labeled,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.available,
        "observedGeneration": generation.unwrap_or(0),
    });
    if let Some(message) = failure {
        s["conditions"] = json!([{
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": message,
        }]);
    }
    s
}

/// The fields of `status` that [`status`] writes, from an object's JSON
/// (missing counts are zeros, as the API omits them).
fn comparable(status: Option<Value>) -> Value {
    let s = status.unwrap_or(Value::Null);
    let n = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut out = json!({
        "replicas": n("replicas"),
        "fullyLabeledReplicas": n("fullyLabeledReplicas"),
        "readyReplicas": n("readyReplicas"),
        "availableReplicas": n("availableReplicas"),
        "observedGeneration": n("observedGeneration"),
    });
    let failure = s
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
                .cloned()
        });
    if let Some(c) = failure {
        out["conditions"] = json!([{
            "type": "ReplicaFailure",
            "status": "True",
            "reason": c["reason"].clone(),
            "message": c["message"].clone(),
        }]);
    }
    out
}

/// The accessors that read the same fields of both kinds' specs and
/// statuses (their types differ, their shapes do not).
macro_rules! same_shape_accessors {
    () => {
        fn desired(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }
        fn template(&self) -> Option<&PodTemplateSpec> {
            self.spec.as_ref()?.template.as_ref()
        }
        fn min_ready_seconds(&self) -> i32 {
            self.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        }
        fn current_status(&self) -> Value {
            comparable(
                self.status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok()),
            )
        }
    };
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";

    fn selector(&self) -> Option<Selector> {
        let spec = self.spec.as_ref()?;
        // An RC without a selector selects its template's labels.
        let map = spec.selector.clone().or_else(|| {
            spec.template
                .as_ref()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
        })?;
        Some(Selector::from_map(&map))
    }
    same_shape_accessors!();
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";

    fn selector(&self) -> Option<Selector> {
        Selector::from_label_selector(&self.spec.as_ref()?.selector)
    }
    same_shape_accessors!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_status_compares_equal_to_what_would_be_written() {
        let counts = ReplicaCounts {
            replicas: 2,
            fully_labeled: 2,
            ready: 1,
            available: 1,
        };
        let written = status(&counts, Some(3), None);
        assert_eq!(comparable(Some(written.clone())), written);
        let failed = status(&counts, Some(3), Some("quota"));
        assert_eq!(comparable(Some(failed.clone())), failed);
        assert_ne!(comparable(None), written);
    }
}
