//! Builds the OCI runtime spec (`config.json`) of a container from what the
//! kubelet asked for, the image's defaults and the sandbox's namespaces.
//! Every real backend uses this one builder, so a container looks the same
//! under youki and under containerd. Pure: no IO.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Result, RuntimeError};
use crate::types::{ContainerConfig, ImageConfig, NamespaceMode, SandboxConfig};

/// The capabilities a container gets unless it adds or drops some; the
/// same set container runtimes give Kubernetes pods by default.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability the kernels we run on know, for privileged containers.
const ALL_CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where the sandbox keeps what its containers share.
#[derive(Debug, Clone, Default)]
pub struct SandboxPaths<'a> {
    /// Pinned namespaces; `None` for a kind the pod shares with the node.
    pub network_ns: Option<&'a Path>,
    pub ipc_ns: Option<&'a Path>,
    pub uts_ns: Option<&'a Path>,
    /// Files mounted at `/etc/resolv.conf` and `/etc/hostname`.
    pub resolv_conf: Option<&'a Path>,
    pub hostname_file: Option<&'a Path>,
}

/// Everything the spec is built from.
pub struct SpecInput<'a> {
    pub sandbox: &'a SandboxConfig,
    pub paths: SandboxPaths<'a>,
    pub container: &'a ContainerConfig,
    pub image: &'a ImageConfig,
    /// The container's root filesystem on the node.
    pub rootfs: &'a Path,
    /// `linux.cgroupsPath`.
    pub cgroups_path: &'a str,
    /// `/etc/passwd` and `/etc/group` of the image, to resolve a user name.
    pub passwd: Option<&'a str>,
    pub group: Option<&'a str>,
}

/// The process a container runs: Kubernetes' rules for command/args
/// against the image's entrypoint/cmd.
pub fn process_args(container: &ContainerConfig, image: &ImageConfig) -> Result<Vec<String>> {
    let args: Vec<String> = if !container.command.is_empty() {
        container
            .command
            .iter()
            .chain(&container.args)
            .cloned()
            .collect()
    } else if !container.args.is_empty() {
        image
            .entrypoint
            .iter()
            .chain(&container.args)
            .cloned()
            .collect()
    } else {
        image.entrypoint.iter().chain(&image.cmd).cloned().collect()
    };
    if args.is_empty() {
        return Err(RuntimeError::invalid(format!(
            "container {:?}: no command specified and the image has neither entrypoint nor cmd",
            container.name
        )));
    }
    Ok(args)
}

