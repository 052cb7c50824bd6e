//! ServiceAccount validation: only its metadata carries rules.

use serde_json::Value;

use crate::validation::field_error::FieldErrors;
use crate::validation::meta::{validate_object_meta, validate_object_meta_update};
use crate::validation::names::NameRule;
use crate::validation::value::sub;

/// Validates a ServiceAccount.
pub fn validate_service_account(sa: &Value) -> FieldErrors {
    validate_object_meta(
        sub(sa, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    )
}

/// Validates a ServiceAccount update.
pub fn validate_service_account_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    errs.extend(validate_service_account(new));
    errs
}
