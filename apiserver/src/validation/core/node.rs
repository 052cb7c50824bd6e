//! Node validation: names, taints, pod CIDRs, capacity/allocatable quantities, and the
//! fields (podCIDRs, providerID) that are write-once.

use std::collections::BTreeSet;

use serde_json::Value;

use super::resources::validate_quantity_value;
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update};
use crate::validation::names::{
    is_label_value, parse_ip_sloppy, validate_cidr, validate_qualified_name, NameRule,
};
use crate::validation::value::{arr, child, index, obj, str_of, sub};

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Taints: key and value syntax, a known effect, unique per (key, effect).
/// Upstream reports them under `metadata.taints`, not `spec.taints`.
fn validate_taints(taints: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = index(path, i);
        let key = str_of(t, "key");
        errs.extend(validate_qualified_name(key, &child(&p, "key")));
        let value = str_of(t, "value");
        let msgs = is_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "value"),
                value,
                &msgs.join(";"),
            ));
        }
        let effect = str_of(t, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(child(&p, "effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                &TAINT_EFFECTS,
            ));
        }
        if !seen.insert((effect, key)) {
            errs.push(
                FieldError::duplicate(&p, t.clone())
                    .with_detail("taints must be unique by key and effect pair"),
            );
        }
    }
    errs
}

fn validate_resources(node: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    let status = sub(node, "status");
    for list in ["capacity", "allocatable"] {
        if let Some(m) = obj(status, list) {
            for (k, v) in m {
                errs.extend(validate_quantity_value(k, v, &format!("status.{list}.{k}")).1);
            }
        }
    }
    errs
}

/// Validates a Node on create.
pub fn validate_node(node: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(node, "metadata"),
        false,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let spec = sub(node, "spec");
    errs.extend(validate_taints(arr(spec, "taints"), "metadata.taints"));
    errs.extend(validate_resources(node));
    let cidrs = arr(spec, "podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(validate_cidr(
            &index("spec.podCIDRs", i),
            c.as_str().unwrap_or_default(),
        ));
    }
    if cidrs.len() > 1 {
        let v6: Vec<bool> = cidrs
            .iter()
            .map(|c| {
                let addr = c
                    .as_str()
                    .unwrap_or_default()
                    .split('/')
                    .next()
                    .unwrap_or_default();
                parse_ip_sloppy(addr).is_some_and(|a| a.is_ipv6())
            })
            .collect();
        if cidrs.len() > 2 || v6.iter().all(|x| *x) || v6.iter().all(|x| !*x) {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                Value::from(cidrs.to_vec()),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            let c = c.as_str().unwrap_or_default();
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(index("spec.podCIDRs", i), c));
            }
        }
    }
    errs
}

/// Validates a Node update.
pub fn validate_node_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_resources(new));
    let mut seen = BTreeSet::new();
    for (i, a) in arr(sub(new, "status"), "addresses").iter().enumerate() {
        if !seen.insert(a.to_string()) {
            errs.push(FieldError::duplicate(
                index("status.addresses", i),
                a.clone(),
            ));
        }
    }
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let (nc, oc) = (arr(ns, "podCIDRs"), arr(os, "podCIDRs"));
    let cidr_msg = "node updates may not change podCIDR except from \"\" to valid";
    if !oc.is_empty() {
        if oc.len() != nc.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
        } else {
            for (a, b) in oc.iter().zip(nc) {
                if a != b {
                    errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
                }
            }
        }
    }
    let old_pid = str_of(os, "providerID");
    if !old_pid.is_empty() && old_pid != str_of(ns, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(arr(ns, "taints"), "metadata.taints"));
    if str_of(ns, "externalID") != str_of(os, "externalID") {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
    errs
}
