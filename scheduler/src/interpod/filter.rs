//! The InterPodAffinity filter: the incoming pod's required affinity and
//! anti-affinity, and the required anti-affinity of the pods already
//! placed, against the incoming pod.
//!
//! Everything is counted once per decision (`InterPodFilter::prepare`),
//! by topology domain (a node label key and value): how many placed pods
//! match all the incoming pod's affinity terms, how many match each of
//! its anti-affinity terms, and how many placed pods have an anti-affinity
//! term the incoming pod matches. A node is then judged by its labels
//! alone:
//!
//! - affinity: the node has every term's topology key and each of those
//!   domains holds a matching pod. Exception (a group's first pod): when
//!   no placed pod matches anywhere and the pod matches its own terms,
//!   every node with the keys passes. Failing is unresolvable.
//! - anti-affinity: no domain of the node holds a pod a term selects.
//! - existing anti-affinity: no domain of the node holds a pod whose term
//!   selects the incoming pod.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Node;

use super::{matches_all, AffinityTerm, PodAffinity};
use crate::cache::Namespaces;
use crate::filter::{FilterResult, Unfit};
use crate::node_info::{NodeInfo, PlacedPod, PodInfo};
use crate::selector::Labels;

pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Counts by topology key, then value; entries that drop to zero are
/// removed, so an empty map means nothing matched anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    /// Adds `delta` to the domain of `node` for `key`, if the node has it.
    pub fn update(&mut self, node: &Node, key: &str, delta: i64) {
        let Some(value) = node.metadata.labels.as_ref().and_then(|l| l.get(key)) else {
            return;
        };
        let values = self.0.entry(key.to_string()).or_default();
        let count = values.entry(value.clone()).or_default();
        *count += delta;
        if *count == 0 {
            values.remove(value);
            if values.is_empty() {
                self.0.remove(key);
            }
        }
    }

    pub fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|v| v.get(value))
            .copied()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the filter needs for one decision.
#[derive(Clone, Debug)]
pub struct InterPodFilter {
    /// The incoming pod's terms, namespace selectors resolved.
    terms: PodAffinity,
    /// The labels of the incoming pod's namespace, which existing pods'
    /// namespace selectors are matched against.
    namespace_labels: Labels,
    /// Whether the incoming pod matches all its own affinity terms.
    matches_itself: bool,
    affinity: TopologyCounts,
    anti_affinity: TopologyCounts,
    existing_anti_affinity: TopologyCounts,
}

fn has_required_anti_affinity(p: &PlacedPod) -> bool {
    p.affinity
        .as_ref()
        .is_some_and(|a| !a.required_anti_affinity.is_empty())
}

impl InterPodFilter {
    /// Counts for `wanted` over the whole cluster; `None` when there is
    /// nothing to check (the pod has no required terms and no placed pod
    /// has required anti-affinity).
    pub fn prepare(
        wanted: &PodInfo,
        nodes: &[NodeInfo],
        namespaces: &Namespaces,
    ) -> Option<InterPodFilter> {
        let own = wanted.affinity.as_ref().filter(|a| a.has_required());
        let existing_anti = nodes.iter().any(|n| n.with_required_anti_affinity > 0);
        if own.is_none() && !existing_anti {
            return None;
        }
        let terms = own.map(|a| a.resolved(namespaces)).unwrap_or_default();
        let namespace_labels = namespaces
            .get(wanted.namespace())
            .cloned()
            .unwrap_or_default();
        let mut state = InterPodFilter {
            matches_itself: matches_all(&terms.required_affinity, wanted.pod),
            terms,
            namespace_labels,
            affinity: TopologyCounts::default(),
            anti_affinity: TopologyCounts::default(),
            existing_anti_affinity: TopologyCounts::default(),
        };
        for info in nodes {
            let node = info.node.as_ref();
            if info.with_required_anti_affinity > 0 {
                for placed in info.pods.iter().filter(|p| has_required_anti_affinity(p)) {
                    state.count_existing(placed, wanted, node, 1);
                }
            }
            if own.is_some() {
                for placed in &info.pods {
                    state.count_incoming(placed, node, 1);
                }
            }
        }
        Some(state)
    }

    fn count_existing(&mut self, placed: &PlacedPod, wanted: &PodInfo, node: &Node, delta: i64) {
        let Some(affinity) = placed.affinity.as_ref() else {
            return;
        };
        for t in &affinity.required_anti_affinity {
            if t.matches(wanted.pod, Some(&self.namespace_labels)) {
                self.existing_anti_affinity
                    .update(node, &t.topology_key, delta);
            }
        }
    }

