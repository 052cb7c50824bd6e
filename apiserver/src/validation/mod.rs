//! Pure (no IO) validation of built-in API objects on the JSON object model.
//!
//! Owns the rules kube-apiserver (v1.33) applies before persisting an object, and the
//! exact error paths, reasons and messages it reports, so rkube's 422 responses match
//! a real cluster's. Entry points are [`validate`] for creates and [`validate_update`]
//! for updates; both expect an object that has already been defaulted
//! ([`crate::defaults::apply_defaults`]), as upstream validates after defaulting.

pub mod core;
pub mod field_error;
pub mod meta;
pub mod names;
pub mod quantity;
pub mod value;

pub use self::core::{validate, validate_update};
pub use field_error::{invalid_message, ErrorType, FieldError, FieldErrors};
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use names::NameRule;
