//! rkube's controller-manager: the control loops that make the cluster
//! converge on what its objects ask for. Each talks to the API server
//! through kube-rs like any client (so the manager can run in-process in
//! `rkube server` or as `rkube controller-manager` against a remote
//! server), is level-triggered (a pass compares what is with what should
//! be, so restarts and missed events lose nothing) and records Events as
//! upstream's controllers do.
//!
//! Layout: pure decisions live in `*/logic.rs`, `pods.rs` and
//! `selector.rs`; each controller module owns its watches and writes.
//! [`leader`] elects one active manager among several servers.

pub mod cache;
pub mod daemonsets;
pub mod deployments;
pub mod disruption;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod leader;
pub mod node_lifecycle;
pub mod podgc;
pub mod pods;
pub mod replicas;
pub mod selector;
pub mod serviceaccounts;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Timings with upstream's names and defaults; tests shorten them.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// A node whose Lease is older than this is `Ready=Unknown`
    /// (`--node-monitor-grace-period`, default 40 s).
    pub node_monitor_grace_period: Duration,
    /// Terminated pods kept before the oldest are deleted
    /// (`--terminated-pod-gc-threshold`, default 12500).
    pub terminated_pod_gc_threshold: usize,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12_500,
        }
    }
}

/// Runs every controller until the returned future is dropped.
pub async fn run(client: kube::Client, opts: ControllerOptions) {
    tokio::join!(
        replicas::run::<ReplicationController>(client.clone()),
        replicas::run::<ReplicaSet>(client.clone()),
        deployments::run(client.clone()),
        daemonsets::run(client.clone()),
        disruption::run(client.clone()),
        gc::run(client.clone()),
        serviceaccounts::run(client.clone()),
        endpoints::run(client.clone()),
        podgc::run(client.clone(), opts.terminated_pod_gc_threshold),
        node_lifecycle::run(client.clone(), opts.node_monitor_grace_period),
    );
}
