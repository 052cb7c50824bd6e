//! The kube-rs API cases on the embedded store.

const BACKEND: conformance::Backend = conformance::Backend::Embedded;

#[path = "api/cases.rs"]
mod cases;
