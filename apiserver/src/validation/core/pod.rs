//! Pod, PodTemplate and pod-spec validation: volumes, containers (ports, env, mounts,
//! probes, lifecycle, resources, security context), scheduling fields, and the pod
//! update rule that only images, activeDeadlineSeconds, tolerations (additions) and a
//! few other fields may change after creation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::resources::validate_resource_requirements;
use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{
    validate_nonnegative, validate_object_meta, validate_object_meta_update, validate_template_meta,
};
use crate::validation::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_subdomain, is_http_header_name,
    is_label_value, is_relaxed_env_var_name, is_valid_port_name, is_valid_port_num,
    is_valid_user_or_group_id, validate_dns1123_label, validate_dns1123_subdomain, validate_ip,
    validate_labels, validate_qualified_name, NameRule,
};
use crate::validation::quantity::Quantity;
use crate::validation::value::{arr, boolean, child, get, index, int, obj, opt_str, str_of, sub};

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const MAX_INT32: i64 = i32::MAX as i64;
const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Volume source fields in upstream's checking order; the first one set wins and each
/// further one is reported as "may not specify more than 1 volume type".
const VOLUME_TYPES: [&str; 30] = [
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Which object a pod spec belongs to; a few checks apply to real pods only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecOwner {
    Pod,
    Template,
}

/// Declared volumes that passed validation, by name.
type Volumes<'a> = BTreeMap<&'a str, &'a Value>;

/// Checks a string field against an enumeration; "" is Required.
fn enum_field(value: &str, path: &str, allowed: &[&str]) -> FieldErrors {
    if value.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !allowed.contains(&value) {
        vec![FieldError::not_supported(path, value, allowed)]
    } else {
        Vec::new()
    }
}

/// Validates a Pod on create.
pub fn validate_pod(pod: &Value) -> FieldErrors {
    let mut errs = validate_pod_metadata_and_spec(pod);
    let spec = sub(pod, "spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !str_of(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

fn validate_pod_metadata_and_spec(pod: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(pod, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let spec = sub(pod, "spec");
    errs.extend(validate_pod_spec(spec, "spec", SpecOwner::Pod));
    if str_of(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            let Some(projected) = get(vol, "projected") else {
                continue;
            };
            for (si, source) in arr(projected, "sources").iter().enumerate() {
                if get(source, "serviceAccountToken").is_some() {
                    errs.push(FieldError::forbidden(
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let image = str_of(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    format!("spec.{list}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// Validates a PodTemplate object.
pub fn validate_pod_template(obj_: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(obj_, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    errs.extend(validate_pod_template_spec(
        sub(obj_, "template"),
        "template",
    ));
    errs
}

/// Validates a PodTemplate update (templates are fully mutable).
pub fn validate_pod_template_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_pod_template_spec(sub(new, "template"), "template"));
    errs
}

/// Validates a PodTemplateSpec embedded in another object (RC, Deployment, Job, ...).
pub fn validate_pod_template_spec(template: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_template_meta(sub(template, "metadata"), &child(path, "metadata"));
    let spec = sub(template, "spec");
    let spec_path = child(path, "spec");
    errs.extend(validate_pod_spec(spec, &spec_path, SpecOwner::Template));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Validates a PodSpec.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str, owner: SpecOwner) -> FieldErrors {
    let mut errs = Vec::new();
    let grace = int(spec, "terminationGracePeriodSeconds");
    if get(spec, "terminationGracePeriodSeconds").is_none() {
        errs.push(FieldError::required(
            child(path, "terminationGracePeriodSeconds"),
            "",
        ));
    }
    let restart_policy = str_of(spec, "restartPolicy");
    let (vols, vol_errs) = validate_volumes(arr(spec, "volumes"), &child(path, "volumes"));
    errs.extend(vol_errs);
    errs.extend(validate_containers(
        arr(spec, "containers"),
        &vols,
        grace,
        restart_policy,
        &child(path, "containers"),
    ));
    errs.extend(validate_init_containers(
        arr(spec, "initContainers"),
        arr(spec, "containers"),
        &vols,
        grace,
        restart_policy,
        &child(path, "initContainers"),
    ));
    errs.extend(validate_host_network_ports(spec, path, owner));
    errs.extend(enum_field(
        restart_policy,
        &child(path, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
    ));
    let dns_policy = str_of(spec, "dnsPolicy");
    errs.extend(enum_field(
        dns_policy,
        &child(path, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        obj(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(spec, path));
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            errs.push(FieldError::invalid(
                index(&child(path, "imagePullSecrets"), i),
                s.clone(),
                "only name may be set",
            ));
        }
    }
    errs.extend(validate_dns_config(
        get(spec, "dnsConfig"),
        dns_policy,
        &child(path, "dnsConfig"),
    ));
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let p = child(&index(&child(path, "readinessGates"), i), "conditionType");
        errs.extend(validate_qualified_name(str_of(g, "conditionType"), &p));
    }
    let mut gates = BTreeSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let p = index(&child(path, "schedulingGates"), i);
        let name = str_of(g, "name");
        errs.extend(validate_qualified_name(name, &p));
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
    errs.extend(validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &child(path, "topologySpreadConstraints"),
    ));
    let sa = str_of(spec, "serviceAccountName");
    if !sa.is_empty() {
        for msg in is_dns1123_subdomain(sa) {
            errs.push(FieldError::invalid(
                child(path, "serviceAccountName"),
                sa,
                &msg,
            ));
        }
    }
    let node = str_of(spec, "nodeName");
    if !node.is_empty() {
        for msg in is_dns1123_subdomain(node) {
            errs.push(FieldError::invalid(child(path, "nodeName"), node, &msg));
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                ads,
                &inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    for f in ["hostname", "subdomain"] {
        let v = str_of(spec, f);
        if !v.is_empty() {
            errs.extend(validate_dns1123_label(v, &child(path, f)));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &child(path, "tolerations"),
    ));
    for (i, alias) in arr(spec, "hostAliases").iter().enumerate() {
        let p = index(&child(path, "hostAliases"), i);
        errs.extend(validate_ip(&child(&p, "ip"), str_of(alias, "ip")));
        for (j, h) in arr(alias, "hostnames").iter().enumerate() {
            errs.extend(validate_dns1123_subdomain(
                h.as_str().unwrap_or_default(),
                &index(&child(&p, "hostnames"), j),
            ));
        }
    }
    let pc = str_of(spec, "priorityClassName");
    if !pc.is_empty() {
        for msg in is_dns1123_subdomain(pc) {
            errs.push(FieldError::invalid(
                child(path, "priorityClassName"),
                pc,
                &msg,
            ));
        }
    }
    if let Some(rc) = opt_str(spec, "runtimeClassName") {
        errs.extend(validate_dns1123_subdomain(
            rc,
            &child(path, "runtimeClassName"),
        ));
    }
    if let Some(pp) = opt_str(spec, "preemptionPolicy") {
        errs.extend(enum_field(
            pp,
            &child(path, "preemptionPolicy"),
            &["PreemptLowerPriority", "Never"],
        ));
    }
    if let Some(os) = get(spec, "os") {
        let name = str_of(os, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&child(path, "os"), "name"), ""));
        } else if name != "linux" && name != "windows" {
            errs.push(FieldError::not_supported(
                child(&child(path, "os"), "name"),
                name,
                &["linux", "windows"],
            ));
        }
    }
    errs
}

fn validate_pod_security_context(spec: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(sc) = get(spec, "securityContext") else {
        return errs;
    };
    let p = child(path, "securityContext");
    for f in ["fsGroup", "runAsUser", "runAsGroup"] {
        if let Some(v) = int(sc, f) {
            for msg in is_valid_user_or_group_id(v) {
                errs.push(FieldError::invalid(child(&p, f), v, &msg));
            }
        }
    }
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        let v = g.as_i64().unwrap_or_default();
        for msg in is_valid_user_or_group_id(v) {
            errs.push(FieldError::invalid(
                index(&child(&p, "supplementalGroups"), i),
                v,
                &msg,
            ));
        }
    }
    if boolean(spec, "shareProcessNamespace") == Some(true)
        && boolean(spec, "hostPID") == Some(true)
    {
        errs.push(FieldError::invalid(
            child(&p, "shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(policy) = opt_str(sc, "fsGroupChangePolicy") {
        if policy != "Always" && policy != "OnRootMismatch" {
            errs.push(FieldError::not_supported(
                child(&p, "fsGroupChangePolicy"),
                policy,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        get(sc, "seccompProfile"),
        &child(&p, "seccompProfile"),
    ));
    errs
}

fn validate_seccomp_profile(profile: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(sp) = profile else { return errs };
    let ty = str_of(sp, "type");
    match ty {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            child(path, "type"),
            "type is required when seccompProfile is set",
        )),
        _ => errs.push(FieldError::not_supported(
            child(path, "type"),
            ty,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    let local = opt_str(sp, "localhostProfile");
    if ty == "Localhost" {
        match local {
            None | Some("") => errs.push(FieldError::required(
                child(path, "localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(l) => errs.extend(validate_local_descending_path(
                l,
                &child(path, "localhostProfile"),
            )),
        }
    } else if local.is_some() {
        errs.push(FieldError::invalid(
            child(path, "localhostProfile"),
            sp.clone(),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

fn validate_dns_config(config: Option<&Value>, policy: &str, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    if policy == "None" {
        let Some(c) = config else {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        };
        if arr(c, "nameservers").is_empty() {
            return vec![FieldError::required(
                child(path, "nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(c) = config else { return errs };
    let ns = arr(c, "nameservers");
    if ns.len() > 3 {
        errs.push(FieldError::invalid(
            child(path, "nameservers"),
            Value::from(ns.to_vec()),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(validate_ip(
            &index(&child(path, "nameservers"), i),
            n.as_str().unwrap_or_default(),
        ));
    }
    let searches = arr(c, "searches");
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            child(path, "searches"),
            Value::from(searches.to_vec()),
            "must not have more than 32 search paths",
        ));
    }
    let joined: Vec<&str> = searches.iter().filter_map(Value::as_str).collect();
    if joined.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            child(path, "searches"),
            Value::from(searches.to_vec()),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        let s = s.as_str().unwrap_or_default();
        if s == "." {
            continue;
        }
        // Relaxed DNS search validation (beta, on in v1.33) also admits underscores.
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        let relaxed = trimmed.replace('_', "a");
        if !is_dns1123_subdomain(&relaxed).is_empty() {
            let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')";
            errs.push(FieldError::invalid(
                index(&child(path, "searches"), i),
                trimmed,
                msg,
            ));
        }
    }
    for (i, o) in arr(c, "options").iter().enumerate() {
        if str_of(o, "name").is_empty() {
            errs.push(FieldError::required(
                index(&child(path, "options"), i),
                "must not be empty",
            ));
        }
    }
    errs
}

fn validate_topology_spread(constraints: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = index(path, i);
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                child(&p, "maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let key = str_of(c, "topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                child(&p, "topologyKey"),
                "can not be empty",
            ));
        } else {
            errs.extend(validate_qualified_name(key, &child(&p, "topologyKey")));
        }
        let action = str_of(c, "whenUnsatisfiable");
        if action != "DoNotSchedule" && action != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                child(&p, "whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
    }
    errs
}

/// With hostNetwork a pod's hostPort must equal its containerPort (templates may omit it).
fn validate_host_network_ports(spec: &Value, path: &str, owner: SpecOwner) -> FieldErrors {
    let mut errs = Vec::new();
    if boolean(spec, "hostNetwork") != Some(true) {
        return errs;
    }
    for (i, c) in arr(spec, "containers").iter().enumerate() {
        for (j, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            let cp = int(port, "containerPort").unwrap_or(0);
            if (owner == SpecOwner::Pod || hp != 0) && hp != cp {
                errs.push(FieldError::invalid(
                    format!("{path}.containers[{i}].ports[{j}].hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// Tolerations: key syntax, operator/value consistency, effect enum.
pub(crate) fn validate_tolerations(tolerations: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let key = str_of(t, "key");
        let op = str_of(t, "operator");
        let value = str_of(t, "value");
        let effect = str_of(t, "effect");
        if !key.is_empty() {
            errs.extend(validate_qualified_name(key, &child(&p, "key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        &msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                op,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// Validates the volume list and returns the volumes that are valid, by name.
fn validate_volumes<'a>(volumes: &'a [Value], path: &str) -> (Volumes<'a>, FieldErrors) {
    let mut errs = Vec::new();
    let mut vols = Volumes::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(v, "name");
        let mut el = validate_volume_source(v, &p);
        if name.is_empty() {
            el.push(FieldError::required(child(&p, "name"), ""));
        } else {
            el.extend(validate_dns1123_label(name, &child(&p, "name")));
        }
        if vols.contains_key(name) {
            el.push(FieldError::duplicate(child(&p, "name"), name));
        }
        if el.is_empty() {
            vols.insert(name, v);
        } else {
            errs.extend(el);
        }
    }
    (vols, errs)
}

fn validate_volume_source(v: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut count = 0;
    for ty in VOLUME_TYPES {
        let Some(src) = get(v, ty) else { continue };
        let p = child(path, ty);
        if count > 0 {
            errs.push(FieldError::forbidden(
                p,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        errs.extend(match ty {
            "emptyDir" => validate_empty_dir(src, &p),
            "hostPath" => validate_host_path(src, &p),
            "secret" => validate_key_projection(src, &p, "secretName"),
            "configMap" => validate_key_projection(src, &p, "name"),
            "persistentVolumeClaim" => required_str(src, "claimName", &p),
            "nfs" => validate_nfs(src, &p),
            "downwardAPI" => validate_mode(src, "defaultMode", &p),
            "projected" => validate_mode(src, "defaultMode", &p),
            _ => Vec::new(),
        });
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn required_str(src: &Value, field: &str, path: &str) -> FieldErrors {
    if str_of(src, field).is_empty() {
        vec![FieldError::required(child(path, field), "")]
    } else {
        Vec::new()
    }
}

fn validate_mode(src: &Value, field: &str, path: &str) -> FieldErrors {
    match int(src, field) {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(child(path, field), m, FILE_MODE_ERROR)]
        }
        _ => Vec::new(),
    }
}

fn validate_empty_dir(src: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    if let Some(limit) = get(src, "sizeLimit") {
        if Quantity::from_json(limit).is_ok_and(|q| q.is_negative()) {
            errs.push(FieldError::forbidden(
                child(path, "sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    let medium = str_of(src, "medium");
    if !(medium.is_empty()
        || medium == "Memory"
        || medium == "HugePages"
        || medium.starts_with("HugePages-"))
    {
        errs.push(FieldError::not_supported(
            child(path, "medium"),
            medium,
            &["", "Memory", "HugePages"],
        ));
    }
    errs
}

fn validate_host_path(src: &Value, path: &str) -> FieldErrors {
    let p = str_of(src, "path");
    if p.is_empty() {
        return vec![FieldError::required(child(path, "path"), "")];
    }
    let mut errs = validate_path_no_backsteps(p, &child(path, "path"));
    if let Some(ty) = opt_str(src, "type") {
        let supported = [
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !supported.contains(&ty) {
            errs.push(FieldError::not_supported(
                child(path, "type"),
                ty,
                &supported,
            ));
        }
    }
    errs
}

fn validate_nfs(src: &Value, path: &str) -> FieldErrors {
    let mut errs = required_str(src, "server", path);
    let p = str_of(src, "path");
    if p.is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    }
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(
            child(path, "path"),
            p,
            "must be an absolute path",
        ));
    }
    errs
}

/// Secret and ConfigMap volumes: a source name, a file mode, and key-to-path items.
fn validate_key_projection(src: &Value, path: &str, name_field: &str) -> FieldErrors {
    let mut errs = required_str(src, name_field, path);
    errs.extend(validate_mode(src, "defaultMode", path));
    for (i, item) in arr(src, "items").iter().enumerate() {
        let p = index(&child(path, "items"), i);
        errs.extend(required_str(item, "key", &p));
        let target = str_of(item, "path");
        if target.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        }
        errs.extend(validate_local_non_reserved_path(target, &child(&p, "path")));
        errs.extend(validate_mode(item, "mode", &p));
    }
    errs
}

fn validate_path_no_backsteps(target: &str, path: &str) -> FieldErrors {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

fn validate_local_descending_path(target: &str, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(validate_path_no_backsteps(target, path));
    errs
}

fn validate_local_non_reserved_path(target: &str, path: &str) -> FieldErrors {
    let mut errs = validate_local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

fn validate_containers(
    containers: &[Value],
    vols: &Volumes,
    grace: Option<i64>,
    restart_policy: &str,
    path: &str,
) -> FieldErrors {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, vols, restart_policy, &p));
        let name = str_of(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        if let Some(lc) = get(c, "lifecycle") {
            errs.extend(validate_lifecycle(lc, grace, &child(&p, "lifecycle")));
        }
        errs.extend(validate_probe(
            get(c, "livenessProbe"),
            &child(&p, "livenessProbe"),
            ProbeKind::Liveness,
        ));
        errs.extend(validate_probe(
            get(c, "readinessProbe"),
            &child(&p, "readinessProbe"),
            ProbeKind::Readiness,
        ));
        errs.extend(validate_probe(
            get(c, "startupProbe"),
            &child(&p, "startupProbe"),
            ProbeKind::Startup,
        ));
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

fn validate_init_containers(
    containers: &[Value],
    regular: &[Value],
    vols: &Volumes,
    grace: Option<i64>,
    restart_policy: &str,
    path: &str,
) -> FieldErrors {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| str_of(c, "name")).collect();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, vols, restart_policy, &p));
        let mut restartable = false;
        if let Some(rp) = opt_str(c, "restartPolicy") {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restartable = rp == "Always";
        }
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        // Init containers run one at a time, so host ports only clash within one.
        errs.extend(
            host_port_conflicts(std::slice::from_ref(c), path)
                .into_iter()
                .map(|mut e| {
                    e.field = e.field.replacen(&format!("{path}[0]"), &p, 1);
                    e
                }),
        );
        if restartable {
            if let Some(lc) = get(c, "lifecycle") {
                errs.extend(validate_lifecycle(lc, grace, &child(&p, "lifecycle")));
            }
            errs.extend(validate_probe(
                get(c, "livenessProbe"),
                &child(&p, "livenessProbe"),
                ProbeKind::Liveness,
            ));
            errs.extend(validate_probe(
                get(c, "readinessProbe"),
                &child(&p, "readinessProbe"),
                ProbeKind::Readiness,
            ));
            errs.extend(validate_probe(
                get(c, "startupProbe"),
                &child(&p, "startupProbe"),
                ProbeKind::Startup,
            ));
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(c, f).is_some() {
                    errs.push(FieldError::forbidden(
                        child(&p, f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_container_common(
    c: &Value,
    vols: &Volumes,
    restart_policy: &str,
    path: &str,
) -> FieldErrors {
    let mut errs = Vec::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    errs.extend(enum_field(
        str_of(c, "terminationMessagePolicy"),
        &child(path, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    ));
    errs.extend(validate_container_ports(
        arr(c, "ports"),
        &child(path, "ports"),
    ));
    errs.extend(validate_env(arr(c, "env"), &child(path, "env")));
    errs.extend(validate_env_from(
        arr(c, "envFrom"),
        &child(path, "envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        c,
        vols,
        &child(path, "volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        c,
        vols,
        &child(path, "volumeDevices"),
    ));
    let pull = str_of(c, "imagePullPolicy");
    errs.extend(enum_field(
        pull,
        &child(path, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    errs.extend(validate_resource_requirements(
        sub(c, "resources"),
        &child(path, "resources"),
    ));
    errs.extend(validate_resize_policy(
        arr(c, "resizePolicy"),
        restart_policy,
        &child(path, "resizePolicy"),
    ));
    errs.extend(validate_security_context(
        get(c, "securityContext"),
        &child(path, "securityContext"),
    ));
    errs
}

fn validate_container_ports(ports: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.iter()
                        .map(|m| FieldError::invalid(child(&p, "name"), name, m)),
                );
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            errs.extend(
                is_valid_port_num(cp)
                    .iter()
                    .map(|m| FieldError::invalid(child(&p, "containerPort"), cp, m)),
            );
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            errs.extend(
                is_valid_port_num(hp)
                    .iter()
                    .map(|m| FieldError::invalid(child(&p, "hostPort"), hp, m)),
            );
        }
        let proto = str_of(port, "protocol");
        errs.extend(enum_field(proto, &child(&p, "protocol"), &PROTOCOLS));
    }
    errs
}

/// Host ports must be unique per (protocol, hostIP, port) across the given containers.
fn host_port_conflicts(containers: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                str_of(port, "protocol"),
                str_of(port, "hostIP")
            );
            if seen.contains(&key) {
                errs.push(FieldError::duplicate(
                    format!("{path}[{ci}].ports[{pi}].hostPort"),
                    key,
                ));
            } else {
                seen.insert(key);
            }
        }
    }
    errs
}

const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn validate_env(vars: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            errs.extend(
                is_relaxed_env_var_name(name)
                    .iter()
                    .map(|m| FieldError::invalid(child(&p, "name"), name, m)),
            );
        }
        errs.extend(validate_env_value_from(ev, &child(&p, "valueFrom")));
    }
    errs
}

fn validate_env_value_from(ev: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(from) = get(ev, "valueFrom") else {
        return errs;
    };
    let mut sources = 0;
    if let Some(fr) = get(from, "fieldRef") {
        sources += 1;
        errs.extend(validate_object_field_selector(fr, &child(path, "fieldRef")));
    }
    if let Some(rf) = get(from, "resourceFieldRef") {
        sources += 1;
        let p = child(path, "resourceFieldRef");
        let res = str_of(rf, "resource");
        let known = [
            "limits.cpu",
            "limits.ephemeral-storage",
            "limits.memory",
            "requests.cpu",
            "requests.ephemeral-storage",
            "requests.memory",
        ];
        if res.is_empty() {
            errs.push(FieldError::required(child(&p, "resource"), ""));
        } else if !known.contains(&res)
            && !res.starts_with("requests.hugepages-")
            && !res.starts_with("limits.hugepages-")
        {
            errs.push(FieldError::not_supported(
                child(&p, "resource"),
                res,
                &known,
            ));
        }
    }
    for field in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(sel) = get(from, field) {
            sources += 1;
            let p = child(path, field);
            let name = str_of(sel, "name");
            errs.extend(
                is_dns1123_subdomain(name)
                    .iter()
                    .map(|m| FieldError::invalid(child(&p, "name"), name, m)),
            );
            let key = str_of(sel, "key");
            if key.is_empty() {
                errs.push(FieldError::required(child(&p, "key"), ""));
            } else {
                errs.extend(
                    is_config_map_key(key)
                        .iter()
                        .map(|m| FieldError::invalid(child(&p, "key"), key, m)),
                );
            }
        }
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !str_of(ev, "value").is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

fn validate_object_field_selector(fs: &Value, path: &str) -> FieldErrors {
    let api_version = str_of(fs, "apiVersion");
    if api_version.is_empty() {
        return vec![FieldError::required(child(path, "apiVersion"), "")];
    }
    let fp = str_of(fs, "fieldPath");
    if fp.is_empty() {
        return vec![FieldError::required(child(path, "fieldPath"), "")];
    }
    if api_version != "v1" {
        return vec![FieldError::invalid(
            child(path, "fieldPath"),
            fp,
            &format!("error converting fieldPath: unsupported pod version: {api_version}"),
        )];
    }
    // Subscripted paths like metadata.labels['key'] select a single entry.
    if let Some((base, rest)) = fp.split_once("['") {
        if let Some(subscript) = rest.strip_suffix("']") {
            return match base {
                "metadata.annotations" => validate_qualified_name(&subscript.to_lowercase(), path),
                "metadata.labels" => validate_qualified_name(subscript, path),
                _ => vec![FieldError::invalid(
                    path,
                    base,
                    "does not support subscript",
                )],
            };
        }
    }
    if ENV_FIELD_PATHS.contains(&fp) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            child(path, "fieldPath"),
            fp,
            &ENV_FIELD_PATHS,
        )]
    }
}

fn validate_env_from(sources: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let p = index(path, i);
        let prefix = str_of(src, "prefix");
        if !prefix.is_empty() {
            errs.extend(
                is_relaxed_env_var_name(prefix)
                    .iter()
                    .map(|m| FieldError::invalid(child(&p, "prefix"), prefix, m)),
            );
        }
        let mut count = 0;
        for field in ["configMapRef", "secretRef"] {
            if let Some(r) = get(src, field) {
                count += 1;
                let rp = child(&p, field);
                let name = str_of(r, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(child(&rp, "name"), ""));
                } else {
                    errs.extend(
                        NameRule::DnsSubdomain
                            .check(name, true)
                            .iter()
                            .map(|m| FieldError::invalid(child(&rp, "name"), name, m)),
                    );
                }
            }
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(c: &Value, vols: &Volumes, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let devices: BTreeMap<&str, &str> = arr(c, "volumeDevices")
        .iter()
        .map(|d| (str_of(d, "name"), str_of(d, "devicePath")))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = index(path, i);
        let name = str_of(m, "name");
        let mount_path = str_of(m, "mountPath");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !vols.contains_key(name) {
            errs.push(FieldError::not_found(child(&p, "name"), name));
        }
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(name) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = str_of(m, "subPath");
        let sub_path_expr = str_of(m, "subPathExpr");
        if vols.get(name).is_some_and(|v| get(v, "image").is_some()) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_path_expr.is_empty() {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    sub_path_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports subPath problems against the list path, not the item.
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &child(path, "subPath"),
            ));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_path_expr,
                &child(path, "subPathExpr"),
            ));
        }
        if let Some(prop) = opt_str(m, "mountPropagation") {
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&prop) {
                errs.push(FieldError::not_supported(
                    child(path, "mountPropagation"),
                    prop,
                    &supported,
                ));
            } else if prop == "Bidirectional"
                && !get(c, "securityContext")
                    .and_then(|s| boolean(s, "privileged"))
                    .unwrap_or(false)
            {
                errs.push(FieldError::forbidden(
                    child(path, "mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
    }
    errs
}

fn validate_volume_devices(c: &Value, vols: &Volumes, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mounts: BTreeMap<&str, &str> = arr(c, "volumeMounts")
        .iter()
        .map(|m| (str_of(m, "name"), str_of(m, "mountPath")))
        .collect();
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, d) in arr(c, "volumeDevices").iter().enumerate() {
        let p = index(path, i);
        let name = str_of(d, "name");
        let dev_path = str_of(d, "devicePath");
        let matched = vols.get(name);
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if names.contains(name) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                name,
                "must be unique",
            ));
        }
        match matched {
            Some(v)
                if get(v, "persistentVolumeClaim").is_none() && get(v, "ephemeral").is_none() =>
            {
                errs.push(FieldError::invalid(
                    child(&p, "name"),
                    name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ));
            }
            Some(_) => {}
            None => errs.push(FieldError::not_found(child(&p, "name"), name)),
        }
        if dev_path.is_empty() {
            errs.push(FieldError::required(child(&p, "devicePath"), ""));
        }
        if paths.contains(dev_path) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                dev_path,
                "must be unique",
            ));
        }
        if !dev_path.is_empty() && dev_path.split('/').any(|s| s == "..") {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                dev_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(dev_path);
        }
        if mounts.contains_key(name) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == dev_path) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                dev_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
    errs
}

fn validate_resize_policy(policies: &[Value], restart_policy: &str, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, p) in policies.iter().enumerate() {
        let res = str_of(p, "resourceName");
        if !seen.insert(res) {
            errs.push(FieldError::duplicate(index(path, i), res));
        }
        errs.extend(enum_field(res, path, &["cpu", "memory"]));
        let rp = str_of(p, "restartPolicy");
        errs.extend(enum_field(rp, path, &["NotRequired", "RestartContainer"]));
        if restart_policy == "Never" && rp != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                rp,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

fn validate_security_context(sc: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(sc) = sc else { return errs };
    for f in ["runAsUser", "runAsGroup"] {
        if let Some(v) = int(sc, f) {
            errs.extend(
                is_valid_user_or_group_id(v)
                    .iter()
                    .map(|m| FieldError::invalid(child(path, f), v, m)),
            );
        }
    }
    if let Some(pm) = opt_str(sc, "procMount") {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(FieldError::not_supported(
                child(path, "procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        get(sc, "seccompProfile"),
        &child(path, "seccompProfile"),
    ));
    if boolean(sc, "allowPrivilegeEscalation") == Some(false) {
        if boolean(sc, "privileged") == Some(true) {
            errs.push(FieldError::invalid(
                path,
                sc.clone(),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds = get(sc, "capabilities")
            .map(|c| arr(c, "add"))
            .unwrap_or(&[]);
        if adds.iter().any(|a| a.as_str() == Some("CAP_SYS_ADMIN")) {
            errs.push(FieldError::invalid(
                path,
                sc.clone(),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(probe: Option<&Value>, path: &str, kind: ProbeKind) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(probe) = probe else { return errs };
    errs.extend(validate_handler(probe, None, path, false));
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(validate_nonnegative(int(probe, f), &child(path, f)));
    }
    let tgps = int(probe, "terminationGracePeriodSeconds");
    if let Some(t) = tgps {
        if t <= 0 {
            errs.push(FieldError::invalid(
                child(path, "terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    match kind {
        ProbeKind::Readiness => {
            if let Some(t) = tgps {
                errs.push(FieldError::invalid(
                    child(path, "terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = int(probe, "successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    child(path, "successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
    }
    errs
}

fn validate_lifecycle(lc: &Value, grace: Option<i64>, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        if let Some(h) = get(lc, hook) {
            errs.extend(validate_handler(h, grace, &child(path, hook), true));
        }
    }
    errs
}

/// Exactly one handler among exec/httpGet/tcpSocket and grpc (probes) or sleep (hooks).
fn validate_handler(h: &Value, grace: Option<i64>, path: &str, lifecycle: bool) -> FieldErrors {
    let mut errs = Vec::new();
    let mut count = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for &k in kinds {
        let Some(a) = get(h, k) else { continue };
        let p = child(path, k);
        if count > 0 {
            errs.push(FieldError::forbidden(
                p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        match k {
            "exec" if arr(a, "command").is_empty() => {
                errs.push(FieldError::required(child(&p, "command"), ""));
            }
            "httpGet" => {
                if str_of(a, "path").is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                }
                errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port")));
                let scheme = str_of(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(
                        child(&p, "scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for hdr in arr(a, "httpHeaders") {
                    let name = str_of(hdr, "name");
                    errs.extend(
                        is_http_header_name(name)
                            .iter()
                            .map(|m| FieldError::invalid(child(&p, "httpHeaders"), name, m)),
                    );
                }
            }
            "tcpSocket" => {
                errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port")))
            }
            "grpc" => {
                let port = int(a, "port").unwrap_or(0);
                errs.extend(
                    is_valid_port_num(port)
                        .iter()
                        .map(|m| FieldError::invalid(child(&p, "port"), port, m)),
                );
            }
            "sleep" => {
                let secs = int(a, "seconds").unwrap_or(0);
                if let Some(g) = grace {
                    if secs < 0 || secs > g {
                        errs.push(FieldError::invalid(
                            &p,
                            secs,
                            &format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// An IntOrString port: a number in 1..65535 or an IANA service name.
pub(crate) fn validate_port_num_or_name(port: Option<&Value>, path: &str) -> FieldErrors {
    match port {
        Some(Value::String(s)) => is_valid_port_name(s)
            .iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
        Some(Value::Number(n)) => {
            let v = n.as_i64().unwrap_or(0);
            is_valid_port_num(v)
                .iter()
                .map(|m| FieldError::invalid(path, v, m))
                .collect()
        }
        // An absent IntOrString is the integer zero.
        _ => is_valid_port_num(0)
            .iter()
            .map(|m| FieldError::invalid(path, 0, m))
            .collect(),
    }
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Validates a Pod update: the new pod must be valid and its spec may only change in
/// the few mutable places.
pub fn validate_pod_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_pod_metadata_and_spec(new));
    let new_spec = sub(new, "spec");
    let old_spec = sub(old, "spec");

    for list in ["containers", "initContainers"] {
        let (n, o) = (arr(new_spec, list), arr(old_spec, list));
        let p = format!("spec.{list}");
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_of(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(format!("{p}[{i}].image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    format!("{p}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let new_ads = int(new_spec, "activeDeadlineSeconds");
    let old_ads = int(old_spec, "activeDeadlineSeconds");
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                &inclusive_range_error(0, MAX_INT32),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    errs.extend(validate_only_added_tolerations(
        arr(new_spec, "tolerations"),
        arr(old_spec, "tolerations"),
    ));
    errs.extend(validate_only_deleted_gates(
        arr(new_spec, "schedulingGates"),
        arr(old_spec, "schedulingGates"),
    ));

    // Copy the mutable fields over from the old spec; whatever still differs was an
    // illegal change.
    let mut munged = new_spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                let old_image = arr(old_spec, list)
                    .get(i)
                    .and_then(|o| get(o, "image"))
                    .cloned();
                if let Some(m) = c.as_object_mut() {
                    match old_image {
                        Some(img) => m.insert("image".into(), img),
                        None => m.remove("image"),
                    };
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for f in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match get(old_spec, f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let old_grace = int(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && int(new_spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                Value::from(old_grace),
            );
        }
    }
    let (a, b) = (normalize(&munged), normalize(old_spec));
    if a != b {
        let mut diff = Vec::new();
        diff_values(&b, &a, "spec", &mut diff);
        errs.push(FieldError::forbidden(
            "spec",
            &format!("{POD_UPDATE_FORBIDDEN}\n{}", diff.join("\n")),
        ));
    }
    errs
}

/// Drops nulls and empty lists so that "unset" and "empty" compare equal, matching
/// upstream's semantic equality for slices and maps.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null() && !x.as_array().is_some_and(Vec::is_empty))
                .map(|(k, x)| (k.clone(), normalize(x)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Lists the leaf paths where `old` and `new` differ, as `path: old -> new` lines.
fn diff_values(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                diff_values(x, y, &child(path, k), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(x, y, &index(path, i), out);
            }
        }
        (x, y) if x != y => out.push(format!("  {path}: {x} -> {y}")),
        _ => {}
    }
}

/// Existing tolerations may only gain or change `tolerationSeconds`; new ones may be added.
fn validate_only_added_tolerations(new: &[Value], old: &[Value]) -> FieldErrors {
    let path = "spec.tolerations";
    let strip = |t: &Value| {
        let mut t = normalize(t);
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    for o in old {
        let so = strip(o);
        if !new.iter().any(|n| strip(n) == so) {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, path)
}

fn validate_only_deleted_gates(new: &[Value], old: &[Value]) -> FieldErrors {
    let old_names: BTreeSet<&str> = old.iter().map(|g| str_of(g, "name")).collect();
    let mut errs = Vec::new();
    for (i, g) in new.iter().enumerate() {
        let name = str_of(g, "name");
        if !old_names.contains(name) {
            errs.push(FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    errs
}
