//! One node as the scheduler sees it: the Node object and the pods already
//! on it (bound, or assumed by this scheduler and not yet seen bound),
//! with their requests and host ports summed once.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::resources::{self, Amounts, HostPort};

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<Pod>>,
    /// Sum of the pods' requests.
    pub requested: Amounts,
    /// Sum with upstream's scoring defaults for missing CPU/memory requests.
    pub non_zero_requested: Amounts,
    pub allocatable: Amounts,
    /// How many pods the node takes (`allocatable.pods`).
    pub allowed_pods: i64,
    pub used_ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let (allocatable, allowed_pods) = resources::node_allocatable(&node);
        NodeInfo {
            node,
            pods: Vec::new(),
            requested: Amounts::default(),
            non_zero_requested: Amounts::default(),
            allocatable,
            allowed_pods,
            used_ports: Vec::new(),
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

    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        self.requested.add(&resources::pod_requests(&pod));
        self.non_zero_requested
            .add(&resources::pod_non_zero_requests(&pod));
        self.used_ports.extend(resources::host_ports(&pod));
        self.pods.push(pod);
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
}

impl<'a> PodInfo<'a> {
    pub fn new(pod: &'a Pod) -> PodInfo<'a> {
        PodInfo {
            pod,
            requests: resources::pod_requests(pod),
            non_zero_requests: resources::pod_non_zero_requests(pod),
            ports: resources::host_ports(pod),
        }
    }
}
