//! ReplicaSet validation: replicas, selector and template (shared with
//! Deployments), the immutable selector on update, and status counters.

use serde_json::Value;

use super::{
    replica_counts_bounded, validate_replica_template, validate_required_selector,
    validate_selector_unchanged,
};
use crate::validation::field_error::FieldErrors;
use crate::validation::meta::{
    validate_nonnegative_fields, validate_object_meta, validate_object_meta_update,
};
use crate::validation::names::NameRule;
use crate::validation::value::sub;

/// Validates a ReplicaSet on create.
pub fn validate_replica_set(rs: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(rs, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(validate_spec(sub(rs, "spec"), "spec"));
    errs
}

/// Validates a ReplicaSet update (main resource or status).
pub fn validate_replica_set_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_spec(sub(new, "spec"), "spec"));
    errs.extend(validate_selector_unchanged(
        sub(new, "spec"),
        sub(old, "spec"),
        "spec",
    ));
    errs.extend(validate_status(sub(new, "status")));
    errs
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
