//! Per-kind validation of the core/v1 kinds (plus events.k8s.io Events and the
//! policy/v1 Eviction body), with create/update dispatch by kind name.

pub mod binding;
pub mod config;
pub mod endpoints;
pub mod event;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod quota;
pub mod replication_controller;
pub mod resources;
pub mod service;
pub mod service_account;

use serde_json::Value;

use super::field_error::FieldErrors;

/// Validates an object about to be created. Unknown kinds yield no errors.
pub fn validate(kind: &str, obj: &Value) -> FieldErrors {
    match kind {
        "Pod" => pod::validate_pod(obj),
        "PodTemplate" => pod::validate_pod_template(obj),
        "ReplicationController" => replication_controller::validate_replication_controller(obj),
        "Service" => service::validate_service(obj),
        "Namespace" => namespace::validate_namespace(obj),
        "Node" => node::validate_node(obj),
        "ConfigMap" => config::validate_config_map(obj),
        "Secret" => config::validate_secret(obj),
        "Endpoints" => endpoints::validate_endpoints(obj),
        "ServiceAccount" => service_account::validate_service_account(obj),
        "LimitRange" => quota::validate_limit_range(obj),
        "ResourceQuota" => quota::validate_resource_quota(obj),
        "Event" => event::validate_event(obj),
        "Binding" => binding::validate_binding(obj),
        "Eviction" => binding::validate_eviction(obj),
        _ => Vec::new(),
    }
}

/// Validates an update of `old` into `obj`. Unknown kinds yield no errors.
pub fn validate_update(kind: &str, obj: &Value, old: &Value) -> FieldErrors {
    match kind {
        "Pod" => pod::validate_pod_update(obj, old),
        "PodTemplate" => pod::validate_pod_template_update(obj, old),
        "ReplicationController" => {
            replication_controller::validate_replication_controller_update(obj, old)
        }
        "Service" => service::validate_service_update(obj, old),
        "Namespace" => namespace::validate_namespace_update(obj, old),
        "Node" => node::validate_node_update(obj, old),
        "ConfigMap" => config::validate_config_map_update(obj, old),
        "Secret" => config::validate_secret_update(obj, old),
        "Endpoints" => endpoints::validate_endpoints_update(obj, old),
        "ServiceAccount" => service_account::validate_service_account_update(obj, old),
        "LimitRange" => quota::validate_limit_range_update(obj, old),
        "ResourceQuota" => quota::validate_resource_quota_update(obj, old),
        "Event" => event::validate_event_update(obj, old),
        "Binding" => binding::validate_binding(obj),
        "Eviction" => binding::validate_eviction(obj),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
