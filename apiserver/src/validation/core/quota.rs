//! LimitRange and ResourceQuota validation: resource names per context, quantity
//! values, the ordering min <= defaultRequest <= default <= max, and quota scopes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::resources::{
    is_hugepage, is_overcommit_allowed, validate_container_resource_name, validate_quantity_value,
    validate_resource_name,
};
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE};
use crate::validation::names::{is_qualified_name, NameRule};
use crate::validation::quantity::Quantity;
use crate::validation::value::{arr, child, get, index, key, obj, str_of, sub};

const QUOTA_RESOURCES: [&str; 19] = [
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

const QUOTA_SCOPES: [&str; 7] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

fn limit_resource_name(limit_type: &str, name: &str, path: &str) -> FieldErrors {
    match limit_type {
        "Pod" | "Container" => validate_container_resource_name(name, path),
        _ => validate_resource_name(name, path),
    }
}

/// Validates a LimitRange.
pub fn validate_limit_range(lr: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(lr, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let mut types = BTreeSet::new();
    for (i, limit) in arr(sub(lr, "spec"), "limits").iter().enumerate() {
        let p = index("spec.limits", i);
        let ty = str_of(limit, "type");
        let type_errs: FieldErrors = is_qualified_name(ty)
            .iter()
            .map(|m| FieldError::invalid(child(&p, "type"), ty, m))
            .collect();
        if type_errs.is_empty()
            && !ty.contains('/')
            && !["Pod", "Container", "PersistentVolumeClaim"].contains(&ty)
        {
            errs.push(FieldError::invalid(
                child(&p, "type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        errs.extend(type_errs);
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(child(&p, "type"), ty));
        }
        let mut maps: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
        let mut fields = vec!["max", "min"];
        if ty == "Pod" {
            for f in ["default", "defaultRequest"] {
                if obj(limit, f).is_some_and(|m| !m.is_empty()) {
                    errs.push(FieldError::forbidden(
                        child(&p, f),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        } else {
            fields.extend(["default", "defaultRequest"]);
        }
        fields.push("maxLimitRequestRatio");
        for f in fields {
            for (k, v) in obj(limit, f).into_iter().flatten() {
                let kp = key(&child(&p, f), k);
                errs.extend(limit_resource_name(ty, k, &kp));
                if let Ok(q) = Quantity::from_json(v) {
                    maps.entry(f).or_default().insert(k.clone(), q);
                }
            }
        }
        if ty == "PersistentVolumeClaim" {
            let has = |f: &str| maps.get(f).is_some_and(|m| m.contains_key("storage"));
            if !has("min") && !has("max") {
                errs.push(FieldError::required(
                    child(&p, "limits"),
                    "either minimum or maximum storage value is required, but neither was provided",
                ));
            }
        }
        let keys: BTreeSet<String> = maps.values().flat_map(|m| m.keys().cloned()).collect();
        for k in keys {
            let q = |f: &str| maps.get(f).and_then(|m| m.get(&k)).copied();
            let (min, max, def, def_req, ratio) = (
                q("min"),
                q("max"),
                q("default"),
                q("defaultRequest"),
                q("maxLimitRequestRatio"),
            );
            let inv = |f: &str, v: &Quantity, msg: String| {
                FieldError::invalid(key(&child(&p, f), &k), v.canonical(), &msg)
            };
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    errs.push(inv(
                        "min",
                        &a,
                        format!("min value {a} is greater than max value {b}"),
                    ));
                }
            }
            if let (Some(r), Some(a)) = (def_req, min) {
                if a > r {
                    errs.push(inv(
                        "defaultRequest",
                        &r,
                        format!("min value {a} is greater than default request value {r}"),
                    ));
                }
            }
            if let (Some(r), Some(b)) = (def_req, max) {
                if r > b {
                    errs.push(inv(
                        "defaultRequest",
                        &r,
                        format!("default request value {r} is greater than max value {b}"),
                    ));
                }
            }
            if let (Some(r), Some(d)) = (def_req, def) {
                if r > d {
                    errs.push(inv(
                        "defaultRequest",
                        &r,
                        format!(
                            "default request value {r} is greater than default limit value {d}"
                        ),
                    ));
                }
            }
            if let (Some(d), Some(a)) = (def, min) {
                if a > d {
                    errs.push(inv(
                        "default",
                        &a,
                        format!("min value {a} is greater than default value {d}"),
                    ));
                }
            }
            if let (Some(d), Some(b)) = (def, max) {
                if d > b {
                    errs.push(inv(
                        "default",
                        &b,
                        format!("default value {d} is greater than max value {b}"),
                    ));
                }
            }
            if let Some(r) = ratio {
                if r < Quantity::from_int(1) {
                    errs.push(inv(
                        "maxLimitRequestRatio",
                        &r,
                        format!("ratio {r} is less than 1"),
                    ));
                }
                if let (Some(a), Some(b)) = (min, max) {
                    if a.nanos() > 0 {
                        let limit = b.nanos() as f64 / a.nanos() as f64;
                        if r.nanos() as f64 / 1e9 > limit {
                            errs.push(inv(
                                "maxLimitRequestRatio",
                                &r,
                                format!("ratio {r} is greater than max/min = {limit:.6}"),
                            ));
                        }
                    }
                }
            }
            if !is_overcommit_allowed(&k) {
                if let (Some(d), Some(r)) = (def, def_req) {
                    if d != r {
                        errs.push(inv(
                            "defaultRequest",
                            &r,
                            format!(
                                "default value {d} must equal to defaultRequest value {r} in {k}"
                            ),
                        ));
                    }
                }
            }
        }
    }
    errs
}

/// Validates a LimitRange update.
pub fn validate_limit_range_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_limit_range(new));
    errs
}

fn quota_resource_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = validate_resource_name(name, path);
    let standard = QUOTA_RESOURCES.contains(&name)
        || name.strip_prefix("requests.").is_some_and(is_hugepage)
        || is_hugepage(name);
    if !name.contains('/') && !standard {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

fn validate_hard(map: Option<&Map<String, Value>>, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (k, v) in map.into_iter().flatten() {
        let p = key(path, k);
        errs.extend(quota_resource_name(k, &p));
        errs.extend(validate_quantity_value(k, v, &p).1);
    }
    errs
}

fn validate_quota_spec(spec: &Value) -> FieldErrors {
    let mut errs = validate_hard(obj(spec, "hard"), "spec.hard");
    let scopes = arr(spec, "scopes");
    let shown = Value::from(scopes.to_vec());
    let names: BTreeSet<&str> = scopes.iter().filter_map(Value::as_str).collect();
    for s in scopes {
        if !s.as_str().is_some_and(|s| QUOTA_SCOPES.contains(&s)) {
            errs.push(FieldError::invalid(
                "spec.scopes",
                shown.clone(),
                "unsupported scope",
            ));
        }
    }
    for (a, b) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if names.contains(a) && names.contains(b) {
            errs.push(FieldError::invalid(
                "spec.scopes",
                shown.clone(),
                "conflicting scopes",
            ));
        }
    }
    if let Some(sel) = get(spec, "scopeSelector") {
        let p = "spec.scopeSelector.matchExpressions";
        for req in arr(sel, "matchExpressions") {
            let scope = str_of(req, "scopeName");
            if !QUOTA_SCOPES.contains(&scope) {
                errs.push(FieldError::invalid(
                    format!("{p}.scopeName"),
                    scope,
                    "unsupported scope",
                ));
            }
            let op = str_of(req, "operator");
            let exists_only = [
                "BestEffort",
                "NotBestEffort",
                "Terminating",
                "NotTerminating",
                "CrossNamespacePodAffinity",
            ];
            if exists_only.contains(&scope) && op != "Exists" {
                errs.push(FieldError::invalid(
                    format!("{p}.operator"),
                    op,
                    "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                ));
            }
            let values = arr(req, "values");
            match op {
                "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                    format!("{p}.values"),
                    "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                )),
                "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::invalid(
                    format!("{p}.values"),
                    Value::from(values.to_vec()),
                    "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                _ => errs.push(FieldError::invalid(format!("{p}.operator"), op, "not a valid selector operator")),
            }
        }
    }
    errs
}

/// Validates a ResourceQuota.
pub fn validate_resource_quota(rq: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(rq, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(validate_quota_spec(sub(rq, "spec")));
    let status = sub(rq, "status");
    errs.extend(validate_hard(obj(status, "hard"), "status.hard"));
    errs.extend(validate_hard(obj(status, "used"), "status.used"));
    errs
}

/// Validates a ResourceQuota update; scopes are fixed at creation.
pub fn validate_resource_quota_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    errs.extend(validate_quota_spec(ns));
    let set = |s: &Value| -> BTreeSet<String> {
        arr(s, "scopes")
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    if set(ns) != set(os) {
        errs.push(FieldError::invalid(
            "spec.scopes",
            Value::from(arr(ns, "scopes").to_vec()),
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
