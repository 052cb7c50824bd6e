//! coordination.k8s.io/v1 Lease validation: the object's metadata (a DNS
//! subdomain name in a namespace), a positive lease duration, a
//! non-negative transition count, and a preferred holder only with a
//! strategy.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrors};
use super::meta::{validate_nonnegative, validate_object_meta, validate_object_meta_update};
use super::names::NameRule;
use super::value::{child, int, opt_str, sub};

/// Validates a Lease on create.
pub fn validate_lease(lease: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(lease, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(validate_spec(sub(lease, "spec"), "spec"));
    errs
}

/// Validates a Lease update: the whole spec stays mutable.
pub fn validate_lease_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_spec(sub(new, "spec"), "spec"));
    errs
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    if let Some(d) = int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            child(path, "leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    errs.extend(validate_nonnegative(
        int(spec, "leaseTransitions"),
        &child(path, "leaseTransitions"),
    ));
    let preferred = opt_str(spec, "preferredHolder").unwrap_or("");
    let strategy = opt_str(spec, "strategy").unwrap_or("");
    if !preferred.is_empty() && strategy.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &FieldErrors) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    /// A schemathesis finding: `POST .../leases` with `{}` stored a Lease
    /// without a name, and kube-runtime's reflectors panic on one.
    #[test]
    fn a_lease_needs_a_name_and_sane_durations() {
        assert_eq!(
            // The namespace comes from the URL before validation runs.
            messages(&validate_lease(
                &json!({"metadata": {"namespace": "default"}})
            )),
            ["metadata.name: Required value: name or generateName is required"]
        );
        let ok = json!({"metadata": {"name": "l", "namespace": "default"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0}});
        assert!(
            validate_lease(&ok).is_empty(),
            "{:?}",
            messages(&validate_lease(&ok))
        );
        let bad = json!({"metadata": {"name": "Bad_Name", "namespace": "default"},
            "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1, "preferredHolder": "x"}});
        let errs = messages(&validate_lease(&bad));
        assert!(
            errs[0].starts_with("metadata.name: Invalid value: \"Bad_Name\""),
            "{errs:?}"
        );
        assert_eq!(
            &errs[1..],
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
                "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
            ]
        );
        let updated = json!({"metadata": {"name": "l", "namespace": "default", "resourceVersion": "2"},
            "spec": {"leaseDurationSeconds": -5}});
        let errs = messages(&validate_lease_update(&updated, &ok));
        assert!(
            errs.contains(
                &"spec.leaseDurationSeconds: Invalid value: -5: must be greater than 0".to_string()
            ),
            "{errs:?}"
        );
    }
}
