//! The data the [`crate::Runtime`] trait speaks, shaped after CRI's
//! messages (`k8s.io/cri-api` v1) but as plain Rust structs: the kubelet
//! fills them from a pod spec, backends read them. No IO here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Who a sandbox belongs to; the kubelet finds its pods' sandboxes by this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// Bumped by the kubelet each time it has to recreate the sandbox.
    pub attempt: u32,
}

/// How a namespace is shared with the node or between containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    /// One namespace for the whole pod (the default for network, IPC, UTS).
    #[default]
    Pod,
    /// Each container has its own (the default for PID).
    Container,
    /// The node's own namespace (`hostNetwork`, `hostIPC`, `hostPID`).
    Node,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceOptions {
    pub network: NamespaceMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// `hostPort` mappings, applied through the CNI portmap plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: u16,
    pub host_port: u16,
    /// Empty means every host address.
    pub host_ip: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

/// `RunPodSandbox`'s request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    pub metadata: PodMetadata,
    pub hostname: String,
    /// Directory under which container logs go
    /// (`/var/log/pods/<namespace>_<name>_<uid>`).
    pub log_directory: PathBuf,
    pub dns: DnsConfig,
    pub port_mappings: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub namespaces: NamespaceOptions,
    /// The pod-level cgroup under which containers' cgroups are made,
    /// relative to the runtime's cgroup root.
    pub cgroup_parent: String,
    /// Sysctls (`net.*`, `kernel.shm*`, …) for the pod's namespaces.
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// `PodSandboxStatus`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    pub id: String,
    pub metadata: PodMetadata,
    pub state: SandboxState,
    pub created_at: SystemTime,
    /// The pod's addresses, primary first; empty with host networking.
    pub ips: Vec<String>,
    /// The network namespace's path (empty with host networking).
    pub netns_path: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Selects sandboxes in `list_pod_sandboxes`; empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxFilter {
    pub id: Option<String>,
    pub state: Option<SandboxState>,
    pub label_selector: BTreeMap<String, String>,
}

/// Credentials for one registry, as the kubelet resolves them from
/// `imagePullSecrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryAuth {
    Basic {
        username: String,
        password: String,
    },
    /// A registry token used as-is (`Authorization: Bearer`).
    Bearer(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `sha256:…` of the image config (what `imageID` reports).
    pub id: String,
    /// Every `registry/repository:tag` naming this image.
    pub repo_tags: Vec<String>,
    /// `registry/repository@sha256:…` of the manifest(s) pulled.
    pub repo_digests: Vec<String>,
    /// Unpacked size in bytes.
    pub size: u64,
    /// The image's own defaults, which container creation falls back to.
    pub config: ImageConfig,
}

/// The parts of an OCI image config a container is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// A bind mount into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub container_path: String,
    pub host_path: PathBuf,
    pub readonly: bool,
}

/// Cgroup settings from a container's requests and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CFS period in µs (0: the kernel's default).
    pub cpu_period: u64,
    /// CFS quota in µs per period (0: unlimited).
    pub cpu_quota: i64,
    /// Relative weight from the CPU request (v1 shares).
    pub cpu_shares: u64,
    /// Memory limit in bytes (0: unlimited).
    pub memory_limit_bytes: i64,
    /// `oom_score_adj` of the container's processes, from the QoS class.
    pub oom_score_adj: i32,
    /// Limit on the number of processes (0: unlimited).
    pub pids_limit: i64,
}

/// The Linux security settings a container asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContext {
    pub privileged: bool,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub supplemental_groups: Vec<u32>,
    pub readonly_rootfs: bool,
    /// Capability names without the `CAP_` prefix (`NET_ADMIN`), or `ALL`.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub no_new_privs: bool,
}

/// `CreateContainer`'s request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container's name in the pod.
    pub name: String,
    /// Bumped on each restart; part of the log file name.
    pub attempt: u32,
    pub image: String,
    /// Overrides the image's entrypoint when not empty.
    pub command: Vec<String>,
    /// Overrides the image's cmd when not empty.
    pub args: Vec<String>,
    pub working_dir: String,
    /// `NAME=value`, in order; later entries win.
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Relative to the sandbox's `log_directory` (`<name>/<attempt>.log`).
    pub log_path: PathBuf,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub resources: Resources,
    pub security: SecurityContext,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// `ContainerStatus`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    /// The main process on the node, while it runs.
    pub pid: Option<u32>,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub exit_code: Option<i32>,
    /// `OOMKilled`, `Error`, `Completed`, … as the kubelet reports them.
    pub reason: String,
    pub message: String,
    /// Absolute path of the CRI log file.
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub sandbox_id: Option<String>,
    pub state: Option<ContainerState>,
    pub label_selector: BTreeMap<String, String>,
}

/// CPU and memory use of a container or a whole sandbox, from cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStats {
    /// When the figures were read.
    pub timestamp_nanos: u128,
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_nanos: u64,
    /// Memory in use minus inactive file cache (what eviction looks at).
    pub memory_working_set_bytes: u64,
    pub memory_usage_bytes: u64,
    pub memory_rss_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// `Exec`'s request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
}

fn labels_match(labels: &BTreeMap<String, String>, selector: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl SandboxFilter {
    pub fn matches(&self, s: &SandboxStatus) -> bool {
        self.id.as_ref().is_none_or(|id| *id == s.id)
            && self.state.is_none_or(|st| st == s.state)
            && labels_match(&s.labels, &self.label_selector)
    }
}

impl ContainerFilter {
    /// Whether a container with this id in this sandbox can match, before
    /// its status is read (which may cost a call).
    pub fn may_match(&self, id: &str, sandbox_id: &str) -> bool {
        self.id.as_ref().is_none_or(|want| want == id)
            && self
                .sandbox_id
                .as_ref()
                .is_none_or(|want| want == sandbox_id)
    }

    pub fn matches(&self, c: &ContainerStatus) -> bool {
        self.may_match(&c.id, &c.sandbox_id)
            && self.state.is_none_or(|st| st == c.state)
            && labels_match(&c.labels, &self.label_selector)
    }
}
