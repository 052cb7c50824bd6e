//! Inter-pod affinity and anti-affinity (upstream's InterPodAffinity
//! plugin): the terms of a pod read once, the filter (`filter`) and the
//! score (`score`).
//!
//! A term selects pods by labels (`labelSelector`) in some namespaces
//! (`namespaces`, `namespaceSelector`; neither given means the pod's own
//! namespace) and names a node label (`topologyKey`) whose value is the
//! domain pods share. `matchLabelKeys` and `mismatchLabelKeys` are not read
//! here: since v1.31 the API server merges them into `labelSelector` when
//! the pod is created (upstream's scheduler does not read them either);
//! an API server that does not merge them leaves them without effect.

pub mod filter;
pub mod score;

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::cache::Namespaces;
use crate::selector::{Labels, Selector};

/// One affinity or anti-affinity term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    /// Namespaces named outright (the owner's own when neither these nor a
    /// selector are given).
    namespaces: HashSet<String>,
    /// Namespaces selected by their labels (nothing when not given).
    namespace_selector: Selector,
    selector: Selector,
    pub topology_key: String,
    /// The preference's weight; 1 for required terms.
    pub weight: i64,
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("")
}

impl AffinityTerm {
    /// `term` as written in `owner`'s spec.
    pub fn new(owner: &Pod, term: &PodAffinityTerm, weight: i64) -> AffinityTerm {
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(namespace(owner).to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector: Selector::new(term.namespace_selector.as_ref()),
            selector: Selector::new(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// Whether `pod`, in a namespace labelled `namespace_labels`, is one
    /// the term selects.
    pub fn matches(&self, pod: &Pod, namespace_labels: Option<&Labels>) -> bool {
        (self.namespaces.contains(namespace(pod))
            || self.namespace_selector.matches(namespace_labels))
            && self.selector.matches(pod.metadata.labels.as_ref())
    }

    /// Turns a namespace selector into the names of the namespaces it
    /// selects now, as upstream does for the incoming pod's terms, so
    /// matching needs no namespace lookup. An empty selector (every
    /// namespace) is kept as it is.
    fn resolve_namespaces(&mut self, namespaces: &Namespaces) {
        if self.namespace_selector.is_empty() || self.namespace_selector.is_nothing() {
            return;
        }
        for (name, labels) in namespaces.iter() {
            if self.namespace_selector.matches(Some(labels)) {
                self.namespaces.insert(name.clone());
            }
        }
        self.namespace_selector = Selector::nothing();
    }
}

/// A pod's inter-pod affinity and anti-affinity terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAffinity {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
}

fn required(pod: &Pod, terms: Option<&Vec<PodAffinityTerm>>) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(pod, t, 1))
        .collect()
}

fn preferred(pod: &Pod, terms: Option<&Vec<WeightedPodAffinityTerm>>) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(pod, &t.pod_affinity_term, i64::from(t.weight)))
        .collect()
}