    fn count_incoming(&mut self, placed: &PlacedPod, node: &Node, delta: i64) {
        if matches_all(&self.terms.required_affinity, &placed.pod) {
            for t in &self.terms.required_affinity {
                self.affinity.update(node, &t.topology_key, delta);
            }
        }
        for t in &self.terms.required_anti_affinity {
            if t.matches(&placed.pod, None) {
                self.anti_affinity.update(node, &t.topology_key, delta);
            }
        }
    }

    /// Takes `placed` (on `node`) out of the counts, as if it were
    /// evicted: how preemption asks whether removing pods would help.
    pub fn remove(&mut self, placed: &PlacedPod, wanted: &PodInfo, node: &Node) {
        self.count_existing(placed, wanted, node, -1);
        self.count_incoming(placed, node, -1);
    }

    fn satisfies_affinity(&self, labels: &Labels) -> bool {
        let terms: &[AffinityTerm] = &self.terms.required_affinity;
        let mut all_domains_have_pods = true;
        for t in terms {
            let Some(value) = labels.get(&t.topology_key) else {
                return false;
            };
            if self.affinity.get(&t.topology_key, value) <= 0 {
                all_domains_have_pods = false;
            }
        }
        all_domains_have_pods || (self.affinity.is_empty() && self.matches_itself)
    }

    fn satisfies_anti_affinity(&self, labels: &Labels) -> bool {
        self.anti_affinity.is_empty()
            || !self.terms.required_anti_affinity.iter().any(|t| {
                labels
                    .get(&t.topology_key)
                    .is_some_and(|v| self.anti_affinity.get(&t.topology_key, v) > 0)
            })
    }

    fn satisfies_existing_anti_affinity(&self, labels: &Labels) -> bool {
        self.existing_anti_affinity.is_empty()
            || !labels
                .iter()
                .any(|(k, v)| self.existing_anti_affinity.get(k, v) > 0)
    }

