//! The node's presence in the API: registers the Node object, renews its
//! Lease in `kube-node-lease` every 10 seconds, and posts the node's
//! conditions (Ready and the pressure conditions, from real readings).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::node_info::{filesystem_bytes, meminfo, MachineInfo};
use crate::{KubeletConfig, Result, KUBELET_VERSION};

/// How often the Lease is renewed, and how long it is valid.
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;
/// Pods a node accepts, as upstream's default.
const MAX_PODS: &str = "110";

fn now_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn quantities(info: &MachineInfo) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(info.cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", info.memory_bytes / 1024)),
        ),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", info.ephemeral_storage_bytes / 1024)),
        ),
        ("pods".to_string(), Quantity(MAX_PODS.into())),
    ])
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> NodeCondition {
    let now = now_time();
    NodeCondition {
        type_: kind.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// The node's conditions from what the machine shows now.
pub fn conditions(cfg: &KubeletConfig) -> Vec<NodeCondition> {
    let mem = meminfo();
    let available = mem.get("MemAvailable").copied().unwrap_or(u64::MAX);
    // Upstream's default hard eviction thresholds: memory.available<100Mi,
    // nodefs.available<10%.
    let memory_pressure = available < 100 << 20;
    let (total, free) = filesystem_bytes(&cfg.root_dir);
    let disk_pressure = total > 0 && free * 10 < total;
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let pids = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count() as u64
        })
        .unwrap_or(0);
    let pid_pressure = pids * 10 > pid_max * 9;
    vec![
        condition(
            "MemoryPressure",
            memory_pressure,
            if memory_pressure {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
            if memory_pressure {
                "kubelet has insufficient memory available"
            } else {
                "kubelet has sufficient memory available"
            },
        ),
        condition(
            "DiskPressure",
            disk_pressure,
            if disk_pressure {
                "KubeletHasDiskPressure"
            } else {
                "KubeletHasNoDiskPressure"
            },
            if disk_pressure {
                "kubelet has disk pressure"
            } else {
                "kubelet has no disk pressure"
            },
        ),
        condition(
            "PIDPressure",
            pid_pressure,
            if pid_pressure {
                "KubeletHasInsufficientPID"
            } else {
                "KubeletHasSufficientPID"
            },
            if pid_pressure {
                "kubelet has insufficient PID available"
            } else {
                "kubelet has sufficient PID available"
            },
        ),
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

fn status(cfg: &KubeletConfig, info: &MachineInfo) -> NodeStatus {
    NodeStatus {
        capacity: Some(quantities(info)),
        allocatable: Some(quantities(info)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: cfg.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: cfg.node_name.clone(),
            },
        ]),
        conditions: Some(conditions(cfg)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(cfg.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
            boot_id: info.boot_id.clone(),
            container_runtime_version: cfg.runtime_version.clone(),
            kernel_version: info.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: info.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: info.os_image.clone(),
            system_uuid: info.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates the Node if it does not exist, then posts its status.
pub async fn register(cfg: &KubeletConfig) -> Result<()> {
    let info = MachineInfo::read(&cfg.root_dir);
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), cfg.node_name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch.clone()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch),
    ]);
    let node = Node {
        metadata: ObjectMeta {
            name: Some(cfg.node_name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cfg.pod_cidr.clone()),
            pod_cidrs: Some(vec![cfg.pod_cidr.clone()]),
            ..Default::default()
        }),
        status: None,
    };
    let nodes: Api<Node> = Api::all(cfg.client.clone());
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    post_status(cfg, &info).await
}

async fn post_status(cfg: &KubeletConfig, info: &MachineInfo) -> Result<()> {
    let nodes: Api<Node> = Api::all(cfg.client.clone());
    let patch = serde_json::json!({ "status": status(cfg, info) });
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

async fn renew_lease(cfg: &KubeletConfig) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(cfg.client.clone(), "kube-node-lease");
    let spec = LeaseSpec {
        holder_identity: Some(cfg.node_name.clone()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        ..Default::default()
    };
    let patch = serde_json::json!({ "spec": spec });
    match leases
        .patch(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.node_name.clone()),
                    namespace: Some("kube-node-lease".into()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            leases.create(&PostParams::default(), &lease).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Renews the Lease every 10 s and posts the node status every minute
/// (and at once when a condition changes); runs until the task is dropped.
pub async fn heartbeat(cfg: KubeletConfig) {
    let info = MachineInfo::read(&cfg.root_dir);
    let mut ticks: u32 = 0;
    let mut last: Vec<(String, String)> = Vec::new();
    loop {
        if let Err(e) = renew_lease(&cfg).await {
            tracing::warn!("renewing the node lease: {e}");
        }
        let now: Vec<(String, String)> = conditions(&cfg)
            .into_iter()
            .map(|c| (c.type_, c.status))
            .collect();
        if ticks.is_multiple_of(6) || now != last {
            if let Err(e) = post_status(&cfg, &info).await {
                tracing::warn!("posting the node status: {e}");
            }
            last = now;
        }
        ticks = ticks.wrapping_add(1);
        tokio::time::sleep(LEASE_RENEW).await;
    }
}
