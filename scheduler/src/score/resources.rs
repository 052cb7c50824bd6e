//! Scores from requested resources, CPU and memory weighted equally as in
//! upstream's default profile; a resource the node offers none of is left
//! out.
//!
//! - Least allocated (NodeResourcesFit's default strategy): the share of
//!   each resource left free once the pod is placed, averaged. Requests
//!   missing from a container count as 100m CPU and 200 MiB, as upstream
//!   scores them, so pods without requests spread too.
//! - Balanced allocation (NodeResourcesBalancedAllocation): `(1 - the
//!   standard deviation of the requested shares) * 100`, with the real
//!   requests (no stand-ins), each share capped at 1. A pod that requests
//!   neither CPU nor memory is not scored by it (upstream v1.33 skips
//!   best-effort pods so they do not pile onto one node).

use crate::node_info::{NodeInfo, PodInfo};
use crate::score::MAX_SCORE;

/// (requested after placing, allocatable) for CPU and memory.
fn cpu_and_memory(node_requested: (i64, i64), pod: (i64, i64), node: &NodeInfo) -> [(i64, i64); 2] {
    [
        (
            node_requested.0.saturating_add(pod.0),
            node.allocatable.milli_cpu,
        ),
        (
            node_requested.1.saturating_add(pod.1),
            node.allocatable.memory,
        ),
    ]
}

/// Least-allocated score of placing `wanted` on `node`.
pub fn least_allocated(wanted: &PodInfo, node: &NodeInfo) -> i64 {
    let resources = cpu_and_memory(
        (
            node.non_zero_requested.milli_cpu,
            node.non_zero_requested.memory,
        ),
        (
            wanted.non_zero_requests.milli_cpu,
            wanted.non_zero_requests.memory,
        ),
        node,
    );
    let (mut sum, mut counted) = (0, 0);
    for (requested, allocatable) in resources {
        if allocatable == 0 {
            continue;
        }
        counted += 1;
        if requested <= allocatable {
            sum += (allocatable - requested) * MAX_SCORE / allocatable;
        }
    }
    if counted == 0 {
        0
    } else {
        sum / counted
    }
}

/// Whether balanced allocation scores `wanted` at all.
pub fn balanced_applies(wanted: &PodInfo) -> bool {
    wanted.requests.milli_cpu != 0 || wanted.requests.memory != 0
}

/// Balanced-allocation score of placing `wanted` on `node`.
pub fn balanced_allocation(wanted: &PodInfo, node: &NodeInfo) -> i64 {
    let resources = cpu_and_memory(
        (node.requested.milli_cpu, node.requested.memory),
        (wanted.requests.milli_cpu, wanted.requests.memory),
        node,
    );
    let share = |(requested, allocatable): (i64, i64)| {
        (allocatable != 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
    };
    // With two resources the standard deviation is half their distance;
    // with one it is 0.
    let deviation = match resources.map(share) {
        [Some(a), Some(b)] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - deviation) * MAX_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Arc;

    fn info(alloc: &[(&str, &str)], pods: Vec<Pod>) -> NodeInfo {
        NodeInfo::with_pods(Arc::new(node("n", alloc)), pods.into_iter().map(Arc::new))
    }

    #[test]
    fn least_allocated_prefers_free_nodes() {
        let empty = info(&[("cpu", "4"), ("memory", "4Gi")], vec![]);
        let busy = info(
            &[("cpu", "4"), ("memory", "4Gi")],
            vec![pod_requesting("x", &[("cpu", "2"), ("memory", "2Gi")])],
        );
        let p = pod_requesting("p", &[("cpu", "1"), ("memory", "1Gi")]);
        let wanted = PodInfo::new(&p);
        // cpu (4000-1000)/4000 = 75, memory 75.
        assert_eq!(least_allocated(&wanted, &empty), 75);
        // cpu (4000-3000)/4000 = 25, memory 25.
        assert_eq!(least_allocated(&wanted, &busy), 25);
        // Mixed: cpu 75, memory 25 → 50.
        let half = info(
            &[("cpu", "4"), ("memory", "4Gi")],
            vec![pod_requesting("x", &[("cpu", "0"), ("memory", "2Gi")])],
        );
        assert_eq!(least_allocated(&wanted, &half), 50);
        // Over-committed scores 0; memory the node does not offer is left
        // out rather than scored 0.
        let tiny = info(&[("cpu", "500m")], vec![]);
        assert_eq!(least_allocated(&wanted, &tiny), 0);
        let cpu_only = info(&[("cpu", "2")], vec![]);
        assert_eq!(least_allocated(&wanted, &cpu_only), 50);
    }

    #[test]
    fn least_allocated_counts_default_requests() {
        let n = info(&[("cpu", "1"), ("memory", "1000Mi")], vec![]);
        let p = pod_requesting("p", &[]);
        // 100m of 1000m → 90 free; 200Mi of 1000Mi → 80 free.
        assert_eq!(least_allocated(&PodInfo::new(&p), &n), 85);
    }

    #[test]
    fn balanced_allocation_prefers_even_shares() {
        let alloc = [("cpu", "4"), ("memory", "4Gi")];
        let p = pod_requesting("p", &[("cpu", "1"), ("memory", "1Gi")]);
        let wanted = PodInfo::new(&p);
        // 1/4 and 1/4: no deviation.
        assert_eq!(balanced_allocation(&wanted, &info(&alloc, vec![])), 100);
        // cpu 3/4, memory 1/4: deviation 0.25.
        let cpu_heavy = info(&alloc, vec![pod_requesting("x", &[("cpu", "2")])]);
        assert_eq!(balanced_allocation(&wanted, &cpu_heavy), 75);
        // cpu capped at 1, memory 1/4: deviation 0.375 → 62.
        let over = info(&alloc, vec![pod_requesting("x", &[("cpu", "8")])]);
        assert_eq!(balanced_allocation(&wanted, &over), 62);
        // One resource offered: no deviation.
        assert_eq!(
            balanced_allocation(&wanted, &info(&[("cpu", "4")], vec![])),
            100
        );
        assert!(balanced_applies(&wanted));
        let best_effort = pod_requesting("b", &[]);
        assert!(!balanced_applies(&PodInfo::new(&best_effort)));
    }
}
