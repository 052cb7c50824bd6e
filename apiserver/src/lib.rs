//! rkube's Kubernetes-compatible API server.
//!
//! Layers, from the wire inwards: `http` (TLS, auth, routing, content
//! negotiation, Status errors) → `registry` (one generic store driven by
//! per-kind strategies) → `storage` (the revisioned key/value contract and
//! its backends). Pure helpers (`validation`, `defaults`, `selector`,
//! `printers`, `patch`, `protobuf`, `meta`, `field_path`) do no IO.

pub mod apply;
pub mod defaults;
pub mod error;
pub mod field_path;
pub mod http;
pub mod join;
pub mod meta;
pub mod namespace_lifecycle;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod server;
pub mod storage;
pub mod tls;
pub mod validation;

pub use error::{ApiError, ApiResult, Reason};
pub use server::{run, Config, ServerError};
