//! Container cgroup settings from requests and limits, and the node-fit
//! check the kubelet runs before admitting a pod.
//!
//! CPU requests become relative weights (shares), CPU limits a CFS quota,
//! memory limits a hard limit; the OOM score comes from the QoS class.

use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::types::Resources;

use super::qos::{self, container_amounts};

/// The CFS period the kubelet uses: 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's smallest accepted quota is 1 ms.
pub const MIN_CPU_QUOTA_US: i64 = 1_000;
/// The kernel's bounds on cgroup v1 `cpu.shares`.
pub const MIN_CPU_SHARES: u64 = 2;
pub const MAX_CPU_SHARES: u64 = 262_144;

const NODE_CRITICAL_PRIORITY_CLASS: &str = "system-node-critical";

/// One core is 1024 shares; no request at all still gets the minimum so
/// BestEffort containers run when nothing else wants the CPU.
pub fn milli_cpu_to_shares(milli: i64) -> u64 {
    if milli <= 0 {
        return MIN_CPU_SHARES;
    }
    let shares = (milli as u64).saturating_mul(1024) / 1000;
    shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES)
}

/// The quota for a CPU limit over `period_us`; 0 (unlimited) without a
/// limit. Tiny limits are raised to the kernel's minimum rather than
/// refused.
pub fn milli_cpu_to_quota(milli: i64, period_us: u64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    let quota = i128::from(milli) * i128::from(period_us) / 1000;
    (quota.min(i128::from(i64::MAX)) as i64).max(MIN_CPU_QUOTA_US)
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn is_node_critical(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.priority_class_name.as_deref())
        == Some(NODE_CRITICAL_PRIORITY_CLASS)
}

fn memory_request(c: &Container) -> i64 {
    container_amounts(c).0.get("memory").copied().unwrap_or(0)
}

/// The OOM score for one of the pod's containers. Node-critical pods are
/// treated as Guaranteed whatever their resources. A sidecar must not be
/// killed before the containers it serves, so it scores no higher than the
/// regular container with the smallest memory request would.
pub fn container_oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i32 {
    if is_node_critical(pod) {
        return qos::GUARANTEED_OOM_SCORE_ADJ;
    }
    let class = qos::qos_class(pod);
    let mut score = qos::oom_score_adj(class, memory_request(container), memory_capacity);
    if class == qos::BURSTABLE && is_sidecar(container) {
        let spec = pod.spec.as_ref();
        let min_regular = spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(memory_request)
            .min();
        if let Some(min) = min_regular {
            score = score.min(qos::oom_score_adj(class, min, memory_capacity));
        }
    }
    score
}

/// The runtime's cgroup settings for `container` of `pod`, on a node with
/// `memory_capacity` bytes of memory.
pub fn container_resources(pod: &Pod, container: &Container, memory_capacity: i64) -> Resources {
    // Requests here already fall back to limits (API server defaulting).
    let (requests, limits) = container_amounts(container);
    let cpu_request = requests.get("cpu").copied().unwrap_or(0);
    let cpu_limit = limits.get("cpu").copied().unwrap_or(0);
    Resources {
        cpu_period: CPU_PERIOD_US,
        cpu_quota: milli_cpu_to_quota(cpu_limit, CPU_PERIOD_US),
        cpu_shares: milli_cpu_to_shares(cpu_request),
        memory_limit_bytes: limits.get("memory").copied().unwrap_or(0),
        oom_score_adj: container_oom_score_adj(pod, container, memory_capacity),
        pids_limit: 0,
    }
}

/// CPU and memory amounts: what a node offers or what pods ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceAmounts {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

impl ResourceAmounts {
    fn get(&self, name: &str) -> i64 {
        if name == "cpu" {
            self.cpu_milli
        } else {
            self.memory_bytes
        }
    }

    fn add(&mut self, other: &ResourceAmounts) {
        self.cpu_milli += other.cpu_milli;
        self.memory_bytes += other.memory_bytes;
    }

