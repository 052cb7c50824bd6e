//! The same kube-rs API cases, unchanged, on an etcd datastore.

const BACKEND: conformance::Backend = conformance::Backend::Etcd;

#[path = "api/cases.rs"]
mod cases;
