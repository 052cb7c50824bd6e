//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>` and the
//! aggregated `apidiscovery.k8s.io/v2` form) and the OpenAPI v2/v3
//! documents, built from resource descriptors.
//!
//! This crate only shapes documents: it does not know how resources are
//! stored or served, and it does no IO. The registry hands it one
//! `ResourceDescriptor` per served resource.
//!
//! | module | owns |
//! |---|---|
//! | `discovery` | legacy and aggregated discovery |
//! | `schemas` | kind → definition, component schemas (k8s-openapi + the generated overlay), reachability, v2/v3 forms |
//! | `schema_table_generated` | the catalog of kinds and upstream's structural facts (`gen_schema_table.py`) |
//! | `paths` | paths and operations of the served resources |
//! | `v3`, `v2`, `v2_proto` | rendering the documents (v2 also in protobuf) |
//! | `assemble` | a document's text from its paths and serialized schemas, for v2 and v3 |
//! | `documents` | building every document once, with hashes |

mod assemble;
pub mod discovery;
pub mod documents;
pub mod paths;
mod schema_table_generated;
pub mod schemas;
pub mod v2;
mod v2_proto;
pub mod v3;

pub use discovery::{
    aggregated_discovery, api_group_list, api_resource_list, api_versions, GroupVersion,
    ResourceDescriptor, Subresource,
};
pub use documents::{Document, Documents};

#[cfg(test)]
mod tests;
