//! A container's environment, built the way the kubelet builds it.
//!
//! Three layers, later ones winning on a name clash:
//! 1. service links: docker-link style variables for the Services of the
//!    pod's namespace (unless `enableServiceLinks: false`) and, always, for
//!    the `kubernetes` Service of the `default` namespace;
//! 2. `envFrom`: every key of a ConfigMap or Secret, with a prefix;
//! 3. `env`: literal values with `$(VAR)` references expanded against what
//!    is defined so far, or values taken from the pod itself (`fieldRef`),
//!    from resources (`resourceFieldRef`) or from ConfigMaps and Secrets.
//!
//! Objects are looked up in maps the caller fetched beforehand
//! ([`referenced_objects`] tells which); a name missing from a map is an
//! object that does not exist. Errors read like upstream's, because they
//! end up verbatim in `CreateContainerConfigError` waiting messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::quantity;

/// What building an environment needs besides the pod and container.
#[derive(Debug, Clone, Copy)]
pub struct EnvInputs<'a> {
    /// The `data` of ConfigMaps in the pod's namespace, by name.
    pub config_maps: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The (decoded) `data` of Secrets in the pod's namespace, by name.
    pub secrets: &'a BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Services of the pod's namespace and of `default` (others ignored).
    pub services: &'a [Service],
    /// The pod's IPs, primary first (host IPs for host-network pods).
    pub pod_ips: &'a [String],
    /// The node's IPs, primary first.
    pub host_ips: &'a [String],
    /// The node's allocatable resources: the limit of a container that
    /// sets none, for `resourceFieldRef`.
    pub node_allocatable: &'a BTreeMap<String, Quantity>,
}

/// Why a container's environment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldPath: {0}")]
    UnsupportedFieldPath(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("invalid quantity for {resource}: {error}")]
    Quantity {
        resource: String,
        error: quantity::QuantityError,
    },
}

/// The ConfigMaps and Secrets a container's environment reads, so the
/// caller can fetch them: `(config map names, secret names)`.
pub fn referenced_objects(container: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            config_maps.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.insert(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(source) = &var.value_from else {
            continue;
        };
        if let Some(r) = &source.config_map_key_ref {
            config_maps.insert(r.name.clone());
        }
        if let Some(r) = &source.secret_key_ref {
            secrets.insert(r.name.clone());
        }
    }
    (config_maps, secrets)
}

/// Expands `$(NAME)` references in `input` with `lookup`:
/// - `$$` is an escaped `$` (so `$$(X)` is the literal `$(X)`);
/// - a reference `lookup` does not know stays as written;
/// - an unterminated `$(` and a `$` before anything else stay as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    // Start of the input not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 == bytes.len() {
            i += 1;
            continue;
        }
        out.push_str(&input[copied..i]);
        match bytes[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match input[i + 2..].find(')') {
                Some(len) => {
                    let name = &input[i + 2..i + 2 + len];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    i += 2 + len + 1;
                }
                None => {
                    out.push_str("$(");
                    i += 2;
                }
            },
            _ => {
                // Not an expression: keep the `$`; what follows is copied
                // as ordinary text.
                out.push('$');
                i += 1;
            }
        }
        copied = i;
    }
    out.push_str(&input[copied..]);
    out
}

/// Variables in definition order where redefining keeps the first place.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// Upper case with `-` as `_`: how a Service name becomes a variable prefix.
fn env_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}

