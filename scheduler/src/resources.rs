//! What pods ask for and what nodes offer, in the units the filters compare:
//! milli-cores of CPU, bytes of memory and ephemeral storage, plus any
//! extended resource (`example.com/gpu`, `hugepages-2Mi`) as a count.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// Upstream's stand-in CPU request (100m) for containers that request no
/// CPU, used only for scoring so empty pods still spread.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The same for memory: 200 MiB.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 << 20;

/// Amounts of the resources the scheduler accounts for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Amounts {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources and huge pages, by name.
    pub scalar: BTreeMap<String, i64>,
}

/// Extended resources (`vendor.example/device`) and huge pages are counted;
/// other names (`pods`, unknown ones) are not requestable.
fn is_scalar(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-")
}

impl Amounts {
    /// Reads a resource list (requests, limits, overhead, allocatable).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Amounts {
        let mut out = Amounts::default();
        for (name, q) in list {
            match name.as_str() {
                "cpu" => out.milli_cpu = quantity::milli(q),
                "memory" => out.memory = quantity::value(q),
                "ephemeral-storage" => out.ephemeral_storage = quantity::value(q),
                n if is_scalar(n) => {
                    out.scalar.insert(n.to_string(), quantity::value(q));
                }
                _ => {}
            }
        }
        out
    }

    pub fn add(&mut self, other: &Amounts) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (name, v) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() += v;
        }
    }

    /// Takes back what `add` added.
    pub fn sub(&mut self, other: &Amounts) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (name, v) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() -= v;
        }
    }

    /// Each resource raised to at least `other`'s amount.
    pub fn max_with(&mut self, other: &Amounts) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, v) in &other.scalar {
            let mine = self.scalar.entry(name.clone()).or_default();
            *mine = (*mine).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }
}

/// A container's requests; a resource with a limit but no request requests
/// its limit (the API server's defaulting, applied here too in case a
/// client's object skipped it). With `non_zero`, missing CPU and memory
/// requests count as upstream's scoring defaults.
fn container_requests(c: &Container, non_zero: bool) -> Amounts {
    let resources = c.resources.as_ref();
    let mut list = resources.and_then(|r| r.limits.clone()).unwrap_or_default();
    if let Some(requests) = resources.and_then(|r| r.requests.as_ref()) {
        list.extend(requests.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut amounts = Amounts::from_list(&list);
    if non_zero {
        if !list.contains_key("cpu") {
            amounts.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.contains_key("memory") {
            amounts.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    amounts
}

/// Init containers with `restartPolicy: Always` are sidecars: they keep
/// running beside the regular containers.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn requests(pod: &Pod, non_zero: bool) -> Amounts {
    let Some(spec) = pod.spec.as_ref() else {
        return Amounts::default();
    };
    let mut total = Amounts::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_zero));
    }
    // Init containers run one at a time, each beside the sidecars started
    // before it; sidecars also run for the pod's whole life.
    let mut sidecars = Amounts::default();
    let mut init_peak = Amounts::default();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c, non_zero);
        if is_sidecar(c) {
            total.add(&own);
            sidecars.add(&own);
            init_peak.max_with(&sidecars);
        } else {
            let mut during = own;
            during.add(&sidecars);
            init_peak.max_with(&during);
        }
    }
    total.max_with(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Amounts::from_list(overhead));
    }
    total
}

/// What a pod reserves on its node: its containers' requests summed, or
/// the peak of its init phase if larger, plus its overhead.
pub fn pod_requests(pod: &Pod) -> Amounts {
    requests(pod, false)
}

/// The same with upstream's defaults for missing CPU and memory requests;
/// only for scoring.
pub fn pod_non_zero_requests(pod: &Pod) -> Amounts {
    requests(pod, true)
}

/// What a node offers: `status.allocatable`, or its capacity when a node
/// reports no allocatable amounts; and how many pods it takes.
pub fn node_allocatable(node: &Node) -> (Amounts, i64) {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    match list {
        Some(list) => (
            Amounts::from_list(list),
            list.get("pods").map(quantity::value).unwrap_or(0),
        ),
        None => (Amounts::default(), 0),
    }
}

/// A host port a container binds: (host IP, protocol, port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

const ALL_ADDRESSES: &str = "0.0.0.0";

impl HostPort {
    /// Two bindings collide on the same protocol and port when either is on
    /// every address or both are on the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == ALL_ADDRESSES || other.ip == ALL_ADDRESSES || self.ip == other.ip)
    }
}

