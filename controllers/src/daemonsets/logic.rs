//! DaemonSet decisions, without IO: which nodes should run the daemon
//! (the scheduler's node-affinity and taint filters on the pod template,
//! with the tolerations upstream adds to daemon pods), the pod pinned to
//! one node, and which node a daemon pod is for.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Toleration,
};

pub const HASH_LABEL: &str = "controller-revision-hash";

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    }
}

/// The template with the tolerations every daemon pod gets: it keeps
/// running through node trouble and may land on cordoned nodes.
pub fn with_daemon_tolerations(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    let spec = t.spec.get_or_insert_with(Default::default);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let mut wanted = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    for w in wanted {
        if !tolerations
            .iter()
            .any(|t| t.key == w.key && t.effect == w.effect)
        {
            tolerations.push(w);
        }
    }
    t
}

fn template_pod(ds: &DaemonSet) -> Pod {
    let template = with_daemon_tolerations(&ds.spec.clone().unwrap_or_default().template);
    Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        status: None,
    }
}

/// Whether `node` should run a pod of `ds`.
pub fn should_run(ds: &DaemonSet, node: &Node) -> bool {
    let pod = template_pod(ds);
    scheduler::filter::node_affinity(&pod, node).is_ok()
        && scheduler::filter::taint_toleration(&pod, node).is_ok()
}

/// The node a daemon pod is for: where it is bound, or the node its
/// required affinity names while it waits for the scheduler.
pub fn node_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

/// The pod template pinned to `node` through required node affinity on
/// `metadata.name` (so the scheduler binds it there, as upstream does).
pub fn pinned_template(template: &PodTemplateSpec, node: &str) -> PodTemplateSpec {
    let mut t = with_daemon_tolerations(template);
    let spec = t.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, PodSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>, unschedulable: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                unschedulable: Some(unschedulable),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn ds(selector: Option<(&str, &str)>) -> DaemonSet {
        DaemonSet {
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        node_selector: selector
                            .map(|(k, v)| [(k.to_string(), v.to_string())].into()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn eligibility_follows_selectors_and_taints_but_not_cordons() {
        let plain = node("a", &[], vec![], false);
        let cordoned = node("b", &[], vec![], true);
        let tainted = node(
            "c",
            &[],
            vec![Taint {
                key: "dedicated".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }],
            false,
        );
        let labelled = node("d", &[("disk", "ssd")], vec![], false);
        let all = ds(None);
        assert!(should_run(&all, &plain));
        assert!(should_run(&all, &cordoned));
        assert!(!should_run(&all, &tainted));
        let ssd = ds(Some(("disk", "ssd")));
        assert!(!should_run(&ssd, &plain));
        assert!(should_run(&ssd, &labelled));
    }

    #[test]
    fn pinned_pods_name_their_node() {
        let t = pinned_template(&ds(None).spec.unwrap().template, "n7");
        let pod = Pod {
            metadata: Default::default(),
            spec: t.spec,
            status: None,
        };
        assert_eq!(node_of(&pod).as_deref(), Some("n7"));
    }
}
