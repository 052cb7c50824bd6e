//! The strategies of every served kind. Adding a kind means adding a
//! strategy here and listing it in `all()`.

mod apps;
mod coordination;
mod core_simple;
mod discovery;
mod namespace;
mod pod;
mod policy;
mod replication_controller;
mod service;

use std::sync::Arc;

use super::strategy::Strategy;

pub use pod::qos_class;
pub use service::{ServiceAllocators, SERVICE_CIDR_DEFAULT};

pub(crate) use openapi::discovery::{ALL_VERBS, STATUS_VERBS};

/// Every stored kind, in the order discovery lists them.
pub fn all() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(core_simple::Bindings),
        Arc::new(core_simple::ConfigMaps),
        Arc::new(core_simple::Endpoints),
        Arc::new(core_simple::Events),
        Arc::new(core_simple::LimitRanges),
        Arc::new(namespace::Namespaces),
        Arc::new(core_simple::Nodes),
        Arc::new(core_simple::PodTemplates),
        Arc::new(pod::Pods),
        Arc::new(replication_controller::ReplicationControllers),
        Arc::new(core_simple::ResourceQuotas),
        Arc::new(core_simple::Secrets),
        Arc::new(core_simple::ServiceAccounts),
        Arc::new(service::Services),
        Arc::new(apps::ControllerRevisions),
        Arc::new(apps::DaemonSets),
        Arc::new(apps::Deployments),
        Arc::new(apps::ReplicaSets),
        Arc::new(core_simple::EventsV1),
        Arc::new(coordination::Leases),
        Arc::new(discovery::EndpointSlices),
        Arc::new(policy::PodDisruptionBudgets),
    ]
}
