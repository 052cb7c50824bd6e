//! One scheduling decision, without IO: pre-filter, filter every node,
//! score the feasible ones, pick one; or explain why none fits.
//!
//! The filters run in upstream's default order (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
//! PodTopologySpread, InterPodAffinity) and the first rejection decides a
//! node's reasons. What the last two need from the whole cluster is
//! counted once per decision, before any node is looked at.

use k8s_openapi::api::core::v1::Pod;

use crate::cache::Cluster;
use crate::filter::{self, FilterResult, PreFilter, Unfit};
use crate::fit_error::{self, Failure, FitError};
use crate::interpod::filter::InterPodFilter;
use crate::node_info::{NodeInfo, PlacedPod, PodInfo};
use crate::score;
use crate::topology_spread::filter::SpreadFilter;

/// The incoming pod and what the filters counted for it.
pub struct Decision<'a> {
    pub wanted: PodInfo<'a>,
    spread: Option<SpreadFilter>,
    interpod: Option<InterPodFilter>,
}

impl<'a> Decision<'a> {
    pub fn new(pod: &'a Pod, cluster: &Cluster) -> Decision<'a> {
        let wanted = PodInfo::new(pod);
        let nodes = cluster.nodes();
        Decision {
            spread: SpreadFilter::prepare(&wanted, nodes),
            interpod: InterPodFilter::prepare(&wanted, nodes, &cluster.namespaces),
            wanted,
        }
    }

    /// Every filter for one node, the first rejection winning.
    pub fn filter(&self, info: &NodeInfo) -> FilterResult {
        filter::run_filters(&self.wanted, info)?;
        if let Some(spread) = &self.spread {
            spread.filter(&info.node)?;
        }
        if let Some(interpod) = &self.interpod {
            interpod.filter(&info.node)?;
        }
        Ok(())
    }

    /// The filters for `info` as if `victims` (pods on it) were gone.
    pub fn filter_without(&self, info: &NodeInfo, victims: &[&PlacedPod]) -> FilterResult {
        let mut without = info.clone();
        let mut spread = self.spread.clone();
        let mut interpod = self.interpod.clone();
        for victim in victims {
            without.remove_pod(victim.uid());
            if let Some(s) = spread.as_mut() {
                s.remove(victim, &self.wanted, &info.node);
            }
            if let Some(i) = interpod.as_mut() {
                i.remove(victim, &self.wanted, &info.node);
            }
        }
        let after = Decision {
            wanted: self.wanted.clone(),
            spread,
            interpod,
        };
        after.filter(&without)
    }
}

/// Upstream's `minFeasibleNodesToFind`: smaller clusters are searched
/// whole.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
pub const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes are enough to stop filtering, as upstream's
/// default (adaptive) `percentageOfNodesToScore` decides: all of a cluster
/// under 100 nodes, else `50 - nodes / 125` percent (at least 5%), and at
/// least 100 nodes.
pub fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return nodes;
    }
    let percentage = 50usize
        .saturating_sub(nodes / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The node `pod` should go to, given the cluster. `turn` is the caller's
/// tie-break counter. Filtering starts at the first node.
pub fn schedule(pod: &Pod, cluster: &Cluster, turn: &mut usize) -> Result<String, Failure> {
    schedule_from(pod, cluster, turn, &mut 0)
}

/// As `schedule`, filtering from node `*next_node` on (in name order,
/// wrapping around) and stopping once enough feasible nodes are found
/// (`feasible_nodes_to_find`); `*next_node` moves past the nodes looked
/// at, so every node gets its chance across decisions.
pub fn schedule_from(
    pod: &Pod,
    cluster: &Cluster,
    turn: &mut usize,
    next_node: &mut usize,
) -> Result<String, Failure> {
    let nodes = cluster.nodes();
    if nodes.is_empty() {
        return Err(Failure::NoNodes);
    }
    let decision = Decision::new(pod, cluster);

    let mut statuses: Vec<(String, Unfit)> = Vec::new();
    let mut prefilter_message = None;
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let candidates: Vec<&NodeInfo> = match filter::prefilter(pod) {
        PreFilter::Reject(unfit) => {
            prefilter_message = unfit.reasons.first().cloned();
            statuses = nodes
                .iter()
                .map(|n| (n.name().to_string(), unfit.clone()))
                .collect();
            Vec::new()
        }
        PreFilter::Nodes(names) => {
            let (named, others): (Vec<&NodeInfo>, Vec<&NodeInfo>) =
                nodes.iter().partition(|n| names.contains(n.name()));
            let unnamed = Unfit::unresolvable(filter::REASON_NOT_NAMED);
            statuses = others
                .iter()
                .map(|n| (n.name().to_string(), unnamed.clone()))
                .collect();
            named
        }
        PreFilter::AllNodes => nodes.iter().collect(),
    };
    if !candidates.is_empty() {
        let enough = feasible_nodes_to_find(candidates.len());
        let start = *next_node % candidates.len();
        let mut processed = 0;
        for i in 0..candidates.len() {
            let info = candidates[(start + i) % candidates.len()];
            processed += 1;
            match decision.filter(info) {
                Ok(()) => feasible.push(info),
                Err(unfit) => statuses.push((info.name().to_string(), unfit)),
            }
            if feasible.len() == enough {
                break;
            }
        }
        *next_node = (start + processed) % candidates.len();
    }

    if feasible.is_empty() {
        let postfilter = fit_error::preemption_message(&decision, nodes, &statuses);
        return Err(Failure::Fit(FitError {
            num_nodes: nodes.len(),
            prefilter: prefilter_message,
            statuses,
            postfilter: Some(postfilter),
        }));
    }
    let scores = score::total(&decision.wanted, nodes, &cluster.namespaces, &feasible);
    let chosen = score::select(&scores, turn).expect("feasible is not empty");
    Ok(feasible[chosen].name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{pod_requesting, with_affinity};
    use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn cluster(specs: &[(&str, &str)]) -> Cluster {
        crate::testing::cluster(
            specs
                .iter()
                .map(|(name, cpu)| crate::testing::labelled_node(name, cpu, &[]))
                .collect(),
        )
    }

    fn replica(i: usize) -> Pod {
        let mut p = pod_requesting(&format!("web-{i}"), &[("cpu", "100m")]);
        p.metadata.uid = Some(format!("uid-web-{i}"));
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
    fn place_all(cluster: &mut Cluster, pods: Vec<Pod>, turn: &mut usize) -> Vec<String> {
        pods.into_iter()
            .map(|p| crate::testing::place(cluster, p, turn).unwrap())
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
        assert_eq!(
            schedule(&p, &Cluster::default(), &mut 0),
            Err(Failure::NoNodes)
        );
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

    // Scoring: each plugin of the default profile tipping the balance.

    use crate::testing::{bind, labelled_node, pod as labelled_pod, with_spread};

    #[test]
    fn default_spreading_outweighs_free_resources() {
        // Node a has more room but already runs a sibling.
        let mut c = crate::testing::cluster(vec![
            labelled_node("a", "8", &[]),
            labelled_node("b", "2", &[]),
        ]);
        bind(&mut c, replica(0), "a");
        let mut p = replica(1);
        p.spec = pod_requesting("p", &[("cpu", "500m"), ("memory", "512Mi")]).spec;
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "b");
        // Without a controller there is no default spreading: room wins.
        p.metadata.owner_references = None;
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "a");
    }

    #[test]
    fn preferred_node_affinity_outweighs_free_resources() {
        let c = crate::testing::cluster(vec![
            labelled_node("big", "8", &[]),
            labelled_node("ssd", "2", &[("disk", "ssd")]),
        ]);
        let mut p = labelled_pod("p", "500m", &[]);
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "big");
        p.spec.as_mut().unwrap().affinity = Some(k8s_openapi::api::core::v1::Affinity {
            node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    k8s_openapi::api::core::v1::PreferredSchedulingTerm {
                        weight: 1,
                        preference: crate::filter::tests::term(
                            vec![crate::filter::tests::req("disk", "In", &["ssd"])],
                            vec![],
                        ),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "ssd");
    }

    #[test]
    fn untolerated_soft_taints_are_avoided() {
        let mut soft = labelled_node("big", "8", &[]);
        soft.spec.as_mut().unwrap().taints = Some(vec![k8s_openapi::api::core::v1::Taint {
            key: "spot".into(),
            effect: "PreferNoSchedule".into(),
            ..Default::default()
        }]);
        let c = crate::testing::cluster(vec![soft, labelled_node("small", "2", &[])]);
        let p = labelled_pod("p", "500m", &[]);
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "small");
    }

    #[test]
    fn pod_affinity_preferences_attract_and_repel() {
        use crate::interpod::tests::term;
        use crate::testing::{prefer_affinity, prefer_anti_affinity, require_affinity};
        let zone = "zone";
        let mut c = crate::testing::cluster(vec![
            labelled_node("a", "8", &[(zone, "z1")]),
            labelled_node("b", "2", &[(zone, "z2")]),
        ]);
        bind(&mut c, labelled_pod("db", "100m", &[("app", "db")]), "b");
        let p = labelled_pod("web", "500m", &[("app", "web")]);
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "a", "room alone");
        let near = prefer_affinity(p.clone(), 10, term(&[("app", "db")], zone));
        assert_eq!(schedule(&near, &c, &mut 0).unwrap(), "b");
        let away = prefer_anti_affinity(near.clone(), 20, term(&[("app", "db")], zone));
        assert_eq!(schedule(&away, &c, &mut 0).unwrap(), "a");

        // An existing pod's preferences and required affinity count too.
        let mut c2 = crate::testing::cluster(vec![
            labelled_node("a", "8", &[(zone, "z1")]),
            labelled_node("b", "2", &[(zone, "z2")]),
        ]);
        let wants_web = require_affinity(
            labelled_pod("cache", "100m", &[("app", "cache")]),
            term(&[("app", "web")], zone),
        );
        bind(&mut c2, wants_web, "b");
        assert_eq!(schedule(&p, &c2, &mut 0).unwrap(), "b");
        let shuns_web = prefer_anti_affinity(
            labelled_pod("batch", "100m", &[("app", "batch")]),
            50,
            term(&[("app", "web")], zone),
        );
        bind(&mut c2, shuns_web, "b");
        assert_eq!(schedule(&p, &c2, &mut 0).unwrap(), "a");
    }

    #[test]
    fn schedule_anyway_spreading_prefers_the_emptier_zone() {
        use crate::topology_spread::tests::spread;
        use crate::topology_spread::{LABEL_ZONE, SCHEDULE_ANYWAY};
        let mut c = crate::testing::cluster(vec![
            labelled_node("a", "8", &[(LABEL_ZONE, "z1")]),
            labelled_node("b", "8", &[(LABEL_ZONE, "z1")]),
            labelled_node("c", "2", &[(LABEL_ZONE, "z2")]),
        ]);
        bind(
            &mut c,
            labelled_pod("web-0", "100m", &[("app", "web")]),
            "b",
        );
        let p = with_spread(
            labelled_pod("web-1", "500m", &[("app", "web")]),
            spread(LABEL_ZONE, 1, SCHEDULE_ANYWAY, &[("app", "web")]),
        );
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "c");
    }

    #[test]
    fn large_clusters_stop_filtering_at_enough_nodes_and_rotate() {
        assert_eq!(feasible_nodes_to_find(50), 50);
        assert_eq!(feasible_nodes_to_find(150), 100);
        assert_eq!(feasible_nodes_to_find(1000), 420);
        assert_eq!(feasible_nodes_to_find(5000), 500);
        assert_eq!(feasible_nodes_to_find(100_000), 5000);

        let nodes: Vec<(String, &str)> = (0..250).map(|i| (format!("n{i:03}"), "4")).collect();
        let specs: Vec<(&str, &str)> = nodes.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let c = cluster(&specs);
        let p = pod_requesting("p", &[("cpu", "100m")]);
        // 250 nodes: 48%, 120 feasible are enough, so the first decision
        // picks among n000..n119 and the next starts at n120.
        let (mut turn, mut next) = (0, 0);
        let first = schedule_from(&p, &c, &mut turn, &mut next).unwrap();
        assert!(first.as_str() < "n120", "{first}");
        assert_eq!(next, 120);
        let second = schedule_from(&p, &c, &mut turn, &mut next).unwrap();
        assert!(("n120".."n240").contains(&second.as_str()), "{second}");
        let third = schedule_from(&p, &c, &mut turn, &mut next).unwrap();
        assert!(
            third.as_str() >= "n240" || third.as_str() < "n110",
            "{third}"
        );
        assert_eq!(next, 110);
        // A pod that fits nowhere is checked against every node.
        let huge = pod_requesting("huge", &[("cpu", "8")]);
        let err = schedule_from(&huge, &c, &mut turn, &mut next).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("0/250 nodes are available: 250 Insufficient cpu."),
            "{err}"
        );
        assert_eq!(next, 110);
    }
}
