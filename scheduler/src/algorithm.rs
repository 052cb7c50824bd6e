//! One scheduling decision, without IO: pre-filter, filter every node,
//! score the feasible ones, pick one; or explain why none fits.

use k8s_openapi::api::core::v1::Pod;

use crate::filter::{self, PreFilter, Unfit};
use crate::fit_error::{self, Failure, FitError};
use crate::node_info::{NodeInfo, PodInfo};
use crate::score;

/// The node `pod` should go to, given the cluster as `nodes` (each with
/// the pods already on it). `turn` is the caller's tie-break counter.
pub fn schedule(pod: &Pod, nodes: &[NodeInfo], turn: &mut usize) -> Result<String, Failure> {
    if nodes.is_empty() {
        return Err(Failure::NoNodes);
    }
    let mut ordered: Vec<&NodeInfo> = nodes.iter().collect();
    ordered.sort_by(|a, b| a.name().cmp(b.name()));
    let wanted = PodInfo::new(pod);

    let mut statuses: Vec<(String, Unfit)> = Vec::new();
    let mut prefilter_message = None;
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    match filter::prefilter(pod) {
        PreFilter::Reject(unfit) => {
            prefilter_message = unfit.reasons.first().cloned();
            statuses = ordered
                .iter()
                .map(|n| (n.name().to_string(), unfit.clone()))
                .collect();
        }
        pre => {
            for info in &ordered {
                let named = match &pre {
                    PreFilter::Nodes(names) => names.contains(info.name()),
                    _ => true,
                };
                let verdict = if named {
                    filter::run_filters(&wanted, info)
                } else {
                    Err(Unfit::unresolvable(filter::REASON_NOT_NAMED))
                };
                match verdict {
                    Ok(()) => feasible.push(info),
                    Err(unfit) => statuses.push((info.name().to_string(), unfit)),
                }
            }
        }
    }

    if feasible.is_empty() {
        let postfilter = fit_error::preemption_message(&wanted, nodes, &statuses);
        return Err(Failure::Fit(FitError {
            num_nodes: nodes.len(),
            prefilter: prefilter_message,
            statuses,
            postfilter: Some(postfilter),
        }));
    }
    let scores = score::total(&wanted, &feasible);
    let chosen = score::select(&scores, turn).expect("feasible is not empty");
    Ok(feasible[chosen].name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting, with_affinity};
    use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use std::sync::Arc;

    fn cluster(specs: &[(&str, &str)]) -> Vec<NodeInfo> {
        specs
            .iter()
            .map(|(name, cpu)| {
                NodeInfo::new(Arc::new(node(
                    name,
                    &[("cpu", cpu), ("memory", "8Gi"), ("pods", "110")],
                )))
            })
            .collect()
    }

    fn replica(i: usize) -> Pod {
        let mut p = pod_requesting(&format!("web-{i}"), &[("cpu", "100m")]);
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "rc-web".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        p
    }

    /// Schedules `pods` one after another, each placed pod counted on its
    /// node for the next decision.
    fn place_all(nodes: &mut [NodeInfo], pods: Vec<Pod>, turn: &mut usize) -> Vec<String> {
        pods.into_iter()
            .map(|mut p| {
                let name = schedule(&p, nodes, turn).unwrap();
                p.spec.as_mut().unwrap().node_name = Some(name.clone());
                nodes
                    .iter_mut()
                    .find(|n| n.name() == name)
                    .unwrap()
                    .add_pod(Arc::new(p));
                name
            })
            .collect()
    }

    #[test]
    fn replicas_spread_evenly_over_equal_nodes() {
        let mut nodes = cluster(&[("node-b", "4"), ("node-a", "4")]);
        let mut turn = 0;
        let placed = place_all(&mut nodes, (0..4).map(replica).collect(), &mut turn);
        let on_a = placed.iter().filter(|n| *n == "node-a").count();
        assert_eq!(on_a, 2, "{placed:?}");
    }

    #[test]
    fn equal_nodes_take_turns_for_unrelated_pods() {
        let nodes = cluster(&[("node-a", "4"), ("node-b", "4")]);
        let mut turn = 0;
        let p = pod_requesting("p", &[]);
        let first = schedule(&p, &nodes, &mut turn).unwrap();
        let second = schedule(&p, &nodes, &mut turn).unwrap();
        assert_ne!(first, second);
        // Deterministic: the same counter gives the same answer.
        assert_eq!(schedule(&p, &nodes, &mut 0).unwrap(), "node-a");
    }

    #[test]
    fn only_fitting_nodes_are_chosen() {
        let nodes = cluster(&[("small", "1"), ("big", "8")]);
        let p = pod_requesting("p", &[("cpu", "2")]);
        for mut turn in 0..4 {
            assert_eq!(schedule(&p, &nodes, &mut turn).unwrap(), "big");
        }
    }

    #[test]
    fn the_last_free_slot_is_taken_once() {
        let mut nodes = cluster(&[("only", "1")]);
        let mut turn = 0;
        let a = pod_requesting("a", &[("cpu", "600m")]);
        let b = pod_requesting("b", &[("cpu", "600m")]);
        place_all(&mut nodes, vec![a], &mut turn);
        let err = schedule(&b, &nodes, &mut turn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
             1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn too_big_everywhere_message() {
        let nodes = cluster(&[("node-a", "1"), ("node-b", "2")]);
        let p = pod_requesting("p", &[("cpu", "16")]);
        assert_eq!(
            schedule(&p, &nodes, &mut 0).unwrap_err().to_string(),
            "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
             2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn no_nodes() {
        let p = pod_requesting("p", &[]);
        assert_eq!(schedule(&p, &[], &mut 0), Err(Failure::NoNodes));
    }

    fn named(names: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(names.iter().map(|n| n.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_pinned_by_name_reports_the_others_as_not_named() {
        let nodes = cluster(&[("node-a", "1"), ("node-b", "8"), ("node-c", "8")]);
        let p = with_affinity(
            pod_requesting("ds", &[("cpu", "2")]),
            vec![named(&["node-a"])],
        );
        assert_eq!(
            schedule(&p, &nodes, &mut 0).unwrap_err().to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) \
             [NodeAffinity]. preemption: 0/3 nodes are available: 1 No preemption victims found \
             for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        let p = with_affinity(pod_requesting("ds", &[]), vec![named(&["node-c"])]);
        assert_eq!(schedule(&p, &nodes, &mut 0).unwrap(), "node-c");
    }

    #[test]
    fn conflicting_name_terms_reject_before_filtering() {
        let nodes = cluster(&[("node-a", "1"), ("node-b", "8")]);
        let mut term = named(&["node-a"]);
        term.match_fields
            .as_mut()
            .unwrap()
            .push(NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec!["node-b".into()]),
            });
        let p = with_affinity(pod_requesting("p", &[]), vec![term]);
        assert_eq!(
            schedule(&p, &nodes, &mut 0).unwrap_err().to_string(),
            "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are \
             available: 2 Preemption is not helpful for scheduling."
        );
    }
}
