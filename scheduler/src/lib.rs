//! rkube's scheduler: the job of kube-scheduler. It assigns pending pods
//! to nodes and nothing else.
//!
//! It is an ordinary API client: one watch of Nodes and one of Pods (kube-rs
//! reflectors) feed an in-memory view of the cluster, pods are bound
//! through `pods/binding`, failures are written to the pod's
//! `PodScheduled` condition, and both outcomes are recorded as Events. So
//! it runs in-process in `rkube server` (under leader election, wired by
//! the binary) or as a process of its own, against any API server.
//!
//! Layout:
//!
//! | module | owns |
//! |---|---|
//! | `quantity`, `resources`, `node_info` | reading quantities, pod requests (containers, init containers, sidecars, overhead), node allocatable, host ports; a node with its pods summed |
//! | `filter` | the filters and upstream's reason strings |
//! | `score` | least-allocated and owner spreading scores, the round-robin choice among ties |
//! | `fit_error` | the "0/N nodes are available: ..." message with its preemption part |
//! | `algorithm` | one decision: pre-filter, filter, score, choose |
//! | `cache` | assume-then-confirm: pods placed but not yet seen bound, and the cluster view counting each pod once |
//! | `scheduler` | the IO: watches, queue and back-off, binding, status patches, events |
//!
//! Everything but `scheduler` is pure: no IO, no clocks.
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
pub mod node_info;
pub mod quantity;
pub mod resources;
mod scheduler;
pub mod score;

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
