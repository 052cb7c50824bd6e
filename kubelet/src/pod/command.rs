//! What the kubelet asks the runtime for: the sandbox of a pod and each of
//! its containers, as `runtime::types` configs built from the pod spec.
//!
//! Command and args get the same `$(VAR)` expansion as `env` values, but
//! against the container's final environment. Security settings merge the
//! pod's `securityContext` under the container's; DNS follows `dnsPolicy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::types::{
    ContainerConfig, DnsConfig, Mount, NamespaceMode, NamespaceOptions, PodMetadata, PortMapping,
    Protocol, SandboxConfig, SecurityContext,
};

use super::env::expand;
use super::qos;
use super::resources::container_resources;

pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const ANNOTATION_TERMINATION_MESSAGE_PATH: &str =
    "io.kubernetes.container.terminationMessagePath";
pub const ANNOTATION_TERMINATION_MESSAGE_POLICY: &str =
    "io.kubernetes.container.terminationMessagePolicy";
pub const ANNOTATION_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";

/// Hostnames are DNS labels: at most 63 characters.
const MAX_HOSTNAME_LEN: usize = 63;
/// The kernel's limit on a hostname, which an FQDN hostname must meet.
const MAX_FQDN_LEN: usize = 64;
/// resolv.conf limits that libc honours.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// Why a config could not be made (reported as `CreateContainerConfigError`
/// or as a sandbox creation failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("hostname for pod {pod:?} was invalid: {hostname:?}")]
    InvalidHostname { pod: String, hostname: String },
    #[error(
        "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long \
         ({MAX_FQDN_LEN} characters is the max, {} characters requested)",
        fqdn.len()
    )]
    FqdnTooLong { fqdn: String },
    #[error("invalid {field} {value}: must be between 0 and 4294967295")]
    InvalidId { field: &'static str, value: i64 },
}