/// The host ports a pod's containers and sidecars bind.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|port| *port > 0)?;
            Some(HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| ALL_ADDRESSES.into()),
                protocol: p
                    .protocol
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "TCP".into()),
                port,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, NodeStatus, PodSpec, ResourceRequirements};

    pub(crate) fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    }

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: (!requests.is_empty()).then(|| list(requests)),
                limits: (!limits.is_empty()).then(|| list(limits)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_add_up_and_limits_stand_in_for_requests() {
        let p = pod(
            vec![
                container(&[("cpu", "100m"), ("memory", "64Mi")], &[]),
                container(&[], &[("cpu", "1"), ("ephemeral-storage", "1Gi")]),
                container(&[("example.com/gpu", "1")], &[("example.com/gpu", "1")]),
            ],
            vec![],
        );
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.ephemeral_storage, 1 << 30);
        assert_eq!(r.scalar("example.com/gpu"), 1);
    }

    #[test]
    fn init_containers_count_as_their_peak() {
        let p = pod(
            vec![container(&[("cpu", "200m"), ("memory", "1Gi")], &[])],
            vec![
                container(&[("cpu", "1")], &[]),
                container(&[("cpu", "500m"), ("memory", "128Mi")], &[]),
            ],
        );
        let r = pod_requests(&p);
        assert_eq!((r.milli_cpu, r.memory), (1000, 1 << 30));
    }

    #[test]
    fn sidecars_run_beside_everything_after_them() {
        let mut side = container(&[("cpu", "300m")], &[]);
        side.restart_policy = Some("Always".into());
        let p = pod(
            vec![container(&[("cpu", "100m")], &[])],
            vec![side, container(&[("cpu", "600m")], &[])],
        );
        // Regular phase: 100 + 300; init peak: 600 + 300.
        assert_eq!(pod_requests(&p).milli_cpu, 900);
    }

    #[test]
    fn overhead_is_added() {
        let mut p = pod(vec![container(&[("cpu", "100m")], &[])], vec![]);
        p.spec.as_mut().unwrap().overhead = Some(list(&[("cpu", "50m"), ("memory", "10Mi")]));
        let r = pod_requests(&p);
        assert_eq!((r.milli_cpu, r.memory), (150, 10 << 20));
    }

    #[test]
    fn non_zero_requests_fill_in_defaults_per_container() {
        let p = pod(
            vec![
                container(&[], &[]),
                container(&[("cpu", "0"), ("memory", "1Gi")], &[]),
            ],
            vec![],
        );
        let r = pod_non_zero_requests(&p);
        assert_eq!(
            r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST,
            "an explicit 0 stays 0"
        );
        assert_eq!(r.memory, DEFAULT_MEMORY_REQUEST + (1 << 30));
        assert!(pod_requests(&p).milli_cpu == 0 && pod_requests(&p).memory == 1 << 30);
    }

    #[test]
    fn allocatable_falls_back_to_capacity() {
        let mut node = Node {
            status: Some(NodeStatus {
                capacity: Some(list(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (a, pods) = node_allocatable(&node);
        assert_eq!((a.milli_cpu, a.memory, pods), (4000, 8 << 30, 110));
        node.status.as_mut().unwrap().allocatable = Some(list(&[("cpu", "3500m"), ("pods", "10")]));
        let (a, pods) = node_allocatable(&node);
        assert_eq!((a.milli_cpu, a.memory, pods), (3500, 0, 10));
        assert_eq!(node_allocatable(&Node::default()), (Amounts::default(), 0));
    }

    #[test]
    fn host_ports_default_and_conflict() {
        let mut c = container(&[], &[]);
        c.ports = Some(vec![
            ContainerPort {
                container_port: 80,
                host_port: Some(8080),
                ..Default::default()
            },
            ContainerPort {
                container_port: 53,
                host_port: Some(53),
                protocol: Some("UDP".into()),
                host_ip: Some("10.0.0.1".into()),
                ..Default::default()
            },
            ContainerPort {
                container_port: 9090,
                ..Default::default()
            },
        ]);
        let ports = host_ports(&pod(vec![c], vec![]));
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].ip, "0.0.0.0");
        assert_eq!(ports[0].protocol, "TCP");
        let hp = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        assert!(ports[0].conflicts(&hp("10.0.0.2", "TCP", 8080)));
        assert!(!ports[0].conflicts(&hp("0.0.0.0", "UDP", 8080)));
        assert!(!ports[0].conflicts(&hp("0.0.0.0", "TCP", 8081)));
        assert!(ports[1].conflicts(&hp("10.0.0.1", "UDP", 53)));
        assert!(!ports[1].conflicts(&hp("10.0.0.2", "UDP", 53)));
        assert!(ports[1].conflicts(&hp("0.0.0.0", "UDP", 53)));
    }
}
