//! The same kubectl black-box cases, unchanged, on an etcd datastore.

const BACKEND: conformance::Backend = conformance::Backend::Etcd;

#[path = "kubectl/cases.rs"]
mod cases;
