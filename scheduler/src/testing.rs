//! Builders shared by the unit tests: labelled nodes, pods with labels,
//! affinity and spread constraints, and a cluster to place them in.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Node, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity, TopologySpreadConstraint,
    WeightedPodAffinityTerm,
};

use crate::algorithm::schedule;
use crate::cache::Cluster;
use crate::filter::tests::{node, pod_requesting};
use crate::fit_error::Failure;
use crate::node_info::NodeInfo;
use crate::selector::tests::labels;

/// A Ready node with `cpu` cores, 8 GiB, 110 pods, its hostname label and
/// `extra` labels.
pub fn labelled_node(name: &str, cpu: &str, extra: &[(&str, &str)]) -> Node {
    let mut n = node(name, &[("cpu", cpu), ("memory", "8Gi"), ("pods", "110")]);
    let mut l = labels(extra);
    l.insert("kubernetes.io/hostname".into(), name.into());
    n.metadata.labels = Some(l);
    n
}

pub fn cluster(nodes: Vec<Node>) -> Cluster {
    Cluster::from_nodes(
        nodes
            .into_iter()
            .map(|n| NodeInfo::new(Arc::new(n)))
            .collect(),
    )
}

/// A pod in `default` requesting `cpu`, labelled `pairs`.
pub fn pod(name: &str, cpu: &str, pairs: &[(&str, &str)]) -> Pod {
    let mut p = pod_requesting(name, &[("cpu", cpu), ("memory", "64Mi")]);
    p.metadata.labels = Some(labels(pairs));
    p
}

/// Counts `p` on `node`, as the watch would show it bound.
pub fn bind(cluster: &mut Cluster, mut p: Pod, node: &str) {
    p.spec.as_mut().unwrap().node_name = Some(node.into());
    cluster.set_pod(Arc::new(p));
}

/// Schedules `p` and, if it fits, counts it where it went.
pub fn place(cluster: &mut Cluster, p: Pod, turn: &mut usize) -> Result<String, Failure> {
    let node = schedule(&p, cluster, turn)?;
    bind(cluster, p, &node);
    Ok(node)
}

/// The message of a failed decision.
pub fn why(cluster: &Cluster, p: &Pod) -> String {
    schedule(p, cluster, &mut 0).unwrap_err().to_string()
}

fn affinity(p: &mut Pod) -> &mut Affinity {
    p.spec
        .as_mut()
        .unwrap()
        .affinity
        .get_or_insert_with(Default::default)
}

pub fn require_affinity(mut p: Pod, term: PodAffinityTerm) -> Pod {
    affinity(&mut p)
        .pod_affinity
        .get_or_insert_with(PodAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(term);
    p
}

pub fn require_anti_affinity(mut p: Pod, term: PodAffinityTerm) -> Pod {
    affinity(&mut p)
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(term);
    p
}

pub fn prefer_affinity(mut p: Pod, weight: i32, term: PodAffinityTerm) -> Pod {
    affinity(&mut p)
        .pod_affinity
        .get_or_insert_with(PodAffinity::default)
        .preferred_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(WeightedPodAffinityTerm {
            weight,
            pod_affinity_term: term,
        });
    p
}

pub fn prefer_anti_affinity(mut p: Pod, weight: i32, term: PodAffinityTerm) -> Pod {
    affinity(&mut p)
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default)
        .preferred_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(WeightedPodAffinityTerm {
            weight,
            pod_affinity_term: term,
        });
    p
}

pub fn with_spread(mut p: Pod, c: TopologySpreadConstraint) -> Pod {
    p.spec
        .as_mut()
        .unwrap()
        .topology_spread_constraints
        .get_or_insert_with(Vec::new)
        .push(c);
    p
}
