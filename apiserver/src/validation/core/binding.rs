//! Pod subresource bodies: Binding (`pods/binding`, how the scheduler assigns a node)
//! and Eviction (`pods/eviction`, a policy-checked delete).

use serde_json::Value;

use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::value::{arr, get, str_of, sub};

/// Binding: the target, if it names a kind, must be a Node, and must name it.
pub fn validate_binding(binding: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    let target = sub(binding, "target");
    let kind = str_of(target, "kind");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported(
            "target.kind",
            kind,
            &["Node", "<empty>"],
        ));
    }
    if str_of(target, "name").is_empty() {
        errs.push(FieldError::required("target.name", ""));
    }
    errs
}

/// Eviction: names the pod and carries optional DeleteOptions, validated as upstream
/// validates any DeleteOptions body.
pub fn validate_eviction(eviction: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    if str_of(sub(eviction, "metadata"), "name").is_empty() {
        errs.push(FieldError::required("metadata.name", ""));
    }
    if let Some(opts) = get(eviction, "deleteOptions") {
        errs.extend(validate_delete_options(opts));
    }
    errs
}

/// DeleteOptions: orphanDependents and propagationPolicy exclude each other, the
/// policy is an enum, and dryRun only knows `All`.
pub fn validate_delete_options(opts: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    let policy = get(opts, "propagationPolicy");
    if get(opts, "orphanDependents").is_some() && policy.is_some() {
        errs.push(FieldError::invalid(
            "propagationPolicy",
            policy.cloned().unwrap_or(Value::Null),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(p) = policy.and_then(Value::as_str) {
        if !["Foreground", "Background", "Orphan"].contains(&p) {
            errs.push(FieldError::not_supported(
                "propagationPolicy",
                p,
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
    }
    let dry_run = arr(opts, "dryRun");
    if dry_run.iter().any(|d| d.as_str() != Some("All")) {
        errs.push(FieldError::not_supported(
            "dryRun",
            Value::from(dry_run.to_vec()),
            &["All"],
        ));
    }
    errs
}
