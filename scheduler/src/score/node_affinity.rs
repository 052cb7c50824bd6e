//! The NodeAffinity score: the sum of the weights of the pod's preferred
//! node affinity terms a node matches, stretched so the best node scores
//! 100. Terms of weight 0 and empty terms count for nothing.

use k8s_openapi::api::core::v1::{Pod, PreferredSchedulingTerm};

use crate::filter::term_matches;
use crate::node_info::NodeInfo;
use crate::score::{default_normalize, MAX_SCORE};

fn preferred_terms(pod: &Pod) -> Vec<&PreferredSchedulingTerm> {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|t| t.weight != 0)
        .collect()
}

/// Normalised scores for `feasible`, or `None` when the pod states no
/// preference (every node scores 0).
pub fn scores(pod: &Pod, feasible: &[&NodeInfo]) -> Option<Vec<i64>> {
    let terms = preferred_terms(pod);
    if terms.is_empty() {
        return None;
    }
    let mut scores: Vec<i64> = feasible
        .iter()
        .map(|n| {
            terms
                .iter()
                .filter(|t| term_matches(&t.preference, &n.node))
                .map(|t| i64::from(t.weight))
                .sum()
        })
        .collect();
    default_normalize(&mut scores, MAX_SCORE, false);
    Some(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{labelled, pod_requesting, req, term};
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity};
    use std::sync::Arc;

    #[test]
    fn matching_preferences_add_their_weights() {
        let nodes: Vec<NodeInfo> = [
            labelled("a", &[("disk", "ssd"), ("zone", "z1")]),
            labelled("b", &[("disk", "ssd")]),
            labelled("c", &[]),
        ]
        .into_iter()
        .map(|n| NodeInfo::new(Arc::new(n)))
        .collect();
        let feasible: Vec<&NodeInfo> = nodes.iter().collect();
        let mut p = pod_requesting("p", &[]);
        assert_eq!(scores(&p, &feasible), None);
        let prefer = |weight, key: &str| PreferredSchedulingTerm {
            weight,
            preference: term(vec![req(key, "Exists", &[])], vec![]),
        };
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    prefer(30, "disk"),
                    prefer(10, "zone"),
                    prefer(0, "missing"),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        });
        // 40, 30, 0 → 100, 75, 0.
        assert_eq!(scores(&p, &feasible), Some(vec![100, 75, 0]));
        // Nothing matches anywhere: all 0.
        assert_eq!(scores(&p, &feasible[2..]), Some(vec![0]));
    }
}
