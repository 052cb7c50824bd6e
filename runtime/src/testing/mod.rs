//! Test support shared by the runtime's tests and, behind the `testing`
//! feature, by other crates' tests: OCI images built from the machine's
//! static busybox, archive writers, and a throwaway local registry.
//! Helpers panic on failure: they set tests up, they are not under test.

pub mod images;
pub mod registry;
