//! The cluster as the next decision sees it, kept up to date one change
//! at a time: every node (sorted by name) with the pods counted on it,
//! and the labels of every namespace.
//!
//! Assume, then confirm: a pod is counted on its node from the moment this
//! scheduler decides (`assume`), before the binding request goes out, so
//! later decisions see the room taken even while the pod watch lags
//! behind. When the watch shows the pod bound it replaces the assumed copy
//! (counted once throughout); when the binding fails the assumption is
//! dropped (`forget`). Pods bound to a node the cache does not know (yet)
//! wait aside and count once the node appears.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::node_info::{NodeInfo, PlacedPod};
use crate::selector::Labels;

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

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

fn name_of(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// Namespace labels by namespace name (for affinity terms'
/// `namespaceSelector`).
#[derive(Clone, Debug, Default)]
pub struct Namespaces(HashMap<String, Labels>);

impl Namespaces {
    pub fn get(&self, name: &str) -> Option<&Labels> {
        self.0.get(name)
    }

    pub fn set(&mut self, name: &str, labels: Labels) {
        self.0.insert(name.to_string(), labels);
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Labels)> {
        self.0.iter()
    }
}

/// What a pod change did to the cluster view, for deciding which waiting
/// pods may fit now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodEffect {
    /// A pod stopped taking room somewhere (deleted, finished, moved).
    pub freed: bool,
    /// A pod now counts somewhere it did not, or with other labels
    /// (which pod affinity and spreading look at).
    pub placed: bool,
}

#[derive(Clone, Debug)]
struct Placement {
    node: String,
    /// Placed by this scheduler, not yet seen bound.
    assumed: bool,
}

#[derive(Debug, Default)]
pub struct Cluster {
    /// Sorted by name.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Where each counted pod is, by UID.
    placed: HashMap<String, Placement>,
    /// Pods bound to nodes the cache does not know, by node name.
    orphans: HashMap<String, Vec<PlacedPod>>,
    pub namespaces: Namespaces,
}

/// Whether a Node change could let a waiting pod in (or keep one out):
/// labels, taints, cordon, allocatable or capacity, readiness. A heartbeat
/// changes none of them.
fn node_differs(old: &Node, new: &Node) -> bool {
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    let (os, ns) = (old.spec.as_ref(), new.spec.as_ref());
    let (ost, nst) = (old.status.as_ref(), new.status.as_ref());
    old.metadata.labels != new.metadata.labels
        || os.and_then(|s| s.taints.as_ref()) != ns.and_then(|s| s.taints.as_ref())
        || os.and_then(|s| s.unschedulable) != ns.and_then(|s| s.unschedulable)
        || ost.and_then(|s| s.allocatable.as_ref()) != nst.and_then(|s| s.allocatable.as_ref())
        || ost.and_then(|s| s.capacity.as_ref()) != nst.and_then(|s| s.capacity.as_ref())
        || ready(old) != ready(new)
}

