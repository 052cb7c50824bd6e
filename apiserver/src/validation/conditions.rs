//! Validation of `metav1.Condition` lists (the standard status conditions,
//! e.g. a PodDisruptionBudget's): unique qualified-name types, a known
//! status, a set transition time, a CamelCase-ish reason and bounded texts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::field_error::{FieldError, FieldErrors};
use super::names::{regex_error, validate_qualified_name};
use super::value::{child, index, int, str_of};

const MAX_REASON_LEN: usize = 1024;
const MAX_MESSAGE_LEN: usize = 32 * 1024;
const STATUSES: [&str; 3] = ["False", "True", "Unknown"];
const REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const REASON_ERR: &str = "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'";

/// Validates the conditions at `path`.
pub fn validate_conditions(conditions: &[Value], path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = index(path, i);
        let kind = str_of(c, "type");
        if !seen.insert(kind) {
            errs.push(FieldError::duplicate(child(&p, "type"), kind));
        }
        errs.extend(validate_condition(c, &p));
    }
    errs
}

fn validate_condition(c: &Value, path: &str) -> FieldErrors {
    let mut errs = validate_qualified_name(str_of(c, "type"), &child(path, "type"));
    let status = str_of(c, "status");
    if !STATUSES.contains(&status) {
        errs.push(FieldError::not_supported(
            child(path, "status"),
            status,
            &STATUSES,
        ));
    }
    if let Some(g) = int(c, "observedGeneration").filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            child(path, "observedGeneration"),
            g,
            "must be greater than or equal to zero",
        ));
    }
    if str_of(c, "lastTransitionTime").is_empty() {
        errs.push(FieldError::required(
            child(path, "lastTransitionTime"),
            "must be set",
        ));
    }
    let reason = str_of(c, "reason");
    if reason.is_empty() {
        errs.push(FieldError::required(child(path, "reason"), "must be set"));
    } else {
        if !is_reason(reason) {
            let msg = regex_error(
                REASON_ERR,
                REASON_FMT,
                &[
                    "my_name",
                    "MY_NAME",
                    "MyName",
                    "ReasonA,ReasonB",
                    "ReasonA:ReasonB",
                ],
            );
            errs.push(FieldError::invalid(child(path, "reason"), reason, &msg));
        }
        if reason.len() > MAX_REASON_LEN {
            errs.push(FieldError::too_long(child(path, "reason"), MAX_REASON_LEN));
        }
    }
    if str_of(c, "message").len() > MAX_MESSAGE_LEN {
        errs.push(FieldError::too_long(
            child(path, "message"),
            MAX_MESSAGE_LEN,
        ));
    }
    errs
}

/// `[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?`
fn is_reason(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':');
    let last = b[b.len() - 1];
    b[0].is_ascii_alphabetic()
        && b.iter().all(inner)
        && (b.len() == 1 || last.is_ascii_alphanumeric() || last == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn well_formed_conditions_pass() {
        let ok = json!([{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                         "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]);
        assert!(validate_conditions(ok.as_array().unwrap(), "status.conditions").is_empty());
    }

    #[test]
    fn each_rule_reports_its_field() {
        let bad = json!([
            {"type": "A", "status": "Maybe", "reason": "1x"},
            {"type": "A", "status": "True", "reason": "Ok,", "lastTransitionTime": "t"},
        ]);
        let msgs: Vec<String> = validate_conditions(bad.as_array().unwrap(), "status.conditions")
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason()))
            .collect();
        assert_eq!(
            msgs,
            [
                "status.conditions[0].status: FieldValueNotSupported",
                "status.conditions[0].lastTransitionTime: FieldValueRequired",
                "status.conditions[0].reason: FieldValueInvalid",
                "status.conditions[1].type: FieldValueDuplicate",
                "status.conditions[1].reason: FieldValueInvalid",
            ]
        );
    }

    #[test]
    fn reasons() {
        for ok in ["A", "My_Reason", "A,B", "A:B_"] {
            assert!(is_reason(ok), "{ok}");
        }
        for bad in ["_A", "A-B", "A,", "1"] {
            assert!(!is_reason(bad), "{bad}");
        }
    }
}
