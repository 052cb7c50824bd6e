//! One node as the scheduler sees it: the Node object and the pods already
//! on it (bound, or assumed by this scheduler and not yet seen bound),
//! each read once when it is added (requests, host ports, inter-pod
//! affinity terms) and summed, so a decision reads sums, not pods.
//! Also the pod being scheduled, read once per decision.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::filter::{effective_taints, is_cordoned};
use crate::interpod::PodAffinity;
use crate::resources::{self, Amounts, HostPort};
use crate::selector::Labels;

/// A pod counted on a node, with what the filters and scores read from it.
#[derive(Clone, Debug)]
pub struct PlacedPod {
    pub pod: Arc<Pod>,
    pub requests: Amounts,
    pub non_zero_requests: Amounts,
    /// Its inter-pod affinity and anti-affinity terms, if it has any.
    pub affinity: Option<Arc<PodAffinity>>,
}

impl PlacedPod {
    pub fn new(pod: Arc<Pod>) -> PlacedPod {
        PlacedPod {
            requests: resources::pod_requests(&pod),
            non_zero_requests: resources::pod_non_zero_requests(&pod),
            affinity: PodAffinity::of(&pod).map(Arc::new),
            pod,
        }
    }

    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }

    fn has_required_anti_affinity(&self) -> bool {
        self.affinity
            .as_ref()
            .is_some_and(|a| !a.required_anti_affinity.is_empty())
    }
}

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    /// The node's taints, with the one its readiness implies.
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    pub pods: Vec<PlacedPod>,
    /// Sum of the pods' requests.
    pub requested: Amounts,
    /// Sum with upstream's scoring defaults for missing CPU/memory requests.
    pub non_zero_requested: Amounts,
    pub allocatable: Amounts,
    /// How many pods the node takes (`allocatable.pods`).
    pub allowed_pods: i64,
    pub used_ports: Vec<HostPort>,
    /// How many of the pods have inter-pod affinity or anti-affinity terms.
    pub with_affinity: usize,
    /// How many of them have required anti-affinity terms.
    pub with_required_anti_affinity: usize,
}

static NO_LABELS: Labels = Labels::new();

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let (allocatable, allowed_pods) = resources::node_allocatable(&node);
        NodeInfo {
            taints: effective_taints(&node),
            unschedulable: is_cordoned(&node),
            node,
            pods: Vec::new(),
            requested: Amounts::default(),
            non_zero_requested: Amounts::default(),
            allocatable,
            allowed_pods,
            used_ports: Vec::new(),
            with_affinity: 0,
            with_required_anti_affinity: 0,
        }
    }

    /// A node with `pods` on it.
    pub fn with_pods(node: Arc<Node>, pods: impl IntoIterator<Item = Arc<Pod>>) -> NodeInfo {
        let mut info = NodeInfo::new(node);
        for pod in pods {
            info.add_pod(pod);
        }
        info
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> &Labels {
        self.node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    /// The same node as `node` says now (labels, taints, allocatable), its
    /// pods kept.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let (allocatable, allowed_pods) = resources::node_allocatable(&node);
        self.taints = effective_taints(&node);
        self.unschedulable = is_cordoned(&node);
        self.node = node;
        self.allocatable = allocatable;
        self.allowed_pods = allowed_pods;
    }

    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        self.add(PlacedPod::new(pod));
    }

    pub fn add(&mut self, placed: PlacedPod) {
        self.requested.add(&placed.requests);
        self.non_zero_requested.add(&placed.non_zero_requests);
        self.used_ports.extend(resources::host_ports(&placed.pod));
        if placed.affinity.is_some() {
            self.with_affinity += 1;
        }
        if placed.has_required_anti_affinity() {
            self.with_required_anti_affinity += 1;
        }
        self.pods.push(placed);
    }

    /// Takes the pod with this UID off the node.
    pub fn remove_pod(&mut self, uid: &str) -> Option<PlacedPod> {
        let at = self.pods.iter().position(|p| p.uid() == uid)?;
        let placed = self.pods.swap_remove(at);
        self.requested.sub(&placed.requests);
        self.non_zero_requested.sub(&placed.non_zero_requests);
        for port in resources::host_ports(&placed.pod) {
            if let Some(i) = self.used_ports.iter().position(|p| *p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        if placed.affinity.is_some() {
            self.with_affinity -= 1;
        }
        if placed.has_required_anti_affinity() {
            self.with_required_anti_affinity -= 1;
        }
        Some(placed)
    }
}

/// The pod being scheduled, with what the filters and scores read from it
/// computed once.
#[derive(Clone, Debug)]
pub struct PodInfo<'a> {
    pub pod: &'a Pod,
    pub requests: Amounts,
    pub non_zero_requests: Amounts,
    pub ports: Vec<HostPort>,
    pub affinity: Option<PodAffinity>,
}

impl<'a> PodInfo<'a> {
    pub fn new(pod: &'a Pod) -> PodInfo<'a> {
        PodInfo {
            pod,
            requests: resources::pod_requests(pod),
            non_zero_requests: resources::pod_non_zero_requests(pod),
            ports: resources::host_ports(pod),
            affinity: PodAffinity::of(pod),
        }
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.pod.metadata.labels.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use crate::interpod::tests::term;
    use k8s_openapi::api::core::v1::{Affinity, ContainerPort, PodAntiAffinity};

    #[test]
    fn removing_a_pod_takes_back_what_adding_it_counted() {
        let mut ported = pod_requesting("a", &[("cpu", "1"), ("example.com/gpu", "1")]);
        ported.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        }]);
        ported.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(
                    &[("app", "a")],
                    "kubernetes.io/hostname",
                )]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let other = pod_requesting("b", &[("cpu", "500m")]);
        let mut info = NodeInfo::with_pods(
            Arc::new(node("n", &[("cpu", "4")])),
            [Arc::new(ported), Arc::new(other)],
        );
        assert_eq!(info.requested.milli_cpu, 1500);
        assert_eq!(
            (info.with_affinity, info.with_required_anti_affinity),
            (1, 1)
        );
        assert_eq!(info.used_ports.len(), 1);
        assert!(info.remove_pod("uid-a").is_some());
        assert!(info.remove_pod("uid-a").is_none());
        assert_eq!(info.requested.milli_cpu, 500);
        assert_eq!(info.requested.scalar("example.com/gpu"), 0);
        assert_eq!(
            (info.with_affinity, info.with_required_anti_affinity),
            (0, 0)
        );
        assert!(info.used_ports.is_empty());
        assert_eq!(info.pods.len(), 1);
    }
}
