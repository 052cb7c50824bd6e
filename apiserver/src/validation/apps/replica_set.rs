//! ReplicaSet validation: replicas, selector and template (shared with
//! Deployments), the immutable selector on update, and status counters.

use serde_json::Value;

use super::{
    replica_counts_bounded, validate_replica_template, validate_required_selector,
    validate_workload, validate_workload_update,
};
use crate::validation::field_error::FieldErrors;
use crate::validation::meta::validate_nonnegative_fields;

/// Validates a ReplicaSet on create.
pub fn validate_replica_set(rs: &Value) -> FieldErrors {
    validate_workload(rs, validate_spec)
}

/// Validates a ReplicaSet update (main resource or status).
pub fn validate_replica_set_update(new: &Value, old: &Value) -> FieldErrors {
    validate_workload_update(new, old, validate_spec, |new, _| validate_status(new))
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_nonnegative_fields(spec, path, &["replicas", "minReadySeconds"]);
    errs.extend(validate_required_selector(spec, path));
    errs.extend(validate_replica_template(spec, path));
    errs
}

fn validate_status(status: &Value) -> FieldErrors {
    let mut errs = validate_nonnegative_fields(
        status,
        "status",
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
    );
    errs.extend(replica_counts_bounded(
        status,
        "status",
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
    ));
    errs
}
