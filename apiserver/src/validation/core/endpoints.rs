//! Endpoints validation: every subset lists addresses (valid, non-special IPs) and
//! well-formed ports.

use serde_json::Value;

use super::service::validate_non_special_ip;
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update};
use crate::validation::names::{
    is_dns1123_subdomain, is_valid_port_num, validate_dns1123_label, validate_ip,
    validate_qualified_name, NameRule,
};
use crate::validation::value::{arr, child, index, int, opt_str, str_of, sub};

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// Validates Endpoints (create and the body of an update).
pub fn validate_endpoints(ep: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(ep, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let p = index("subsets", i);
        let (addrs, not_ready) = (arr(ss, "addresses"), arr(ss, "notReadyAddresses"));
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (list, items) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in items.iter().enumerate() {
                errs.extend(validate_address(a, &index(&child(&p, list), j)));
            }
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_port(
                port,
                ports.len() > 1,
                &index(&child(&p, "ports"), j),
            ));
        }
    }
    errs
}

/// Validates an Endpoints update.
pub fn validate_endpoints_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_endpoints(new));
    errs
}

fn validate_address(a: &Value, path: &str) -> FieldErrors {
    let ip = str_of(a, "ip");
    let mut errs = validate_ip(&child(path, "ip"), ip);
    let host = str_of(a, "hostname");
    if !host.is_empty() {
        errs.extend(validate_dns1123_label(host, &child(path, "hostname")));
    }
    if let Some(node) = opt_str(a, "nodeName") {
        errs.extend(
            is_dns1123_subdomain(node)
                .iter()
                .map(|m| FieldError::invalid(child(path, "nodeName"), node, m)),
        );
    }
    errs.extend(validate_non_special_ip(ip, &child(path, "ip")));
    errs
}

fn validate_port(port: &Value, require_name: bool, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
    }
    let p = int(port, "port").unwrap_or(0);
    errs.extend(
        is_valid_port_num(p)
            .iter()
            .map(|m| FieldError::invalid(child(path, "port"), p, m)),
    );
    let proto = str_of(port, "protocol");
    if proto.is_empty() {
        errs.push(FieldError::required(child(path, "protocol"), ""));
    } else if !PROTOCOLS.contains(&proto) {
        errs.push(FieldError::not_supported(
            child(path, "protocol"),
            proto,
            &PROTOCOLS,
        ));
    }
    if let Some(ap) = opt_str(port, "appProtocol") {
        errs.extend(validate_qualified_name(ap, &child(path, "appProtocol")));
    }
    errs
}
