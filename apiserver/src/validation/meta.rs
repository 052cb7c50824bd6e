//! ObjectMeta validation shared by every kind: name/generateName, namespace, labels,
//! annotations (syntax and total size), ownerReferences, finalizers, managedFields,
//! and the fields that become immutable once an object exists.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrors};
use super::names::{is_dns1123_label, is_qualified_name, validate_labels, NameRule};
use super::value::{arr, child, get, index, int, obj, str_of};

/// Upper bound on the summed length of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

/// Detail for an update that changes a field fixed at creation.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// Detail for a negative count.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";

/// Finalizer names core accepts without a domain prefix.
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// Validates `metadata` of an object being created.
///
/// `generateName`, when set, is checked as a name prefix. A missing `name` is only an
/// error when no `generateName` was given either: the registry generates the name
/// before upstream validates, so a prefix alone is a complete request.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_rule: NameRule,
    path: &str,
) -> FieldErrors {
    let mut errs = Vec::new();
    let name = str_of(meta, "name");
    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                child(path, "generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                child(path, "name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_rule.check(name, false) {
            errs.push(FieldError::invalid(child(path, "name"), name, &msg));
        }
    }
    errs.extend(validate_meta_common(meta, namespaced, path));
    errs
}

/// The parts of ObjectMeta validated identically on create and update.
fn validate_meta_common(meta: &Value, namespaced: bool, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let namespace = str_of(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    child(path, "namespace"),
                    namespace,
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int(meta, "generation") {
        if g < 0 {
            errs.push(FieldError::invalid(
                child(path, "generation"),
                g,
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    errs.extend(validate_labels(obj(meta, "labels"), &child(path, "labels")));
    errs.extend(validate_annotations(
        obj(meta, "annotations"),
        &child(path, "annotations"),
    ));
    errs.extend(validate_owner_references(
        arr(meta, "ownerReferences"),
        &child(path, "ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        arr(meta, "finalizers"),
        &child(path, "finalizers"),
    ));
    errs.extend(validate_managed_fields(
        arr(meta, "managedFields"),
        &child(path, "managedFields"),
    ));
    errs.extend(validate_kube_finalizers(
        arr(meta, "finalizers"),
        &child(path, "finalizers"),
    ));
    errs
}

/// Annotation keys are qualified names compared case-insensitively; the summed size
/// of keys and values is capped at 256 KiB.
pub fn validate_annotations(annotations: Option<&Map<String, Value>>, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let Some(annotations) = annotations else {
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// Splits an apiVersion into (group, version); a malformed one yields an empty version.
fn parse_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        None => ("", api_version),
        Some((g, v)) if !v.contains('/') => (g, v),
        Some(_) => ("", ""),
    }
}

/// Owner references need apiVersion, kind, name and uid; Events may not own anything;
/// at most one reference may be the controller.
pub fn validate_owner_references(refs: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_of(r, "apiVersion");
        let kind = str_of(r, "kind");
        let (group, version) = parse_api_version(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "kind"),
                kind,
                "must not be empty",
            ));
        }
        let name = str_of(r, "name");
        if name.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "name"),
                name,
                "must not be empty",
            ));
        }
        let uid = str_of(r, "uid");
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Finalizers are qualified names; `orphan` and `foregroundDeletion` exclude each other.
/// Errors here name the list, not the item, as upstream's generic check does.
pub fn validate_finalizers(finalizers: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, &msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::from(names.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Core's extra finalizer check, reported per index: an unprefixed finalizer must be
/// one of the standard names. Upstream runs the generic qualified-name check again
/// here, so a malformed finalizer is reported both at the list and at its index.
fn validate_kube_finalizers(finalizers: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, f) in finalizers.iter().enumerate() {
        let f = f.as_str().unwrap_or_default();
        errs.extend(validate_kube_finalizer_name(f, &index(path, i)));
    }
    errs
}

/// One finalizer name as core validates it (qualified name, and standard if unprefixed).
pub fn validate_kube_finalizer_name(name: &str, path: &str) -> FieldErrors {
    let mut errs: FieldErrors = is_qualified_name(name)
        .iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

fn validate_managed_fields(entries: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let p = index(path, i);
        let op = str_of(e, "operation");
        if op != "Apply" && op != "Update" {
            errs.push(FieldError::invalid(
                child(&p, "operation"),
                op,
                "must be `Apply` or `Update`",
            ));
        }
        let ft = str_of(e, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(FieldError::invalid(
                child(&p, "fieldsType"),
                ft,
                "must be `FieldsV1`",
            ));
        }
        let manager = str_of(e, "manager");
        if manager.len() > 128 {
            errs.push(FieldError::too_long(child(&p, "manager"), 128));
        }
        if str_of(e, "subresource").len() > 256 {
            errs.push(FieldError::too_long(child(&p, "subresource"), 256));
        }
    }
    errs
}

/// Validates `metadata` on update: the new metadata must itself be valid, and the
/// identity fields fixed at creation must not change. Unlike upstream this does not
/// demand `resourceVersion`: the store enforces the version precondition itself (and
/// strips the field before validating), so checking it here would reject every update.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> FieldErrors {
    let path = "metadata";
    let mut errs = Vec::new();
    if get(old, "deletionTimestamp").is_some() {
        let old_f: BTreeSet<&str> = arr(old, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let extra: BTreeSet<&str> = arr(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list: Vec<String> = extra
                .iter()
                .map(|f| super::field_error::go_quote(f))
                .collect();
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let new_gen = int(new, "generation").unwrap_or(0);
    if new_gen < int(old, "generation").unwrap_or(0) {
        errs.push(FieldError::invalid(
            child(path, "generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let n = get(new, f);
        if n != get(old, f) {
            errs.push(FieldError::invalid(
                child(path, f),
                n.cloned().unwrap_or(Value::Null),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs.extend(validate_labels(obj(new, "labels"), &child(path, "labels")));
    errs.extend(validate_annotations(
        obj(new, "annotations"),
        &child(path, "annotations"),
    ));
    errs.extend(validate_owner_references(
        arr(new, "ownerReferences"),
        &child(path, "ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        arr(new, "managedFields"),
        &child(path, "managedFields"),
    ));
    errs.extend(validate_kube_finalizers(
        arr(new, "finalizers"),
        &child(path, "finalizers"),
    ));
    errs
}

/// Labels and annotations of an embedded template's metadata (pod templates).
pub fn validate_template_meta(meta: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_labels(obj(meta, "labels"), &child(path, "labels"));
    errs.extend(validate_annotations(
        obj(meta, "annotations"),
        &child(path, "annotations"),
    ));
    errs
}

/// `must be greater than or equal to 0` for a negative integer field.
pub fn validate_nonnegative(value: Option<i64>, path: &str) -> FieldErrors {
    match value {
        Some(v) if v < 0 => vec![FieldError::invalid(path, v, IS_NEGATIVE_ERROR_MSG)],
        _ => Vec::new(),
    }
}

/// [`validate_nonnegative`] for each integer field of `o` named in `fields`.
pub fn validate_nonnegative_fields(o: &Value, path: &str, fields: &[&str]) -> FieldErrors {
    fields
        .iter()
        .flat_map(|f| validate_nonnegative(int(o, f), &child(path, f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errs: &FieldErrors) -> Vec<(String, &'static str)> {
        errs.iter().map(|e| (e.field.clone(), e.reason())).collect()
    }

    #[test]
    fn name_required() {
        let errs = validate_object_meta(
            &json!({"namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn generate_name_alone_is_enough() {
        let errs = validate_object_meta(
            &json!({"generateName": "web-", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let errs = validate_object_meta(
            &json!({"generateName": "Web-", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            fields(&errs),
            vec![("metadata.generateName".to_string(), "FieldValueInvalid")]
        );
    }

    #[test]
    fn bad_name_message() {
        let errs = validate_object_meta(
            &json!({"name": "Foo_bar", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Invalid value: \"Foo_bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn name_too_long() {
        let name = "a".repeat(254);
        let errs = validate_object_meta(
            &json!({"name": name, "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message(),
            format!("Invalid value: \"{name}\": must be no more than 253 characters")
        );
    }

    #[test]
    fn namespace_rules() {
        let errs = validate_object_meta(
            &json!({"name": "a"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            fields(&errs),
            vec![("metadata.namespace".to_string(), "FieldValueRequired")]
        );
        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "x"}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn labels_and_annotations() {
        let meta = json!({"name": "a", "namespace": "n", "labels": {"bad key!": "v", "ok": "-bad"}, "annotations": {"A/b": "x"}});
        let errs = validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            fields(&errs),
            vec![
                ("metadata.labels".to_string(), "FieldValueInvalid"),
                ("metadata.labels".to_string(), "FieldValueInvalid"),
            ]
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let meta = json!({"name": "a", "namespace": "n", "annotations": {"k": big}});
        let errs = validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn owner_references() {
        let meta = json!({"name": "a", "namespace": "n", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"},
            {"apiVersion": "", "kind": "", "name": "", "uid": ""}
        ]});
        let errs = validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            fields(&errs),
            vec![
                ("metadata.ownerReferences".to_string(), "FieldValueInvalid"),
                (
                    "metadata.ownerReferences.apiVersion".to_string(),
                    "FieldValueInvalid"
                ),
                (
                    "metadata.ownerReferences.kind".to_string(),
                    "FieldValueInvalid"
                ),
                (
                    "metadata.ownerReferences.name".to_string(),
                    "FieldValueInvalid"
                ),
                (
                    "metadata.ownerReferences.uid".to_string(),
                    "FieldValueInvalid"
                ),
            ]
        );
    }

    #[test]
    fn finalizers() {
        let meta = json!({"name": "a", "namespace": "n", "finalizers": ["kubernetes", "custom", "example.com/x"]});
        let errs = validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers[1]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
        let meta = json!({"name": "a", "namespace": "n", "finalizers": ["bad_"]});
        let errs = validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            fields(&errs),
            vec![
                ("metadata.finalizers".to_string(), "FieldValueInvalid"),
                ("metadata.finalizers[0]".to_string(), "FieldValueInvalid"),
            ]
        );
    }

    #[test]
    fn update_immutable_fields() {
        let old = json!({"name": "a", "namespace": "n", "uid": "1", "resourceVersion": "5", "generation": 2});
        let new = json!({"name": "b", "namespace": "n", "uid": "2", "resourceVersion": "5", "generation": 1});
        let errs = validate_object_meta_update(&new, &old);
        assert_eq!(
            fields(&errs),
            vec![
                ("metadata.generation".to_string(), "FieldValueInvalid"),
                ("metadata.name".to_string(), "FieldValueInvalid"),
                ("metadata.uid".to_string(), "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            errs[1].to_string(),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
        // The version precondition is the store's job, not validation's.
        let new = json!({"name": "a", "namespace": "n", "uid": "1", "generation": 2});
        assert!(validate_object_meta_update(&new, &old).is_empty());
    }

    #[test]
    fn no_new_finalizers_while_deleting() {
        let old = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]});
        let new = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x", "b.io/y"]});
        let errs = validate_object_meta_update(&new, &old);
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}"
        );
    }
}
