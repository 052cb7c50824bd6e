//! The PodTopologySpread filter, for `whenUnsatisfiable: DoNotSchedule`.
//!
//! Once per decision every node that counts (see the module above) adds
//! its matching pods to its domain, so each constraint has a count per
//! domain, empty domains included. A node then passes a constraint when it
//! has the topology key (otherwise: unresolvable, "missing required
//! label") and
//! `pods in its domain + (1 if the pod matches the selector itself) -
//! the smallest domain count <= maxSkew`, where the smallest count is 0
//! while there are fewer domains than `minDomains`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Node;

use super::{constraints, has_all_keys, Constraint, DO_NOT_SCHEDULE};
use crate::filter::{FilterResult, Unfit};
use crate::node_info::{NodeInfo, PlacedPod, PodInfo};
use crate::selector::Labels;

pub const REASON_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

#[derive(Clone, Debug)]
pub struct SpreadFilter {
    constraints: Vec<Constraint>,
    /// Per constraint: matching pods per domain (topology value).
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the smallest domain count, as the filter uses it.
    minimum: Vec<i64>,
    /// Per constraint: whether the incoming pod matches its selector.
    matches_itself: Vec<bool>,
}

static NO_LABELS: Labels = Labels::new();

fn labels(node: &Node) -> &Labels {
    node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

impl SpreadFilter {
    /// Counts for `wanted` over the whole cluster; `None` when the pod has
    /// no DoNotSchedule constraint.
    pub fn prepare(wanted: &PodInfo, nodes: &[NodeInfo]) -> Option<SpreadFilter> {
        let constraints = constraints(wanted.pod, DO_NOT_SCHEDULE);
        if constraints.is_empty() {
            return None;
        }
        let namespace = wanted.namespace();
        let mut counts = vec![HashMap::new(); constraints.len()];
        for info in nodes {
            let labels = info.labels();
            if !has_all_keys(&constraints, labels) {
                continue;
            }
            for (c, counts) in constraints.iter().zip(&mut counts) {
                if !c.includes(wanted, &info.node) {
                    continue;
                }
                let n = c.count(&info.pods, namespace);
                *counts.entry(labels[&c.topology_key].clone()).or_insert(0) += n;
            }
        }
        let matches_itself = constraints
            .iter()
            .map(|c| c.matcher.matches(wanted.pod))
            .collect();
        let mut state = SpreadFilter {
            minimum: vec![0; constraints.len()],
            constraints,
            counts,
            matches_itself,
        };
        state.update_minimums();
        Some(state)
    }

    fn update_minimums(&mut self) {
        for (i, c) in self.constraints.iter().enumerate() {
            let counts = &self.counts[i];
            self.minimum[i] = if (counts.len() as i64) < c.min_domains {
                0
            } else {
                // No domain at all: nothing to be skewed against.
                counts.values().copied().min().unwrap_or(i64::MAX / 2)
            };
        }
    }

    /// Takes `placed` (on `node`) out of the counts, as if it were
    /// evicted.
    pub fn remove(&mut self, placed: &PlacedPod, wanted: &PodInfo, node: &Node) {
        let labels = labels(node);
        if placed.pod.metadata.namespace.as_deref().unwrap_or("") != wanted.namespace()
            || !has_all_keys(&self.constraints, labels)
        {
            return;
        }
        for (c, counts) in self.constraints.iter().zip(&mut self.counts) {
            if c.matcher.matches(&placed.pod) && c.includes(wanted, node) {
                *counts.entry(labels[&c.topology_key].clone()).or_insert(0) -= 1;
            }
        }
        self.update_minimums();
    }

    /// The filter for one node.
    pub fn filter(&self, node: &Node) -> FilterResult {
        let labels = labels(node);
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                return Err(Unfit::unresolvable(REASON_MISSING_LABEL));
            };
            let here = self.counts[i].get(value).copied().unwrap_or(0);
            let skew = here + i64::from(self.matches_itself[i]) - self.minimum[i];
            if skew > c.max_skew {
                return Err(Unfit::resolvable(vec![REASON_CONSTRAINTS.into()]));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{schedule, Decision};
    use crate::testing::*;
    use crate::topology_spread::tests::spread;
    use crate::topology_spread::LABEL_ZONE;
    use k8s_openapi::api::core::v1::{Pod, Taint};

    fn web(name: &str) -> Pod {
        let mut p = with_spread(
            pod(name, "100m", &[("app", "web")]),
            spread(LABEL_ZONE, 1, DO_NOT_SCHEDULE, &[("app", "web")]),
        );
        p.metadata.uid = Some(format!("uid-{name}"));
        p
    }

    #[test]
    fn skew_missing_labels_and_the_message() {
        // a in z1, b in z2, c without a zone.
        let mut c = cluster(vec![
            labelled_node("a", "1", &[(LABEL_ZONE, "z1")]),
            labelled_node("b", "1", &[(LABEL_ZONE, "z2")]),
            labelled_node("c", "1", &[]),
        ]);
        bind(&mut c, web("web-0"), "a");
        // a: 1 + 1 - 0 > 1; b: 0 + 1 - 0 fits.
        for mut turn in 0..3 {
            assert_eq!(schedule(&web("web-1"), &c, &mut turn).unwrap(), "b");
        }
        bind(&mut c, pod("big", "1", &[]), "b");
        assert_eq!(
            why(&c, &web("web-1")),
            "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology \
             spread constraints, 1 node(s) didn't match pod topology spread constraints \
             (missing required label). preemption: 0/3 nodes are available: 1 Preemption is \
             not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        // A pod the selector does not match adds no skew of its own.
        let other = with_spread(
            pod("other", "100m", &[("app", "other")]),
            spread(LABEL_ZONE, 1, DO_NOT_SCHEDULE, &[("app", "web")]),
        );
        assert_eq!(schedule(&other, &c, &mut 0).unwrap(), "a");
    }

    fn two_zones_one_each() -> crate::cache::Cluster {
        let mut c = cluster(vec![
            labelled_node("a", "4", &[(LABEL_ZONE, "z1"), ("disk", "ssd")]),
            labelled_node("b", "4", &[(LABEL_ZONE, "z2"), ("disk", "ssd")]),
            labelled_node("c", "4", &[(LABEL_ZONE, "z3")]),
        ]);
        bind(&mut c, web("web-a"), "a");
        bind(&mut c, web("web-b"), "b");
        c
    }

    fn on_ssd(mut p: Pod) -> Pod {
        p.spec.as_mut().unwrap().node_selector =
            Some([("disk".to_string(), "ssd".to_string())].into());
        p
    }

    #[test]
    fn node_affinity_policy_decides_which_domains_count() {
        let c = two_zones_one_each();
        // Honor (default): z3 is not eligible, the minimum is 1.
        assert!(schedule(&on_ssd(web("web-2")), &c, &mut 0).is_ok());
        // Ignore: z3 counts with 0 pods, so a and b are too skewed.
        let mut p = on_ssd(web("web-2"));
        let constraints = p
            .spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .as_mut();
        constraints.unwrap()[0].node_affinity_policy = Some("Ignore".into());
        assert_eq!(
            why(&c, &p),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 \
             node(s) didn't match pod topology spread constraints. preemption: 0/3 nodes are \
             available: 1 Preemption is not helpful for scheduling, 2 No preemption victims \
             found for incoming pod."
        );
    }

    #[test]
    fn node_taints_policy_honor_leaves_out_untolerated_nodes() {
        let mut c = two_zones_one_each();
        let mut tainted = labelled_node("c", "4", &[(LABEL_ZONE, "z3")]);
        tainted.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }]);
        c.set_node(std::sync::Arc::new(tainted));
        // Ignore (default): z3 counts with 0 pods; only c would fit the
        // skew, and its taint keeps the pod out.
        assert!(schedule(&web("web-2"), &c, &mut 0).is_err());
        let mut p = web("web-2");
        let constraints = p
            .spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .as_mut();
        constraints.unwrap()[0].node_taints_policy = Some("Honor".into());
        assert!(schedule(&p, &c, &mut 0).is_ok());
    }

    #[test]
    fn min_domains_counts_missing_domains_as_empty() {
        let c = two_zones_one_each();
        let mut p = on_ssd(web("web-2"));
        assert!(schedule(&p, &c, &mut 0).is_ok());
        let constraints = p
            .spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .as_mut();
        constraints.unwrap()[0].min_domains = Some(3);
        // Two eligible domains, fewer than 3: the minimum is taken as 0.
        assert!(schedule(&p, &c, &mut 0).is_err());
    }

    #[test]
    fn match_label_keys_count_only_the_same_revision() {
        let c = two_zones_one_each();
        let mut p = web("web-2");
        p.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("pod-template-hash".into(), "new".into());
        // Without the key, z3 (0) vs z1, z2 (1): only c fits...
        let decision = Decision::new(&p, &c);
        assert!(decision.filter(c.node("a").unwrap()).is_err());
        // ...with it, no pod of the new revision runs anywhere.
        let constraint = &mut p
            .spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .as_mut()
            .unwrap()[0];
        constraint.match_label_keys = Some(vec!["pod-template-hash".into()]);
        let decision = Decision::new(&p, &c);
        assert_eq!(decision.filter(c.node("a").unwrap()), Ok(()));
    }

    #[test]
    fn evicting_a_matching_pod_lowers_the_skew() {
        let mut c = two_zones_one_each();
        let mut low = web("web-low");
        low.spec.as_mut().unwrap().priority = Some(-1);
        bind(&mut c, low, "a");
        let p = on_ssd(web("web-2"));
        let decision = Decision::new(&p, &c);
        let a = c.node("a").unwrap();
        assert_eq!(
            decision.filter(a).unwrap_err().reasons,
            [REASON_CONSTRAINTS]
        );
        let victims: Vec<&PlacedPod> = a
            .pods
            .iter()
            .filter(|v| v.pod.metadata.name.as_deref() == Some("web-low"))
            .collect();
        assert_eq!(decision.filter_without(a, &victims), Ok(()));
    }
}
