//! Defaulting of pod specs and everything inside them: containers, ports, env
//! selectors, probes and hooks, resource lists, and volume sources. Also the
//! Pod-object-only defaults that pod templates do not get.

use serde_json::{json, Map, Value};

use crate::validation::quantity::Quantity;

/// Sets `key` when it is absent or null.
pub(crate) fn set_missing(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// Sets a string `key` when it is absent, null or "" (Go's zero value).
pub(crate) fn set_str(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if obj
        .get(key)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert(key.to_string(), Value::from(value));
    }
}

/// Sets a non-pointer integer `key` when it is absent, null or 0.
fn set_int(obj: &mut Map<String, Value>, key: &str, value: i64) {
    if obj.get(key).and_then(Value::as_i64).is_none_or(|v| v == 0) {
        obj.insert(key.to_string(), Value::from(value));
    }
}

/// The object at `key`, created as `{}` if missing.
pub(crate) fn ensure_obj<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    if !obj.get(key).is_some_and(Value::is_object) {
        obj.insert(key.to_string(), Value::Object(Map::new()));
    }
    obj.get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("just inserted an object")
}

/// Mutable objects of the array at `key`.
pub(crate) fn each_obj<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Canonicalizes each quantity of a resource list, rounding up to milli precision as
/// upstream does, so stored objects read back as a real cluster would return them.
/// Unparseable values are left for validation to report.
pub(crate) fn default_resource_list(obj: &mut Map<String, Value>, key: &str) {
    let Some(list) = obj.get_mut(key).and_then(Value::as_object_mut) else {
        return;
    };
    for v in list.values_mut() {
        if let Ok(mut q) = Quantity::from_json(v) {
            q.round_up_to_milli();
            *v = Value::from(q.canonical());
        }
    }
}

/// The image tag as upstream's reference parser sees it: "" when the reference does
/// not parse or only carries a digest, "latest" when it carries neither.
fn image_tag(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !reference_parses(repo, tag, digest) {
        return String::new();
    }
    match (tag, digest) {
        (Some(t), _) => t.to_string(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_string(),
    }
}

/// A light version of the docker reference grammar: lower-case path components,
/// a valid tag, and an `algorithm:hex` digest.
fn reference_parses(repo: &str, tag: Option<&str>, digest: Option<&str>) -> bool {
    if repo.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // A first component that looks like a host (has '.' or ':' or is localhost) is a
    // registry domain and may contain upper case and a port.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        parts.remove(0);
    }
    let path_ok = parts.iter().all(|p| {
        let b = p.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
    });
    let tag_ok = tag.is_none_or(|t| {
        let b = t.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    });
    let digest_ok = digest.is_none_or(|d| {
        d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
        })
    });
    path_ok && tag_ok && digest_ok
}

fn default_http_get(handler: &mut Map<String, Value>) {
    if let Some(h) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_str(h, "path", "/");
        set_str(h, "scheme", "HTTP");
    }
}

fn default_probe(c: &mut Map<String, Value>, key: &str) {
    let Some(p) = c.get_mut(key).and_then(Value::as_object_mut) else {
        return;
    };
    set_int(p, "timeoutSeconds", 1);
    set_int(p, "periodSeconds", 10);
    set_int(p, "successThreshold", 1);
    set_int(p, "failureThreshold", 3);
    default_http_get(p);
}

/// Defaults inside one env var / downward API item: fieldRef apiVersion, and the
/// resourceFieldRef divisor that always serializes (as "0" when unset).
fn default_selectors(holder: &mut Map<String, Value>) {
    if let Some(fr) = holder.get_mut("fieldRef").and_then(Value::as_object_mut) {
        set_str(fr, "apiVersion", "v1");
    }
    if let Some(rf) = holder
        .get_mut("resourceFieldRef")
        .and_then(Value::as_object_mut)
    {
        set_missing(rf, "divisor", Value::from("0"));
        if let Some(d) = rf.get("divisor").and_then(|d| Quantity::from_json(d).ok()) {
            rf.insert("divisor".into(), Value::from(d.canonical()));
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    if c.get("imagePullPolicy")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let policy = if image_tag(image) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), Value::from(policy));
    }
    set_str(c, "terminationMessagePath", "/dev/termination-log");
    set_str(c, "terminationMessagePolicy", "File");
    for port in each_obj(c, "ports") {
        set_str(port, "protocol", "TCP");
    }
    for env in each_obj(c, "env") {
        if let Some(from) = env.get_mut("valueFrom").and_then(Value::as_object_mut) {
            default_selectors(from);
        }
    }
    // Resources is a struct, not a pointer, so it always serializes.
    let res = ensure_obj(c, "resources");
    default_resource_list(res, "limits");
    default_resource_list(res, "requests");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        default_probe(c, probe);
    }
    if let Some(lc) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).and_then(Value::as_object_mut) {
                default_http_get(h);
            }
        }
    }
}

