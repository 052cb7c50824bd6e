//! Filters: whether a pod may go to a node, and if not, upstream's reason
//! strings for the "0/N nodes are available: ..." message.
//!
//! They run in kube-scheduler's default order (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit; then
//! PodTopologySpread and InterPodAffinity, which need the whole cluster and
//! live in their own modules) and the first one that rejects a node
//! decides its reasons, as upstream stops at the first failing plugin. Each rejection also says whether evicting
//! lower-priority pods could help (upstream's `Unschedulable`, here
//! `resolvable`) or not (`UnschedulableAndUnresolvable`), which the
//! preemption part of the message depends on.
//!
//! A node whose Ready condition is not True is treated as carrying the
//! taint kube-controller-manager's node lifecycle controller would put on
//! it (`node.kubernetes.io/not-ready` or `.../unreachable`, NoSchedule), so
//! pods that tolerate it (DaemonSet pods) still go there and the message is
//! upstream's untolerated-taint one.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::node_info::{NodeInfo, PodInfo};

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// Nodes left out because the pod's required affinity names other nodes.
pub const REASON_NOT_NAMED: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
/// Every affinity term names nodes, and together they name none.
pub const REASON_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";

pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Why a node was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfit {
    pub reasons: Vec<String>,
    /// Whether removing pods from the node could make room (resources,
    /// ports), so preemption would consider it.
    pub resolvable: bool,
}

impl Unfit {
    pub fn unresolvable(reason: impl Into<String>) -> Unfit {
        Unfit {
            reasons: vec![reason.into()],
            resolvable: false,
        }
    }

    pub fn resolvable(reasons: Vec<String>) -> Unfit {
        Unfit {
            reasons,
            resolvable: true,
        }
    }
}

pub type FilterResult = Result<(), Unfit>;

fn spec_of(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodSpec> {
    pod.spec.as_ref()
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    spec_of(pod)
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// Whether one toleration tolerates one taint: same effect (or none
/// given), same key (or none given, which only `Exists` may do), and with
/// `Equal` (the default) the same value.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        ..Default::default()
    }
}

/// The node's taints, plus the not-ready/unreachable one its Ready
/// condition implies (unless the node carries that key already).
pub fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let implied = match ready {
        Some("True") => None,
        Some("False") => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    };
    if let Some(key) = implied {
        if !taints.iter().any(|t| t.key == key) {
            taints.push(taint(key, "NoSchedule"));
        }
    }
    taints
}

/// NodeUnschedulable: a cordoned node takes only pods that tolerate the
/// `node.kubernetes.io/unschedulable:NoSchedule` taint.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> FilterResult {
    unschedulable(pod, is_cordoned(node))
}

/// Whether `spec.unschedulable` is set.
pub fn is_cordoned(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn unschedulable(pod: &Pod, cordoned: bool) -> FilterResult {
    if !cordoned {
        return Ok(());
    }
    let cordon = taint(TAINT_UNSCHEDULABLE, "NoSchedule");
    if !tolerations(pod).iter().any(|t| tolerates(t, &cordon)) {
        return Err(Unfit::unresolvable(REASON_UNSCHEDULABLE));
    }
    Ok(())
}

/// TaintToleration: the first NoSchedule or NoExecute taint no toleration
/// covers rejects the node.
pub fn taint_toleration(pod: &Pod, node: &Node) -> FilterResult {
    untolerated_taints(pod, &effective_taints(node))
}

/// The same against a node's effective taints, read once.
pub fn untolerated_taints(pod: &Pod, taints: &[Taint]) -> FilterResult {
    if taints.is_empty() {
        return Ok(());
    }
    let tolerations = tolerations(pod);
    let untolerated = taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    });
    match untolerated {
        Some(t) => Err(Unfit::unresolvable(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        ))),
        None => Ok(()),
    }
}

