//! Bad values written the way Go's `%#v` verb prints them.
//!
//! kube-apiserver (v1.33) formats a field error's value with `%#v` when it is
//! a struct without a value-receiver `String()` method, so the messages users
//! see for selectors and int-or-percent fields look like Go source:
//! `v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, ...}`.
//! These functions produce that text from the JSON object model, for
//! [`FieldError::invalid_rendered`](super::FieldError::invalid_rendered).

use serde_json::{Map, Value};

use super::field_error::go_quote;

/// A `map[string]string`: `map[string]string(nil)` when absent, keys sorted
/// (Go's fmt sorts map keys).
pub fn string_map(map: Option<&Map<String, Value>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_string();
    };
    let pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// A `[]string`: `[]string(nil)` when absent.
fn string_slice(items: Option<&Vec<Value>>) -> String {
    let Some(items) = items else {
        return "[]string(nil)".to_string();
    };
    let quoted: Vec<String> = items
        .iter()
        .map(|v| go_quote(v.as_str().unwrap_or("")))
        .collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// A `metav1.LabelSelector` value (what upstream shows for an immutable or
/// empty selector).
pub fn label_selector(selector: &Value) -> String {
    let labels = string_map(selector.get("matchLabels").and_then(Value::as_object));
    let exprs = match selector.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let each: Vec<String> = items
                .iter()
                .map(|r| {
                    let text = |k: &str| go_quote(r.get(k).and_then(Value::as_str).unwrap_or(""));
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        text("key"),
                        text("operator"),
                        string_slice(r.get("values").and_then(Value::as_array))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", each.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// An `intstr.IntOrString` value (Type 0 is an integer, 1 a string).
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_print_as_go_structs() {
        assert_eq!(
            label_selector(&json!({"matchLabels": {"b": "2", "a": "1"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"a":"1", "b":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            label_selector(&json!({"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "x", "operator": "Exists"}]})),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"a", "b"}}, v1.LabelSelectorRequirement{Key:"x", Operator:"Exists", Values:[]string(nil)}}}"#
        );
        assert_eq!(
            label_selector(&json!({"matchLabels": {}})),
            "v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }

    #[test]
    fn int_or_string_prints_both_arms() {
        assert_eq!(
            int_or_string(&json!("25%")),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}"#
        );
        assert_eq!(
            int_or_string(&json!(0)),
            r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#
        );
    }
}