const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Defaults of a PersistentVolumeClaim spec (also used inside templates).
pub(crate) fn default_pvc_spec(spec: &mut Map<String, Value>) {
    set_str(spec, "volumeMode", "Filesystem");
    if let Some(res) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        default_resource_list(res, "limits");
        default_resource_list(res, "requests");
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(hp) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_missing(hp, "type", Value::from(""));
    }
    if let Some(ed) = v.get_mut("emptyDir").and_then(Value::as_object_mut) {
        if let Some(q) = ed
            .get("sizeLimit")
            .and_then(|q| Quantity::from_json(q).ok())
        {
            ed.insert("sizeLimit".into(), Value::from(q.canonical()));
        }
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).and_then(Value::as_object_mut) {
            set_missing(s, "defaultMode", Value::from(0o644));
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").and_then(Value::as_object_mut) {
        for item in each_obj(d, "items") {
            default_selectors(item);
        }
    }
    if let Some(p) = v.get_mut("projected").and_then(Value::as_object_mut) {
        for source in each_obj(p, "sources") {
            if let Some(t) = source
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_missing(t, "expirationSeconds", Value::from(3600));
            }
            if let Some(d) = source.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                for item in each_obj(d, "items") {
                    default_selectors(item);
                }
            }
        }
    }
    if let Some(iscsi) = v.get_mut("iscsi").and_then(Value::as_object_mut) {
        set_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = v.get_mut("rbd").and_then(Value::as_object_mut) {
        set_str(rbd, "pool", "rbd");
        set_str(rbd, "user", "admin");
        set_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(tmpl) = v
        .get_mut("ephemeral")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(Value::as_object_mut)
    {
        default_pvc_spec(ensure_obj(tmpl, "spec"));
    }
}

/// Defaults every PodSpec gets, whether in a Pod or in a template.
pub(crate) fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_str(spec, "dnsPolicy", "ClusterFirst");
    set_str(spec, "restartPolicy", "Always");
    set_missing(spec, "securityContext", json!({}));
    set_missing(spec, "terminationGracePeriodSeconds", Value::from(30));
    set_str(spec, "schedulerName", "default-scheduler");
    for v in each_obj(spec, "volumes") {
        default_volume(v);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each_obj(spec, list) {
            default_container(c);
        }
    }
    default_resource_list(spec, "overhead");
    if let Some(res) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        default_resource_list(res, "limits");
        default_resource_list(res, "requests");
    }
}

/// Defaults of a PodTemplateSpec (`{metadata, spec}`) embedded in another object.
pub(crate) fn default_pod_template(template: &mut Map<String, Value>) {
    default_pod_spec(ensure_obj(template, "spec"));
}

/// Copies limits into missing requests (Pod objects only, not templates).
fn default_requests_from_limits(c: &mut Map<String, Value>) {
    let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = ensure_obj(res, "requests");
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// Defaults a Pod object. On top of the PodSpec defaults a Pod gets requests copied
/// from limits, `enableServiceLinks`, host ports under hostNetwork, and the values the
/// Priority admission plugin fills in (`priority` 0 and `preemptionPolicy`) when no
/// priority class is named. ServiceAccount/DefaultTolerationSeconds admission effects
/// (token volume, default tolerations) are not defaulting and are not applied here.
pub fn default_pod(pod: &mut Value) {
    let Some(obj) = pod.as_object_mut() else {
        return;
    };
    let spec = ensure_obj(obj, "spec");
    for list in ["containers", "initContainers"] {
        for c in each_obj(spec, list) {
            default_requests_from_limits(c);
        }
    }
    set_missing(spec, "enableServiceLinks", Value::from(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            for c in each_obj(spec, list) {
                for port in each_obj(c, "ports") {
                    if port
                        .get("hostPort")
                        .and_then(Value::as_i64)
                        .is_none_or(|p| p == 0)
                    {
                        if let Some(cp) = port.get("containerPort").cloned() {
                            port.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
    default_pod_spec(spec);
    let no_class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if no_class {
        set_missing(spec, "priority", Value::from(0));
    }
    set_missing(
        spec,
        "preemptionPolicy",
        Value::from("PreemptLowerPriority"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_from_tag() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:latest"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("registry.example.com:5000/team/app"), "latest");
        assert_eq!(image_tag("registry.example.com:5000/team/app:v2"), "v2");
        let digest = format!("nginx@sha256:{}", "a".repeat(64));
        assert_eq!(image_tag(&digest), "");
        assert_eq!(image_tag("Nginx"), "");
        assert_eq!(image_tag(""), "");
    }
}
