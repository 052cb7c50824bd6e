//! policy/v1 PodDisruptionBudget validation: at most one of minAvailable and
//! maxUnavailable (each a count or a percentage up to 100%), a well-formed
//! selector and eviction policy, and non-negative status counters with valid
//! conditions.

use serde_json::Value;

use super::conditions::validate_conditions;
use super::field_error::{FieldError, FieldErrors};
use super::int_or_percent::{not_more_than_100_percent, validate_int_or_percent};
use super::label_selector::validate_label_selector;
use super::meta::{validate_nonnegative_fields, validate_object_meta, validate_object_meta_update};
use super::names::NameRule;
use super::value::{arr, child, get, opt_str, sub};

const EVICTION_POLICIES: [&str; 2] = ["AlwaysAllow", "IfHealthyBudget"];

/// Validates a PodDisruptionBudget on create. Its name only needs to be a
/// safe path segment, as upstream checks nothing stricter for this kind.
pub fn validate_pod_disruption_budget(pdb: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(pdb, "metadata"),
        true,
        NameRule::PathSegment,
        "metadata",
    );
    errs.extend(validate_spec(sub(pdb, "spec"), "spec"));
    errs
}

/// Validates a PodDisruptionBudget update (the spec stays mutable) or a
/// status update.
pub fn validate_pod_disruption_budget_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_spec(sub(new, "spec"), "spec"));
    errs.extend(validate_status(sub(new, "status"), "status"));
    errs
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let min = get(spec, "minAvailable");
    let max = get(spec, "maxUnavailable");
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            path,
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        let p = child(path, field);
        errs.extend(validate_int_or_percent(v, &p));
        errs.extend(not_more_than_100_percent(v, &p));
    }
    errs.extend(validate_label_selector(
        get(spec, "selector"),
        &child(path, "selector"),
    ));
    if let Some(policy) = opt_str(spec, "unhealthyPodEvictionPolicy") {
        if !EVICTION_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                child(path, "unhealthyPodEvictionPolicy"),
                policy,
                &EVICTION_POLICIES,
            ));
        }
    }
    errs
}

fn validate_status(status: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_conditions(arr(status, "conditions"), &child(path, "conditions"));
    errs.extend(validate_nonnegative_fields(
        status,
        path,
        &[
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ],
    ));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: &FieldErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn pdb(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn one_bound_at_most() {
        assert!(validate_pod_disruption_budget(&pdb(
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}})
        ))
        .is_empty());
        let both = validate_pod_disruption_budget(&pdb(
            json!({"minAvailable": 1, "maxUnavailable": "10%"}),
        ));
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].field, "spec");
        assert!(both[0]
            .to_string()
            .ends_with("minAvailable and maxUnavailable cannot be both set"));
    }

    #[test]
    fn bounds_and_policy_are_checked() {
        let errs = validate_pod_disruption_budget(&pdb(json!({
            "maxUnavailable": "150%",
            "unhealthyPodEvictionPolicy": "Never",
        })));
        assert_eq!(
            msgs(&errs),
            [
                r#"spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%"#,
                r#"spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget""#,
            ]
        );
        let neg = validate_pod_disruption_budget(&pdb(json!({"minAvailable": -1})));
        assert_eq!(
            msgs(&neg),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn status_counters_are_non_negative() {
        let old = pdb(json!({"minAvailable": 1}));
        let mut new = old.clone();
        new["status"] = json!({"disruptionsAllowed": -1, "currentHealthy": 1,
                               "desiredHealthy": 1, "expectedPods": 1});
        assert_eq!(
            msgs(&validate_pod_disruption_budget_update(&new, &old)),
            ["status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"]
        );
    }
}