    fn max(&self, other: &ResourceAmounts) -> ResourceAmounts {
        ResourceAmounts {
            cpu_milli: self.cpu_milli.max(other.cpu_milli),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
        }
    }
}

fn requests_of(c: &Container) -> ResourceAmounts {
    let (requests, _) = container_amounts(c);
    ResourceAmounts {
        cpu_milli: requests.get("cpu").copied().unwrap_or(0),
        memory_bytes: requests.get("memory").copied().unwrap_or(0),
    }
}

/// What the pod reserves on a node: the larger of its regular containers'
/// sum and the peak of its init phase, plus its overhead. Sidecars run
/// beside everything started after them, so each one adds to the regular
/// sum and to every later init container's peak.
pub fn pod_requests(pod: &Pod) -> ResourceAmounts {
    let Some(spec) = pod.spec.as_ref() else {
        return ResourceAmounts::default();
    };
    let mut regular = ResourceAmounts::default();
    for c in &spec.containers {
        regular.add(&requests_of(c));
    }
    let mut sidecars = ResourceAmounts::default();
    let mut init_peak = ResourceAmounts::default();
    for c in spec.init_containers.iter().flatten() {
        let own = requests_of(c);
        let during = if is_sidecar(c) {
            regular.add(&own);
            sidecars.add(&own);
            sidecars
        } else {
            let mut during = own;
            during.add(&sidecars);
            during
        };
        init_peak = init_peak.max(&during);
    }
    let mut total = regular.max(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        for (name, q) in overhead {
            match (name.as_str(), qos::amount(name, q)) {
                ("cpu", Some(v)) => total.cpu_milli += v,
                ("memory", Some(v)) => total.memory_bytes += v,
                _ => {}
            }
        }
    }
    total
}

/// Why a pod does not fit: `reason` goes to `status.reason` of the
/// rejected pod (`OutOfcpu`, `OutOfmemory`), `message` to `status.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub reason: String,
    pub message: String,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Unfit {}

