//! Namespace validation: DNS-label names, finalizer names in `spec.finalizers`, and
//! the `namespaces/finalize` update.

use serde_json::Value;

use crate::validation::field_error::FieldErrors;
use crate::validation::meta::{
    validate_finalizers, validate_kube_finalizer_name, validate_object_meta,
    validate_object_meta_update,
};
use crate::validation::names::NameRule;
use crate::validation::value::{arr, index, sub};

/// Validates a Namespace on create.
pub fn validate_namespace(ns: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(sub(ns, "metadata"), false, NameRule::DnsLabel, "metadata");
    // Upstream checks each spec finalizer against the list path, without an index.
    for f in arr(sub(ns, "spec"), "finalizers") {
        let one = std::slice::from_ref(f);
        errs.extend(validate_finalizers(one, "spec.finalizers"));
        errs.extend(validate_kube_finalizer_name(
            f.as_str().unwrap_or_default(),
            "spec.finalizers",
        ));
    }
    errs
}

/// Validates a Namespace update. Only metadata is checked: the registry keeps
/// `spec.finalizers` from the stored object on plain updates.
pub fn validate_namespace_update(new: &Value, old: &Value) -> FieldErrors {
    validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"))
}

/// Validates an update through `namespaces/{name}/finalize`, the only way to change
/// `spec.finalizers`.
pub fn validate_namespace_finalize_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    for (i, f) in arr(sub(new, "spec"), "finalizers").iter().enumerate() {
        let p = index("spec.finalizers", i);
        let one = std::slice::from_ref(f);
        errs.extend(validate_finalizers(one, &p));
        errs.extend(validate_kube_finalizer_name(
            f.as_str().unwrap_or_default(),
            &p,
        ));
    }
    errs
}