fn lookup_in(env: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    // Later entries win, as they do when the runtime sets them.
    move |name| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// `command` and `args` with `$(VAR)` references expanded against `env`.
pub fn expand_command(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let lookup = lookup_in(env);
    let expand_all =
        |v: &Option<Vec<String>>| v.iter().flatten().map(|s| expand(s, &lookup)).collect();
    (expand_all(&container.command), expand_all(&container.args))
}

fn id(field: &'static str, value: i64) -> Result<u32, ConfigError> {
    u32::try_from(value).map_err(|_| ConfigError::InvalidId { field, value })
}

/// The container's security settings with pod-level ones filled in where
/// the container leaves them unset. The pod's `fsGroup` comes first among
/// the supplemental groups, then its `supplementalGroups`.
pub fn security_context(pod: &Pod, container: &Container) -> Result<SecurityContext, ConfigError> {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = container.security_context.as_ref();
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod_sc.and_then(|p| p.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or(pod_sc.and_then(|p| p.run_as_group));
    let mut supplemental_groups = Vec::new();
    if let Some(fs_group) = pod_sc.and_then(|p| p.fs_group) {
        supplemental_groups.push(id("fsGroup", fs_group)?);
    }
    for g in pod_sc
        .and_then(|p| p.supplemental_groups.as_ref())
        .into_iter()
        .flatten()
    {
        supplemental_groups.push(id("supplementalGroups", *g)?);
    }
    // Runtimes add the `CAP_` prefix themselves; accept names with it too.
    let caps = |list: Option<&Vec<String>>| -> Vec<String> {
        let list = list.into_iter().flatten();
        list.map(|c| c.strip_prefix("CAP_").unwrap_or(c).to_string())
            .collect()
    };
    let capabilities = sc.and_then(|s| s.capabilities.as_ref());
    Ok(SecurityContext {
        privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
        run_as_user: run_as_user.map(|v| id("runAsUser", v)).transpose()?,
        run_as_group: run_as_group.map(|v| id("runAsGroup", v)).transpose()?,
        supplemental_groups,
        readonly_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        add_capabilities: caps(capabilities.and_then(|c| c.add.as_ref())),
        drop_capabilities: caps(capabilities.and_then(|c| c.drop.as_ref())),
        // Only an explicit `allowPrivilegeEscalation: false` sets it.
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
    })
}

fn pod_identity(pod: &Pod) -> (String, String, String) {
    let m = &pod.metadata;
    (
        m.name.clone().unwrap_or_default(),
        m.namespace.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default(),
    )
}

/// `CreateContainer`'s request for attempt `attempt` (the restart count)
/// of `container`, with its final environment and mounts, on a node with
/// `memory_capacity` bytes (for the OOM score).
pub fn container_config(
    pod: &Pod,
    container: &Container,
    attempt: u32,
    envs: Vec<(String, String)>,
    mounts: Vec<Mount>,
    memory_capacity: i64,
) -> Result<ContainerConfig, ConfigError> {
    let (name, namespace, uid) = pod_identity(pod);
    let (command, args) = expand_command(container, &envs);
    let labels = BTreeMap::from([
        (LABEL_CONTAINER_NAME.to_string(), container.name.clone()),
        (LABEL_POD_NAME.to_string(), name),
        (LABEL_POD_NAMESPACE.to_string(), namespace),
        (LABEL_POD_UID.to_string(), uid),
    ]);
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let message_path = container.termination_message_path.as_deref();
    let message_policy = container.termination_message_policy.as_deref();
    let annotations = BTreeMap::from([
        (ANNOTATION_RESTART_COUNT.to_string(), attempt.to_string()),
        (
            ANNOTATION_TERMINATION_MESSAGE_PATH.to_string(),
            message_path.unwrap_or("/dev/termination-log").to_string(),
        ),
        (
            ANNOTATION_TERMINATION_MESSAGE_POLICY.to_string(),
            message_policy.unwrap_or("File").to_string(),
        ),
        (
            ANNOTATION_TERMINATION_GRACE_PERIOD.to_string(),
            grace.to_string(),
        ),
    ]);
    Ok(ContainerConfig {
        name: container.name.clone(),
        attempt,
        image: container.image.clone().unwrap_or_default(),
        command,
        args,
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts,
        log_path: PathBuf::from(&container.name).join(format!("{attempt}.log")),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        resources: container_resources(pod, container, memory_capacity),
        security: security_context(pod, container)?,
        labels,
        annotations,
    })
}

/// The pod's hostname (`spec.hostname` or its name, cut to 63 characters
/// without a trailing `-` or `.`) and, with `spec.subdomain`, its domain
/// `<subdomain>.<namespace>.svc.<cluster domain>` (else empty).
pub fn pod_hostname_and_domain(
    pod: &Pod,
    cluster_domain: &str,
) -> Result<(String, String), ConfigError> {
    let (name, namespace, _) = pod_identity(pod);
    let spec = pod.spec.as_ref();
    let mut hostname = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or(name.clone());
    if hostname.len() > MAX_HOSTNAME_LEN {
        // Names are ASCII (DNS labels), so byte slicing is safe; guard anyway.
        let cut = (0..=MAX_HOSTNAME_LEN)
            .rev()
            .find(|i| hostname.is_char_boundary(*i))
            .unwrap_or(0);
        hostname = hostname[..cut].trim_end_matches(['-', '.']).to_string();
        if hostname.is_empty() {
            return Err(ConfigError::InvalidHostname {
                pod: name,
                hostname,
            });
        }
    }
    let domain = match spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(sub) => format!("{sub}.{namespace}.svc.{cluster_domain}"),
        None => String::new(),
    };
    Ok((hostname, domain))
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// The pod's resolver settings. `host` is the node's own resolv.conf
/// (parsed by the caller), used by `Default` and as the tail of the search
/// list under `ClusterFirst`; an empty result means "use the node's file".
pub fn pod_dns_config(
    pod: &Pod,
    cluster_dns: &[String],
    cluster_domain: &str,
    host: &DnsConfig,
) -> DnsConfig {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    #[derive(PartialEq)]
    enum Kind {
        Cluster,
        Host,
        None,
    }
    let mut kind = match policy {
        "ClusterFirstWithHostNet" => Kind::Cluster,
        // Host-network pods under ClusterFirst resolve like the node.
        "ClusterFirst" if !host_network(pod) => Kind::Cluster,
        "None" => Kind::None,
        _ => Kind::Host,
    };
    if kind == Kind::Cluster && cluster_dns.is_empty() {
        // No cluster DNS configured: upstream falls back to the node's.
        kind = Kind::Host;
    }
    let mut dns = match kind {
        Kind::Cluster => {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
            let mut searches = Vec::new();
            if !cluster_domain.is_empty() {
                searches.push(format!("{namespace}.svc.{cluster_domain}"));
                searches.push(format!("svc.{cluster_domain}"));
                searches.push(cluster_domain.to_string());
            }
            for s in &host.searches {
                push_unique(&mut searches, s);
            }
            DnsConfig {
                servers: cluster_dns.to_vec(),
                searches,
                options: vec!["ndots:5".to_string()],
            }
        }
        Kind::Host => host.clone(),
        Kind::None => DnsConfig::default(),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        for server in extra.nameservers.iter().flatten() {
            push_unique(&mut dns.servers, server);
        }
        for search in extra.searches.iter().flatten() {
            push_unique(&mut dns.searches, search);
        }
        for opt in extra.options.iter().flatten() {
            let Some(name) = opt.name.as_deref() else {
                continue;
            };
            let rendered = match opt.value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            // A pod option replaces the one of the same name in place.
            let same = |o: &String| o.split(':').next() == Some(name);
            match dns.options.iter().position(same) {
                Some(i) => dns.options[i] = rendered,
                None => dns.options.push(rendered),
            }
        }
    }
    dns.servers.truncate(MAX_NAMESERVERS);
    // Keep whole domains, in order, within both search-list limits.
    let mut chars = 0;
    let mut kept = Vec::new();
    for s in dns.searches {
        let cost = s.len() + usize::from(!kept.is_empty());
        if kept.len() == MAX_SEARCHES || chars + cost > MAX_SEARCH_CHARS {
            break;
        }
        chars += cost;
        kept.push(s);
    }
    dns.searches = kept;
    dns
}

/// The pod's cgroup, after upstream's cgroupfs layout: Guaranteed pods
/// directly under `kubepods`, the others under a per-class parent.
pub fn pod_cgroup_parent(pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    match qos::qos_class(pod) {
        qos::GUARANTEED => format!("kubepods/pod{uid}"),
        qos::BURSTABLE => format!("kubepods/burstable/pod{uid}"),
        _ => format!("kubepods/besteffort/pod{uid}"),
    }
}

/// Sysctl names may use `/` as the separator (`net/ipv4/ip_forward`);
/// the runtime wants dots, and a dot inside a `/` name is a literal one
/// that becomes `/` (as in interface names like `eth0.100`).
fn normalize_sysctl(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let mut out: Vec<PortMapping> = Vec::new();
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    for port in containers.flat_map(|c| c.ports.iter().flatten()) {
        let host_port = port.host_port.unwrap_or(0);
        let (Ok(host_port), Ok(container_port)) =
            (u16::try_from(host_port), u16::try_from(port.container_port))
        else {
            continue;
        };
        if host_port == 0 {
            continue;
        }
        let protocol = match port.protocol.as_deref() {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        };
        let mapping = PortMapping {
            protocol,
            container_port,
            host_port,
            host_ip: port.host_ip.clone().unwrap_or_default(),
        };
        if !out.contains(&mapping) {
            out.push(mapping);
        }
    }
    out
}

/// `RunPodSandbox`'s request. `metadata.attempt` is 0: the caller bumps it
/// when it recreates a sandbox. DNS uses no node resolv.conf; a caller
/// that has one replaces `dns` with [`pod_dns_config`]'s answer.
pub fn sandbox_config(
    pod: &Pod,
    cluster_dns: &[String],
    cluster_domain: &str,
    log_root: &Path,
) -> Result<SandboxConfig, ConfigError> {
    let (name, namespace, uid) = pod_identity(pod);
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f).unwrap_or(false)
    };
    // The runtime keeps the node's hostname for host-network pods.
    let hostname = if host_network(pod) {
        String::new()
    } else {
        let (hostname, domain) = pod_hostname_and_domain(pod, cluster_domain)?;
        if flag(|s| s.set_hostname_as_fqdn) && !domain.is_empty() {
            let fqdn = format!("{hostname}.{domain}");
            if fqdn.len() > MAX_FQDN_LEN {
                return Err(ConfigError::FqdnTooLong { fqdn });
            }
            fqdn
        } else {
            hostname
        }
    };
    let mode = |on: bool| {
        if on {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        }
    };
    let pid = if flag(|s| s.host_pid) {
        NamespaceMode::Node
    } else if flag(|s| s.share_process_namespace) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    let mut labels = pod.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_POD_NAME.to_string(), name.clone());
    labels.insert(LABEL_POD_NAMESPACE.to_string(), namespace.clone());
    labels.insert(LABEL_POD_UID.to_string(), uid.clone());
    let sysctls = spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (normalize_sysctl(&s.name), s.value.clone()))
        .collect();
    Ok(SandboxConfig {
        metadata: PodMetadata {
            name: name.clone(),
            namespace: namespace.clone(),
            uid: uid.clone(),
            attempt: 0,
        },
        hostname,
        log_directory: log_root.join(format!("{namespace}_{name}_{uid}")),
        dns: pod_dns_config(pod, cluster_dns, cluster_domain, &DnsConfig::default()),
        port_mappings: port_mappings(pod),
        labels,
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        namespaces: NamespaceOptions {
            network: mode(host_network(pod)),
            pid,
            ipc: mode(flag(|s| s.host_ipc)),
        },
        cgroup_parent: pod_cgroup_parent(pod),
        sysctls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, ContainerPort, PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec,
        SecurityContext as ApiSecurityContext, Sysctl,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod_with(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("prod".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn command_expansion() {
        let c = Container {
            name: "c".into(),
            command: Some(vec!["/bin/$(SHELL_NAME)".into(), "$$(SHELL_NAME)".into()]),
            args: Some(vec!["-c".into(), "echo $(MSG) $(UNSET)".into()]),
            ..Default::default()
        };
        let e = env(&[("SHELL_NAME", "ash"), ("MSG", "first"), ("MSG", "second")]);
        let (cmd, args) = expand_command(&c, &e);
        assert_eq!(cmd, ["/bin/ash", "$(SHELL_NAME)"]);
        assert_eq!(args, ["-c", "echo second $(UNSET)"]);
    }

    #[test]
    fn container_config_fields() {
        let c = Container {
            name: "app".into(),
            image: Some("busybox:1.36".into()),
            command: Some(vec!["sh".into()]),
            args: Some(vec!["$(GREETING)".into()]),
            working_dir: Some("/work".into()),
            stdin: Some(true),
            tty: Some(true),
            security_context: Some(ApiSecurityContext {
                run_as_user: Some(1000),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_ADMIN".into(), "CAP_SYS_TIME".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = pod_with(PodSpec {
            containers: vec![c.clone()],
            security_context: Some(PodSecurityContext {
                run_as_user: Some(1),
                run_as_group: Some(2000),
                fs_group: Some(3000),
                supplemental_groups: Some(vec![4000, 4001]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let cfg = container_config(&p, &c, 3, env(&[("GREETING", "hi")]), vec![], 1 << 30).unwrap();
        assert_eq!(cfg.image, "busybox:1.36");
        assert_eq!(cfg.args, ["hi"]);
        assert_eq!(cfg.working_dir, "/work");
        assert!(cfg.stdin && cfg.tty && !cfg.stdin_once);
        assert_eq!(cfg.log_path, PathBuf::from("app/3.log"));
        assert_eq!(cfg.attempt, 3);
        let s = &cfg.security;
        assert_eq!(s.run_as_user, Some(1000), "container wins");
        assert_eq!(s.run_as_group, Some(2000), "pod fills in");
        assert_eq!(s.supplemental_groups, [3000, 4000, 4001]);
        assert!(s.no_new_privs && s.readonly_rootfs && !s.privileged);
        assert_eq!(s.add_capabilities, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(s.drop_capabilities, ["ALL"]);
        assert_eq!(cfg.labels[LABEL_CONTAINER_NAME], "app");
        assert_eq!(cfg.labels[LABEL_POD_NAME], "web-0");
        assert_eq!(cfg.labels[LABEL_POD_NAMESPACE], "prod");
        assert_eq!(cfg.labels[LABEL_POD_UID], "u-1");
        assert_eq!(cfg.annotations[ANNOTATION_RESTART_COUNT], "3");
        assert_eq!(cfg.resources.cpu_shares, 2, "BestEffort");
        assert_eq!(cfg.resources.oom_score_adj, 1000);

        let mut bad = c.clone();
        bad.security_context.as_mut().unwrap().run_as_user = Some(-1);
        let err = container_config(&p, &bad, 0, vec![], vec![], 0).unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidId {
                field: "runAsUser",
                value: -1
            }
        );
        // Unset allowPrivilegeEscalation leaves no_new_privs off.
        let plain = Container {
            name: "p".into(),
            ..Default::default()
        };
        assert!(!security_context(&p, &plain).unwrap().no_new_privs);
    }

    #[test]
    fn hostnames() {
        let long = "a".repeat(60) + "-.-bcdef";
        let p = pod_with(PodSpec {
            hostname: Some(long),
            ..Default::default()
        });
        let (h, d) = pod_hostname_and_domain(&p, "cluster.local").unwrap();
        assert_eq!(h, "a".repeat(60), "cut at 63 then trailing -. trimmed");
        assert_eq!(d, "");
        let p = pod_with(PodSpec {
            subdomain: Some("sub".into()),
            ..Default::default()
        });
        let (h, d) = pod_hostname_and_domain(&p, "cluster.local").unwrap();
        assert_eq!(
            (h.as_str(), d.as_str()),
            ("web-0", "sub.prod.svc.cluster.local")
        );

        let mut spec = PodSpec {
            subdomain: Some("sub".into()),
            ..Default::default()
        };
        spec.set_hostname_as_fqdn = Some(true);
        let cfg = sandbox_config(&pod_with(spec), &[], "cluster.local", Path::new("/l")).unwrap();
        assert_eq!(cfg.hostname, "web-0.sub.prod.svc.cluster.local");
        let mut spec = PodSpec {
            hostname: Some("h".repeat(40)),
            subdomain: Some("sub".into()),
            ..Default::default()
        };
        spec.set_hostname_as_fqdn = Some(true);
        let err = sandbox_config(&pod_with(spec), &[], "cluster.local", Path::new("/l"));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("(64 characters is the max, 67 characters"));
        let spec = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        let cfg = sandbox_config(&pod_with(spec), &[], "cluster.local", Path::new("/l")).unwrap();
        assert_eq!(cfg.hostname, "");
    }

    fn dns_for(spec: PodSpec, cluster_dns: &[&str]) -> DnsConfig {
        let servers: Vec<String> = cluster_dns.iter().map(|s| s.to_string()).collect();
        let host = DnsConfig {
            servers: vec!["1.1.1.1".into()],
            searches: vec!["corp.example".into()],
            options: vec![],
        };
        pod_dns_config(&pod_with(spec), &servers, "cluster.local", &host)
    }

    #[test]
    fn dns_policies() {
        let cluster = dns_for(PodSpec::default(), &["10.96.0.10"]);
        assert_eq!(cluster.servers, ["10.96.0.10"]);
        assert_eq!(
            cluster.searches,
            [
                "prod.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(cluster.options, ["ndots:5"]);

        // No cluster DNS: the node's resolver.
        assert_eq!(dns_for(PodSpec::default(), &[]).servers, ["1.1.1.1"]);
        // Host network under ClusterFirst resolves like the node…
        let hn = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        assert_eq!(dns_for(hn.clone(), &["10.96.0.10"]).servers, ["1.1.1.1"]);
        // …unless it asks for ClusterFirstWithHostNet.
        let hn = PodSpec {
            dns_policy: Some("ClusterFirstWithHostNet".into()),
            ..hn
        };
        assert_eq!(dns_for(hn, &["10.96.0.10"]).servers, ["10.96.0.10"]);
        let default = PodSpec {
            dns_policy: Some("Default".into()),
            ..Default::default()
        };
        assert_eq!(dns_for(default, &["10.96.0.10"]).searches, ["corp.example"]);

        let none = PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["8.8.8.8".into(), "8.8.8.8".into()]),
                searches: Some(vec!["a.example".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                }]),
            }),
            ..Default::default()
        };
        let d = dns_for(none, &["10.96.0.10"]);
        assert_eq!(
            (d.servers, d.searches, d.options),
            (
                vec!["8.8.8.8".to_string()],
                vec!["a.example".to_string()],
                vec!["edns0".to_string()]
            )
        );

        let merged = PodSpec {
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["9.9.9.9".into(), "8.8.8.8".into(), "7.7.7.7".into()]),
                searches: Some(vec!["cluster.local".into(), "x.example".into()]),
                options: Some(vec![
                    PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("2".into()),
                    },
                    PodDNSConfigOption {
                        name: Some("timeout".into()),
                        value: Some("1".into()),
                    },
                ]),
            }),
            ..Default::default()
        };
        let d = dns_for(merged, &["10.96.0.10"]);
        assert_eq!(
            d.servers,
            ["10.96.0.10", "9.9.9.9", "8.8.8.8"],
            "at most three"
        );
        assert_eq!(d.searches.last().unwrap(), "x.example");
        assert_eq!(d.searches.len(), 5, "duplicates dropped");
        assert_eq!(d.options, ["ndots:2", "timeout:1"]);
    }

    #[test]
    fn sandbox_fields() {
        let spec = PodSpec {
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![
                    ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..Default::default()
                    },
                    ContainerPort {
                        container_port: 53,
                        host_port: Some(5353),
                        protocol: Some("UDP".into()),
                        host_ip: Some("127.0.0.1".into()),
                        ..Default::default()
                    },
                    ContainerPort {
                        container_port: 9090,
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }],
            host_ipc: Some(true),
            share_process_namespace: Some(true),
            security_context: Some(PodSecurityContext {
                sysctls: Some(vec![
                    Sysctl {
                        name: "net/ipv4/conf/eth0.100/forwarding".into(),
                        value: "1".into(),
                    },
                    Sysctl {
                        name: "kernel.shm_rmid_forced".into(),
                        value: "1".into(),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cfg = sandbox_config(
            &pod_with(spec),
            &["10.96.0.10".into()],
            "cluster.local",
            Path::new("/var/log/pods"),
        )
        .unwrap();
        assert_eq!(cfg.hostname, "web-0");
        assert_eq!(
            cfg.log_directory,
            PathBuf::from("/var/log/pods/prod_web-0_u-1")
        );
        assert_eq!(
            cfg.metadata,
            PodMetadata {
                name: "web-0".into(),
                namespace: "prod".into(),
                uid: "u-1".into(),
                attempt: 0
            }
        );
        assert_eq!(
            cfg.namespaces,
            NamespaceOptions {
                network: NamespaceMode::Pod,
                pid: NamespaceMode::Pod,
                ipc: NamespaceMode::Node
            }
        );
        assert_eq!(cfg.port_mappings.len(), 2);
        assert_eq!(
            cfg.port_mappings[1],
            PortMapping {
                protocol: Protocol::Udp,
                container_port: 53,
                host_port: 5353,
                host_ip: "127.0.0.1".into()
            }
        );
        assert_eq!(cfg.sysctls["net.ipv4.conf.eth0/100.forwarding"], "1");
        assert_eq!(cfg.sysctls["kernel.shm_rmid_forced"], "1");
        assert_eq!(cfg.labels["app"], "web");
        assert_eq!(cfg.labels[LABEL_POD_UID], "u-1");
        assert_eq!(cfg.dns.servers, ["10.96.0.10"]);
        assert_eq!(cfg.cgroup_parent, "kubepods/besteffort/podu-1");

        let host = PodSpec {
            host_network: Some(true),
            host_pid: Some(true),
            ..Default::default()
        };
        let cfg = sandbox_config(&pod_with(host), &[], "cluster.local", Path::new("/l")).unwrap();
        assert_eq!(
            cfg.namespaces,
            NamespaceOptions {
                network: NamespaceMode::Node,
                pid: NamespaceMode::Node,
                ipc: NamespaceMode::Pod
            }
        );
        let plain =
            sandbox_config(&pod_with(PodSpec::default()), &[], "", Path::new("/l")).unwrap();
        assert_eq!(plain.namespaces.pid, NamespaceMode::Container);
    }
}
