//! Pod topology spread (upstream's PodTopologySpread plugin): the pod's
//! `topologySpreadConstraints` read once, the filter for
//! `whenUnsatisfiable: DoNotSchedule` (`filter`) and the score for
//! `ScheduleAnyway` (`score`).
//!
//! A constraint counts the pods its selector matches in the incoming
//! pod's namespace (terminating pods excluded) per domain, the values of
//! its `topologyKey` on the nodes that count: nodes carrying every
//! constraint's key, matching the pod's node selector and required node
//! affinity (`nodeAffinityPolicy: Honor`, the default) and, only with
//! `nodeTaintsPolicy: Honor`, whose NoSchedule/NoExecute taints the pod
//! tolerates (a node not Ready counts as tainted, as in the filter).
//! `matchLabelKeys` add `key = <the pod's value>` to the selector for each
//! key the pod has (v1.33's scheduler does this itself).
//!
//! System default spreading, for pods with no constraints at all, is
//! upstream's: `kubernetes.io/hostname` maxSkew 3 and
//! `topology.kubernetes.io/zone` maxSkew 5, both ScheduleAnyway. Upstream
//! builds their selector from the Services, ReplicationControllers,
//! ReplicaSets and StatefulSets selecting the pod; rkube watches none of
//! those, so the defaults apply to pods whose controller (ownerReference)
//! is a ReplicationController, ReplicaSet or StatefulSet, and match the
//! pods of that same controller. Pods selected only by a Service get no
//! default spreading.

pub mod filter;
pub mod score;

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};

use crate::filter::{effective_taints, node_affinity, tolerates};
use crate::node_info::{PlacedPod, PodInfo};
use crate::selector::{Labels, Selector};

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
pub const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// Which pods a constraint counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Labels(Selector),
    /// The pods of one controller (by UID): the system defaults.
    Controller(String),
}

impl Matcher {
    pub fn matches(&self, pod: &Pod) -> bool {
        match self {
            Matcher::Labels(s) => s.matches(pod.metadata.labels.as_ref()),
            Matcher::Controller(uid) => controller_uid(pod) == Some(uid.as_str()),
        }
    }

    /// Upstream counts nothing for a selector without requirements.
    fn counts_nothing(&self) -> bool {
        matches!(self, Matcher::Labels(s) if s.is_empty())
    }
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// One spread constraint, ready to count with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub matcher: Matcher,
    pub min_domains: i64,
    pub honor_node_affinity: bool,
    pub honor_node_taints: bool,
}

fn spec_constraints(pod: &Pod) -> &[TopologySpreadConstraint] {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[])
}

/// Whether the pod names any constraint (of either kind).
pub fn has_constraints(pod: &Pod) -> bool {
    !spec_constraints(pod).is_empty()
}

/// The pod's constraints with `whenUnsatisfiable == when`.
pub fn constraints(pod: &Pod, when: &str) -> Vec<Constraint> {
    spec_constraints(pod)
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = Selector::new(c.label_selector.as_ref());
            let labels = pod.metadata.labels.as_ref();
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = labels.and_then(|l| l.get(key)) {
                    selector.and_equal(key, value);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                matcher: Matcher::Labels(selector),
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

const SPREAD_KINDS: [&str; 3] = ["ReplicationController", "ReplicaSet", "StatefulSet"];

/// The system default constraints for `pod`, if it has a controller they
/// apply to.
pub fn default_constraints(pod: &Pod) -> Vec<Constraint> {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && SPREAD_KINDS.contains(&r.kind.as_str()));
    let Some(controller) = controller else {
        return Vec::new();
    };
    [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)]
        .into_iter()
        .map(|(key, max_skew)| Constraint {
            max_skew,
            topology_key: key.into(),
            matcher: Matcher::Controller(controller.uid.clone()),
            min_domains: 1,
            honor_node_affinity: true,
            honor_node_taints: false,
        })
        .collect()
}

impl Constraint {
    /// Whether the node's domain counts for `wanted`, by the inclusion
    /// policies.
    pub fn includes(&self, wanted: &PodInfo, node: &Node) -> bool {
        if self.honor_node_affinity && node_affinity(wanted.pod, node).is_err() {
            return false;
        }
        if self.honor_node_taints {
            let tolerations = wanted
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or(&[]);
            let untolerated = effective_taints(node).iter().any(|taint| {
                matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                    && !tolerations.iter().any(|t| tolerates(t, taint))
            });
            if untolerated {
                return false;
            }
        }
        true
    }

    /// Whether a pod placed somewhere counts for this constraint.
    pub fn counts(&self, placed: &Pod, namespace: &str) -> bool {
        placed.metadata.deletion_timestamp.is_none()
            && placed.metadata.namespace.as_deref().unwrap_or("") == namespace
            && self.matcher.matches(placed)
    }

    /// How many of a node's pods count.
    pub fn count(&self, pods: &[PlacedPod], namespace: &str) -> i64 {
        if self.matcher.counts_nothing() {
            return 0;
        }
        pods.iter()
            .filter(|p| self.counts(&p.pod, namespace))
            .count() as i64
    }
}

/// Whether the node has every constraint's topology key.
pub fn has_all_keys(constraints: &[Constraint], labels: &Labels) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::selector::tests::{labels, match_labels};

    pub(crate) fn spread(
        key: &str,
        max_skew: i32,
        when: &str,
        selector: &[(&str, &str)],
    ) -> TopologySpreadConstraint {
        TopologySpreadConstraint {
            label_selector: Some(match_labels(selector)),
            max_skew,
            topology_key: key.into(),
            when_unsatisfiable: when.into(),
            ..Default::default()
        }
    }

    #[test]
    fn match_label_keys_narrow_the_selector_and_defaults_apply() {
        let mut p = crate::interpod::tests::labelled_pod(
            "p",
            "default",
            &[("app", "web"), ("pod-template-hash", "abc")],
        );
        let mut c = spread(LABEL_ZONE, 1, DO_NOT_SCHEDULE, &[("app", "web")]);
        c.match_label_keys = Some(vec!["pod-template-hash".into(), "missing".into()]);
        p.spec.as_mut().unwrap().topology_spread_constraints = Some(vec![
            c,
            spread(LABEL_HOSTNAME, 2, SCHEDULE_ANYWAY, &[("app", "web")]),
        ]);
        let hard = constraints(&p, DO_NOT_SCHEDULE);
        assert_eq!(hard.len(), 1);
        let Matcher::Labels(s) = &hard[0].matcher else {
            panic!("a label selector")
        };
        assert!(s.matches(Some(&labels(&[
            ("app", "web"),
            ("pod-template-hash", "abc")
        ]))));
        assert!(!s.matches(Some(&labels(&[
            ("app", "web"),
            ("pod-template-hash", "def")
        ]))));
        assert_eq!(
            (
                hard[0].min_domains,
                hard[0].honor_node_affinity,
                hard[0].honor_node_taints
            ),
            (1, true, false)
        );
        assert_eq!(constraints(&p, SCHEDULE_ANYWAY).len(), 1);
        assert!(default_constraints(&p).is_empty(), "no controller");
    }
}
