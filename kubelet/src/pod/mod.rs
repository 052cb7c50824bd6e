//! The kubelet's pure pod logic: everything that turns a `Pod` object plus
//! facts gathered elsewhere (runtime statuses, ConfigMaps, Services, probe
//! results, the clock's reading) into what the kubelet sends to the
//! container runtime or writes back as `PodStatus`.
//!
//! Nothing in here does IO, reads a clock, spawns or awaits: callers fetch
//! what a function needs and pass it in, so every rule can be unit-tested
//! against upstream Kubernetes behaviour without a runtime or an API server.
//!
//! - [`quantity`]: Kubernetes resource quantities → milli-units and bytes.
//! - [`qos`]: the pod's QoS class and the OOM score adjustment it implies.
//! - [`resources`]: container cgroup settings and node-fit admission.
//! - [`env`]: a container's environment (service links, envFrom, env).
//! - [`command`]: `$(VAR)` expansion and the runtime's container/sandbox configs.
//! - [`status`]: the `PodStatus` the kubelet reports.
//! - [`backoff`]: crash-loop restart back-off.

pub mod backoff;
pub mod command;
pub mod env;
pub mod pull_secrets;
pub mod qos;
pub mod quantity;
pub mod resources;
pub mod status;
