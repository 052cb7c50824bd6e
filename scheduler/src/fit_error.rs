//! Why a pod fits nowhere, worded as kube-scheduler v1.33 words it:
//!
//! `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match
//! Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No
//! preemption victims found for incoming pod, 2 Preemption is not helpful
//! for scheduling.`
//!
//! Each node contributes its rejection reasons; identical reasons are
//! counted, each entry reads `<count> <reason>`, and the entries are sorted
//! as strings (so the count leads the order) and joined by `, `. A
//! pre-filter rejection replaces the per-node list. The preemption part is
//! what upstream's DefaultPreemption reports when it finds nothing to
//! evict: nodes rejected for reasons eviction cannot fix are "not helpful",
//! nodes without lower-priority pods have "no victims", and nodes that
//! still fail with the lower-priority pods gone keep their reasons. rkube
//! does not evict pods to make room, so a node where eviction would help
//! also keeps its original reasons.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use crate::algorithm::Decision;
use crate::filter::Unfit;
use crate::node_info::{NodeInfo, PlacedPod};

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_ELIGIBLE: &str = "not eligible due to preemptionPolicy=Never.";
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// A failed attempt to place a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The cluster has no nodes at all.
    NoNodes,
    /// Every node was rejected.
    Fit(FitError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoNodes => f.write_str(NO_NODES),
            Failure::Fit(e) => e.fmt(f),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    pub num_nodes: usize,
    /// A pre-filter's rejection, shown instead of the per-node reasons.
    pub prefilter: Option<String>,
    /// Each rejected node's name and reasons.
    pub statuses: Vec<(String, Unfit)>,
    /// The post-filter (preemption) message.
    pub postfilter: Option<String>,
}

