//! The PodTopologySpread score, for `whenUnsatisfiable: ScheduleAnyway`
//! constraints, or the system defaults for a pod that has no constraints.
//!
//! As upstream: each constraint gives a node `c * ln(d + 2) + maxSkew -
//! 1`, where `c` counts the matching pods in the node's domain and `d` the
//! domains among the feasible nodes (for `kubernetes.io/hostname` the
//! domain is the node itself, and `d` the number of feasible nodes); the
//! sum is rounded, fewer is better, and the scores are normalised as
//! `100 * (max + min - score) / max`. With explicit constraints a feasible
//! node lacking one of the keys scores 0; with the defaults such a node is
//! still scored on the keys it has.

use std::collections::HashMap;

use super::{constraints, default_constraints, has_all_keys, has_constraints, LABEL_HOSTNAME};
use super::{Constraint, SCHEDULE_ANYWAY};
use crate::node_info::{NodeInfo, PodInfo};
use crate::score::MAX_SCORE;

/// Normalised scores for `feasible`, or `None` when the pod has nothing to
/// spread (every node scores 0).
pub fn scores(wanted: &PodInfo, nodes: &[NodeInfo], feasible: &[&NodeInfo]) -> Option<Vec<i64>> {
    let explicit = has_constraints(wanted.pod);
    let constraints: Vec<Constraint> = if explicit {
        constraints(wanted.pod, SCHEDULE_ANYWAY)
    } else {
        default_constraints(wanted.pod)
    };
    if constraints.is_empty() {
        return None;
    }
    let namespace = wanted.namespace();
    let require_all_keys = explicit;
    let ignored: Vec<bool> = feasible
        .iter()
        .map(|n| require_all_keys && !has_all_keys(&constraints, n.labels()))
        .collect();
    let considered = ignored.iter().filter(|i| !**i).count();

    // Domains of the feasible nodes, counted over every node.
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); constraints.len()];
    for (info, _) in feasible.iter().zip(&ignored).filter(|(_, i)| !**i) {
        for (c, counts) in constraints.iter().zip(&mut counts) {
            if c.topology_key != LABEL_HOSTNAME {
                let value = info
                    .labels()
                    .get(&c.topology_key)
                    .map_or("", |v| v.as_str());
                counts.entry(value).or_insert(0);
            }
        }
    }
    let weights: Vec<f64> = constraints
        .iter()
        .zip(&counts)
        .map(|(c, counts)| {
            let size = if c.topology_key == LABEL_HOSTNAME {
                considered
            } else {
                counts.len()
            };
            (size as f64 + 2.0).ln()
        })
        .collect();
    for info in nodes {
        let labels = info.labels();
        if require_all_keys && !has_all_keys(&constraints, labels) {
            continue;
        }
        for (c, counts) in constraints.iter().zip(&mut counts) {
            if c.topology_key == LABEL_HOSTNAME || !c.includes(wanted, &info.node) {
                continue;
            }
            let value = labels.get(&c.topology_key).map_or("", |v| v.as_str());
            if let Some(count) = counts.get_mut(value) {
                *count += c.count(&info.pods, namespace);
            }
        }
    }

    let raw: Vec<Option<i64>> = feasible
        .iter()
        .zip(&ignored)
        .map(|(info, ignored)| {
            if *ignored {
                return None;
            }
            let labels = info.labels();
            let mut score = 0.0;
            for (i, c) in constraints.iter().enumerate() {
                let Some(value) = labels.get(&c.topology_key) else {
                    continue;
                };
                let count = if c.topology_key == LABEL_HOSTNAME {
                    c.count(&info.pods, namespace)
                } else {
                    counts[i].get(value.as_str()).copied().unwrap_or(0)
                };
                score += count as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            Some(score.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    Some(
        raw.into_iter()
            .map(|s| match s {
                None => 0,
                Some(_) if max == 0 => MAX_SCORE,
                Some(s) => MAX_SCORE * (max + min - s) / max,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::topology_spread::tests::spread;
    use crate::topology_spread::LABEL_ZONE;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn feasible(c: &crate::cache::Cluster) -> Vec<&NodeInfo> {
        c.nodes().iter().collect()
    }

    #[test]
    fn counts_per_domain_weighted_by_the_number_of_domains() {
        let mut c = cluster(vec![
            labelled_node("a", "4", &[(LABEL_ZONE, "z1")]),
            labelled_node("b", "4", &[(LABEL_ZONE, "z1")]),
            labelled_node("c", "4", &[(LABEL_ZONE, "z2")]),
            labelled_node("d", "4", &[]),
        ]);
        bind(&mut c, pod("web-0", "100m", &[("app", "web")]), "b");
        let p = with_spread(
            pod("web-1", "100m", &[("app", "web")]),
            spread(LABEL_ZONE, 1, SCHEDULE_ANYWAY, &[("app", "web")]),
        );
        let p = with_spread(
            p,
            spread(LABEL_HOSTNAME, 2, SCHEDULE_ANYWAY, &[("app", "web")]),
        );
        // zone: ln(2 + 2) per pod; hostname: ln(3 + 2) per pod, + 1.
        // a: 1.39 + 1 → 2; b: 1.39 + 2.61 → 4; c: 0 + 1 → 1; d lacks
        // the zone key and scores 0.
        assert_eq!(
            scores(&PodInfo::new(&p), c.nodes(), &feasible(&c)),
            Some(vec![75, 25, 100, 0])
        );
        // DoNotSchedule constraints only: nothing to score, no defaults.
        let hard = with_spread(
            pod("web-1", "100m", &[("app", "web")]),
            spread(LABEL_ZONE, 1, "DoNotSchedule", &[("app", "web")]),
        );
        assert_eq!(scores(&PodInfo::new(&hard), c.nodes(), &feasible(&c)), None);
    }

    #[test]
    fn system_defaults_spread_a_controllers_pods() {
        let mut c = cluster(vec![
            labelled_node("a", "4", &[]),
            labelled_node("b", "4", &[]),
        ]);
        let owned = |name: &str, kind: &str| {
            let mut p = pod(name, "100m", &[("app", "web")]);
            p.metadata.uid = Some(format!("uid-{name}"));
            p.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: kind.into(),
                name: "web".into(),
                uid: "rs-web".into(),
                controller: Some(true),
                ..Default::default()
            }]);
            p
        };
        bind(&mut c, owned("web-0", "ReplicaSet"), "a");
        bind(&mut c, owned("web-1", "ReplicaSet"), "a");
        bind(&mut c, pod("stray", "100m", &[("app", "web")]), "b");
        // hostname maxSkew 3: a 2 * ln(4) + 2 → 5, b 2; no zone labels.
        assert_eq!(
            scores(
                &PodInfo::new(&owned("web-2", "ReplicaSet")),
                c.nodes(),
                &feasible(&c)
            ),
            Some(vec![40, 100])
        );
        assert_eq!(
            scores(
                &PodInfo::new(&owned("job-0", "Job")),
                c.nodes(),
                &feasible(&c)
            ),
            None,
            "Job pods get no default spreading"
        );
    }
}
