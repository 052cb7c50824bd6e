//! Pure defaulting of built-in API objects on the JSON object model.
//!
//! Owns what kube-apiserver (v1.33) fills in when it decodes a v1 object — the
//! generated defaulters (`SetDefaults_*`) — plus the few create-time fills users see as
//! defaults although upstream does them elsewhere (namespace finalizer, Service
//! clusterIP syncing, Pod priority). Quantities in resource lists are canonicalized as
//! upstream serializes them. Admission-plugin effects (service account token volume,
//! DefaultTolerationSeconds tolerations) are deliberately not applied.

mod core;
mod discovery;
mod pod;
mod service;
mod workloads;

use serde_json::Value;

/// Applies the v1 defaults for `kind` to `obj` in place. Unknown kinds are untouched.
/// Defaulting is idempotent: applying it twice gives the same object.
pub fn apply_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => pod::default_pod(obj),
        "PodTemplate" => core::default_pod_template_object(obj),
        "ReplicationController" => core::default_replication_controller(obj),
        "Service" => service::default_service(obj),
        "Namespace" => core::default_namespace(obj),
        "Secret" => core::default_secret(obj),
        "Node" => core::default_node(obj),
        "Endpoints" => core::default_endpoints(obj),
        "LimitRange" => core::default_limit_range(obj),
        "ResourceQuota" => core::default_resource_quota(obj),
        "PersistentVolumeClaim" => core::default_persistent_volume_claim(obj),
        "Deployment" => workloads::default_deployment(obj),
        "ReplicaSet" => workloads::default_replica_set(obj),
        "DaemonSet" => workloads::default_daemon_set(obj),
        "StatefulSet" => workloads::default_stateful_set(obj),
        "Job" => workloads::default_job(obj),
        "CronJob" => workloads::default_cron_job(obj),
        "EndpointSlice" => discovery::default_endpoint_slice(obj),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
