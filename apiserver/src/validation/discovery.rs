//! discovery.k8s.io/v1 EndpointSlice validation: a known address type (fixed
//! after creation), endpoints with 1–100 addresses of that type, and ports
//! with unique names and a supported protocol.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use super::core::service::validate_non_special_ip;
use super::field_error::{FieldError, FieldErrors};
use super::meta::{validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE};
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_label_value, parse_ip_sloppy,
    validate_dns1123_label, validate_labels, validate_qualified_name, NameRule,
};
use super::value::{arr, child, get, index, obj, opt_str, str_of, sub};

const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ZONE_HINTS: usize = 8;

/// Validates an EndpointSlice on create.
pub fn validate_endpoint_slice(eps: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(eps, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let address_type = str_of(eps, "addressType");
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            "addressType",
            address_type,
            &ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_endpoints(arr(eps, "endpoints"), address_type));
    errs.extend(validate_ports(arr(eps, "ports")));
    errs
}

/// Validates an EndpointSlice update: `addressType` may not change.
pub fn validate_endpoint_slice_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_endpoint_slice(new));
    let address_type = str_of(new, "addressType");
    if address_type != str_of(old, "addressType") {
        errs.push(FieldError::invalid(
            "addressType",
            address_type,
            FIELD_IMMUTABLE,
        ));
    }
    errs
}

fn validate_endpoints(endpoints: &[Value], address_type: &str) -> FieldErrors {
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(
            "endpoints",
            endpoints.len(),
            MAX_ENDPOINTS,
        )];
    }
    let mut errs = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let path = index("endpoints", i);
        let apath = child(&path, "addresses");
        let addresses = arr(ep, "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(
                &apath,
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(&apath, addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            errs.extend(validate_address(
                a.as_str().unwrap_or(""),
                address_type,
                &index(&apath, j),
            ));
        }
        if let Some(node) = opt_str(ep, "nodeName") {
            errs.extend(
                is_dns1123_subdomain(node)
                    .iter()
                    .map(|m| FieldError::invalid(child(&path, "nodeName"), node, m)),
            );
        }
        let tpath = child(&path, "deprecatedTopology");
        let topology = obj(ep, "deprecatedTopology");
        if let Some(t) = topology.filter(|t| t.len() > MAX_TOPOLOGY_LABELS) {
            errs.push(FieldError::too_many(&tpath, t.len(), MAX_TOPOLOGY_LABELS));
        }
        errs.extend(validate_labels(topology, &tpath));
        if let Some(host) = opt_str(ep, "hostname") {
            errs.extend(validate_dns1123_label(host, &child(&path, "hostname")));
        }
        if let Some(hints) = get(ep, "hints") {
            errs.extend(validate_zone_hints(
                arr(hints, "forZones"),
                &child(&path, "hints.forZones"),
            ));
        }
    }
    errs
}

/// One address checked against the slice's type; unknown types are not
/// checked (their own error is reported on `addressType`).
fn validate_address(address: &str, address_type: &str, path: &str) -> FieldErrors {
    let ip = parse_ip_sloppy(address);
    let is_v4 = |ip: &IpAddr| match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    match address_type {
        "IPv4" if !ip.as_ref().is_some_and(is_v4) => vec![FieldError::invalid(
            path,
            address,
            "must be a valid IPv4 address",
        )],
        "IPv6" if ip.as_ref().is_none_or(is_v4) => vec![FieldError::invalid(
            path,
            address,
            "must be a valid IPv6 address",
        )],
        "IPv4" | "IPv6" => validate_non_special_ip(address, path),
        "FQDN" => validate_fqdn(address, path),
        _ => Vec::new(),
    }
}

/// A fully qualified domain name: a DNS subdomain (a trailing dot allowed)
/// of at least two labels.
fn validate_fqdn(name: &str, path: &str) -> FieldErrors {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, &errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, label, &errs.join(","))];
        }
    }
    Vec::new()
}