/// `1 a, 2 b` for the reasons of all statuses, sorted as strings.
fn histogram<'a>(statuses: impl Iterator<Item = &'a Unfit>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for unfit in statuses {
        for reason in &unfit.reasons {
            *counts.entry(reason.as_str()).or_default() += 1;
        }
    }
    let mut entries: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    entries.sort();
    entries.join(", ")
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_nodes)?;
        match &self.prefilter {
            Some(message) => write!(f, " {message}.")?,
            None => {
                let reasons = histogram(self.statuses.iter().map(|(_, u)| u));
                if !reasons.is_empty() {
                    write!(f, " {reasons}.")?;
                }
            }
        }
        if let Some(post) = &self.postfilter {
            write!(f, " {post}")?;
        }
        Ok(())
    }
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// The `preemption: ...` message for a pod every node rejected with
/// `statuses`.
pub fn preemption_message(
    decision: &Decision,
    nodes: &[NodeInfo],
    statuses: &[(String, Unfit)],
) -> String {
    let wanted = &decision.wanted;
    let spec = wanted.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return format!("preemption: {NOT_ELIGIBLE}");
    }
    let by_name: BTreeMap<&str, &NodeInfo> = nodes.iter().map(|n| (n.name(), n)).collect();
    let own_priority = priority(wanted.pod);
    let outcome = statuses
        .iter()
        .map(|(name, unfit)| {
            let info = by_name.get(name.as_str());
            let after = match info {
                Some(info) if unfit.resolvable => {
                    let victims: Vec<&PlacedPod> = info
                        .pods
                        .iter()
                        .filter(|p| priority(&p.pod) < own_priority)
                        .collect();
                    if victims.is_empty() {
                        Unfit::unresolvable(NO_VICTIMS)
                    } else {
                        decision
                            .filter_without(info, &victims)
                            .err()
                            .unwrap_or_else(|| unfit.clone())
                    }
                }
                _ => Unfit::unresolvable(NOT_HELPFUL),
            };
            (name.clone(), after)
        })
        .collect();
    let inner = FitError {
        num_nodes: nodes.len(),
        prefilter: None,
        statuses: outcome,
        postfilter: None,
    };
    format!("preemption: {inner}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cluster;
    use crate::filter;
    use crate::filter::tests::{node, pod_requesting};
    use std::sync::Arc;

    fn unfit(reasons: &[&str], resolvable: bool) -> Unfit {
        Unfit {
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            resolvable,
        }
    }

    fn fit_error(statuses: Vec<(&str, Unfit)>, postfilter: Option<&str>) -> FitError {
        FitError {
            num_nodes: statuses.len(),
            prefilter: None,
            statuses: statuses
                .into_iter()
                .map(|(n, u)| (n.to_string(), u))
                .collect(),
            postfilter: postfilter.map(String::from),
        }
    }

    #[test]
    fn reasons_are_counted_and_sorted() {
        let e = fit_error(
            vec![
                ("c", unfit(&[filter::REASON_NODE_AFFINITY], false)),
                ("a", unfit(&["Insufficient cpu"], true)),
                ("b", unfit(&[filter::REASON_NODE_AFFINITY], false)),
            ],
            None,
        );
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node \
             affinity/selector."
        );
    }

    #[test]
    fn the_count_leads_the_sort_and_nodes_may_give_several_reasons() {
        let e = fit_error(
            vec![
                (
                    "a",
                    unfit(&["Insufficient memory", "Insufficient cpu"], true),
                ),
                ("b", unfit(&["Insufficient cpu"], true)),
                ("c", unfit(&[filter::REASON_UNSCHEDULABLE], false)),
            ],
            Some("preemption: tail."),
        );
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, 2 \
             Insufficient cpu. preemption: tail."
        );
    }

    #[test]
    fn a_prefilter_message_replaces_node_reasons() {
        let mut e = fit_error(vec![("a", unfit(&["x"], false))], None);
        e.prefilter = Some(filter::REASON_AFFINITY_CONFLICT.into());
        assert_eq!(
            e.to_string(),
            "0/1 nodes are available: pod affinity terms conflict."
        );
        assert_eq!(
            Failure::NoNodes.to_string(),
            "no nodes available to schedule pods"
        );
    }

    /// The preemption message with nodes a and b (1 CPU each), `pods_on_a`
    /// on a.
    fn preempt(p: &Pod, pods_on_a: Vec<Pod>, statuses: &[(String, Unfit)]) -> String {
        let cluster = Cluster::from_nodes(infos(pods_on_a));
        let decision = Decision::new(p, &cluster);
        preemption_message(&decision, cluster.nodes(), statuses)
    }

    fn infos(pods_on_a: Vec<Pod>) -> Vec<NodeInfo> {
        vec![
            NodeInfo::with_pods(
                Arc::new(node("a", &[("cpu", "1"), ("pods", "10")])),
                pods_on_a.into_iter().map(Arc::new),
            ),
            NodeInfo::new(Arc::new(node("b", &[("cpu", "1"), ("pods", "10")]))),
        ]
    }

    #[test]
    fn preemption_without_victims() {
        let p = pod_requesting("p", &[("cpu", "2")]);
        let statuses = vec![
            ("a".to_string(), unfit(&["Insufficient cpu"], true)),
            (
                "b".to_string(),
                unfit(&[filter::REASON_NODE_AFFINITY], false),
            ),
        ];
        let msg = preempt(&p, vec![], &statuses);
        assert_eq!(
            msg,
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming \
             pod, 1 Preemption is not helpful for scheduling."
        );
        let whole = fit_error(
            statuses
                .iter()
                .map(|(n, u)| (n.as_str(), u.clone()))
                .collect(),
            Some(&msg),
        );
        assert_eq!(
            whole.to_string(),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node \
             affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims \
             found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn preemption_with_lower_priority_pods() {
        let mut p = pod_requesting("p", &[("cpu", "2")]);
        p.spec.as_mut().unwrap().priority = Some(100);
        let low = pod_requesting("low", &[("cpu", "500m")]);
        let statuses = vec![
            ("a".to_string(), unfit(&["Insufficient cpu"], true)),
            ("b".to_string(), unfit(&["Insufficient cpu"], true)),
        ];
        // Evicting `low` from a still leaves too little CPU.
        let msg = preempt(&p, vec![low.clone()], &statuses);
        assert_eq!(
            msg,
            "preemption: 0/2 nodes are available: 1 Insufficient cpu, 1 No preemption victims \
             found for incoming pod."
        );
        // An equal-priority pod is no victim.
        p.spec.as_mut().unwrap().priority = Some(0);
        let msg = preempt(&p, vec![low], &statuses);
        assert_eq!(
            msg,
            "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn preemption_policy_never() {
        let mut p = pod_requesting("p", &[("cpu", "2")]);
        p.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let statuses = vec![("a".to_string(), unfit(&["Insufficient cpu"], true))];
        assert_eq!(
            preempt(&p, vec![], &statuses),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
