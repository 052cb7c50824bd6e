//! The kubectl black-box cases on the embedded store.

const BACKEND: conformance::Backend = conformance::Backend::Embedded;

#[path = "kubectl/cases.rs"]
mod cases;
