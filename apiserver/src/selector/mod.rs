//! Selectors the API server applies when listing and watching.
//!
//! This module owns the two query-string selector languages of the Kubernetes
//! API and nothing else (no IO, no storage access):
//!
//! * [`label`] — `labelSelector=`: the set-based grammar (`k=v`, `k in (a,b)`,
//!   `!k`, ...), key/value validation with kube-apiserver's messages, matching
//!   against `metadata.labels`, and construction from the `metav1.LabelSelector`
//!   objects and plain maps found in controller specs.
//! * [`field`] — `fieldSelector=`: `f=v` / `f!=v` terms with backslash escaping,
//!   plus the per-kind table of field labels kube-apiserver accepts and how to
//!   read each from a stored JSON object.
//!
//! Kinds are named by a *kind id*: the bare kind for the core group (`"Pod"`)
//! and `"<group>/<Kind>"` for every other group (`"events.k8s.io/Event"`).
//! Bare names of non-core kinds (`"Deployment"`) are accepted too, since they
//! are unambiguous; the one name that is not is `"Event"`, which always means
//! core/v1 Event. [`kind_id`] builds the id from a group and a kind.

pub mod field;
pub mod label;

pub use field::{field_value, FieldSelector};
pub use label::{LabelSelector, Requirement, SelectorError};

/// The kind id for `group` and `kind`: `kind` alone for the core group,
/// `group/kind` otherwise.
pub fn kind_id(group: &str, kind: &str) -> String {
    if group.is_empty() || group == "core" {
        kind.to_string()
    } else {
        format!("{group}/{kind}")
    }
}

/// Splits a kind id into `(group, kind)`; the group is `""` when the id has
/// none (core, or a bare name the caller must resolve).
pub(crate) fn split_kind_id(id: &str) -> (&str, &str) {
    match id.rsplit_once('/') {
        Some(("core", kind)) => ("", kind),
        Some((group, kind)) => (group, kind),
        None => ("", id),
    }
}

/// Quotes `s` the way Go's `%q` verb (strconv.Quote) does, because upstream
/// error messages that reach clients embed values formatted that way.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Go keeps printable non-ASCII runes as they are; control and
            // format characters are escaped by code point.
            c if c.is_control() || is_go_unprintable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The non-control characters Go's strconv.IsPrint rejects that are likely in
/// practice: format characters and the non-ASCII spaces.
fn is_go_unprintable(c: char) -> bool {
    matches!(
        c,
        '\u{a0}'
            | '\u{ad}'
            | '\u{2000}'..='\u{200f}'
            | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{206f}'
            | '\u{3000}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_ids() {
        assert_eq!(kind_id("", "Pod"), "Pod");
        assert_eq!(kind_id("core", "Pod"), "Pod");
        assert_eq!(kind_id("events.k8s.io", "Event"), "events.k8s.io/Event");
        assert_eq!(split_kind_id("Pod"), ("", "Pod"));
        assert_eq!(split_kind_id("core/Pod"), ("", "Pod"));
        assert_eq!(split_kind_id("apps/Deployment"), ("apps", "Deployment"));
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("tab\there\n"), "\"tab\\there\\n\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("héllo"), "\"héllo\"");
        assert_eq!(go_quote("\u{200b}"), "\"\\u200b\"");
    }
}