/// Whether `pod` fits next to pods already requesting `used` on a node
/// with `allocatable`. A resource the pod does not request is not checked,
/// so BestEffort pods are always admitted; the first shortfall (CPU before
/// memory) is reported.
pub fn pod_fits(
    pod: &Pod,
    allocatable: ResourceAmounts,
    used: ResourceAmounts,
) -> Result<(), Unfit> {
    let wanted = pod_requests(pod);
    for name in ["cpu", "memory"] {
        let (want, have, capacity) = (wanted.get(name), used.get(name), allocatable.get(name));
        if want > 0 && want > capacity - have {
            return Err(Unfit {
                reason: format!("OutOf{name}"),
                message: format!(
                    "Node didn't have enough resource: {name}, requested: {want}, used: {have}, \
                     capacity: {capacity}"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    const GI: i64 = 1 << 30;

    fn list(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        (!pairs.is_empty()).then(|| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect()
        })
    }

    fn container(name: &str, req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: list(req),
                limits: list(lim),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: (!init.is_empty()).then_some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn shares_and_quota_math() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(500_000), MAX_CPU_SHARES);
        assert_eq!(milli_cpu_to_quota(0, CPU_PERIOD_US), 0);
        assert_eq!(milli_cpu_to_quota(1, CPU_PERIOD_US), 1000);
        assert_eq!(milli_cpu_to_quota(250, CPU_PERIOD_US), 25_000);
        assert_eq!(milli_cpu_to_quota(2000, CPU_PERIOD_US), 200_000);
    }

    #[test]
    fn burstable_container() {
        let c = container(
            "a",
            &[("cpu", "250m"), ("memory", "1Gi")],
            &[("cpu", "500m"), ("memory", "2Gi")],
        );
        let p = pod(vec![c.clone()], vec![]);
        let r = container_resources(&p, &c, 4 * GI);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_bytes, 2 * GI);
        assert_eq!(r.oom_score_adj, 750);
    }

    #[test]
    fn guaranteed_and_best_effort_containers() {
        let g = container("g", &[], &[("cpu", "1"), ("memory", "1Gi")]);
        let r = container_resources(&pod(vec![g.clone()], vec![]), &g, 4 * GI);
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.memory_limit_bytes),
            (1024, 100_000, GI)
        );
        assert_eq!(r.oom_score_adj, -997);
        let b = container("b", &[], &[]);
        let r = container_resources(&pod(vec![b.clone()], vec![]), &b, 4 * GI);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_bytes), (2, 0, 0));
        assert_eq!(r.oom_score_adj, 1000);
    }

    #[test]
    fn node_critical_and_sidecar_scores() {
        let b = container("b", &[], &[]);
        let mut p = pod(vec![b.clone()], vec![]);
        p.spec.as_mut().unwrap().priority_class_name = Some("system-node-critical".into());
        assert_eq!(container_oom_score_adj(&p, &b, 4 * GI), -997);

        let main = container("main", &[("memory", "2Gi")], &[]);
        let mut side = container("side", &[("memory", "1Gi")], &[]);
        side.restart_policy = Some("Always".into());
        let p = pod(vec![main.clone()], vec![side.clone()]);
        assert_eq!(container_oom_score_adj(&p, &main, 4 * GI), 500);
        assert_eq!(
            container_oom_score_adj(&p, &side, 4 * GI),
            500,
            "capped at main's score"
        );
    }

    #[test]
    fn pod_request_sums() {
        let p = pod(
            vec![
                container("a", &[("cpu", "100m")], &[]),
                container("b", &[("cpu", "200m"), ("memory", "1Gi")], &[]),
            ],
            vec![container("i", &[("cpu", "1")], &[])],
        );
        assert_eq!(
            pod_requests(&p),
            ResourceAmounts {
                cpu_milli: 1000,
                memory_bytes: GI
            }
        );

        // The sidecar counts towards the regular sum and towards the later
        // init container's peak.
        let mut side = container("side", &[("cpu", "500m")], &[]);
        side.restart_policy = Some("Always".into());
        let p = pod(
            vec![container("a", &[("cpu", "100m")], &[])],
            vec![side, container("after", &[("cpu", "700m")], &[])],
        );
        assert_eq!(pod_requests(&p).cpu_milli, 1200);

        let mut p = pod(vec![container("a", &[("cpu", "100m")], &[])], vec![]);
        p.spec.as_mut().unwrap().overhead = list(&[("cpu", "50m"), ("memory", "10Mi")]);
        assert_eq!(
            pod_requests(&p),
            ResourceAmounts {
                cpu_milli: 150,
                memory_bytes: 10 << 20
            }
        );
    }

    #[test]
    fn fit_reasons() {
        let node = ResourceAmounts {
            cpu_milli: 2000,
            memory_bytes: 4 * GI,
        };
        let used = ResourceAmounts {
            cpu_milli: 1800,
            memory_bytes: GI,
        };
        let p = pod(vec![container("a", &[("cpu", "500m")], &[])], vec![]);
        let err = pod_fits(&p, node, used).unwrap_err();
        assert_eq!(err.reason, "OutOfcpu");
        assert_eq!(
            err.message,
            "Node didn't have enough resource: cpu, requested: 500, used: 1800, capacity: 2000"
        );
        let p = pod(vec![container("a", &[("memory", "4Gi")], &[])], vec![]);
        assert_eq!(pod_fits(&p, node, used).unwrap_err().reason, "OutOfmemory");
        let p = pod(
            vec![container("a", &[("cpu", "200m"), ("memory", "3Gi")], &[])],
            vec![],
        );
        assert_eq!(pod_fits(&p, node, used), Ok(()));
        let full = ResourceAmounts {
            cpu_milli: 2000,
            memory_bytes: 4 * GI,
        };
        assert_eq!(
            pod_fits(&pod(vec![container("a", &[], &[])], vec![]), node, full),
            Ok(())
        );
    }
}
