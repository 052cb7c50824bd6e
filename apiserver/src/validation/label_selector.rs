//! Validation of `metav1.LabelSelector` fields (workload and disruption
//! budget selectors): label syntax of `matchLabels`, and each
//! `matchExpressions` requirement's operator, key and values.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrors};
use super::names::{is_label_value, validate_labels, validate_qualified_name};
use super::value::{arr, child, index, obj, str_of};

/// Validates a label selector object at `path` (nothing for an absent one).
/// Values in `matchExpressions` must be valid label values.
pub fn validate_label_selector(selector: Option<&Value>, path: &str) -> FieldErrors {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return Vec::new();
    };
    let mut errs = validate_labels(obj(selector, "matchLabels"), &child(path, "matchLabels"));
    for (i, req) in arr(selector, "matchExpressions").iter().enumerate() {
        errs.extend(validate_requirement(
            req,
            &index(&child(path, "matchExpressions"), i),
        ));
    }
    errs
}

fn validate_requirement(req: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let values = arr(req, "values");
    match str_of(req, "operator") {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            child(path, "values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            child(path, "values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        other => errs.push(FieldError::invalid(
            child(path, "operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_qualified_name(
        str_of(req, "key"),
        &child(path, "key"),
    ));
    for (i, v) in values.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        errs.extend(
            is_label_value(v)
                .iter()
                .map(|m| FieldError::invalid(index(&child(path, "values"), i), v, m)),
        );
    }
    errs
}

/// Whether a selector object has no requirements at all (`{}` or only empty
/// lists), which workloads reject.
pub fn is_empty_selector(selector: &Value) -> bool {
    obj(selector, "matchLabels").is_none_or(|m| m.is_empty())
        && arr(selector, "matchExpressions").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: &FieldErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn requirements_are_checked() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In"},
                {"key": "env", "operator": "Exists", "values": ["x"]},
                {"key": "bad key", "operator": "Near", "values": ["-x-"]},
            ]
        });
        assert_eq!(
            msgs(&validate_label_selector(Some(&sel), "spec.selector")),
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
                "spec.selector.matchExpressions[2].key: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.selector.matchExpressions[2].values[0]: Invalid value: \"-x-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ]
        );
        assert!(validate_label_selector(None, "s").is_empty());
    }

    #[test]
    fn emptiness() {
        assert!(is_empty_selector(&json!({})));
        assert!(is_empty_selector(
            &json!({"matchLabels": {}, "matchExpressions": []})
        ));
        assert!(!is_empty_selector(&json!({"matchLabels": {"a": "b"}})));
    }
}
