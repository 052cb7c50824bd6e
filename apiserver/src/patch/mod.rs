//! Patch formats accepted by PATCH requests.
//!
//! `strategic` applies strategic merge patches (`application/strategic-merge-patch+json`)
//! using the structural patch metadata of `patch_schema`, whose table is generated into
//! `patch_schema_generated.rs` by `gen_patch_schema.py`.

pub mod patch_schema;
mod patch_schema_generated;
pub mod strategic;

pub use strategic::{
    create_two_way_merge_patch, root_for, strategic_merge_patch, StrategicPatchError,
};

#[cfg(test)]
mod strategic_tests;
