//! Deployment validation: replicas, selector and template (shared with
//! ReplicaSets), the rollout strategy, history and deadline bounds, the
//! immutable selector on update, and status counters.

use serde_json::Value;

use super::{
    collision_count_not_decremented, replica_counts_bounded, validate_replica_template,
    validate_required_selector, validate_workload, validate_workload_update,
};
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::go_repr;
use crate::validation::int_or_percent::{
    int_or_percent_value, not_more_than_100_percent, validate_int_or_percent,
};
use crate::validation::meta::{validate_nonnegative, validate_nonnegative_fields};
use crate::validation::value::{child, get, int, str_of, sub};

/// Validates a Deployment on create.
pub fn validate_deployment(d: &Value) -> FieldErrors {
    validate_workload(d, validate_spec)
}

/// Validates a Deployment update (main resource or status).
pub fn validate_deployment_update(new: &Value, old: &Value) -> FieldErrors {
    validate_workload_update(new, old, validate_spec, |new, old| {
        let mut errs = validate_status(new);
        errs.extend(collision_count_not_decremented(new, old));
        errs
    })
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_nonnegative(int(spec, "replicas"), &child(path, "replicas"));
    errs.extend(validate_required_selector(spec, path));
    errs.extend(validate_replica_template(spec, path));
    errs.extend(validate_strategy(
        sub(spec, "strategy"),
        &child(path, "strategy"),
    ));
    errs.extend(validate_nonnegative_fields(
        spec,
        path,
        &["minReadySeconds", "revisionHistoryLimit"],
    ));
    if let Some(deadline) = int(spec, "progressDeadlineSeconds") {
        let dpath = child(path, "progressDeadlineSeconds");
        errs.extend(validate_nonnegative(Some(deadline), &dpath));
        if deadline <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                dpath,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_strategy(strategy: &Value, path: &str) -> FieldErrors {
    let rolling = get(strategy, "rollingUpdate");
    match str_of(strategy, "type") {
        "Recreate" if rolling.is_some() => vec![FieldError::forbidden(
            child(path, "rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        )],
        "Recreate" => Vec::new(),
        "RollingUpdate" => match rolling {
            None => vec![FieldError::required(
                child(path, "rollingUpdate"),
                "this should be defaulted and never be nil",
            )],
            Some(ru) => validate_rolling_update(ru, &child(path, "rollingUpdate")),
        },
        other => {
            let shown = match rolling {
                None => format!(
                    "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                    crate::validation::field_error::go_quote(other)
                ),
                Some(_) => strategy.to_string(),
            };
            let mut e = FieldError::not_supported(path, other, &["Recreate", "RollingUpdate"]);
            e.rendered = Some(shown);
            vec![e]
        }
    }
}

fn validate_rolling_update(ru: &Value, path: &str) -> FieldErrors {
    let unavailable = get(ru, "maxUnavailable");
    let surge = get(ru, "maxSurge");
    let upath = child(path, "maxUnavailable");
    let mut errs = validate_int_or_percent(unavailable, &upath);
    errs.extend(validate_int_or_percent(surge, &child(path, "maxSurge")));
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errs.push(FieldError::invalid_rendered(
            &upath,
            go_repr::int_or_string(unavailable.unwrap_or(&Value::Null)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.extend(not_more_than_100_percent(unavailable, &upath));
    errs
}

fn validate_status(status: &Value) -> FieldErrors {
    let mut errs = validate_nonnegative_fields(
        status,
        "status",
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "collisionCount",
        ],
    );
    errs.extend(replica_counts_bounded(
        status,
        "status",
        &["updatedReplicas", "readyReplicas", "availableReplicas"],
    ));
    errs
}