fn label_requirement(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let have = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => !values.is_empty() && have.is_some_and(|v| values.contains(v)),
        "NotIn" => !values.is_empty() && !have.is_some_and(|v| values.contains(v)),
        "Exists" => values.is_empty() && have.is_some(),
        "DoesNotExist" => values.is_empty() && have.is_none(),
        op @ ("Gt" | "Lt") => {
            let [bound] = values else {
                return false;
            };
            let (Ok(bound), Some(Ok(have))) =
                (bound.parse::<i64>(), have.map(|v| v.parse::<i64>()))
            else {
                return false;
            };
            if op == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// Only `metadata.name` may be selected, with In or NotIn and one value.
fn field_requirement(r: &NodeSelectorRequirement, node_name: &str) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match (r.key.as_str(), r.operator.as_str(), values) {
        ("metadata.name", "In", [v]) => v == node_name,
        ("metadata.name", "NotIn", [v]) => v != node_name,
        _ => false,
    }
}

/// A term matches when it has at least one requirement and all of them
/// (label expressions and fields) hold.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or("");
    expressions.iter().all(|r| label_requirement(r, labels))
        && fields.iter().all(|r| field_requirement(r, name))
}

fn required_terms(pod: &Pod) -> Option<&[NodeSelectorTerm]> {
    spec_of(pod)?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|s| s.node_selector_terms.as_slice())
}

/// NodeAffinity: every `nodeSelector` label matches, and (if the pod has
/// required node affinity) at least one of its terms does.
pub fn node_affinity(pod: &Pod, node: &Node) -> FilterResult {
    let selector = spec_of(pod).and_then(|s| s.node_selector.as_ref());
    let terms = required_terms(pod);
    if selector.is_none() && terms.is_none() {
        return Ok(());
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = selector.is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let affinity_ok = terms.is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)));
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Unfit::unresolvable(REASON_NODE_AFFINITY))
    }
}

/// NodePorts: none of the pod's host ports may collide with one already
/// bound on the node.
pub fn node_ports(wanted: &PodInfo, info: &NodeInfo) -> FilterResult {
    let clash = wanted
        .ports
        .iter()
        .any(|p| info.used_ports.iter().any(|used| used.conflicts(p)));
    if clash {
        Err(Unfit::resolvable(vec![REASON_PORTS.into()]))
    } else {
        Ok(())
    }
}

