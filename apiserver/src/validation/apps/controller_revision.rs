//! ControllerRevision validation: an immutable snapshot that must carry
//! `data` and a non-negative `revision`.

use serde_json::Value;

use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{
    validate_nonnegative, validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE,
};
use crate::validation::names::NameRule;
use crate::validation::value::{get, int, sub};

/// Validates a ControllerRevision on create.
pub fn validate_controller_revision(cr: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(cr, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    if get(cr, "data").is_none() {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    errs.extend(validate_nonnegative(int(cr, "revision"), "revision"));
    errs
}

/// Validates a ControllerRevision update: `data` may not change.
pub fn validate_controller_revision_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_controller_revision(new));
    if get(new, "data") != get(old, "data") {
        errs.push(FieldError::invalid(
            "data",
            get(new, "data").cloned().unwrap_or(Value::Null),
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
