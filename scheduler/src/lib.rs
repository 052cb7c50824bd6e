//! rkube's scheduler: the job of kube-scheduler. It assigns pending pods
//! to nodes and nothing else.
//!
//! It is an ordinary API client: watches of Nodes, Pods and Namespaces
//! feed an in-memory view of the cluster, updated one event at a time,
//! pods are bound through `pods/binding`, failures are written to the
//! pod's `PodScheduled` condition, and both outcomes are recorded as
//! Events. So it runs in-process in `rkube server` (under leader election,
//! wired by the binary) or as a process of its own (`rkube scheduler`),
//! against any API server.
//!
//! Decisions follow kube-scheduler v1.33's default profile: its filters in
//! its order with its reason strings, its scores with their default
//! weights and normalisations (ImageLocality aside), its adaptive number
//! of nodes to look at, and its "0/N nodes are available" message.
//!
//! Layout:
//!
//! | module | owns |
//! |---|---|
//! | `quantity`, `resources`, `node_info` | reading quantities, pod requests (containers, init containers, sidecars, overhead), node allocatable, host ports; a node with its pods, each read once, summed |
//! | `selector` | label selectors, parsed once |
//! | `filter` | the per-node filters (NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) and upstream's reason strings |
//! | `topology_spread` | PodTopologySpread: constraints and system defaults, filter, score |
//! | `interpod` | InterPodAffinity: terms, filter, score |
//! | `score` | the weighted scores (resources, balanced allocation, node affinity, taints, and the two above), the round-robin choice among ties |
//! | `fit_error` | the "0/N nodes are available: ..." message with its preemption part |
//! | `algorithm` | one decision: pre-filter, what the cluster-wide filters count once, filter, score, choose |
//! | `cache` | the cluster view kept up to date from watch events; assume-then-confirm for pods placed but not yet seen bound |
//! | `queue` | the pending pods in upstream's queue order |
//! | `scheduler` | the IO: watches, back-off, binding |
//! | `reporting` | the IO of reporting: Events and the `PodScheduled` condition |
//!
//! Everything but `scheduler` and `reporting` is pure: no IO, no clocks.
//!
//! What it must not do: touch a pod that already has `spec.nodeName`, or
//! one whose `spec.schedulerName` names another scheduler; write anything
//! but bindings, the `PodScheduled` condition and Events; evict pods
//! (there is no preemption: the message says what upstream's preemption
//! would find, but no pod is removed); or depend on the kubelet or the API
//! server's internals.

pub mod algorithm;
pub mod cache;
pub mod filter;
pub mod fit_error;
pub mod interpod;
pub mod node_info;
pub mod quantity;
mod queue;
mod reporting;
pub mod resources;
mod scheduler;
pub mod score;
pub mod selector;
#[cfg(test)]
mod testing;
pub mod topology_spread;

use std::time::Duration;

pub use algorithm::schedule;
pub use fit_error::{Failure, FitError};
pub use node_info::NodeInfo;
pub use scheduler::run;

/// The name pods select this scheduler by when they name none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Pods whose `spec.schedulerName` is this (or unset, when this is
    /// `default-scheduler`) are scheduled; Events are reported under it.
    pub scheduler_name: String,
    /// The wait before the first retry of an unschedulable pod once the
    /// cluster changed; doubled on every further failure.
    pub initial_backoff: Duration,
    /// The longest such wait.
    pub max_backoff: Duration,
    /// An unschedulable pod is retried after this long even if no change
    /// that could help was seen.
    pub unschedulable_retry: Duration,
}

impl Default for SchedulerOptions {
    /// kube-scheduler's defaults: 1 s initial and 10 s maximum back-off,
    /// a retry of every unschedulable pod at least every 5 minutes.
    fn default() -> Self {
        SchedulerOptions {
            scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_retry: Duration::from_secs(300),
        }
    }
}