/// NodeResourcesFit: room for one more pod, and for every resource the
/// pod requests, allocatable minus what the node's pods request covers it.
/// All shortfalls are reported.
pub fn node_resources_fit(wanted: &PodInfo, info: &NodeInfo) -> FilterResult {
    let mut reasons = Vec::new();
    if info.pods.len() as i64 + 1 > info.allowed_pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let want = &wanted.requests;
    let (alloc, used) = (&info.allocatable, &info.requested);
    if !want.is_zero() {
        for (name, want, alloc, used) in [
            ("cpu", want.milli_cpu, alloc.milli_cpu, used.milli_cpu),
            ("memory", want.memory, alloc.memory, used.memory),
            (
                "ephemeral-storage",
                want.ephemeral_storage,
                alloc.ephemeral_storage,
                used.ephemeral_storage,
            ),
        ] {
            if want > 0 && want > alloc - used {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        for (name, &amount) in &want.scalar {
            if amount > 0 && amount > alloc.scalar(name) - used.scalar(name) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Unfit::resolvable(reasons))
    }
}

/// All filters in upstream's order; the first rejection wins.
pub fn run_filters(wanted: &PodInfo, info: &NodeInfo) -> FilterResult {
    unschedulable(wanted.pod, info.unschedulable)?;
    untolerated_taints(wanted.pod, &info.taints)?;
    node_affinity(wanted.pod, &info.node)?;
    node_ports(wanted, info)?;
    node_resources_fit(wanted, info)
}

/// What the NodeAffinity pre-filter decides before any node is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreFilter {
    /// Every node is a candidate.
    AllNodes,
    /// Only these nodes can match: every required term selects
    /// `metadata.name In [...]` (DaemonSet pods do). The others are
    /// reported as `REASON_NOT_NAMED`.
    Nodes(BTreeSet<String>),
    /// No node can match.
    Reject(Unfit),
}

pub fn prefilter(pod: &Pod) -> PreFilter {
    let Some(terms) = required_terms(pod).filter(|t| !t.is_empty()) else {
        return PreFilter::AllNodes;
    };
    let mut names = BTreeSet::new();
    for term in terms {
        // Requirements in a term are ANDed: intersect their name sets.
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let these: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    Some(before) => before.intersection(&these).cloned().collect(),
                    None => these,
                });
            }
        }
        // Terms are ORed: one without a name requirement lets every node in.
        let Some(term_names) = term_names else {
            return PreFilter::AllNodes;
        };
        names.extend(term_names);
    }
    if names.is_empty() {
        PreFilter::Reject(Unfit::unresolvable(REASON_AFFINITY_CONFLICT))
    } else {
        PreFilter::Nodes(names)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::tests::list;
    use k8s_openapi::api::core::v1::{
        Affinity, Container, ContainerPort, NodeAffinity, NodeCondition, NodeSelector, NodeSpec,
        NodeStatus, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::sync::Arc;

    pub(crate) fn node(name: &str, alloc: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(list(alloc)),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    pub(crate) fn pod_requesting(name: &str, req: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(list(req)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn plain_pod() -> Pod {
        pod_requesting("p", &[])
    }

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Toleration {
            key: opt(key),
            operator: opt(op),
            value: opt(value),
            effect: opt(effect),
            ..Default::default()
        }
    }

    fn tainted(key: &str, value: &str, effect: &str) -> Node {
        let mut n = node("n", &[]);
        n.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.into()),
            effect: effect.into(),
            ..Default::default()
        }]);
        n
    }

    fn with_tolerations(ts: Vec<Toleration>) -> Pod {
        let mut p = plain_pod();
        p.spec.as_mut().unwrap().tolerations = Some(ts);
        p
    }

    #[test]
    fn toleration_matching_rules() {
        let t = Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        assert!(tolerates(
            &toleration("dedicated", "Equal", "gpu", "NoSchedule"),
            &t
        ));
        assert!(
            tolerates(&toleration("dedicated", "", "gpu", ""), &t),
            "Equal is the default"
        );
        assert!(!tolerates(
            &toleration("dedicated", "Equal", "cpu", "NoSchedule"),
            &t
        ));
        assert!(tolerates(&toleration("dedicated", "Exists", "", ""), &t));
        assert!(!tolerates(
            &toleration("dedicated", "Exists", "", "NoExecute"),
            &t
        ));
        assert!(!tolerates(&toleration("other", "Exists", "", ""), &t));
        assert!(
            tolerates(&toleration("", "Exists", "", ""), &t),
            "tolerates everything"
        );
        assert!(tolerates(&toleration("", "Exists", "", "NoSchedule"), &t));
        assert!(!tolerates(
            &toleration("dedicated", "Sideways", "gpu", ""),
            &t
        ));
    }

    #[test]
    fn untolerated_taints_reject_with_key_and_value() {
        let n = tainted("dedicated", "gpu", "NoSchedule");
        let err = taint_toleration(&plain_pod(), &n).unwrap_err();
        assert_eq!(
            err.reasons,
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
        assert!(!err.resolvable);
        let ok = with_tolerations(vec![toleration("dedicated", "Equal", "gpu", "NoSchedule")]);
        assert_eq!(taint_toleration(&ok, &n), Ok(()));

        let n = tainted("maintenance", "", "NoExecute");
        assert_eq!(
            taint_toleration(&plain_pod(), &n).unwrap_err().reasons,
            ["node(s) had untolerated taint {maintenance: }"]
        );
        let n = tainted("soft", "x", "PreferNoSchedule");
        assert_eq!(
            taint_toleration(&plain_pod(), &n),
            Ok(()),
            "only a preference"
        );
    }

    #[test]
    fn a_node_that_is_not_ready_is_tainted() {
        let mut n = node("n", &[]);
        let set_ready = |n: &mut Node, status: Option<&str>| {
            n.status.as_mut().unwrap().conditions = status.map(|s| {
                vec![NodeCondition {
                    type_: "Ready".into(),
                    status: s.into(),
                    ..Default::default()
                }]
            });
        };
        assert_eq!(taint_toleration(&plain_pod(), &n), Ok(()));
        set_ready(&mut n, Some("False"));
        assert_eq!(
            taint_toleration(&plain_pod(), &n).unwrap_err().reasons,
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
        let tolerant = with_tolerations(vec![toleration(TAINT_NOT_READY, "Exists", "", "")]);
        assert_eq!(taint_toleration(&tolerant, &n), Ok(()));
        set_ready(&mut n, Some("Unknown"));
        assert_eq!(
            taint_toleration(&plain_pod(), &n).unwrap_err().reasons,
            ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
        );
        set_ready(&mut n, None);
        assert!(
            taint_toleration(&plain_pod(), &n).is_err(),
            "no condition: unknown"
        );
        // A node already carrying the taint keeps its own (NoExecute) one.
        let mut n = tainted(TAINT_NOT_READY, "", "NoExecute");
        set_ready(&mut n, Some("False"));
        assert_eq!(effective_taints(&n).len(), 1);
    }

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let mut n = node("n", &[]);
        assert_eq!(node_unschedulable(&plain_pod(), &n), Ok(()));
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        let err = node_unschedulable(&plain_pod(), &n).unwrap_err();
        assert_eq!(err, Unfit::unresolvable("node(s) were unschedulable"));
        let tolerant = with_tolerations(vec![toleration(
            TAINT_UNSCHEDULABLE,
            "Exists",
            "",
            "NoSchedule",
        )]);
        assert_eq!(node_unschedulable(&tolerant, &n), Ok(()));
        let wrong_effect = with_tolerations(vec![toleration(
            TAINT_UNSCHEDULABLE,
            "Exists",
            "",
            "NoExecute",
        )]);
        assert!(node_unschedulable(&wrong_effect, &n).is_err());
    }

    pub(crate) fn labelled(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut n = node(name, &[]);
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n
    }

    pub(crate) fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    pub(crate) fn term(
        exprs: Vec<NodeSelectorRequirement>,
        fields: Vec<NodeSelectorRequirement>,
    ) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: (!exprs.is_empty()).then_some(exprs),
            match_fields: (!fields.is_empty()).then_some(fields),
        }
    }

    pub(crate) fn with_affinity(mut p: Pod, terms: Vec<NodeSelectorTerm>) -> Pod {
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    #[test]
    fn node_selector_labels_must_all_match() {
        let n = labelled("n", &[("disk", "ssd"), ("zone", "a")]);
        let mut p = plain_pod();
        assert_eq!(node_affinity(&p, &n), Ok(()));
        p.spec.as_mut().unwrap().node_selector =
            Some([("disk".to_string(), "ssd".to_string())].into());
        assert_eq!(node_affinity(&p, &n), Ok(()));
        p.spec
            .as_mut()
            .unwrap()
            .node_selector
            .as_mut()
            .unwrap()
            .insert("zone".into(), "b".into());
        assert_eq!(
            node_affinity(&p, &n),
            Err(Unfit::unresolvable(
                "node(s) didn't match Pod's node affinity/selector"
            ))
        );
    }

    #[test]
    fn expression_operators() {
        let labels: BTreeMap<String, String> = [("zone", "a"), ("cores", "8")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let cases = [
            (req("zone", "In", &["a", "b"]), true),
            (req("zone", "In", &["b"]), false),
            (req("missing", "In", &["a"]), false),
            (req("zone", "In", &[]), false),
            (req("zone", "NotIn", &["b"]), true),
            (req("zone", "NotIn", &["a"]), false),
            (req("missing", "NotIn", &["a"]), true),
            (req("zone", "Exists", &[]), true),
            (req("missing", "Exists", &[]), false),
            (req("zone", "Exists", &["a"]), false),
            (req("missing", "DoesNotExist", &[]), true),
            (req("zone", "DoesNotExist", &[]), false),
            (req("cores", "Gt", &["4"]), true),
            (req("cores", "Gt", &["8"]), false),
            (req("cores", "Lt", &["16"]), true),
            (req("cores", "Lt", &["8"]), false),
            (req("cores", "Gt", &["4", "5"]), false),
            (req("cores", "Gt", &["four"]), false),
            (req("zone", "Gt", &["1"]), false),
            (req("missing", "Lt", &["1"]), false),
            (req("zone", "Like", &["a"]), false),
        ];
        for (r, want) in cases {
            assert_eq!(label_requirement(&r, &labels), want, "{r:?}");
        }
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let n = labelled("node-1", &[("zone", "a"), ("disk", "ssd")]);
        let both = term(
            vec![req("zone", "In", &["a"]), req("disk", "In", &["hdd"])],
            vec![],
        );
        let other = term(vec![req("zone", "In", &["b"])], vec![]);
        assert!(node_affinity(
            &with_affinity(plain_pod(), vec![both.clone(), other.clone()]),
            &n
        )
        .is_err());
        let good = term(vec![req("disk", "Exists", &[])], vec![]);
        assert_eq!(
            node_affinity(&with_affinity(plain_pod(), vec![both, good]), &n),
            Ok(())
        );
        assert!(
            node_affinity(&with_affinity(plain_pod(), vec![term(vec![], vec![])]), &n).is_err(),
            "an empty term matches nothing"
        );
        assert!(
            node_affinity(&with_affinity(plain_pod(), vec![]), &n).is_err(),
            "no terms match nothing"
        );
        // Selector and affinity must both hold.
        let mut p = with_affinity(
            plain_pod(),
            vec![term(vec![req("zone", "In", &["a"])], vec![])],
        );
        p.spec.as_mut().unwrap().node_selector =
            Some([("disk".to_string(), "hdd".to_string())].into());
        assert!(node_affinity(&p, &n).is_err());
    }

    #[test]
    fn match_fields_select_the_node_name() {
        let n = labelled("node-1", &[("zone", "a")]);
        let by_name = |op: &str, name: &str| {
            with_affinity(
                plain_pod(),
                vec![term(vec![], vec![req("metadata.name", op, &[name])])],
            )
        };
        assert_eq!(node_affinity(&by_name("In", "node-1"), &n), Ok(()));
        assert!(node_affinity(&by_name("In", "node-2"), &n).is_err());
        assert_eq!(node_affinity(&by_name("NotIn", "node-2"), &n), Ok(()));
        assert!(node_affinity(&by_name("NotIn", "node-1"), &n).is_err());
        assert!(node_affinity(&by_name("Exists", ""), &n).is_err());
        let other_field = with_affinity(
            plain_pod(),
            vec![term(vec![], vec![req("metadata.uid", "In", &["x"])])],
        );
        assert!(node_affinity(&other_field, &n).is_err());
        // Fields and expressions in one term are ANDed.
        let mixed = with_affinity(
            plain_pod(),
            vec![term(
                vec![req("zone", "In", &["b"])],
                vec![req("metadata.name", "In", &["node-1"])],
            )],
        );
        assert!(node_affinity(&mixed, &n).is_err());
    }

    #[test]
    fn prefilter_narrows_to_named_nodes() {
        let named = |names: &[&str]| term(vec![], vec![req("metadata.name", "In", names)]);
        assert_eq!(prefilter(&plain_pod()), PreFilter::AllNodes);
        let p = with_affinity(plain_pod(), vec![named(&["a"]), named(&["b", "c"])]);
        assert_eq!(
            prefilter(&p),
            PreFilter::Nodes(["a", "b", "c"].map(String::from).into())
        );
        let p = with_affinity(
            plain_pod(),
            vec![
                named(&["a"]),
                term(vec![req("zone", "Exists", &[])], vec![]),
            ],
        );
        assert_eq!(
            prefilter(&p),
            PreFilter::AllNodes,
            "a term without names admits all"
        );
        let p = with_affinity(
            plain_pod(),
            vec![term(
                vec![],
                vec![
                    req("metadata.name", "In", &["a"]),
                    req("metadata.name", "In", &["b"]),
                ],
            )],
        );
        assert_eq!(
            prefilter(&p),
            PreFilter::Reject(Unfit::unresolvable("pod affinity terms conflict"))
        );
    }

    fn port_pod(port: i32, ip: Option<&str>) -> Pod {
        let mut p = plain_pod();
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(port),
            host_ip: ip.map(String::from),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn host_ports_must_be_free() {
        let info = NodeInfo::with_pods(
            Arc::new(node("n", &[("pods", "10")])),
            [Arc::new(port_pod(8080, Some("10.0.0.1")))],
        );
        let p = port_pod(8080, None);
        let err = node_ports(&PodInfo::new(&p), &info).unwrap_err();
        assert_eq!(
            err.reasons,
            ["node(s) didn't have free ports for the requested pod ports"]
        );
        assert!(err.resolvable);
        let p = port_pod(8080, Some("10.0.0.2"));
        assert_eq!(node_ports(&PodInfo::new(&p), &info), Ok(()));
        let p = port_pod(8081, None);
        assert_eq!(node_ports(&PodInfo::new(&p), &info), Ok(()));
        assert_eq!(node_ports(&PodInfo::new(&plain_pod()), &info), Ok(()));
    }

    #[test]
    fn resources_fit_against_allocatable_minus_requests() {
        let n = Arc::new(node(
            "n",
            &[
                ("cpu", "2"),
                ("memory", "4Gi"),
                ("pods", "3"),
                ("ephemeral-storage", "10Gi"),
            ],
        ));
        let on_node = [
            Arc::new(pod_requesting("a", &[("cpu", "1500m"), ("memory", "1Gi")])),
            Arc::new(pod_requesting("b", &[("ephemeral-storage", "9Gi")])),
        ];
        let info = NodeInfo::with_pods(n.clone(), on_node.clone());
        let fit = |req: &[(&str, &str)]| {
            let p = pod_requesting("new", req);
            node_resources_fit(&PodInfo::new(&p), &info)
        };
        assert_eq!(
            fit(&[("cpu", "500m"), ("memory", "3Gi")]),
            Ok(()),
            "exactly full"
        );
        assert_eq!(
            fit(&[("cpu", "501m")]),
            Err(Unfit::resolvable(vec!["Insufficient cpu".into()]))
        );
        assert_eq!(
            fit(&[
                ("cpu", "1"),
                ("memory", "4Gi"),
                ("ephemeral-storage", "2Gi")
            ]),
            Err(Unfit::resolvable(vec![
                "Insufficient cpu".into(),
                "Insufficient memory".into(),
                "Insufficient ephemeral-storage".into()
            ]))
        );
        assert_eq!(
            fit(&[("example.com/gpu", "1")]),
            Err(Unfit::resolvable(vec![
                "Insufficient example.com/gpu".into()
            ]))
        );
        assert_eq!(fit(&[]), Ok(()), "requests nothing");

        // The pod count is checked even for pods that request nothing.
        let full = NodeInfo::with_pods(n, on_node.into_iter().chain([Arc::new(plain_pod())]));
        let p = plain_pod();
        assert_eq!(
            node_resources_fit(&PodInfo::new(&p), &full),
            Err(Unfit::resolvable(vec!["Too many pods".into()]))
        );
        let p = pod_requesting("big", &[("cpu", "1")]);
        assert_eq!(
            node_resources_fit(&PodInfo::new(&p), &full)
                .unwrap_err()
                .reasons,
            ["Too many pods", "Insufficient cpu"]
        );
    }

    #[test]
    fn first_failing_filter_decides() {
        let mut n = tainted("dedicated", "gpu", "NoSchedule");
        n.status.as_mut().unwrap().allocatable = Some(list(&[("cpu", "1"), ("pods", "10")]));
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        let info = NodeInfo::new(Arc::new(n));
        let p = pod_requesting("p", &[("cpu", "2")]);
        assert_eq!(
            run_filters(&PodInfo::new(&p), &info).unwrap_err().reasons,
            ["node(s) were unschedulable"]
        );
        let mut info2 = info.clone();
        let mut uncordoned = (*info.node).clone();
        uncordoned.spec.as_mut().unwrap().unschedulable = None;
        info2.set_node(Arc::new(uncordoned));
        assert_eq!(
            run_filters(&PodInfo::new(&p), &info2).unwrap_err().reasons,
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
        let tolerant = {
            let mut t = p.clone();
            t.spec.as_mut().unwrap().tolerations =
                Some(vec![toleration("dedicated", "Exists", "", "")]);
            t
        };
        assert_eq!(
            run_filters(&PodInfo::new(&tolerant), &info2)
                .unwrap_err()
                .reasons,
            ["Insufficient cpu"]
        );
    }
}
