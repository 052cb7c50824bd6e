//! Field-level validation errors: the error model behind every 422 Invalid response.
//!
//! Owns the error kinds (mirroring kube-apiserver's `CauseType` reasons), the per-field
//! message format (`Invalid value: "x": detail`), and the aggregate message that becomes
//! the Status `message` (`Pod "p" is invalid: [a, b]`). Messages must match upstream
//! byte for byte because clients (kubectl, controllers, tests) match on them.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// Why a field was rejected. Each kind maps 1:1 onto a Status cause `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    TooLong,
    TooMany,
    Forbidden,
    Internal,
    /// A reference to something that does not exist (e.g. a volumeMount naming an
    /// undeclared volume). Upstream reports these as `FieldValueNotFound`.
    NotFound,
}

impl ErrorType {
    /// The Status cause `reason` string.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::Internal => "InternalError",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }

    /// The human-readable lead of a message (`Required value`, `Invalid value`, ...).
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::Internal => "Internal error",
            ErrorType::NotFound => "Not found",
        }
    }
}

/// One rejected field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    /// JSON-ish path of the field, e.g. `spec.containers[0].image` or `data[key]`.
    pub field: String,
    /// The offending value, when the message shows it.
    pub value: Option<Value>,
    /// The offending value already written the way Go's `%#v` prints it, for
    /// the structs upstream passes by value (`v1.LabelSelector{...}`,
    /// `intstr.IntOrString{...}`), which JSON cannot express. Wins over `value`.
    pub rendered: Option<String>,
    pub detail: String,
}

/// A list of field errors, in the order upstream reports them.
pub type FieldErrors = Vec<FieldError>;

impl FieldError {
    fn new(kind: ErrorType, field: impl Into<String>, value: Option<Value>, detail: &str) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            rendered: None,
            detail: detail.to_string(),
        }
    }

    /// A value that must be present is missing or empty.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    /// A value is malformed or out of range.
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: &str) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }

    /// A malformed value shown in Go syntax (see [`go_repr`](super::go_repr)).
    pub fn invalid_rendered(field: impl Into<String>, rendered: String, detail: &str) -> Self {
        let mut e = Self::new(ErrorType::Invalid, field, None, detail);
        e.rendered = Some(rendered);
        e
    }

    /// A value is not one of an enumerated set; `supported` is listed in the message.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.into()), &detail)
    }

    /// A value collides with an earlier one that must be unique.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }

    /// A value (or the sum of several) exceeds a byte limit. The value is never shown.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max_bytes} {unit}");
        Self::new(ErrorType::TooLong, field, None, &detail)
    }

    /// A list has more items than allowed.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let detail = format!("must have at most {max} items");
        Self::new(
            ErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            &detail,
        )
    }

    /// A well-formed value is not allowed in this context.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    /// Something went wrong that is not the client's fault.
    pub fn internal(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorType::Internal, field, None, detail)
    }

    /// A reference names something that does not exist.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }

    /// Replaces the detail text (upstream does this for a few NotFound/Duplicate errors).
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = detail.to_string();
        self
    }

    /// The Status cause `reason`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message body without the field path; this is the Status cause `message`.
    pub fn message(&self) -> String {
        let mut s = match self.kind {
            // These kinds never echo the value back, mostly because it may be huge
            // (TooLong) or meaningless (Required).
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::Internal => self.kind.label().to_string(),
            _ => match &self.rendered {
                Some(r) => format!("{}: {r}", self.kind.label()),
                None => format!(
                    "{}: {}",
                    self.kind.label(),
                    render_value(self.value.as_ref())
                ),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for FieldError {}

/// Upstream's aggregate message for an Invalid status:
/// `<Kind> "<name>" is invalid: <field>: <message>` for one distinct error, or
/// `<Kind> "<name>" is invalid: [e1, e2]` for several. Identical errors are reported once.
/// `kind` is the qualified kind as upstream prints it (`Pod`, `Deployment.apps`).
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let mut distinct = Vec::new();
    for e in errs {
        let msg = e.to_string();
        if seen.insert(msg.clone()) {
            distinct.push(msg);
        }
    }
    let head = format!("{kind} {} is invalid", go_quote(name));
    match distinct.len() {
        0 => head,
        1 => format!("{head}: {}", distinct[0]),
        _ => format!("{head}: [{}]", distinct.join(", ")),
    }
}

/// Renders a bad value the way Go's `%q`/`%v`/`%#v` would for the types upstream passes.
fn render_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "null".to_string(),
        Some(Value::String(s)) => go_quote(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(items)) => {
            // Go prints string slices as `[]string{"a", "b"}`; other slices have no
            // faithful rendering from JSON, so they fall back to JSON.
            if items.iter().all(Value::is_string) {
                let inner: Vec<String> = items
                    .iter()
                    .map(|v| go_quote(v.as_str().unwrap_or_default()))
                    .collect();
                format!("[]string{{{}}}", inner.join(", "))
            } else {
                Value::Array(items.clone()).to_string()
            }
        }
        Some(Value::Object(map)) => {
            // Label maps and selectors are `map[string]string{"k":"v"}` in Go, keys sorted.
            if map.values().all(Value::is_string) {
                let inner: Vec<String> = map
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}:{}",
                            go_quote(k),
                            go_quote(v.as_str().unwrap_or_default())
                        )
                    })
                    .collect();
                format!("map[string]string{{{}}}", inner.join(", "))
            } else {
                Value::Object(map.clone()).to_string()
            }
        }
    }
}

