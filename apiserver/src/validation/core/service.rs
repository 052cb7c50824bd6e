//! Service validation: ports, type-specific rules (ExternalName, headless, NodePort,
//! LoadBalancer), session affinity, cluster IPs and IP families, traffic policies, and
//! the update rule that allocated cluster IPs never change.

use std::collections::BTreeSet;

use serde_json::Value;

use super::pod::validate_port_num_or_name;
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE};
use crate::validation::names::{
    is_valid_port_num, parse_ip_sloppy, validate_cidr, validate_dns1123_label,
    validate_dns1123_subdomain, validate_ip, validate_labels, validate_qualified_name, NameRule,
};
use crate::validation::value::{arr, child, get, index, int, obj, opt_str, str_of, sub};

/// The default NodePort range of kube-apiserver (`--service-node-port-range`).
pub const NODE_PORT_RANGE: (i64, i64) = (30000, 32767);

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// Cluster IPs as the registry sees them after syncing `clusterIP` with `clusterIPs`
/// (upstream's strategy fills one from the other before validating).
fn cluster_ips(spec: &Value) -> (String, Vec<String>) {
    let ip = str_of(spec, "clusterIP").to_string();
    let mut ips: Vec<String> = arr(spec, "clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    if ips.is_empty() && !ip.is_empty() {
        ips.push(ip.clone());
    }
    let ip = if ip.is_empty() {
        ips.first().cloned().unwrap_or_default()
    } else {
        ip
    };
    (ip, ips)
}

fn is_headless(spec: &Value) -> bool {
    let (_, ips) = cluster_ips(spec);
    ips.len() == 1 && ips[0] == "None"
}

fn externally_accessible(spec: &Value) -> bool {
    let ty = str_of(spec, "type");
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

/// Validates a Service on create.
pub fn validate_service(svc: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(svc, "metadata"),
        true,
        NameRule::Dns1035Label,
        "metadata",
    );
    let spec = sub(svc, "spec");
    let ty = str_of(spec, "type");
    let headless = is_headless(spec);
    let (_, ips) = cluster_ips(spec);
    let ports = arr(spec, "ports");

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            let what = if ty == "LoadBalancer" {
                "LoadBalancer"
            } else {
                "NodePort"
            };
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                "None",
                &format!("may not be set to 'None' for {what} services"),
            ));
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // A trailing dot marks the CNAME as fully qualified.
            let name = str_of(spec, "externalName");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(validate_dns1123_subdomain(cname, "spec.externalName"));
            }
        }
        _ => {}
    }

    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            &index("spec.ports", i),
        ));
    }
    if let Some(sel) = obj(spec, "selector") {
        errs.extend(validate_labels(Some(sel), "spec.selector"));
    }

    let affinity = str_of(spec, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if affinity != "ClientIP" && affinity != "None" {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    if affinity == "ClientIP" {
        errs.extend(validate_client_ip_config(get(
            spec,
            "sessionAffinityConfig",
        )));
    } else if affinity == "None" && get(spec, "sessionAffinityConfig").is_some() {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }

    errs.extend(validate_cluster_ips_related(spec));

    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let p = index("spec.externalIPs", i);
        let ip = ip.as_str().unwrap_or_default();
        let e = validate_ip(&p, ip);
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }

    let types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !types.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, &types));
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int(port, "nodePort").unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((str_of(port, "protocol"), np)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                np,
            ));
        }
    }
    let mut port_keys = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (str_of(port, "protocol"), int(port, "port").unwrap_or(0));
        if !port_keys.insert(key) {
            let shown = serde_json::json!({"port": key.1, "protocol": key.0});
            errs.push(FieldError::duplicate(index("spec.ports", i), shown));
        }
    }

    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        // Upstream spells this path with a capital L.
        let p = "spec.LoadBalancerSourceRanges";
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(
                &index(p, i),
                r.as_str().unwrap_or_default().trim(),
            ));
        }
    } else if let Some(val) = obj(sub(svc, "metadata"), "annotations")
        .and_then(|a| a.get("service.beta.kubernetes.io/load-balancer-source-ranges"))
        .and_then(Value::as_str)
    {
        let p = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]";
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for cidr in val.split(',') {
                errs.extend(validate_cidr(p, cidr.trim()));
            }
        }
    }

    if get(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && get(spec, "allocateLoadBalancerNodePorts").is_none() {
        // Upstream reports this one without the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    if let Some(class) = opt_str(spec, "loadBalancerClass") {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.loadBalancerClass",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        } else {
            errs.extend(validate_qualified_name(class, "spec.loadBalancerClass"));
        }
    }

    let etp = str_of(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = int(spec, "healthCheckNodePort").unwrap_or(0);
    if !(ty == "LoadBalancer" && etp == "Local") {
        if hc != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required("spec.healthCheckNodePort", ""));
    } else {
        errs.extend(
            is_valid_port_num(hc)
                .iter()
                .map(|m| FieldError::invalid("spec.healthCheckNodePort", hc, m)),
        );
    }

    match opt_str(spec, "internalTrafficPolicy") {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                p,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = opt_str(spec, "trafficDistribution") {
        if td != "PreferClose" {
            errs.push(FieldError::not_supported(
                "spec.trafficDistribution",
                td,
                &["PreferClose"],
            ));
        }
    }
    errs.extend(validate_node_port_range(spec));
    errs
}

