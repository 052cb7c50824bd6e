//! IntOrString fields that hold a count or a percentage (rollout bounds,
//! disruption budgets): a non-negative integer or `<digits>%`, at most 100%
//! where a share of pods is meant.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrors};
use super::go_repr;
use super::meta::validate_nonnegative;
use super::names::regex_error;

/// `value` of a percent string like "25%", `None` for anything else.
pub fn percent(v: &Value) -> Option<i64> {
    let digits = v.as_str()?.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Upstream's getIntOrPercentValue: the percentage, or the integer (a
/// string that is no percentage reads as a decimal number, else 0).
pub fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => {
            percent(&Value::String(s.clone())).unwrap_or_else(|| s.parse().unwrap_or(0))
        }
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    }
}

/// A non-negative integer or a well-formed percentage.
pub fn validate_int_or_percent(v: Option<&Value>, path: &str) -> FieldErrors {
    match v {
        Some(v @ Value::String(_)) if percent(v).is_none() => {
            vec![FieldError::invalid_rendered(
                path,
                go_repr::int_or_string(v),
                &regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    &["1%", "93%"],
                ),
            )]
        }
        Some(v) if v.is_number() => validate_nonnegative(v.as_i64(), path),
        _ => Vec::new(),
    }
}

/// "must not be greater than 100%" for a percentage above 100.
pub fn not_more_than_100_percent(v: Option<&Value>, path: &str) -> FieldErrors {
    match v {
        Some(v) if percent(v).is_some_and(|p| p > 100) => vec![FieldError::invalid_rendered(
            path,
            go_repr::int_or_string(v),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_messages() {
        assert_eq!(int_or_percent_value(Some(&json!("25%"))), 25);
        assert_eq!(int_or_percent_value(Some(&json!(3))), 3);
        assert_eq!(int_or_percent_value(Some(&json!("3"))), 3);
        assert_eq!(int_or_percent_value(Some(&json!("x"))), 0);
        assert_eq!(int_or_percent_value(None), 0);
        assert!(validate_int_or_percent(Some(&json!("10%")), "p").is_empty());
        assert_eq!(
            validate_int_or_percent(Some(&json!("ten")), "p")[0].to_string(),
            r#"p: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"ten"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#
        );
        assert_eq!(
            validate_int_or_percent(Some(&json!(-1)), "p")[0].to_string(),
            "p: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            not_more_than_100_percent(Some(&json!("101%")), "p")[0].to_string(),
            r#"p: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"101%"}: must not be greater than 100%"#
        );
        assert!(not_more_than_100_percent(Some(&json!(101)), "p").is_empty());
    }
}
