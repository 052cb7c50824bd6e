//! Scores for the nodes that passed the filters, each 0..=100, and the
//! choice among the best.
//!
//! - Least allocated (upstream's NodeResourcesFit default, weight 1): the
//!   share of CPU and memory left free once the pod is placed, averaged.
//!   Requests missing from a container count as 100m CPU and 200 MiB, as
//!   upstream scores them, so pods without requests spread too.
//! - Spreading (the role upstream's default topology spreading plays,
//!   weight 2): fewer pods of the same owner on a node score higher. Pods
//!   share an owner when they have the same controller ownerReference, or,
//!   for pods without a controller, the same non-empty labels, in the same
//!   namespace.
//!
//! Ties go to the best nodes in name order, taken round-robin with a
//! counter the caller keeps, so equal nodes take turns.

use k8s_openapi::api::core::v1::Pod;

use crate::node_info::{NodeInfo, PodInfo};

pub const MAX_SCORE: i64 = 100;
pub const LEAST_ALLOCATED_WEIGHT: i64 = 1;
pub const SPREAD_WEIGHT: i64 = 2;

/// Free share of one resource after the pod is placed, 0..=100.
fn free_share(requested: i64, allocatable: i64) -> i64 {
    if allocatable <= 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_SCORE / allocatable
}

/// Least-allocated score of placing `wanted` on `node`.
pub fn least_allocated(wanted: &PodInfo, node: &NodeInfo) -> i64 {
    let placed = |on_node: i64, pod: i64| on_node.saturating_add(pod);
    let cpu = free_share(
        placed(
            node.non_zero_requested.milli_cpu,
            wanted.non_zero_requests.milli_cpu,
        ),
        node.allocatable.milli_cpu,
    );
    let memory = free_share(
        placed(
            node.non_zero_requested.memory,
            wanted.non_zero_requests.memory,
        ),
        node.allocatable.memory,
    );
    (cpu + memory) / 2
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// Whether `other` counts as a sibling of `pod` for spreading. Terminating
/// pods are on their way out and do not count.
pub fn same_owner(pod: &Pod, other: &Pod) -> bool {
    if other.metadata.deletion_timestamp.is_some()
        || pod.metadata.namespace != other.metadata.namespace
        || (pod.metadata.uid.is_some() && pod.metadata.uid == other.metadata.uid)
    {
        return false;
    }
    match controller_uid(pod) {
        Some(uid) => controller_uid(other) == Some(uid),
        None => {
            let labels = pod.metadata.labels.as_ref().filter(|l| !l.is_empty());
            controller_uid(other).is_none()
                && labels.is_some()
                && labels == other.metadata.labels.as_ref()
        }
    }
}

/// Spreading scores for `pod` on `nodes`: 100 for the nodes with the
/// fewest siblings down to 0 for those with the most.
pub fn spread(pod: &Pod, nodes: &[&NodeInfo]) -> Vec<i64> {
    let counts: Vec<i64> = nodes
        .iter()
        .map(|n| n.pods.iter().filter(|p| same_owner(pod, p)).count() as i64)
        .collect();
    let most = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| {
            if most == 0 {
                MAX_SCORE
            } else {
                (most - c) * MAX_SCORE / most
            }
        })
        .collect()
}

/// Weighted total per node, in `nodes` order.
pub fn total(wanted: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    spread(wanted.pod, nodes)
        .into_iter()
        .zip(nodes)
        .map(|(s, n)| SPREAD_WEIGHT * s + LEAST_ALLOCATED_WEIGHT * least_allocated(wanted, n))
        .collect()
}

/// Index of the chosen node: among those with the highest score (in the
/// order given), the `turn`-th modulo their number; `turn` advances when
/// there was a choice to make.
pub fn select(scores: &[i64], turn: &mut usize) -> Option<usize> {
    let best = *scores.iter().max()?;
    let tied: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] == best).collect();
    let pick = tied[*turn % tied.len()];
    if tied.len() > 1 {
        *turn = turn.wrapping_add(1);
    }
    Some(pick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
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
        // Over-committed or missing allocatable scores 0.
        let tiny = info(&[("cpu", "500m")], vec![]);
        assert_eq!(least_allocated(&wanted, &tiny), 0);
    }

    #[test]
    fn least_allocated_counts_default_requests() {
        let n = info(&[("cpu", "1"), ("memory", "1000Mi")], vec![]);
        let p = pod_requesting("p", &[]);
        // 100m of 1000m → 90 free; 200Mi of 1000Mi → 80 free.
        assert_eq!(least_allocated(&PodInfo::new(&p), &n), 85);
    }

    fn owned(name: &str, owner: &str) -> Pod {
        let mut p = pod_requesting(name, &[]);
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: owner.into(),
            uid: format!("owner-{owner}"),
            controller: Some(true),
            ..Default::default()
        }]);
        p
    }

    fn labelled(name: &str, app: &str) -> Pod {
        let mut p = pod_requesting(name, &[]);
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        p
    }

    #[test]
    fn siblings_share_a_controller_or_labels() {
        let p = owned("p", "web");
        assert!(same_owner(&p, &owned("q", "web")));
        assert!(!same_owner(&p, &owned("q", "db")));
        assert!(!same_owner(&p, &labelled("q", "web")));
        assert!(!same_owner(&p, &p), "not its own sibling");
        let mut other_ns = owned("q", "web");
        other_ns.metadata.namespace = Some("other".into());
        assert!(!same_owner(&p, &other_ns));
        let mut leaving = owned("q", "web");
        leaving.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(!same_owner(&p, &leaving));

        let l = labelled("l", "web");
        assert!(same_owner(&l, &labelled("m", "web")));
        assert!(!same_owner(&l, &labelled("m", "db")));
        assert!(
            !same_owner(&pod_requesting("a", &[]), &pod_requesting("b", &[])),
            "no labels, no siblings"
        );
    }

    #[test]
    fn spreading_favours_nodes_with_fewer_siblings() {
        let a = info(
            &[],
            vec![owned("1", "web"), owned("2", "web"), owned("x", "db")],
        );
        let b = info(&[], vec![owned("3", "web")]);
        let c = info(&[], vec![]);
        let p = owned("p", "web");
        assert_eq!(spread(&p, &[&a, &b, &c]), [0, 50, 100]);
        assert_eq!(spread(&owned("p", "none"), &[&a, &b, &c]), [100, 100, 100]);
    }

    #[test]
    fn spreading_outweighs_free_resources() {
        // Node a has more room but already runs a sibling.
        let a = info(&[("cpu", "8"), ("memory", "8Gi")], vec![owned("1", "web")]);
        let b = info(&[("cpu", "2"), ("memory", "2Gi")], vec![]);
        let mut p = owned("p", "web");
        p.spec = pod_requesting("p", &[("cpu", "500m"), ("memory", "512Mi")]).spec;
        let scores = total(&PodInfo::new(&p), &[&a, &b]);
        assert!(scores[1] > scores[0], "{scores:?}");
    }

    #[test]
    fn ties_rotate_deterministically() {
        let mut turn = 0;
        let picks: Vec<usize> = (0..4)
            .map(|_| select(&[5, 9, 9, 1], &mut turn).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        let before = turn;
        assert_eq!(select(&[1, 7, 3], &mut turn), Some(1));
        assert_eq!(turn, before, "a clear winner does not use a turn");
        assert_eq!(select(&[], &mut turn), None);
    }
}
