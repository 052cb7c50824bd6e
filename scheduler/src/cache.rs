//! Assume, then confirm: the pods this scheduler has placed but the pod
//! watch does not show bound yet, and the cluster view that counts them.
//!
//! A pod is assumed onto its node when the decision is made, before the
//! binding request goes out, and counted there by every later decision.
//! Once the pod store shows the pod bound (or shows it gone, or replaced by
//! another pod of the same name) the assumption is dropped: from then on
//! the store counts it. So a pod is counted exactly once, and two pods
//! never both take the last free slot while the watch lags behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::node_info::NodeInfo;

/// The node a pod is bound to, if any.
pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// A pod that has finished (or failed) takes no room on its node.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

#[derive(Debug)]
struct Assumed {
    namespace: String,
    name: String,
    /// The pod as bound (`spec.nodeName` set).
    pod: Arc<Pod>,
}

/// Pods placed by this scheduler and not yet seen bound, by UID.
#[derive(Debug, Default)]
pub struct Assumptions {
    by_uid: HashMap<String, Assumed>,
}

impl Assumptions {
    /// Counts `pod` on `node` from now on; returns the pod as bound.
    pub fn assume(&mut self, pod: &Pod, node: &str) -> Arc<Pod> {
        let mut bound = pod.clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        let bound = Arc::new(bound);
        self.by_uid.insert(
            uid(pod).to_string(),
            Assumed {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                pod: bound.clone(),
            },
        );
        bound
    }

    /// Stops counting a pod whose binding failed.
    pub fn forget(&mut self, pod_uid: &str) {
        self.by_uid.remove(pod_uid);
    }

    pub fn contains(&self, pod_uid: &str) -> bool {
        self.by_uid.contains_key(pod_uid)
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    /// Drops the assumptions the pod store has caught up with; `current`
    /// looks a pod up in the store by namespace and name.
    pub fn confirm(&mut self, current: impl Fn(&str, &str) -> Option<Arc<Pod>>) {
        self.by_uid
            .retain(|pod_uid, a| match current(&a.namespace, &a.name) {
                Some(p) if uid(&p) == pod_uid => node_name(&p).is_none(),
                _ => false,
            });
    }

    /// The cluster as the next decision sees it: every node, sorted by
    /// name, with the running pods bound to it and the pods assumed onto
    /// it, each counted once.
    pub fn snapshot(&self, nodes: Vec<Arc<Node>>, pods: Vec<Arc<Pod>>) -> Vec<NodeInfo> {
        let mut infos: BTreeMap<String, NodeInfo> = nodes
            .into_iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    NodeInfo::new(n),
                )
            })
            .collect();
        let bound = pods
            .into_iter()
            .filter(|p| node_name(p).is_some() && !is_terminal(p) && !self.contains(uid(p)));
        let assumed = self.by_uid.values().map(|a| a.pod.clone());
        for pod in bound.chain(assumed) {
            let node = node_name(&pod).unwrap_or_default().to_string();
            if let Some(info) = infos.get_mut(&node) {
                info.add_pod(pod);
            }
        }
        infos.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use k8s_openapi::api::core::v1::PodStatus;

    fn nodes() -> Vec<Arc<Node>> {
        vec![
            Arc::new(node("b", &[("cpu", "1")])),
            Arc::new(node("a", &[("cpu", "1")])),
        ]
    }

    fn bound_to(mut p: Pod, node: &str) -> Pod {
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    fn requested_on(infos: &[NodeInfo]) -> Vec<(String, i64)> {
        infos
            .iter()
            .map(|i| (i.name().to_string(), i.requested.milli_cpu))
            .collect()
    }

    fn lookup(store: &[Arc<Pod>]) -> impl Fn(&str, &str) -> Option<Arc<Pod>> + '_ {
        |ns, name| {
            store
                .iter()
                .find(|p| {
                    p.metadata.namespace.as_deref() == Some(ns)
                        && p.metadata.name.as_deref() == Some(name)
                })
                .cloned()
        }
    }

    #[test]
    fn an_assumed_pod_is_counted_once_until_and_after_the_watch_catches_up() {
        let pending = pod_requesting("p", &[("cpu", "600m")]);
        let mut assumed = Assumptions::default();
        let as_bound = assumed.assume(&pending, "a");
        assert_eq!(node_name(&as_bound), Some("a"));

        // The store still shows the pod pending: the assumption counts.
        let store = vec![Arc::new(pending.clone())];
        assumed.confirm(lookup(&store));
        assert_eq!(assumed.len(), 1);
        let view = assumed.snapshot(nodes(), store.clone());
        assert_eq!(requested_on(&view), [("a".into(), 600), ("b".into(), 0)]);

        // A snapshot taken while the store already shows it bound (before
        // `confirm` ran) still counts it once.
        let store = vec![Arc::new(bound_to(pending.clone(), "a"))];
        let view = assumed.snapshot(nodes(), store.clone());
        assert_eq!(requested_on(&view), [("a".into(), 600), ("b".into(), 0)]);

        // Confirmed: the store counts it from now on.
        assumed.confirm(lookup(&store));
        assert!(assumed.is_empty());
        let view = assumed.snapshot(nodes(), store);
        assert_eq!(requested_on(&view), [("a".into(), 600), ("b".into(), 0)]);
    }

    #[test]
    fn deleted_or_replaced_pods_are_forgotten() {
        let pending = pod_requesting("p", &[("cpu", "600m")]);
        let mut assumed = Assumptions::default();
        assumed.assume(&pending, "a");
        assumed.confirm(lookup(&[]));
        assert!(assumed.is_empty(), "deleted");

        assumed.assume(&pending, "a");
        let mut replacement = pending.clone();
        replacement.metadata.uid = Some("another".into());
        assumed.confirm(lookup(&[Arc::new(replacement)]));
        assert!(assumed.is_empty(), "same name, new pod");

        assumed.assume(&pending, "a");
        assumed.forget("uid-p");
        assert!(!assumed.contains("uid-p"));
    }

    #[test]
    fn finished_pods_and_unknown_nodes_take_no_room() {
        let mut done = bound_to(pod_requesting("done", &[("cpu", "1")]), "a");
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let running = bound_to(pod_requesting("run", &[("cpu", "300m")]), "b");
        let lost = bound_to(pod_requesting("lost", &[("cpu", "1")]), "gone");
        let pending = pod_requesting("wait", &[("cpu", "1")]);
        let view = Assumptions::default()
            .snapshot(nodes(), [done, running, lost, pending].map(Arc::new).into());
        assert_eq!(requested_on(&view), [("a".into(), 0), ("b".into(), 300)]);
        assert_eq!(view[1].pods.len(), 1);
    }
}
