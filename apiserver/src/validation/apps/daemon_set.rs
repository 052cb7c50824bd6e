//! DaemonSet validation: selector and template, the update strategy (exactly
//! one of maxUnavailable and maxSurge non-zero), the immutable selector on
//! update, and status counters.

use serde_json::Value;

use super::{
    always_restart_no_deadline, collision_count_not_decremented, template_labels_match,
    validate_workload, validate_workload_update,
};
use crate::selector::LabelSelector;
use crate::validation::core::pod::validate_pod_template_spec;
use crate::validation::field_error::{go_quote, FieldError, FieldErrors};
use crate::validation::go_repr;
use crate::validation::int_or_percent::{
    int_or_percent_value, not_more_than_100_percent, validate_int_or_percent,
};
use crate::validation::label_selector::{is_empty_selector, validate_label_selector};
use crate::validation::meta::validate_nonnegative_fields;
use crate::validation::value::{child, get, str_of, sub};

/// Validates a DaemonSet on create.
pub fn validate_daemon_set(ds: &Value) -> FieldErrors {
    validate_workload(ds, validate_spec)
}

/// Validates a DaemonSet update (main resource or status).
pub fn validate_daemon_set_update(new: &Value, old: &Value) -> FieldErrors {
    validate_workload_update(new, old, validate_spec, |new, old| {
        let mut errs = validate_status(new);
        errs.extend(collision_count_not_decremented(new, old));
        errs
    })
}

fn validate_spec(spec: &Value, path: &str) -> FieldErrors {
    let sel_path = child(path, "selector");
    let selector = get(spec, "selector");
    let mut errs = validate_label_selector(selector, &sel_path);
    let tpath = child(path, "template");
    let template = sub(spec, "template");
    // A missing selector selects nothing, so the template never matches it.
    if let Ok(sel) = LabelSelector::from_label_selector_json(selector.unwrap_or(&Value::Null)) {
        errs.extend(template_labels_match(&sel, template, &tpath));
    }
    if let Some(sel) = selector.filter(|s| is_empty_selector(s)) {
        errs.push(FieldError::invalid_rendered(
            sel_path,
            go_repr::label_selector(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &tpath));
    errs.extend(always_restart_no_deadline(template, &tpath, "DaemonSet"));
    errs.extend(validate_nonnegative_fields(
        spec,
        path,
        &["minReadySeconds"],
    ));
    errs.extend(validate_update_strategy(
        sub(spec, "updateStrategy"),
        &child(path, "updateStrategy"),
    ));
    errs.extend(validate_nonnegative_fields(
        spec,
        path,
        &["revisionHistoryLimit"],
    ));
    errs
}

fn validate_update_strategy(strategy: &Value, path: &str) -> FieldErrors {
    let rolling = get(strategy, "rollingUpdate");
    match str_of(strategy, "type") {
        "OnDelete" => Vec::new(),
        "RollingUpdate" => match rolling {
            None => vec![FieldError::required(child(path, "rollingUpdate"), "")],
            Some(ru) => validate_rolling_update(ru, &child(path, "rollingUpdate")),
        },
        other => {
            let mut e = FieldError::not_supported(path, other, &["RollingUpdate", "OnDelete"]);
            e.rendered = Some(match rolling {
                None => format!(
                    "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                    go_quote(other)
                ),
                Some(_) => strategy.to_string(),
            });
            vec![e]
        }
    }
}

fn validate_rolling_update(ru: &Value, path: &str) -> FieldErrors {
    let unavailable = get(ru, "maxUnavailable");
    let surge = get(ru, "maxSurge");
    let (upath, spath) = (child(path, "maxUnavailable"), child(path, "maxSurge"));
    let mut errs = validate_int_or_percent(unavailable, &upath);
    errs.extend(validate_int_or_percent(surge, &spath));
    errs.extend(not_more_than_100_percent(unavailable, &upath));
    errs.extend(not_more_than_100_percent(surge, &spath));
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    if has_unavailable && has_surge {
        errs.push(FieldError::invalid_rendered(
            spath,
            go_repr::int_or_string(surge.unwrap_or(&Value::Null)),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            upath,
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}

fn validate_status(status: &Value) -> FieldErrors {
    validate_nonnegative_fields(
        status,
        "status",
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
            "collisionCount",
        ],
    )
}
