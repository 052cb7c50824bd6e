//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>` and the
//! aggregated `apidiscovery.k8s.io/v2` form) built from resource descriptors.
//!
//! This crate only shapes documents: it does not know how resources are
//! stored or served, and it does no IO. The registry hands it one
//! `ResourceDescriptor` per served resource.

pub mod discovery;
pub mod v2;
pub mod v3;

pub use discovery::{
    aggregated_discovery, api_group_list, api_resource_list, api_versions, GroupVersion,
    ResourceDescriptor, Subresource,
};