/// Image env first, then the container's; a later name replaces an
/// earlier one in place.
pub fn process_env(container: &ContainerConfig, image: &ImageConfig) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let pairs = image
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .chain(container.envs.iter().cloned());
    for (k, v) in pairs {
        match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// uid and gid of the process: `runAsUser`/`runAsGroup`, else the image's
/// `user` (`uid`, `uid:gid`, `name` or `name:group`, looked up in the
/// image's passwd and group files), else root.
pub fn process_user(input: &SpecInput<'_>) -> Result<(u32, u32)> {
    let sc = &input.container.security;
    let (image_user, image_group) = match input.image.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (input.image.user.as_str(), None),
    };
    let mut uid = 0;
    let mut gid = 0;
    if !image_user.is_empty() {
        match image_user.parse::<u32>() {
            Ok(n) => {
                uid = n;
                gid = lookup_by_id(input.passwd, n).unwrap_or(n);
            }
            Err(_) => {
                let (u, g) = lookup_user(input.passwd, image_user).ok_or_else(|| {
                    RuntimeError::invalid(format!(
                        "unable to find user {image_user}: no matching entries in passwd file"
                    ))
                })?;
                uid = u;
                gid = g;
            }
        }
    }
    if let Some(g) = image_group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_group(input.group, g).ok_or_else(|| {
                RuntimeError::invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    if let Some(u) = sc.run_as_user {
        uid = u;
        if sc.run_as_group.is_none() && image_group.is_none() {
            gid = lookup_by_id(input.passwd, u).unwrap_or(0);
        }
    }
    if let Some(g) = sc.run_as_group {
        gid = g;
    }
    Ok((uid, gid))
}

fn passwd_entries(file: Option<&str>) -> impl Iterator<Item = Vec<&str>> {
    file.unwrap_or("")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

fn lookup_user(passwd: Option<&str>, name: &str) -> Option<(u32, u32)> {
    passwd_entries(passwd)
        .filter(|f| f.len() >= 4 && f[0] == name)
        .find_map(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
}

fn lookup_by_id(passwd: Option<&str>, uid: u32) -> Option<u32> {
    passwd_entries(passwd)
        .filter(|f| f.len() >= 4 && f[2].parse() == Ok(uid))
        .find_map(|f| f[3].parse().ok())
}

fn lookup_group(group: Option<&str>, name: &str) -> Option<u32> {
    passwd_entries(group)
        .filter(|f| f.len() >= 3 && f[0] == name)
        .find_map(|f| f[2].parse().ok())
}

/// The capability set after `add` and `drop` (either may say `ALL`).
pub fn capabilities(container: &ContainerConfig) -> Vec<String> {
    let sc = &container.security;
    if sc.privileged {
        return ALL_CAPABILITIES
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect();
    }
    let norm = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
    let drops: Vec<String> = sc.drop_capabilities.iter().map(norm).collect();
    let adds: Vec<String> = sc.add_capabilities.iter().map(norm).collect();
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !drops.iter().any(|d| d == *c))
            .map(|c| c.to_string())
            .collect()
    };
    if adds.iter().any(|a| a == "ALL") {
        caps = ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    } else {
        for a in adds {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
    }
    caps.into_iter().map(|c| format!("CAP_{c}")).collect()
}

fn namespace(kind: &str, mode: NamespaceMode, path: Option<&Path>) -> Option<Value> {
    match (mode, path) {
        (NamespaceMode::Node, _) => None,
        (NamespaceMode::Pod, Some(p)) => Some(json!({"type": kind, "path": p})),
        _ => Some(json!({ "type": kind })),
    }
}

fn mounts(input: &SpecInput<'_>) -> Vec<Value> {
    let privileged = input.container.security.privileged;
    let sys_opts = if privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                           "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
    ];
    let bind = |dest: &str, src: &Path, ro: bool| {
        let mut opts = vec!["rbind", "rprivate"];
        if ro {
            opts.push("ro");
        }
        json!({"destination": dest, "type": "bind", "source": src, "options": opts})
    };
    if let Some(p) = input.paths.resolv_conf {
        m.push(bind("/etc/resolv.conf", p, false));
    }
    if let Some(p) = input.paths.hostname_file {
        m.push(bind("/etc/hostname", p, false));
    }
    for mount in &input.container.mounts {
        m.push(bind(
            &mount.container_path,
            &mount.host_path,
            mount.readonly,
        ));
    }
    m
}

fn resources(input: &SpecInput<'_>) -> Value {
    let r = &input.container.resources;
    let mut res = json!({ "devices": [{"allow": false, "access": "rwm"}] });
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
        cpu.insert(
            "period".into(),
            json!(if r.cpu_period > 0 {
                r.cpu_period
            } else {
                100_000
            }),
        );
    }
    if !cpu.is_empty() {
        res["cpu"] = Value::Object(cpu);
    }
    if r.memory_limit_bytes > 0 {
        // No swap: a pod's memory limit is what it gets.
        res["memory"] = json!({"limit": r.memory_limit_bytes, "swap": r.memory_limit_bytes});
    }
    if r.pids_limit > 0 {
        res["pids"] = json!({ "limit": r.pids_limit });
    }
    res
}

/// Devices every container has (`/dev/null`, `/dev/zero`, …), allowed in
/// the device cgroup; runtimes create the nodes in the container's `/dev`.
fn default_devices() -> (Vec<Value>, Vec<Value>) {
    let devs: &[(&str, i64, i64)] = &[
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let nodes = devs
        .iter()
        .map(|(p, ma, mi)| {
            json!({"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666,
                   "uid": 0, "gid": 0})
        })
        .collect();
    let mut allow: Vec<Value> = devs
        .iter()
        .map(|(_, ma, mi)| {
            json!({"allow": true, "type": "c", "major": ma, "minor": mi,
                                  "access": "rwm"})
        })
        .collect();
    // ptys: /dev/pts/* and /dev/ptmx.
    allow.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    allow.push(json!({"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}));
    (nodes, allow)
}

/// The whole `config.json`.
pub fn build(input: &SpecInput<'_>) -> Result<Value> {
    let c = input.container;
    let args = process_args(c, input.image)?;
    let env = process_env(c, input.image);
    let (uid, gid) = process_user(input)?;
    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else if !input.image.working_dir.is_empty() {
        input.image.working_dir.clone()
    } else {
        "/".to_string()
    };
    if !cwd.starts_with('/') {
        return Err(RuntimeError::invalid(format!(
            "workingDir {cwd:?} is not an absolute path"
        )));
    }
    let caps = capabilities(c);
    let ns = &input.sandbox.namespaces;
    let namespaces: Vec<Value> = [
        namespace("pid", ns.pid, None),
        namespace("network", ns.network, input.paths.network_ns),
        namespace("ipc", ns.ipc, input.paths.ipc_ns),
        // Kubernetes ties the UTS namespace to the network one: hostNetwork
        // pods see the node's hostname.
        namespace("uts", ns.network, input.paths.uts_ns),
        Some(json!({ "type": "mount" })),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (device_nodes, device_rules) = default_devices();
    let mut res = resources(input);
    if c.security.privileged {
        res["devices"] = json!([{"allow": true, "access": "rwm"}]);
    } else if let Some(list) = res["devices"].as_array_mut() {
        list.extend(device_rules);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": res,
        "devices": device_nodes,
    });
    if !c.security.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let net_sysctls: serde_json::Map<String, Value> = input
        .sandbox
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if !net_sysctls.is_empty() {
        linux["sysctl"] = Value::Object(net_sysctls);
    }
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": c.security.supplemental_groups},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": c.security.no_new_privs,
        "oomScoreAdj": c.resources.oom_score_adj,
    });
    if uid != 0 {
        // A non-root process keeps no effective capabilities (as with
        // execve by a non-root user); bounding still limits what it may gain.
        process["capabilities"]["effective"] = json!([]);
        process["capabilities"]["permitted"] = json!([]);
    }
    let hostname = if ns.network == NamespaceMode::Node {
        None
    } else {
        Some(&input.sandbox.hostname)
    };
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs, "readonly": c.security.readonly_rootfs},
        "mounts": mounts(input),
        "linux": linux,
        "annotations": c.annotations,
    });
    if let Some(h) = hostname.filter(|h| !h.is_empty()) {
        // Set in the pinned UTS namespace already; repeating it here is
        // harmless and keeps a spec valid on its own.
        if input.paths.uts_ns.is_none() {
            spec["hostname"] = json!(h);
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Mount, SecurityContext};
    use std::path::PathBuf;

    fn container(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: "c".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: "/work".into(),
            user: String::new(),
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let img = image();
        assert_eq!(
            process_args(&container(&[], &[]), &img).unwrap(),
            ["/entry", "default"]
        );
        assert_eq!(
            process_args(&container(&[], &["x"]), &img).unwrap(),
            ["/entry", "x"]
        );
        assert_eq!(
            process_args(&container(&["sh"], &[]), &img).unwrap(),
            ["sh"]
        );
        assert_eq!(
            process_args(&container(&["sh"], &["-c", "x"]), &img).unwrap(),
            ["sh", "-c", "x"]
        );
        let err = process_args(&container(&[], &[]), &ImageConfig::default()).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::InvalidSpec);
    }

    #[test]
    fn container_env_overrides_image_env_in_place() {
        let mut c = container(&[], &[]);
        c.envs = vec![("A".into(), "pod".into()), ("B".into(), "1".into())];
        assert_eq!(process_env(&c, &image()), ["PATH=/bin", "A=pod", "B=1"]);
        assert!(process_env(&c, &ImageConfig::default())[0].starts_with("PATH=/usr/local/sbin"));
    }

    #[test]
    fn capabilities_add_and_drop() {
        let mut c = container(&[], &[]);
        c.security = SecurityContext {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["CAP_CHOWN".into()],
            ..Default::default()
        };
        let caps = capabilities(&c);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        c.security.drop_capabilities = vec!["ALL".into()];
        assert_eq!(capabilities(&c), ["CAP_NET_ADMIN"]);
        c.security.privileged = true;
        assert!(capabilities(&c).contains(&"CAP_SYS_ADMIN".to_string()));
    }

    fn build_for(c: &ContainerConfig, img: &ImageConfig, passwd: Option<&str>) -> Result<Value> {
        let sandbox = SandboxConfig {
            hostname: "pod-a".into(),
            ..Default::default()
        };
        let netns = PathBuf::from("/run/ns/net");
        let input = SpecInput {
            sandbox: &sandbox,
            paths: SandboxPaths {
                network_ns: Some(&netns),
                ..Default::default()
            },
            container: c,
            image: img,
            rootfs: Path::new("/rootfs"),
            cgroups_path: "/rkube/pod/ctr",
            passwd,
            group: None,
        };
        build(&input)
    }

    #[test]
    fn spec_parses_as_an_oci_runtime_spec() {
        let mut c = container(&["sleep", "1"], &[]);
        c.mounts.push(Mount {
            container_path: "/data".into(),
            host_path: "/var/data".into(),
            readonly: true,
        });
        c.resources.memory_limit_bytes = 64 << 20;
        c.resources.cpu_quota = 50_000;
        let spec = build_for(&c, &image(), None).unwrap();
        let parsed: oci_spec::runtime::Spec = serde_json::from_value(spec.clone()).unwrap();
        let process = parsed.process().as_ref().unwrap();
        assert_eq!(process.cwd(), &PathBuf::from("/work"));
        let linux = parsed.linux().as_ref().unwrap();
        let mem = linux
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        let net = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network);
        assert_eq!(
            net.unwrap().path().as_deref(),
            Some(Path::new("/run/ns/net"))
        );
        let data = parsed
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/data"));
        assert!(data
            .unwrap()
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
    }

    #[test]
    fn user_comes_from_security_context_then_image() {
        let passwd = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        let mut img = image();
        img.user = "nobody".into();
        let c = container(&["id"], &[]);
        let spec = build_for(&c, &img, Some(passwd)).unwrap();
        assert_eq!(spec["process"]["user"]["uid"], 65534);
        assert_eq!(spec["process"]["user"]["gid"], 65534);
        let mut c2 = c.clone();
        c2.security.run_as_user = Some(1000);
        c2.security.run_as_group = Some(3000);
        let spec = build_for(&c2, &img, Some(passwd)).unwrap();
        assert_eq!(spec["process"]["user"]["uid"], 1000);
        assert_eq!(spec["process"]["user"]["gid"], 3000);
        img.user = "ghost".into();
        let err = build_for(&c, &img, Some(passwd)).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::InvalidSpec);
    }

    #[test]
    fn relative_working_dir_is_rejected() {
        let mut c = container(&["true"], &[]);
        c.working_dir = "tmp".into();
        assert_eq!(
            build_for(&c, &image(), None).unwrap_err().kind,
            crate::ErrorKind::InvalidSpec
        );
    }
}