fn validate_zone_hints(zones: &[Value], path: &str) -> FieldErrors {
    if zones.len() > MAX_ZONE_HINTS {
        return vec![FieldError::too_many(path, zones.len(), MAX_ZONE_HINTS)];
    }
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, z) in zones.iter().enumerate() {
        let zpath = child(&index(path, i), "name");
        let name = str_of(z, "name");
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&zpath, name));
        }
        errs.extend(
            is_label_value(name)
                .iter()
                .map(|m| FieldError::invalid(&zpath, name, m)),
        );
    }
    errs
}

fn validate_ports(ports: &[Value]) -> FieldErrors {
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many("ports", ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = index("ports", i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &child(&path, "name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&path, "name"), name));
        }
        match opt_str(port, "protocol") {
            None => errs.push(FieldError::required(child(&path, "protocol"), "")),
            Some(p) if !PROTOCOLS.contains(&p) => errs.push(FieldError::not_supported(
                child(&path, "protocol"),
                p,
                &PROTOCOLS,
            )),
            Some(_) => {}
        }
        if let Some(ap) = opt_str(port, "appProtocol") {
            errs.extend(validate_qualified_name(ap, &child(&path, "appProtocol")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: &FieldErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn slice(address_type: &str, addresses: Value) -> Value {
        json!({"metadata": {"name": "web-abc", "namespace": "default"},
               "addressType": address_type,
               "endpoints": [{"addresses": addresses}],
               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    }

    #[test]
    fn valid_slices_pass() {
        assert!(validate_endpoint_slice(&slice("IPv4", json!(["10.0.0.1"]))).is_empty());
        assert!(validate_endpoint_slice(&slice("IPv6", json!(["fd00::1"]))).is_empty());
        assert!(validate_endpoint_slice(&slice("FQDN", json!(["db.example.com."]))).is_empty());
    }

    #[test]
    fn address_type_is_required_and_enumerated() {
        let mut s = slice("IPv4", json!(["10.0.0.1"]));
        s.as_object_mut().unwrap().remove("addressType");
        assert_eq!(
            msgs(&validate_endpoint_slice(&s)),
            ["addressType: Required value"]
        );
        assert_eq!(
            msgs(&validate_endpoint_slice(&slice("IPv5", json!(["x"])))),
            [r#"addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6""#]
        );
    }

    #[test]
    fn addresses_must_fit_the_type() {
        assert_eq!(
            msgs(&validate_endpoint_slice(&slice("IPv4", json!([])))),
            ["endpoints[0].addresses: Required value: must contain at least 1 address"]
        );
        assert_eq!(
            msgs(&validate_endpoint_slice(&slice(
                "IPv4",
                json!(["fd00::1", "127.0.0.1"])
            ))),
            [
                r#"endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address"#,
                r#"endpoints[0].addresses[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
            ]
        );
        assert_eq!(
            msgs(&validate_endpoint_slice(&slice(
                "IPv6",
                json!(["10.0.0.1"])
            ))),
            [
                r#"endpoints[0].addresses[0]: Invalid value: "10.0.0.1": must be a valid IPv6 address"#
            ]
        );
        assert_eq!(
            msgs(&validate_endpoint_slice(&slice(
                "FQDN",
                json!(["localhost"])
            ))),
            [
                r#"endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots"#
            ]
        );
    }

    #[test]
    fn ports_have_unique_names_and_a_protocol() {
        let mut s = slice("IPv4", json!(["10.0.0.1"]));
        s["ports"] = json!([{"name": "http", "protocol": "TCP"}, {"name": "http"},
                            {"name": "x", "protocol": "ICMP"}]);
        assert_eq!(
            msgs(&validate_endpoint_slice(&s)),
            [
                r#"ports[1].name: Duplicate value: "http""#,
                "ports[1].protocol: Required value",
                r#"ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#
            ]
        );
    }

    #[test]
    fn address_type_is_immutable() {
        let old = slice("IPv4", json!(["10.0.0.1"]));
        let new = slice("FQDN", json!(["a.example.com"]));
        assert_eq!(
            msgs(&validate_endpoint_slice_update(&new, &old)),
            [r#"addressType: Invalid value: "FQDN": field is immutable"#]
        );
    }
}