    /// The filter for one node.
    pub fn filter(&self, node: &Node) -> FilterResult {
        let empty = Labels::new();
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        if !self.satisfies_affinity(labels) {
            return Err(Unfit::unresolvable(REASON_AFFINITY));
        }
        if !self.satisfies_anti_affinity(labels) {
            return Err(Unfit::resolvable(vec![REASON_ANTI_AFFINITY.into()]));
        }
        if !self.satisfies_existing_anti_affinity(labels) {
            return Err(Unfit::resolvable(
                vec![REASON_EXISTING_ANTI_AFFINITY.into()],
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{schedule, Decision};
    use crate::interpod::tests::term;
    use crate::selector::tests::{labels, match_labels};
    use crate::testing::*;
    use k8s_openapi::api::core::v1::Pod;

    const ZONE: &str = "zone";
    const HOST: &str = "kubernetes.io/hostname";

    /// a in z1, b and c in z2.
    fn zones() -> crate::cache::Cluster {
        cluster(vec![
            labelled_node("a", "1", &[(ZONE, "z1")]),
            labelled_node("b", "1", &[(ZONE, "z2")]),
            labelled_node("c", "1", &[(ZONE, "z2")]),
        ])
    }

    fn near_db(name: &str) -> Pod {
        require_affinity(
            pod(name, "100m", &[("app", "web")]),
            term(&[("app", "db")], ZONE),
        )
    }

    #[test]
    fn affinity_follows_the_matching_pods_domain() {
        let mut c = zones();
        bind(&mut c, pod("db", "100m", &[("app", "db")]), "b");
        for mut turn in 0..4 {
            let node = schedule(&near_db("web"), &c, &mut turn).unwrap();
            assert!(node == "b" || node == "c", "{node}");
        }
        // The zone is full: a has room but no db pod in its zone.
        bind(&mut c, pod("big-b", "900m", &[]), "b");
        bind(&mut c, pod("big-c", "1", &[]), "c");
        assert_eq!(
            why(&c, &near_db("web")),
            "0/3 nodes are available: 1 node(s) didn't match pod affinity rules, 2 \
             Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not \
             helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn the_first_pod_of_a_group_may_go_anywhere_with_the_key() {
        let mut c = zones();
        // Affinity to its own kind: nothing matches yet, and it matches
        // itself, so any node with the zone label will do.
        let first = require_affinity(
            pod("cache-0", "100m", &[("app", "cache")]),
            term(&[("app", "cache")], ZONE),
        );
        let node = place(&mut c, first.clone(), &mut 0).unwrap();
        // From then on the group stays in that zone.
        let zone_of = |n: &str| if n == "a" { "z1" } else { "z2" };
        for i in 1..4 {
            let mut next = first.clone();
            next.metadata.name = Some(format!("cache-{i}"));
            next.metadata.uid = Some(format!("uid-cache-{i}"));
            let placed = place(&mut c, next, &mut (i as usize)).unwrap();
            assert_eq!(zone_of(&placed), zone_of(&node));
        }
        // A pod that does not match its own terms has no such exception.
        let unlabeled = cluster(vec![labelled_node("a", "1", &[(ZONE, "z1")])]);
        assert_eq!(
            why(&unlabeled, &near_db("web")),
            "0/1 nodes are available: 1 node(s) didn't match pod affinity rules. preemption: \
             0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        // Nodes without the topology key never pass.
        let keyless = cluster(vec![labelled_node("x", "1", &[])]);
        let loner = require_affinity(
            pod("cache", "100m", &[("app", "cache")]),
            term(&[("app", "cache")], ZONE),
        );
        assert!(schedule(&loner, &keyless, &mut 0).is_err());
    }

    #[test]
    fn anti_affinity_keeps_replicas_apart() {
        let mut c = zones();
        let replica = |i: usize| {
            let mut p = require_anti_affinity(
                pod(&format!("web-{i}"), "100m", &[("app", "web")]),
                term(&[("app", "web")], HOST),
            );
            p.metadata.uid = Some(format!("uid-web-{i}"));
            p
        };
        let mut nodes: Vec<String> = (0..3)
            .map(|i| place(&mut c, replica(i), &mut 0).unwrap())
            .collect();
        nodes.sort();
        assert_eq!(nodes, ["a", "b", "c"]);
        assert_eq!(
            why(&c, &replica(3)),
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/3 nodes are available: 3 No preemption victims found for incoming \
             pod."
        );
    }

    #[test]
    fn existing_pods_anti_affinity_keeps_the_incoming_pod_out() {
        let mut c = zones();
        // A pod in z2 that wants no web pod in its zone.
        let loner = require_anti_affinity(
            pod("loner", "100m", &[("app", "loner")]),
            term(&[("app", "web")], ZONE),
        );
        bind(&mut c, loner, "b");
        for mut turn in 0..3 {
            let p = pod("web", "100m", &[("app", "web")]);
            assert_eq!(schedule(&p, &c, &mut turn).unwrap(), "a");
        }
        bind(&mut c, pod("big-a", "1", &[]), "a");
        let p = pod("web", "100m", &[("app", "web")]);
        assert_eq!(
            why(&c, &p),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy existing \
             pods anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption \
             victims found for incoming pod."
        );
        // Other pods are not affected.
        let other = pod("api", "100m", &[("app", "api")]);
        assert!(schedule(&other, &c, &mut 0).is_ok());
    }

    #[test]
    fn evicting_the_conflicting_pod_would_help() {
        let mut c = zones();
        let mut low = pod("low", "100m", &[("app", "web")]);
        low.spec.as_mut().unwrap().priority = Some(-1);
        bind(&mut c, low, "a");
        let mut p = require_anti_affinity(
            pod("web", "100m", &[("app", "web")]),
            term(&[("app", "web")], ZONE),
        );
        p.spec.as_mut().unwrap().priority = Some(10);
        let decision = Decision::new(&p, &c);
        let a = c.node("a").unwrap();
        assert_eq!(
            decision.filter(a).unwrap_err().reasons,
            [REASON_ANTI_AFFINITY]
        );
        let victims: Vec<&PlacedPod> = a.pods.iter().collect();
        assert_eq!(decision.filter_without(a, &victims), Ok(()));
    }

    #[test]
    fn namespaces_of_a_term() {
        let mut c = zones();
        let mut db = pod("db", "100m", &[("app", "db")]);
        db.metadata.namespace = Some("prod".into());
        bind(&mut c, db, "a");
        c.namespaces.set("prod", labels(&[("env", "prod")]));
        c.namespaces.set("default", labels(&[]));

        // Neither namespaces nor a selector: the pod's own namespace,
        // where no db pod runs (and the web pod does not match itself).
        let msg = why(&c, &near_db("web"));
        assert!(
            msg.starts_with("0/3 nodes are available: 3 node(s) didn't match pod affinity rules."),
            "{msg}"
        );
        // By name.
        let mut named = term(&[("app", "db")], ZONE);
        named.namespaces = Some(vec!["prod".into()]);
        let p = require_affinity(pod("web", "100m", &[("app", "web")]), named);
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "a");
        // By the namespace's labels.
        let mut selected = term(&[("app", "db")], ZONE);
        selected.namespace_selector = Some(match_labels(&[("env", "prod")]));
        let p = require_affinity(pod("web", "100m", &[("app", "web")]), selected.clone());
        assert_eq!(schedule(&p, &c, &mut 0).unwrap(), "a");
        selected.namespace_selector = Some(match_labels(&[("env", "dev")]));
        let p = require_affinity(pod("web", "100m", &[("app", "web")]), selected);
        assert!(schedule(&p, &c, &mut 0).is_err());
    }
}
