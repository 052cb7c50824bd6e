//! Event validation for both APIs that serve events: core/v1 (legacy rules only, for
//! compatibility) and events.k8s.io/v1 (strict rules). Both are checked against the
//! shared internal field names, as upstream does, so errors from events.k8s.io also
//! say `involvedObject`, `message`, `source`.

use serde_json::{Map, Value};

use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE};
use crate::validation::names::{is_dns1123_subdomain, validate_qualified_name, NameRule};
use crate::validation::value::{get, int, str_of, sub};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// Whether the object arrived through events.k8s.io (strict) rather than core/v1.
fn is_events_api(ev: &Value) -> bool {
    str_of(ev, "apiVersion").starts_with("events.k8s.io/")
        && str_of(ev, "apiVersion") != "events.k8s.io/v1beta1"
}

/// Rewrites an event into the internal field names both APIs convert to.
fn internal_view(ev: &Value) -> Value {
    let mut m = Map::new();
    let copy = |m: &mut Map<String, Value>, from: &str, to: &str| {
        if let Some(v) = get(ev, from) {
            m.insert(to.to_string(), v.clone());
        }
    };
    if str_of(ev, "apiVersion").starts_with("events.k8s.io/") {
        for (from, to) in [
            ("metadata", "metadata"),
            ("regarding", "involvedObject"),
            ("related", "related"),
            ("reason", "reason"),
            ("note", "message"),
            ("deprecatedSource", "source"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
            ("type", "type"),
            ("eventTime", "eventTime"),
            ("series", "series"),
            ("action", "action"),
            ("reportingController", "reportingController"),
            ("reportingInstance", "reportingInstance"),
        ] {
            copy(&mut m, from, to);
        }
    } else {
        for (from, to) in [
            ("metadata", "metadata"),
            ("involvedObject", "involvedObject"),
            ("related", "related"),
            ("reason", "reason"),
            ("message", "message"),
            ("source", "source"),
            ("firstTimestamp", "firstTimestamp"),
            ("lastTimestamp", "lastTimestamp"),
            ("count", "count"),
            ("type", "type"),
            ("eventTime", "eventTime"),
            ("series", "series"),
            ("action", "action"),
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
        ] {
            copy(&mut m, from, to);
        }
    }
    Value::Object(m)
}

fn is_set_time(v: &Value, field: &str) -> bool {
    get(v, field)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// Rules every event must pass, whichever API it came through.
fn legacy_validate(ev: &Value, events_api: bool) -> FieldErrors {
    let mut errs = Vec::new();
    let namespace = str_of(sub(ev, "metadata"), "namespace");
    let involved_ns = str_of(sub(ev, "involvedObject"), "namespace");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if !is_set_time(ev, "eventTime") {
        if involved_ns.is_empty() {
            // Old clients post cluster-scoped objects' events to "default".
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller_field = if events_api {
            "reportingController"
        } else {
            "source"
        };
        let controller = str_of(ev, "reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required(controller_field, ""));
        }
        errs.extend(validate_qualified_name(controller, controller_field));
        let limited = |errs: &mut FieldErrors, field: &str, limit: usize, required: bool| {
            let v = str_of(ev, field);
            if required && v.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        };
        limited(
            &mut errs,
            "reportingInstance",
            REPORTING_INSTANCE_LIMIT,
            true,
        );
        limited(&mut errs, "action", ACTION_LIMIT, true);
        limited(&mut errs, "reason", REASON_LIMIT, true);
        limited(&mut errs, "message", NOTE_LIMIT, false);
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid("namespace", namespace, &msg));
    }
    errs
}

fn validate_series(ev: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    if let Some(series) = get(ev, "series") {
        if int(series, "count").unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if !is_set_time(series, "lastObservedTime") {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

/// Validates an Event on create.
pub fn validate_event(event: &Value) -> FieldErrors {
    let strict = is_events_api(event);
    let ev = internal_view(event);
    let mut errs = legacy_validate(&ev, strict);
    if !strict {
        return errs;
    }
    errs.extend(validate_object_meta(
        sub(&ev, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    ));
    errs.extend(validate_series(&ev));
    if !is_set_time(&ev, "eventTime") {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = str_of(&ev, "type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            &format!("has invalid value: {ty}"),
        ));
    }
    for f in ["firstTimestamp", "lastTimestamp"] {
        if is_set_time(&ev, f) {
            errs.push(FieldError::invalid(f, "", "needs to be unset"));
        }
    }
    if int(&ev, "count").unwrap_or(0) != 0 {
        errs.push(FieldError::invalid("count", "", "needs to be unset"));
    }
    let source = sub(&ev, "source");
    if !str_of(source, "component").is_empty() || !str_of(source, "host").is_empty() {
        errs.push(FieldError::invalid("source", "", "needs to be unset"));
    }
    errs
}

/// Validates an Event update; through events.k8s.io most fields are frozen.
pub fn validate_event_update(new: &Value, old: &Value) -> FieldErrors {
    let strict = is_events_api(new);
    let (n, o) = (internal_view(new), internal_view(old));
    let mut errs = legacy_validate(&n, strict);
    if !strict {
        return errs;
    }
    errs.extend(validate_object_meta_update(
        sub(&n, "metadata"),
        sub(&o, "metadata"),
    ));
    if get(&n, "series") != get(&o, "series") {
        errs.extend(validate_series(&n));
    }
    for f in [
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "action",
        "related",
        "reportingController",
        "reportingInstance",
    ] {
        let nv = get(&n, f);
        if nv != get(&o, f) {
            errs.push(FieldError::invalid(
                f,
                nv.cloned().unwrap_or(Value::Null),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs
}
