//! The InterPodAffinity score.
//!
//! Each placed pod adds to the domains of its node (one per topology key
//! of the terms involved):
//! - the weight of each preferred affinity term of the incoming pod it
//!   matches, and minus the weight of each preferred anti-affinity term;
//! - 1 for each of its own required affinity terms the incoming pod
//!   matches (upstream's `hardPodAffinityWeight`), the weight of each of
//!   its preferred affinity terms the incoming pod matches, and minus the
//!   weight of each of its preferred anti-affinity terms it matches.
//!
//! A node scores the sum over the domains it is in; the scores of the
//! feasible nodes are then stretched min-max onto 0..=100. When the
//! incoming pod has no preferred terms only pods with terms of their own
//! are looked at.

use std::collections::HashMap;

use super::{AffinityTerm, PodAffinity};
use crate::cache::Namespaces;
use crate::node_info::{NodeInfo, PodInfo};
use crate::score::MAX_SCORE;
use crate::selector::Labels;

/// Weight of an existing pod's required affinity term the incoming pod
/// matches (upstream's default `hardPodAffinityWeight`).
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

#[derive(Default)]
struct DomainScores(HashMap<String, HashMap<String, i64>>);

impl DomainScores {
    fn add(&mut self, term: &AffinityTerm, weight: i64, node_labels: &Labels) {
        if let Some(value) = node_labels.get(&term.topology_key) {
            *self
                .0
                .entry(term.topology_key.clone())
                .or_default()
                .entry(value.clone())
                .or_insert(0) += weight;
        }
    }

    fn node_score(&self, labels: &Labels) -> i64 {
        self.0
            .iter()
            .filter_map(|(key, values)| values.get(labels.get(key)?))
            .sum()
    }
}

/// Normalised scores for `feasible`, or `None` when no term is involved
/// (every node scores 0).
pub fn scores(
    wanted: &PodInfo,
    nodes: &[NodeInfo],
    namespaces: &Namespaces,
    feasible: &[&NodeInfo],
) -> Option<Vec<i64>> {
    let own: Option<PodAffinity> = wanted
        .affinity
        .as_ref()
        .filter(|a| a.has_preferred())
        .map(|a| a.resolved(namespaces));
    if own.is_none() && nodes.iter().all(|n| n.with_affinity == 0) {
        return None;
    }
    let namespace_labels = namespaces.get(wanted.namespace());
    let mut domains = DomainScores::default();
    for info in nodes {
        let labels = info.labels();
        if labels.is_empty() || (own.is_none() && info.with_affinity == 0) {
            continue;
        }
        for placed in &info.pods {
            if let Some(own) = &own {
                for t in &own.preferred_affinity {
                    if t.matches(&placed.pod, None) {
                        domains.add(t, t.weight, labels);
                    }
                }
                for t in &own.preferred_anti_affinity {
                    if t.matches(&placed.pod, None) {
                        domains.add(t, -t.weight, labels);
                    }
                }
            }
            let Some(theirs) = placed.affinity.as_ref() else {
                continue;
            };
            let terms = theirs
                .required_affinity
                .iter()
                .map(|t| (t, HARD_POD_AFFINITY_WEIGHT))
                .chain(theirs.preferred_affinity.iter().map(|t| (t, t.weight)))
                .chain(
                    theirs
                        .preferred_anti_affinity
                        .iter()
                        .map(|t| (t, -t.weight)),
                );
            for (t, weight) in terms {
                if t.matches(wanted.pod, namespace_labels) {
                    domains.add(t, weight, labels);
                }
            }
        }
    }
    if domains.0.is_empty() {
        return None;
    }
    let raw: Vec<i64> = feasible
        .iter()
        .map(|n| domains.node_score(n.labels()))
        .collect();
    let min = raw.iter().copied().min().unwrap_or(0);
    let max = raw.iter().copied().max().unwrap_or(0);
    Some(
        raw.into_iter()
            .map(|s| {
                if max > min {
                    (MAX_SCORE as f64 * ((s - min) as f64 / (max - min) as f64)) as i64
                } else {
                    0
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpod::tests::term;
    use crate::testing::*;

    #[test]
    fn domain_sums_are_stretched_min_max() {
        let mut c = cluster(vec![
            labelled_node("a", "4", &[("zone", "z1")]),
            labelled_node("b", "4", &[("zone", "z2")]),
            labelled_node("c", "4", &[("zone", "z3")]),
        ]);
        let p = pod("web", "100m", &[("app", "web")]);
        let feasible_of = |c: &crate::cache::Cluster| -> Vec<NodeInfo> { c.nodes().to_vec() };
        let nodes = feasible_of(&c);
        let feasible: Vec<&NodeInfo> = nodes.iter().collect();
        assert_eq!(
            scores(&PodInfo::new(&p), c.nodes(), &c.namespaces, &feasible),
            None,
            "no terms anywhere"
        );
        bind(&mut c, pod("db-1", "100m", &[("app", "db")]), "a");
        bind(&mut c, pod("db-2", "100m", &[("app", "db")]), "b");
        bind(&mut c, pod("batch", "100m", &[("app", "batch")]), "b");
        let p = prefer_affinity(p, 10, term(&[("app", "db")], "zone"));
        let p = prefer_anti_affinity(p, 5, term(&[("app", "batch")], "zone"));
        let nodes = feasible_of(&c);
        let feasible: Vec<&NodeInfo> = nodes.iter().collect();
        // z1: +10, z2: +10 - 5, z3: 0.
        assert_eq!(
            scores(&PodInfo::new(&p), c.nodes(), &c.namespaces, &feasible),
            Some(vec![100, 50, 0])
        );
        // Only the feasible nodes are stretched.
        assert_eq!(
            scores(&PodInfo::new(&p), c.nodes(), &c.namespaces, &feasible[1..]),
            Some(vec![100, 0])
        );
    }
}