/// NodePorts must come from the configured range. Upstream reports this from its port
/// allocator rather than from validation; the wording is the allocator's.
pub fn validate_node_port_range(spec: &Value) -> FieldErrors {
    let (lo, hi) = NODE_PORT_RANGE;
    let mut errs = Vec::new();
    if str_of(spec, "type") == "ClusterIP" {
        return errs;
    }
    for (i, port) in arr(spec, "ports").iter().enumerate() {
        let np = int(port, "nodePort").unwrap_or(0);
        if np != 0 && !(lo..=hi).contains(&np) {
            errs.push(FieldError::invalid(
                format!("spec.ports[{i}].nodePort"),
                np,
                &format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}"),
            ));
        }
    }
    errs
}

fn validate_service_port(
    port: &Value,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &str,
) -> FieldErrors {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(path, "name"), name));
        }
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
    errs.extend(validate_port_num_or_name(
        port.get("targetPort"),
        &child(path, "targetPort"),
    ));
    if let Some(ap) = opt_str(port, "appProtocol") {
        errs.extend(validate_qualified_name(ap, &child(path, "appProtocol")));
    }
    errs
}

fn validate_client_ip_config(config: Option<&Value>) -> FieldErrors {
    let p = "spec.sessionAffinityConfig";
    let detail = "when session affinity type is ClientIP";
    let Some(c) = config else {
        return vec![FieldError::required(p, detail)];
    };
    let Some(client) = get(c, "clientIP") else {
        return vec![FieldError::required(format!("{p}.clientIP"), detail)];
    };
    let Some(t) = int(client, "timeoutSeconds") else {
        return vec![FieldError::required(
            format!("{p}.clientIP.timeoutSeconds"),
            detail,
        )];
    };
    if t <= 0 || t > 86400 {
        return vec![FieldError::invalid(
            format!("{p}.clientIP.timeoutSeconds"),
            t,
            "must be greater than 0 and less than 86400",
        )];
    }
    Vec::new()
}

fn validate_cluster_ips_related(spec: &Value) -> FieldErrors {
    let mut errs = Vec::new();
    let (_, ips) = cluster_ips(spec);
    let ips_value = Value::from(ips.clone());
    let mut seen = BTreeSet::new();
    for (i, fam) in arr(spec, "ipFamilies").iter().enumerate() {
        let fam = fam.as_str().unwrap_or_default();
        if fam != "IPv4" && fam != "IPv6" {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                fam,
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(fam) {
            errs.push(FieldError::duplicate(index("spec.ipFamilies", i), fam));
        }
    }
    if let Some(policy) = opt_str(spec, "ipFamilyPolicy") {
        let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !supported.contains(&policy) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                policy,
                &supported,
            ));
        }
    }
    let mut bad = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                bad = true;
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    ips_value.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(&index("spec.clusterIPs", i), ip);
        bad |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value.clone(),
            "may only hold up to 2 values",
        ));
    }
    if bad {
        return errs;
    }
    if ips.len() > 1 {
        let v6: Vec<bool> = ips
            .iter()
            .map(|ip| parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6()))
            .collect();
        if v6.iter().all(|x| *x) || v6.iter().all(|x| !*x) {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    let families = arr(spec, "ipFamilies");
    if !is_headless(spec) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            let is_v6 = parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6());
            match families[i].as_str() {
                Some("IPv4") if is_v6 => errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    ip.as_str(),
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                )),
                Some("IPv6") if !is_v6 => errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    ip.as_str(),
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
    errs
}

/// Endpoint and external IPs may not be unspecified, loopback or link-local.
pub(crate) fn validate_non_special_ip(ip: &str, path: &str) -> FieldErrors {
    let Some(addr) = parse_ip_sloppy(ip) else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    let mut errs = Vec::new();
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip,
            &format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let (link_local_unicast, link_local_multicast) = match addr {
        std::net::IpAddr::V4(a) => (a.is_link_local(), a.octets()[..3] == [224, 0, 0]),
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local_unicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// Validates a Service update. A missing `clusterIP`/`clusterIPs` in the new object is
/// read as "unchanged": upstream's registry copies allocated values over before
/// validating, and callers are expected to do the same before persisting.
pub fn validate_service_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let (nt, ot) = (str_of(ns, "type"), str_of(os, "type"));
    let (_, new_ips) = cluster_ips(ns);
    let (_, old_ips) = cluster_ips(os);
    let carried_over = new_ips.is_empty();
    if nt != "ExternalName"
        && ot != "ExternalName"
        && !(is_headless(ns) && is_headless(os))
        && !carried_over
    {
        let shown = Value::from(new_ips.clone());
        if new_ips.len() == old_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if *ip != new_ips[i] {
                    errs.push(FieldError::invalid(
                        index("spec.clusterIPs", i),
                        shown.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    shown.clone(),
                    "may not change once set",
                ));
            }
            if new_ips.len() == 1 && opt_str(ns, "ipFamilyPolicy") != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    shown,
                    "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown,
                "may not change once set",
            ));
        }
    }
    if ot == "LoadBalancer" && nt == "LoadBalancer" {
        let (nc, oc) = (
            opt_str(ns, "loadBalancerClass"),
            opt_str(os, "loadBalancerClass"),
        );
        if nc != oc {
            errs.push(FieldError::invalid(
                "spec.loadBalancerClass",
                nc.map(Value::from).unwrap_or(Value::Null),
                "may not change once set",
            ));
        }
    }
    let needs_hc = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if needs_hc(ns)
        && needs_hc(os)
        && int(ns, "healthCheckNodePort") != int(os, "healthCheckNodePort")
    {
        errs.push(FieldError::forbidden(
            "spec.healthCheckNodePort",
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_service(new));
    errs
}