fn service_ip_set(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// The service-link variables for a pod in `namespace`. Headless and
/// ExternalName Services (no cluster IP) give none.
pub fn service_env(
    namespace: &str,
    enable_service_links: bool,
    services: &[Service],
) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services.iter().filter(|s| service_ip_set(s)) {
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        if ns == namespace && enable_service_links {
            // The pod's own namespace wins over the master service.
            chosen.insert(name, svc);
        } else if ns == "default" && name == "kubernetes" {
            // Always there, so in-cluster clients can find the API server.
            chosen.entry(name).or_insert(svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in chosen {
        let prefix = env_name(name);
        let spec = svc.spec.as_ref().expect("checked by service_ip_set");
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or_default();
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        if let Some(first) = ports.first() {
            out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for p in ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                let var = format!("{prefix}_SERVICE_PORT_{}", env_name(port_name));
                out.push((var, p.port.to_string()));
            }
        }
        // Docker links: the first port also as `<SVC>_PORT`.
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.clone()
        };
        for (i, p) in ports.iter().enumerate() {
            let proto = p
                .protocol
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("TCP");
            let url = format!("{}://{host}:{}", proto.to_lowercase(), p.port);
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((port_prefix.clone(), url));
            out.push((format!("{port_prefix}_PROTO"), proto.to_lowercase()));
            out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            out.push((format!("{port_prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

/// Quotes like Go's `%q`, which upstream uses when it renders a whole label
/// or annotation map.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `key="value"` lines in key order, as the downward API renders maps.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    let lines: Vec<String> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    lines.join("\n")
}

/// `metadata.labels['k']` → `("metadata.labels", "k")`.
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let open = inner.find("['")?;
    Some((&inner[..open], &inner[open + 2..]))
}

/// The value of a downward-API `fieldRef` for `pod`.
pub fn field_ref_value(
    pod: &Pod,
    field_path: &str,
    pod_ips: &[String],
    host_ips: &[String],
) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    if let Some((path, key)) = split_subscript(field_path) {
        let map = match path {
            "metadata.labels" => meta.labels.as_ref(),
            "metadata.annotations" => meta.annotations.as_ref(),
            _ => return Err(EnvError::UnsupportedFieldPath(field_path.to_string())),
        };
        // A missing key is an empty value, not an error.
        return Ok(map.and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    let value = match field_path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => host_ips.join(","),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        _ => return Err(EnvError::UnsupportedFieldPath(field_path.to_string())),
    };
    Ok(value)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    // Both non-negative here; upstream rounds the quotient up.
    if a <= 0 {
        0
    } else {
        (a + b - 1) / b
    }
}

/// The value of a downward-API `resourceFieldRef`. The container is the
/// selector's `containerName` or else `container`. Unset limits read as
/// the node's allocatable; unset requests as the limit the spec sets.
pub fn resource_field_value(
    pod: &Pod,
    container: &Container,
    selector: &ResourceFieldSelector,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, EnvError> {
    let target = match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => container,
        Some(name) => {
            let spec = pod.spec.as_ref();
            let all = spec.into_iter().flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            });
            let found = all.into_iter().find(|c| c.name == name);
            found.ok_or_else(|| EnvError::ContainerNotFound(name.to_string()))?
        }
    };
    let unsupported = || EnvError::UnsupportedResource(selector.resource.clone());
    let (kind, resource) = selector.resource.split_once('.').ok_or_else(unsupported)?;
    let supported = matches!(resource, "cpu" | "memory" | "ephemeral-storage")
        || resource.starts_with("hugepages-");
    if !supported || !matches!(kind, "limits" | "requests") {
        return Err(unsupported());
    }
    let res = target.resources.as_ref();
    let limit = res
        .and_then(|r| r.limits.as_ref())
        .and_then(|m| m.get(resource));
    let request = res
        .and_then(|r| r.requests.as_ref())
        .and_then(|m| m.get(resource));
    let q = if kind == "limits" {
        limit.or_else(|| {
            node_allocatable
                .get(resource)
                .filter(|_| !resource.starts_with("hugepages-"))
        })
    } else {
        request.or(limit)
    };
    let qerr = |error| EnvError::Quantity {
        resource: selector.resource.clone(),
        error,
    };
    let divisor = selector
        .divisor
        .as_ref()
        .filter(|d| quantity::parse(&d.0).is_ok_and(|p| !p.is_zero()));
    let (amount, per) = if resource == "cpu" {
        let amount = q
            .map(quantity::cpu_milli)
            .transpose()
            .map_err(qerr)?
            .unwrap_or(0);
        let per = divisor
            .map(quantity::cpu_milli)
            .transpose()
            .map_err(qerr)?
            .unwrap_or(1000);
        (amount, per)
    } else {
        let amount = q
            .map(quantity::bytes)
            .transpose()
            .map_err(qerr)?
            .unwrap_or(0);
        let per = divisor
            .map(quantity::bytes)
            .transpose()
            .map_err(qerr)?
            .unwrap_or(1);
        (amount, per)
    };
    Ok(ceil_div(amount, per.max(1)).to_string())
}

/// Whether an `envFrom` key can be a variable name at all. Upstream now
/// accepts any printable name; `=` and the empty name cannot work.
fn usable_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=')
}

/// The container's environment, `NAME=value` pairs in order (service
/// links not overridden first, then `envFrom`, then `env`), no name twice.
pub fn container_env(
    pod: &Pod,
    container: &Container,
    inputs: &EnvInputs<'_>,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let service_list = service_env(namespace, links, inputs.services);
    let service_vars: HashMap<&str, &str> = service_list
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let config_map = |name: &str| inputs.config_maps.get(name);
    let secret = |name: &str| inputs.secrets.get(name);

    let mut env = OrderedEnv::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.config_map_ref {
            match config_map(&r.name) {
                Some(data) => {
                    for (k, v) in data {
                        let name = format!("{prefix}{k}");
                        if usable_name(&name) {
                            env.set(name, v.clone());
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        } else if let Some(r) = &from.secret_ref {
            match secret(&r.name) {
                Some(data) => {
                    for (k, v) in data {
                        let name = format!("{prefix}{k}");
                        if usable_name(&name) {
                            env.set(name, String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            // Only what is defined so far (and service links) expands.
            let lookup = |name: &str| {
                env.get(name)
                    .map(str::to_string)
                    .or_else(|| service_vars.get(name).map(|v| v.to_string()))
            };
            expand(literal, &lookup)
        } else if let Some(source) = &var.value_from {
            if let Some(f) = &source.field_ref {
                field_ref_value(pod, &f.field_path, inputs.pod_ips, inputs.host_ips)?
            } else if let Some(r) = &source.resource_field_ref {
                resource_field_value(pod, container, r, inputs.node_allocatable)?
            } else if let Some(r) = &source.config_map_key_ref {
                let optional = r.optional == Some(true);
                let Some(data) = config_map(&r.name) else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::ConfigMapNotFound(r.name.clone()));
                };
                match data.get(&r.key) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapKeyNotFound {
                            key: r.key.clone(),
                            namespace: namespace.to_string(),
                            name: r.name.clone(),
                        })
                    }
                }
            } else if let Some(r) = &source.secret_key_ref {
                let optional = r.optional == Some(true);
                let Some(data) = secret(&r.name) else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::SecretNotFound(r.name.clone()));
                };
                match data.get(&r.key) {
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretKeyNotFound {
                            key: r.key.clone(),
                            namespace: namespace.to_string(),
                            name: r.name.clone(),
                        })
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut out: Vec<(String, String)> = service_list
        .into_iter()
        .filter(|(name, _)| env.get(name).is_none())
        .collect();
    out.extend(env.vars);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec, ResourceRequirements, SecretEnvSource, SecretKeySelector,
        ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn exp(input: &str, pairs: &[(&str, &str)]) -> String {
        let m = vars(pairs);
        expand(input, &|n| m.get(n).cloned())
    }

    #[test]
    fn expansion_rules() {
        let v = [("VAR_A", "A"), ("VAR_B", "B"), ("EMPTY", "")];
        assert_eq!(exp("$(VAR_A)", &v), "A");
        assert_eq!(exp("___$(VAR_A)___", &v), "___A___");
        assert_eq!(exp("$(VAR_A)-$(VAR_B)", &v), "A-B");
        assert_eq!(exp("$(EMPTY)x", &v), "x");
        assert_eq!(exp("$(UNKNOWN)", &v), "$(UNKNOWN)", "unknown stays");
        assert_eq!(exp("$$(VAR_A)", &v), "$(VAR_A)", "escaped");
        assert_eq!(exp("$$$(VAR_A)", &v), "$A");
        assert_eq!(exp("$$$$(VAR_A)", &v), "$$(VAR_A)");
        assert_eq!(exp("$$", &v), "$");
        assert_eq!(exp("$", &v), "$");
        assert_eq!(exp("x$", &v), "x$");
        assert_eq!(exp("$VAR_A", &v), "$VAR_A", "no parentheses");
        assert_eq!(exp("$(VAR_A", &v), "$(VAR_A", "unterminated");
        assert_eq!(exp("$($(VAR_A))", &v), "$($(VAR_A))", "name is `$(VAR_A`");
        assert_eq!(exp("$()", &v), "$()");
        assert_eq!(exp("héllo $(VAR_A) wörld $é", &v), "héllo A wörld $é");
        assert_eq!(exp("$(VAR_A)$(VAR_A)$$", &v), "AA$");
    }

    fn svc(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32, Option<&str>)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| ServicePort {
                            name: n.map(Into::into),
                            port: *p,
                            protocol: proto.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn service_links() {
        let services = vec![
            svc(
                "default",
                "kubernetes",
                "10.0.0.1",
                &[(Some("https"), 443, None)],
            ),
            svc(
                "ns",
                "my-svc",
                "10.0.0.5",
                &[(None, 80, None), (Some("dns-udp"), 53, Some("UDP"))],
            ),
            svc("ns", "headless", "None", &[(None, 80, None)]),
            svc("other", "elsewhere", "10.0.0.9", &[(None, 80, None)]),
        ];
        let got = vars_of(service_env("ns", true, &services));
        let want = [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.0.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.0.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.0.0.1"),
            ("MY_SVC_SERVICE_HOST", "10.0.0.5"),
            ("MY_SVC_SERVICE_PORT", "80"),
            ("MY_SVC_SERVICE_PORT_DNS_UDP", "53"),
            ("MY_SVC_PORT", "tcp://10.0.0.5:80"),
            ("MY_SVC_PORT_80_TCP", "tcp://10.0.0.5:80"),
            ("MY_SVC_PORT_53_UDP", "udp://10.0.0.5:53"),
            ("MY_SVC_PORT_53_UDP_PROTO", "udp"),
            ("MY_SVC_PORT_53_UDP_ADDR", "10.0.0.5"),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!got
            .keys()
            .any(|k| k.starts_with("HEADLESS") || k.starts_with("ELSEWHERE")));
        assert_eq!(got.len(), 8 + 3 + 1 + 4 + 4, "{got:?}");

        // Links off: only the master service remains.
        let off = vars_of(service_env("ns", false, &services));
        assert_eq!(off.len(), 8);
        assert!(off.keys().all(|k| k.starts_with("KUBERNETES_")));

        let v6 = vars_of(service_env(
            "ns",
            true,
            &[svc("ns", "v6", "fd00::1", &[(None, 80, None)])],
        ));
        assert_eq!(v6["V6_PORT"], "tcp://[fd00::1]:80");
    }

    fn vars_of(list: Vec<(String, String)>) -> BTreeMap<String, String> {
        let n = list.len();
        let m: BTreeMap<_, _> = list.into_iter().collect();
        assert_eq!(m.len(), n, "no duplicates");
        m
    }

    fn literal(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(source),
            ..Default::default()
        }
    }

    fn cm_key(cm: &str, key: &str, optional: Option<bool>) -> EnvVarSource {
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: cm.into(),
                key: key.into(),
                optional,
            }),
            ..Default::default()
        }
    }

    fn test_pod(container: Container) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                labels: Some(
                    [
                        ("app".to_string(), "web".to_string()),
                        ("tier".to_string(), "a\"b".to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container],
                node_name: Some("node-1".into()),
                service_account_name: Some("sa".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    struct Fixture {
        config_maps: BTreeMap<String, BTreeMap<String, String>>,
        secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
        services: Vec<Service>,
        pod_ips: Vec<String>,
        host_ips: Vec<String>,
        allocatable: BTreeMap<String, Quantity>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                config_maps: [(
                    "cfg".to_string(),
                    [
                        ("A".to_string(), "from-cm".to_string()),
                        ("B".to_string(), "b".to_string()),
                    ]
                    .into(),
                )]
                .into(),
                secrets: [(
                    "sec".to_string(),
                    [("PASS".to_string(), b"hunter2".to_vec())].into(),
                )]
                .into(),
                services: vec![svc(
                    "default",
                    "kubernetes",
                    "10.0.0.1",
                    &[(Some("https"), 443, None)],
                )],
                pod_ips: vec!["10.1.0.7".into(), "fd00::7".into()],
                host_ips: vec!["192.168.1.2".into()],
                allocatable: [
                    ("cpu".to_string(), Quantity("4".into())),
                    ("memory".to_string(), Quantity("8Gi".into())),
                ]
                .into(),
            }
        }

        fn inputs(&self) -> EnvInputs<'_> {
            EnvInputs {
                config_maps: &self.config_maps,
                secrets: &self.secrets,
                services: &self.services,
                pod_ips: &self.pod_ips,
                host_ips: &self.host_ips,
                node_allocatable: &self.allocatable,
            }
        }

        fn env(&self, c: Container) -> Result<Vec<(String, String)>, EnvError> {
            let pod = test_pod(c.clone());
            container_env(&pod, &c, &self.inputs())
        }
    }

    #[test]
    fn order_and_overrides() {
        let f = Fixture::new();
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                EnvFromSource {
                    prefix: Some("S_".into()),
                    secret_ref: Some(SecretEnvSource {
                        name: "sec".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                literal("B", "override-$(A)"),
                literal("KUBERNETES_SERVICE_HOST", "mine"),
                literal("LATER", "$(FORWARD)"),
                literal("FORWARD", "x"),
                literal("URL", "https://$(KUBERNETES_PORT_443_TCP_ADDR)/"),
                literal("ESC", "$$(A)"),
                EnvVar {
                    name: "EMPTY".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let env = f.env(c).unwrap();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        // Service links first, minus the overridden one; then envFrom
        // (B keeps its place when env overrides it), then env.
        assert_eq!(names[0], "KUBERNETES_SERVICE_PORT");
        let tail = &names[names.len() - 9..];
        assert_eq!(
            tail,
            [
                "A",
                "B",
                "S_PASS",
                "KUBERNETES_SERVICE_HOST",
                "LATER",
                "FORWARD",
                "URL",
                "ESC",
                "EMPTY"
            ]
        );
        let m = vars_of(env);
        assert_eq!(m["B"], "override-from-cm");
        assert_eq!(m["S_PASS"], "hunter2");
        assert_eq!(m["KUBERNETES_SERVICE_HOST"], "mine");
        assert_eq!(m["LATER"], "$(FORWARD)", "forward references stay");
        assert_eq!(m["URL"], "https://10.0.0.1/", "service vars expand");
        assert_eq!(m["ESC"], "$(A)");
        assert_eq!(m["EMPTY"], "");
    }

    #[test]
    fn missing_objects() {
        let f = Fixture::new();
        let with_env = |vars: Vec<EnvVar>| Container {
            name: "c".into(),
            env: Some(vars),
            ..Default::default()
        };
        let err = f
            .env(with_env(vec![from("X", cm_key("nope", "k", None))]))
            .unwrap_err();
        assert_eq!(err.to_string(), "configmap \"nope\" not found");
        let err = f
            .env(with_env(vec![from("X", cm_key("cfg", "k", None))]))
            .unwrap_err();
        assert_eq!(err.to_string(), "couldn't find key k in ConfigMap ns/cfg");
        let secret_key = |name: &str, key: &str, optional| EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
                optional,
            }),
            ..Default::default()
        };
        let err = f
            .env(with_env(vec![from("X", secret_key("nope", "k", None))]))
            .unwrap_err();
        assert_eq!(err.to_string(), "secret \"nope\" not found");
        let err = f
            .env(with_env(vec![from(
                "X",
                secret_key("sec", "k", Some(false)),
            )]))
            .unwrap_err();
        assert_eq!(err.to_string(), "couldn't find key k in Secret ns/sec");

        // Optional references that are missing leave the variable unset.
        let env = f
            .env(with_env(vec![
                from("X", cm_key("nope", "k", Some(true))),
                from("Y", cm_key("cfg", "k", Some(true))),
                from("Z", secret_key("sec", "k", Some(true))),
                from("W", cm_key("cfg", "A", Some(true))),
            ]))
            .unwrap();
        let m = vars_of(env);
        assert!(!m.contains_key("X") && !m.contains_key("Y") && !m.contains_key("Z"));
        assert_eq!(m["W"], "from-cm");

        let env_from = |cm: &str, optional| Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: cm.into(),
                    optional,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            f.env(env_from("nope", None)).unwrap_err().to_string(),
            "configmap \"nope\" not found"
        );
        assert!(f.env(env_from("nope", Some(true))).is_ok());
    }

    fn field(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn field_refs() {
        let f = Fixture::new();
        let paths = [
            ("metadata.name", "web"),
            ("metadata.namespace", "ns"),
            ("metadata.uid", "uid-1"),
            ("metadata.labels['app']", "web"),
            ("metadata.labels['missing']", ""),
            ("metadata.annotations['a']", ""),
            ("metadata.labels", "app=\"web\"\ntier=\"a\\\"b\""),
            ("spec.nodeName", "node-1"),
            ("spec.serviceAccountName", "sa"),
            ("status.hostIP", "192.168.1.2"),
            ("status.hostIPs", "192.168.1.2"),
            ("status.podIP", "10.1.0.7"),
            ("status.podIPs", "10.1.0.7,fd00::7"),
        ];
        let env: Vec<EnvVar> = paths
            .iter()
            .enumerate()
            .map(|(i, (p, _))| from(&format!("V{i}"), field(p)))
            .collect();
        let m = vars_of(
            f.env(Container {
                name: "c".into(),
                env: Some(env),
                ..Default::default()
            })
            .unwrap(),
        );
        for (i, (p, want)) in paths.iter().enumerate() {
            assert_eq!(m[&format!("V{i}")], *want, "{p}");
        }
        let bad = Container {
            name: "c".into(),
            env: Some(vec![from("X", field("spec.bogus"))]),
            ..Default::default()
        };
        assert_eq!(
            f.env(bad).unwrap_err().to_string(),
            "unsupported fieldPath: spec.bogus"
        );
    }

    fn resource(res: &str, divisor: Option<&str>, container: Option<&str>) -> EnvVarSource {
        EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                resource: res.into(),
                divisor: divisor.map(|d| Quantity(d.into())),
                container_name: container.map(Into::into),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resource_field_refs() {
        let f = Fixture::new();
        let q = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            )
        };
        let c = Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: q(&[("cpu", "250m")]),
                limits: q(&[("memory", "64Mi")]),
                ..Default::default()
            }),
            env: Some(vec![
                from("CPU_REQ", resource("requests.cpu", None, None)),
                from("CPU_REQ_M", resource("requests.cpu", Some("1m"), None)),
                from("CPU_LIM", resource("limits.cpu", None, None)),
                from("CPU_LIM_M", resource("limits.cpu", Some("1m"), Some("c"))),
                from("MEM_LIM", resource("limits.memory", None, None)),
                from("MEM_LIM_MI", resource("limits.memory", Some("1Mi"), None)),
                from("MEM_REQ_MI", resource("requests.memory", Some("1Mi"), None)),
                from("MEM_REQ_K", resource("requests.memory", Some("1k"), None)),
            ]),
            ..Default::default()
        };
        let m = vars_of(f.env(c).unwrap());
        assert_eq!(m["CPU_REQ"], "1", "250m rounds up to one core");
        assert_eq!(m["CPU_REQ_M"], "250");
        assert_eq!(m["CPU_LIM"], "4", "node allocatable");
        assert_eq!(m["CPU_LIM_M"], "4000");
        assert_eq!(m["MEM_LIM"], "67108864");
        assert_eq!(m["MEM_LIM_MI"], "64");
        assert_eq!(m["MEM_REQ_MI"], "64", "request defaults to the limit");
        assert_eq!(m["MEM_REQ_K"], "67109");
        let bad = Container {
            name: "c".into(),
            env: Some(vec![from("X", resource("limits.gpu", None, None))]),
            ..Default::default()
        };
        assert_eq!(
            f.env(bad).unwrap_err().to_string(),
            "unsupported container resource : limits.gpu"
        );
        let other = Container {
            name: "c".into(),
            env: Some(vec![from("X", resource("limits.cpu", None, Some("nope")))]),
            ..Default::default()
        };
        assert_eq!(
            f.env(other).unwrap_err().to_string(),
            "container nope not found"
        );
    }

    #[test]
    fn referenced() {
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "s1".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![from("X", cm_key("cm1", "k", None))]),
            ..Default::default()
        };
        let (cms, secrets) = referenced_objects(&c);
        assert_eq!(cms.into_iter().collect::<Vec<_>>(), ["cm1"]);
        assert_eq!(secrets.into_iter().collect::<Vec<_>>(), ["s1"]);
    }
}