impl Cluster {
    /// Every known node, sorted by name.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    fn reindex(&mut self) {
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
    }

    /// Adds or updates a node; returns whether the change matters to
    /// waiting pods.
    pub fn set_node(&mut self, node: Arc<Node>) -> bool {
        let name = name_of(&node).to_string();
        if let Some(&i) = self.index.get(&name) {
            let info = &mut self.nodes[i];
            let differs = node_differs(&info.node, &node);
            info.set_node(node);
            return differs;
        }
        let mut info = NodeInfo::new(node);
        for placed in self.orphans.remove(&name).into_iter().flatten() {
            info.add(placed);
        }
        let at = self.nodes.partition_point(|n| n.name() < name.as_str());
        self.nodes.insert(at, info);
        self.reindex();
        true
    }

    /// Forgets a node; its pods wait aside in case it comes back.
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.get(name).copied() else {
            return;
        };
        let info = self.nodes.remove(i);
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
        self.reindex();
    }

    /// The node set after a relist: nodes not listed are removed.
    pub fn replace_nodes(&mut self, nodes: Vec<Arc<Node>>) {
        let listed: std::collections::HashSet<String> =
            nodes.iter().map(|n| name_of(n).to_string()).collect();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.name().to_string())
            .filter(|n| !listed.contains(n))
            .collect();
        for name in gone {
            self.remove_node(&name);
        }
        for node in nodes {
            self.set_node(node);
        }
    }

    fn put(&mut self, placed: PlacedPod, node: &str, assumed: bool) {
        self.placed.insert(
            placed.uid().to_string(),
            Placement {
                node: node.to_string(),
                assumed,
            },
        );
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add(placed),
            None => self
                .orphans
                .entry(node.to_string())
                .or_default()
                .push(placed),
        }
    }

    fn take(&mut self, uid: &str) -> Option<(PlacedPod, Placement)> {
        let placement = self.placed.remove(uid)?;
        let placed = match self.index.get(&placement.node) {
            Some(&i) => self.nodes[i].remove_pod(uid),
            None => {
                let pods = self.orphans.get_mut(&placement.node)?;
                let at = pods.iter().position(|p| p.uid() == uid)?;
                let placed = pods.swap_remove(at);
                if pods.is_empty() {
                    self.orphans.remove(&placement.node);
                }
                Some(placed)
            }
        };
        placed.map(|p| (p, placement))
    }

    /// Counts `pod` on `node` from now on (this scheduler's decision). The
    /// pod is kept as it is (its `spec.nodeName` still empty): where it
    /// counts is the cache's to know.
    pub fn assume(&mut self, pod: &Arc<Pod>, node: &str) {
        self.take(uid(pod));
        self.put(PlacedPod::new(pod.clone()), node, true);
    }

    /// Stops counting a pod whose binding failed, unless the watch has
    /// shown it bound meanwhile.
    pub fn forget(&mut self, pod_uid: &str) {
        if self.is_assumed(pod_uid) {
            self.take(pod_uid);
        }
    }

    pub fn is_assumed(&self, pod_uid: &str) -> bool {
        self.placed.get(pod_uid).is_some_and(|p| p.assumed)
    }

    pub fn assumed(&self) -> usize {
        self.placed.values().filter(|p| p.assumed).count()
    }

    /// A pod as the watch shows it now.
    pub fn set_pod(&mut self, pod: Arc<Pod>) -> PodEffect {
        let pod_uid = uid(&pod).to_string();
        let bound_to = node_name(&pod).filter(|_| !is_terminal(&pod));
        if bound_to.is_none() && !is_terminal(&pod) && self.is_assumed(&pod_uid) {
            // Still pending as far as the watch knows: keep the assumption.
            return PodEffect::default();
        }
        let before = self.take(&pod_uid);
        let mut effect = PodEffect::default();
        if let Some((old, placement)) = &before {
            effect.freed = bound_to != Some(placement.node.as_str());
            effect.placed = !effect.freed && old.pod.metadata.labels != pod.metadata.labels;
        }
        if let Some(node) = bound_to {
            effect.placed |= before.is_none() || effect.freed;
            let node = node.to_string();
            self.put(PlacedPod::new(pod), &node, false);
        }
        effect
    }

    /// A pod the watch shows deleted.
    pub fn remove_pod(&mut self, pod: &Pod) -> PodEffect {
        PodEffect {
            freed: self.take(uid(pod)).is_some(),
            placed: false,
        }
    }

    /// The pods after a relist: every counted pod not assumed is replaced
    /// by the listed ones; assumptions stay for pods still listed pending.
    pub fn replace_pods(&mut self, pods: &[Arc<Pod>]) {
        let listed: HashMap<&str, &Arc<Pod>> = pods.iter().map(|p| (uid(p), p)).collect();
        let stale: Vec<String> = self
            .placed
            .iter()
            .filter(|(pod_uid, p)| {
                !p.assumed
                    || listed
                        .get(pod_uid.as_str())
                        .is_none_or(|l| node_name(l).is_some() || is_terminal(l))
            })
            .map(|(pod_uid, _)| pod_uid.clone())
            .collect();
        for pod_uid in stale {
            self.take(&pod_uid);
        }
        for pod in pods {
            self.set_pod(pod.clone());
        }
    }

    /// A cluster of `nodes` with the pods already in them (for tests and
    /// one-off decisions).
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Cluster {
        let mut cluster = Cluster::default();
        for info in nodes {
            let name = info.name().to_string();
            for p in &info.pods {
                cluster.placed.insert(
                    p.uid().to_string(),
                    Placement {
                        node: name.clone(),
                        assumed: false,
                    },
                );
            }
            cluster.nodes.push(info);
        }
        cluster.nodes.sort_by(|a, b| a.name().cmp(b.name()));
        cluster.reindex();
        cluster
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use k8s_openapi::api::core::v1::PodStatus;

    fn cluster() -> Cluster {
        let mut c = Cluster::default();
        c.set_node(Arc::new(node("b", &[("cpu", "1")])));
        c.set_node(Arc::new(node("a", &[("cpu", "1")])));
        c
    }

    fn bound_to(mut p: Pod, node: &str) -> Pod {
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    fn requested_on(c: &Cluster) -> Vec<(String, i64)> {
        c.nodes()
            .iter()
            .map(|i| (i.name().to_string(), i.requested.milli_cpu))
            .collect()
    }

    #[test]
    fn an_assumed_pod_is_counted_once_until_and_after_the_watch_catches_up() {
        let pending = Arc::new(pod_requesting("p", &[("cpu", "600m")]));
        let mut c = cluster();
        assert_eq!(c.set_pod(pending.clone()), PodEffect::default());
        c.assume(&pending, "a");
        assert!(c.is_assumed("uid-p"));
        assert_eq!(requested_on(&c), [("a".into(), 600), ("b".into(), 0)]);

        // The watch still shows the pod pending (a status update): the
        // assumption stays.
        c.set_pod(pending.clone());
        assert_eq!(c.assumed(), 1);
        assert_eq!(requested_on(&c), [("a".into(), 600), ("b".into(), 0)]);

        // Shown bound: confirmed, still counted once, nothing freed.
        let effect = c.set_pod(Arc::new(bound_to((*pending).clone(), "a")));
        assert_eq!(effect, PodEffect::default());
        assert_eq!(c.assumed(), 0);
        assert_eq!(requested_on(&c), [("a".into(), 600), ("b".into(), 0)]);
        c.forget("uid-p");
        assert_eq!(requested_on(&c), [("a".into(), 600), ("b".into(), 0)]);
    }

    #[test]
    fn failed_bindings_and_deleted_pods_are_forgotten() {
        let pending = Arc::new(pod_requesting("p", &[("cpu", "600m")]));
        let mut c = cluster();
        c.assume(&pending, "a");
        c.forget("uid-p");
        assert!(!c.is_assumed("uid-p"));
        assert_eq!(requested_on(&c), [("a".into(), 0), ("b".into(), 0)]);

        let bound = bound_to((*pending).clone(), "b");
        let effect = c.set_pod(Arc::new(bound.clone()));
        assert_eq!(
            effect,
            PodEffect {
                freed: false,
                placed: true
            }
        );
        let effect = c.remove_pod(&bound);
        assert!(effect.freed);
        assert_eq!(requested_on(&c), [("a".into(), 0), ("b".into(), 0)]);
    }

    #[test]
    fn finished_pods_and_unknown_nodes_take_no_room() {
        let mut c = cluster();
        let running = bound_to(pod_requesting("run", &[("cpu", "300m")]), "b");
        c.set_pod(Arc::new(running.clone()));
        let mut done = running.clone();
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(c.set_pod(Arc::new(done)).freed);
        assert_eq!(requested_on(&c), [("a".into(), 0), ("b".into(), 0)]);

        // A pod on a node not known yet counts once the node shows up,
        // and waits aside again while its node is gone.
        let lost = bound_to(pod_requesting("lost", &[("cpu", "1")]), "c");
        c.set_pod(Arc::new(lost.clone()));
        assert_eq!(c.nodes().len(), 2);
        assert!(c.set_node(Arc::new(node("c", &[("cpu", "2")]))));
        assert_eq!(c.node("c").unwrap().requested.milli_cpu, 1000);
        c.remove_node("c");
        assert!(c.node("c").is_none());
        c.set_node(Arc::new(node("c", &[("cpu", "2")])));
        assert_eq!(c.node("c").unwrap().pods.len(), 1);
        assert!(c.remove_pod(&lost).freed);
        assert_eq!(c.node("c").unwrap().pods.len(), 0);
    }

    #[test]
    fn a_heartbeat_is_no_change() {
        let mut c = cluster();
        let mut n = node("a", &[("cpu", "1")]);
        n.metadata.resource_version = Some("2".into());
        assert!(!c.set_node(Arc::new(n.clone())));
        n.metadata.labels = Some([("zone".to_string(), "z1".to_string())].into());
        assert!(c.set_node(Arc::new(n)));
        assert_eq!(c.node("a").unwrap().labels()["zone"], "z1");
    }

    #[test]
    fn a_relist_replaces_what_the_watch_missed() {
        let mut c = cluster();
        let gone = bound_to(pod_requesting("gone", &[("cpu", "100m")]), "a");
        c.set_pod(Arc::new(gone));
        let waiting = Arc::new(pod_requesting("wait", &[("cpu", "200m")]));
        c.assume(&waiting, "b");
        let stays = bound_to(pod_requesting("stays", &[("cpu", "300m")]), "a");
        c.replace_pods(&[Arc::new(stays), waiting]);
        assert_eq!(requested_on(&c), [("a".into(), 300), ("b".into(), 200)]);
        assert!(c.is_assumed("uid-wait"));
        c.replace_nodes(vec![Arc::new(node("b", &[("cpu", "1")]))]);
        assert_eq!(requested_on(&c), [("b".into(), 200)]);
    }
}