impl PodAffinity {
    /// The terms of `pod`; `None` when it has none at all.
    pub fn of(pod: &Pod) -> Option<PodAffinity> {
        let affinity = pod.spec.as_ref()?.affinity.as_ref()?;
        let on = affinity.pod_affinity.as_ref();
        let anti = affinity.pod_anti_affinity.as_ref();
        let terms = PodAffinity {
            required_affinity: required(
                pod,
                on.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            required_anti_affinity: required(
                pod,
                anti.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            preferred_affinity: preferred(
                pod,
                on.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            preferred_anti_affinity: preferred(
                pod,
                anti.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
        };
        (!terms.is_empty()).then_some(terms)
    }

    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }

    pub fn has_required(&self) -> bool {
        !self.required_affinity.is_empty() || !self.required_anti_affinity.is_empty()
    }

    pub fn has_preferred(&self) -> bool {
        !self.preferred_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }

    /// The incoming pod's terms with their namespace selectors resolved
    /// against the namespaces that exist now.
    pub fn resolved(&self, namespaces: &Namespaces) -> PodAffinity {
        let mut terms = self.clone();
        for t in terms
            .required_affinity
            .iter_mut()
            .chain(&mut terms.required_anti_affinity)
            .chain(&mut terms.preferred_affinity)
            .chain(&mut terms.preferred_anti_affinity)
        {
            t.resolve_namespaces(namespaces);
        }
        terms
    }
}

/// Whether `pod` matches every one of `terms` (and there is at least one).
pub fn matches_all(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::filter::tests::pod_requesting;
    use crate::selector::tests::{labels, match_labels};
    use k8s_openapi::api::core::v1::{Affinity, PodAntiAffinity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    pub(crate) fn term(selector: &[(&str, &str)], topology_key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(match_labels(selector)),
            topology_key: topology_key.into(),
            ..Default::default()
        }
    }

    pub(crate) fn labelled_pod(name: &str, ns: &str, pairs: &[(&str, &str)]) -> Pod {
        let mut p = pod_requesting(name, &[]);
        p.metadata.namespace = Some(ns.into());
        p.metadata.labels = Some(labels(pairs));
        p
    }

    #[test]
    fn a_term_without_namespaces_means_the_owners() {
        let owner = labelled_pod("o", "team-a", &[]);
        let t = AffinityTerm::new(&owner, &term(&[("app", "db")], "zone"), 1);
        assert!(t.matches(&labelled_pod("x", "team-a", &[("app", "db")]), None));
        assert!(!t.matches(&labelled_pod("x", "team-b", &[("app", "db")]), None));
        assert!(!t.matches(&labelled_pod("x", "team-a", &[("app", "web")]), None));
    }

    #[test]
    fn namespaces_by_name_and_by_selector() {
        let owner = labelled_pod("o", "team-a", &[]);
        let mut by_name = term(&[("app", "db")], "zone");
        by_name.namespaces = Some(vec!["team-b".into()]);
        let t = AffinityTerm::new(&owner, &by_name, 1);
        assert!(!t.matches(&labelled_pod("x", "team-a", &[("app", "db")]), None));
        assert!(t.matches(&labelled_pod("x", "team-b", &[("app", "db")]), None));

        let mut by_labels = term(&[("app", "db")], "zone");
        by_labels.namespace_selector = Some(match_labels(&[("env", "prod")]));
        let t = AffinityTerm::new(&owner, &by_labels, 1);
        let db = labelled_pod("x", "team-c", &[("app", "db")]);
        assert!(t.matches(&db, Some(&labels(&[("env", "prod")]))));
        assert!(!t.matches(&db, Some(&labels(&[("env", "dev")]))));
        assert!(!t.matches(&db, None));
        // Resolved against the namespaces that exist, no labels needed.
        let mut namespaces = Namespaces::default();
        namespaces.set("team-c", labels(&[("env", "prod")]));
        namespaces.set("team-d", labels(&[("env", "dev")]));
        let mut resolved = t.clone();
        resolved.resolve_namespaces(&namespaces);
        assert!(resolved.matches(&db, None));
        assert!(!resolved.matches(&labelled_pod("x", "team-d", &[("app", "db")]), None));

        let mut everywhere = term(&[("app", "db")], "zone");
        everywhere.namespace_selector = Some(LabelSelector::default());
        let mut t = AffinityTerm::new(&owner, &everywhere, 1);
        t.resolve_namespaces(&namespaces);
        assert!(t.matches(&labelled_pod("x", "unknown", &[("app", "db")]), None));
    }

    #[test]
    fn a_pod_without_pod_affinity_has_no_terms() {
        let mut p = labelled_pod("p", "default", &[]);
        assert_eq!(PodAffinity::of(&p), None);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(
                    &[("app", "web")],
                    "kubernetes.io/hostname",
                )]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let terms = PodAffinity::of(&p).unwrap();
        assert!(terms.has_required() && !terms.has_preferred());
        assert_eq!(terms.required_anti_affinity.len(), 1);
    }
}
