//! rkube's container runtime layer.
//!
//! [`Runtime`] is the CRI-shaped interface the kubelet drives; backends
//! implement it: [`fake`] (no processes), [`youki`] (libcontainer, through
//! per-container helper processes) and [`containerd`] (its gRPC API). Shared
//! pieces every real backend uses sit beside them: OCI spec generation
//! ([`spec`]), the image store ([`image`]), pod sandboxes ([`pod_sandbox`]:
//! pinned namespaces and CNI), CRI log files ([`cri_log`]) and cgroup
//! statistics ([`cgroups`]).
//!
//! This crate knows nothing of the Kubernetes API: pods arrive already
//! translated into [`types`].

pub mod api;
pub mod bench;
pub mod cgroups;
pub mod cni;
pub mod containerd;
pub mod cri_log;
pub mod error;
pub mod fake;
pub mod image;
pub mod netns;
pub mod pod_sandbox;
pub mod portforward;
mod process;
mod record;
pub mod spec;
mod streams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod youki;

pub use api::{Runtime, StreamSession};
pub use error::{ErrorKind, Result, RuntimeError};