/// Quotes a string like Go's `strconv.Quote`: printable characters pass through,
/// quotes and backslashes are escaped, control characters use Go's escape forms.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let cp = c as u32;
                if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons() {
        assert_eq!(FieldError::required("a", "").reason(), "FieldValueRequired");
        assert_eq!(
            FieldError::invalid("a", 1, "").reason(),
            "FieldValueInvalid"
        );
        assert_eq!(
            FieldError::not_supported("a", "x", &[]).reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(
            FieldError::duplicate("a", "x").reason(),
            "FieldValueDuplicate"
        );
        assert_eq!(FieldError::too_long("a", 3).reason(), "FieldValueTooLong");
        assert_eq!(
            FieldError::too_many("a", 3, 2).reason(),
            "FieldValueTooMany"
        );
        assert_eq!(
            FieldError::forbidden("a", "").reason(),
            "FieldValueForbidden"
        );
        assert_eq!(FieldError::internal("a", "x").reason(), "InternalError");
        assert_eq!(
            FieldError::not_found("a", "x").reason(),
            "FieldValueNotFound"
        );
    }

    #[test]
    fn message_formats() {
        assert_eq!(FieldError::required("a", "").message(), "Required value");
        assert_eq!(
            FieldError::required("a", "name or generateName is required").message(),
            "Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::not_supported("a", "x", &["a", "b"]).message(),
            r#"Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(
            FieldError::invalid("p", 0, "must be positive").message(),
            "Invalid value: 0: must be positive"
        );
        assert_eq!(
            FieldError::duplicate("p", "x").message(),
            r#"Duplicate value: "x""#
        );
        assert_eq!(
            FieldError::too_long("p", 262144).message(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_many("p", 5, 4).message(),
            "Too many: 5: must have at most 4 items"
        );
        assert_eq!(
            FieldError::not_found("p", "vol").message(),
            r#"Not found: "vol""#
        );
        assert_eq!(
            FieldError::forbidden("p", "nope").message(),
            "Forbidden: nope"
        );
    }

    #[test]
    fn go_rendering_of_collections() {
        let e = FieldError::invalid("x", json!({"b": "2", "a": "1"}), "d");
        assert_eq!(
            e.message(),
            r#"Invalid value: map[string]string{"a":"1", "b":"2"}: d"#
        );
        let e = FieldError::invalid("x", json!(["10.0.0.1"]), "d");
        assert_eq!(e.message(), r#"Invalid value: []string{"10.0.0.1"}: d"#);
        assert_eq!(
            FieldError::invalid("x", Value::Null, "d").message(),
            "Invalid value: null: d"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }

    #[test]
    fn aggregate_one_and_many() {
        let one = vec![FieldError::required("spec.containers", "")];
        assert_eq!(
            invalid_message("Pod", "p", &one),
            r#"Pod "p" is invalid: spec.containers: Required value"#
        );
        let many = vec![
            FieldError::required("a", ""),
            FieldError::required("a", ""),
            FieldError::forbidden("b", "no"),
        ];
        assert_eq!(
            invalid_message("Deployment.apps", "d", &many),
            r#"Deployment.apps "d" is invalid: [a: Required value, b: Forbidden: no]"#
        );
        // Duplicates collapse, and a single survivor loses the brackets.
        let dup = vec![FieldError::required("a", ""), FieldError::required("a", "")];
        assert_eq!(
            invalid_message("X", "n", &dup),
            r#"X "n" is invalid: a: Required value"#
        );
        assert_eq!(invalid_message("X", "n", &[]), r#"X "n" is invalid"#);
    }
}
