//! ReplicationController validation: replica count, a non-empty selector that matches
//! the pod template's labels, and a template whose pods always restart.

use serde_json::{Map, Value};

use super::pod::validate_pod_template_spec;
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{
    validate_nonnegative, validate_object_meta, validate_object_meta_update,
};
use crate::validation::names::NameRule;
use crate::validation::value::{child, get, int, obj, str_of, sub};

/// Whether every selector pair appears in `labels` (an equality-based selector).
pub(crate) fn selector_matches(
    selector: &Map<String, Value>,
    labels: Option<&Map<String, Value>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Validates a ReplicationController on create.
pub fn validate_replication_controller(rc: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(rc, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(validate_spec(sub(rc, "spec"), "spec"));
    errs
}

/// Validates a ReplicationController update (the spec stays fully mutable).
pub fn validate_replication_controller_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_spec(sub(new, "spec"), "spec"));
    errs
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_nonnegative(
        int(spec, "minReadySeconds"),
        &child(path, "minReadySeconds"),
    );
    let empty = Map::new();
    let selector = obj(spec, "selector").unwrap_or(&empty);
    if selector.is_empty() {
        errs.push(FieldError::required(child(path, "selector"), ""));
    }
    errs.extend(validate_nonnegative(
        int(spec, "replicas"),
        &child(path, "replicas"),
    ));
    let tpath = child(path, "template");
    let Some(template) = get(spec, "template") else {
        errs.push(FieldError::required(tpath, ""));
        return errs;
    };
    let labels = obj(sub(template, "metadata"), "labels");
    if !selector.is_empty() && !selector_matches(selector, labels) {
        let shown = labels
            .map(|l| Value::Object(l.clone()))
            .unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            child(&tpath, "metadata.labels"),
            shown,
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &tpath));
    let tspec = sub(template, "spec");
    let restart = str_of(tspec, "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            child(&tpath, "spec.restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            child(&tpath, "spec.activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}
