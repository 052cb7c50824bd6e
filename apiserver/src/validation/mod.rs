//! Pure (no IO) validation of built-in API objects on the JSON object model.
//!
//! Owns the rules kube-apiserver (v1.33) applies before persisting an object, and the
//! exact error paths, reasons and messages it reports, so rkube's 422 responses match
//! a real cluster's. Entry points are [`validate`] for creates and [`validate_update`]
//! for updates; both expect an object that has already been defaulted
//! ([`crate::defaults::apply_defaults`]), as upstream validates after defaulting.
//! Kinds are dispatched by name to their group's module (`core` for core/v1).

pub mod apps;
pub mod conditions;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod field_error;
pub mod go_repr;
pub mod int_or_percent;
pub mod label_selector;
pub mod meta;
pub mod names;
pub mod policy;
pub mod quantity;
pub mod value;

use serde_json::Value;

pub use field_error::{invalid_message, ErrorType, FieldError, FieldErrors};
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use names::NameRule;

/// Validates an object about to be created. Unknown kinds yield no errors.
pub fn validate(kind: &str, obj: &Value) -> FieldErrors {
    match kind {
        "Deployment" => apps::deployment::validate_deployment(obj),
        "ReplicaSet" => apps::replica_set::validate_replica_set(obj),
        "DaemonSet" => apps::daemon_set::validate_daemon_set(obj),
        "ControllerRevision" => apps::controller_revision::validate_controller_revision(obj),
        "EndpointSlice" => discovery::validate_endpoint_slice(obj),
        "PodDisruptionBudget" => policy::validate_pod_disruption_budget(obj),
        "Lease" => coordination::validate_lease(obj),
        _ => core::validate(kind, obj),
    }
}

/// Validates an update of `old` into `obj`. Unknown kinds yield no errors.
pub fn validate_update(kind: &str, obj: &Value, old: &Value) -> FieldErrors {
    match kind {
        "Deployment" => apps::deployment::validate_deployment_update(obj, old),
        "ReplicaSet" => apps::replica_set::validate_replica_set_update(obj, old),
        "DaemonSet" => apps::daemon_set::validate_daemon_set_update(obj, old),
        "ControllerRevision" => {
            apps::controller_revision::validate_controller_revision_update(obj, old)
        }
        "EndpointSlice" => discovery::validate_endpoint_slice_update(obj, old),
        "PodDisruptionBudget" => policy::validate_pod_disruption_budget_update(obj, old),
        "Lease" => coordination::validate_lease_update(obj, old),
        _ => core::validate_update(kind, obj, old),
    }
}
