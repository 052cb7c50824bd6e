//! apps/v1 validation (Deployment, ReplicaSet, DaemonSet, ControllerRevision)
//! and the rules the workloads share: their label selector (immutable after
//! creation), the pod template it must match, and status counters.

pub mod controller_revision;
pub mod daemon_set;
pub mod deployment;
pub mod replica_set;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrors};
use super::go_repr;
use super::label_selector::{is_empty_selector, validate_label_selector};
use super::meta::FIELD_IMMUTABLE;
use super::value::{child, get, int, obj, sub};
use crate::selector::LabelSelector;
use crate::validation::core::pod::validate_pod_template_spec;

const DOES_NOT_MATCH: &str = "`selector` does not match template `labels`";

/// `spec.selector` of a Deployment or ReplicaSet: required, well-formed and
/// not empty (both kinds call themselves "deployment" here, as upstream).
/// A workload on create: its metadata (namespaced, DNS-subdomain name),
/// then its kind's `spec` checks.
fn validate_workload(obj: &Value, spec: fn(&Value, &str) -> FieldErrors) -> FieldErrors {
    let mut errs = super::meta::validate_object_meta(
        sub(obj, "metadata"),
        true,
        super::names::NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(spec(sub(obj, "spec"), "spec"));
    errs
}

/// A workload on update (main resource or status): metadata update, its
/// kind's `spec` checks, the immutable selector, then its kind's status
/// checks (`status` gets the new and old `status`).
fn validate_workload_update(
    new: &Value,
    old: &Value,
    spec: fn(&Value, &str) -> FieldErrors,
    status: fn(&Value, &Value) -> FieldErrors,
) -> FieldErrors {
    let mut errs =
        super::meta::validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(spec(sub(new, "spec"), "spec"));
    errs.extend(validate_selector_unchanged(
        sub(new, "spec"),
        sub(old, "spec"),
        "spec",
    ));
    errs.extend(status(sub(new, "status"), sub(old, "status")));
    errs
}

fn validate_required_selector(spec: &Value, path: &str) -> FieldErrors {
    let sel_path = child(path, "selector");
    let Some(selector) = get(spec, "selector") else {
        return vec![FieldError::required(sel_path, "")];
    };
    let mut errs = validate_label_selector(Some(selector), &sel_path);
    if is_empty_selector(selector) {
        errs.push(FieldError::invalid_rendered(
            sel_path,
            go_repr::label_selector(selector),
            "empty selector is invalid for deployment",
        ));
    }
    errs
}

/// The template of a Deployment or ReplicaSet: its labels must match the
/// selector (unless that selects everything), it must be a valid pod
/// template whose pods always restart and have no deadline. Skipped when the
/// selector does not convert (reported as an invalid selector instead).
fn validate_replica_template(spec: &Value, path: &str) -> FieldErrors {
    let selector_json = get(spec, "selector").unwrap_or(&Value::Null);
    let Ok(selector) = LabelSelector::from_label_selector_json(selector_json) else {
        return vec![FieldError::invalid_rendered(
            child(path, "selector"),
            go_repr::label_selector(selector_json),
            "invalid label selector",
        )];
    };
    let tpath = child(path, "template");
    let template = sub(spec, "template");
    let mut errs = Vec::new();
    if !selector.is_empty() {
        errs.extend(template_labels_match(&selector, template, &tpath));
    }
    errs.extend(validate_pod_template_spec(template, &tpath));
    errs.extend(always_restart_no_deadline(template, &tpath, "ReplicaSet"));
    errs
}

/// "`selector` does not match template `labels`" when `selector` does not
/// select the template's labels.
fn template_labels_match(selector: &LabelSelector, template: &Value, tpath: &str) -> FieldErrors {
    let empty = Map::new();
    let labels = obj(sub(template, "metadata"), "labels");
    if selector.matches(labels.unwrap_or(&empty)) {
        return Vec::new();
    }
    vec![FieldError::invalid_rendered(
        child(tpath, "metadata.labels"),
        go_repr::string_map(labels),
        DOES_NOT_MATCH,
    )]
}

/// Controller pods restart Always and carry no activeDeadlineSeconds; `kind`
/// names the controller in the message ("ReplicaSet" also for Deployments).
fn always_restart_no_deadline(template: &Value, tpath: &str, kind: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let tspec = sub(template, "spec");
    let restart = tspec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            child(tpath, "spec.restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            child(tpath, "spec.activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// apps/v1 forbids changing a workload's selector after creation. Empty and
/// missing lists compare equal, as upstream's semantic equality does.
fn validate_selector_unchanged(new_spec: &Value, old_spec: &Value, path: &str) -> FieldErrors {
    let canonical = |spec: &Value| -> Value {
        let Some(Value::Object(sel)) = spec.get("selector") else {
            return Value::Null;
        };
        let kept: Map<String, Value> = sel
            .iter()
            .filter(|(_, v)| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(kept)
    };
    if canonical(new_spec) == canonical(old_spec) {
        return Vec::new();
    }
    let shown = match get(new_spec, "selector") {
        Some(sel) => go_repr::label_selector(sel),
        None => "null".to_string(),
    };
    vec![FieldError::invalid_rendered(
        child(path, "selector"),
        shown,
        FIELD_IMMUTABLE,
    )]
}

/// `status.collisionCount` may only grow.
fn collision_count_not_decremented(new_status: &Value, old_status: &Value) -> FieldErrors {
    let (new, old) = (
        int(new_status, "collisionCount"),
        int(old_status, "collisionCount"),
    );
    match (new, old) {
        (n, Some(o)) if n.unwrap_or(0) < o => vec![FieldError::invalid(
            "status.collisionCount",
            n.unwrap_or(0),
            "cannot be decremented",
        )],
        _ => Vec::new(),
    }
}

/// Status counts that may not exceed `status.replicas` (and available may
/// not exceed ready), shared by Deployment and ReplicaSet.
fn replica_counts_bounded(status: &Value, path: &str, bounded: &[&str]) -> FieldErrors {
    let count = |f: &str| int(status, f).unwrap_or(0);
    let mut errs = Vec::new();
    for f in bounded {
        if count(f) > count("replicas") {
            errs.push(FieldError::invalid(
                child(path, f),
                count(f),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if count("availableReplicas") > count("readyReplicas") {
        errs.push(FieldError::invalid(
            child(path, "availableReplicas"),
            count("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}
