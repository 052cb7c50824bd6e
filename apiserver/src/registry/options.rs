//! Typed request options of the generic store (list, watch, write, delete),
//! parsed from query strings and bodies. Pure.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::selector::field::FieldSelector;
use crate::selector::label::LabelSelector;
use crate::storage::Revision;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> ApiResult<Self> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Fields the request body names twice (paths), found at the edge
    /// while `field_validation` is not Ignore.
    pub duplicate_fields: Vec<String>,
    /// The manager `metadata.managedFields` records this write under
    /// (`fieldManager`, else the User-Agent's product); `None` (writes the
    /// server makes itself) records nothing.
    pub field_manager: Option<String>,
    /// `force`: an apply takes the fields other managers own.
    pub force: bool,
    /// The subresource recorded with the write when it is not `status`
    /// (`scale`).
    pub subresource: &'static str,
    /// Set by apply: `managedFields` have been computed already.
    pub(crate) applied: bool,
}

/// The manager a write is recorded under: `fieldManager` when given (at
/// most 128 characters), else the User-Agent up to its first `/`.
pub fn field_manager(param: Option<&str>, user_agent: &str) -> ApiResult<String> {
    match param.filter(|m| !m.is_empty()) {
        Some(m) => {
            if m.chars().count() > 128 {
                return Err(ApiError::bad_request(format!(
                    "fieldManager: Too long: may not be more than 128 bytes, got {}",
                    m.len()
                )));
            }
            if m.chars().any(|c| c.is_control()) {
                return Err(ApiError::bad_request(format!(
                    "fieldManager: Invalid value: {m:?}: must only contain printable characters"
                )));
            }
            Ok(m.to_string())
        }
        None => Ok(user_agent
            .split('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect()),
    }
}

/// `dryRun` accepts only "All".
pub fn parse_dry_run(values: &[&str]) -> ApiResult<bool> {
    let mut dry = false;
    for v in values {
        match *v {
            "All" => dry = true,
            "" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid dryRun value {other:?}: the only valid value is \"All\""
                )))
            }
        }
    }
    Ok(dry)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvMatch {
    NotOlderThan,
    Exact,
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// `None`: the empty string (a consistent, current read).
    pub resource_version: Option<Revision>,
    pub resource_version_match: Option<RvMatch>,
    // Watch-only:
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<u64>,
}

/// `resourceVersion` query values are decimal revisions; empty means unset.
pub fn parse_resource_version(s: Option<&str>) -> ApiResult<Option<Revision>> {
    match s {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<Revision>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}"))),
    }
}

pub fn parse_rv_match(s: Option<&str>) -> ApiResult<Option<RvMatch>> {
    match s {
        None | Some("") => Ok(None),
        Some("NotOlderThan") => Ok(Some(RvMatch::NotOlderThan)),
        Some("Exact") => Ok(Some(RvMatch::Exact)),
        Some(other) => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    #[default]
    Background,
    Foreground,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<Revision>,
    pub propagation: Option<Propagation>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Merges a `DeleteOptions` body (JSON object) into options from the query.
    pub fn merge_body(&mut self, body: &Value) -> ApiResult<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = body.get("preconditions") {
            if let Some(uid) = p.get("uid").and_then(Value::as_str) {
                self.uid = Some(uid.to_string());
            }
            if let Some(rv) = p.get("resourceVersion").and_then(Value::as_str) {
                self.resource_version = parse_resource_version(Some(rv))?;
            }
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(parse_propagation(p)?);
        } else if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            self.propagation = Some(Propagation::Orphan);
        }
        if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
            let vals: Vec<&str> = d.iter().filter_map(Value::as_str).collect();
            self.dry_run |= parse_dry_run(&vals)?;
        }
        Ok(())
    }
}

pub fn parse_propagation(s: &str) -> ApiResult<Propagation> {
    match s {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_version_must_be_numeric() {
        assert_eq!(parse_resource_version(Some("12")).unwrap(), Some(12));
        assert_eq!(parse_resource_version(Some("")).unwrap(), None);
        assert_eq!(parse_resource_version(Some("abc")).unwrap_err().code(), 400);
    }

    #[test]
    fn delete_body_preconditions_and_policy() {
        let mut o = DeleteOptions::default();
        o.merge_body(&serde_json::json!({
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u", "resourceVersion": "7"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        }))
        .unwrap();
        assert_eq!(o.grace_period_seconds, Some(0));
        assert_eq!(o.uid.as_deref(), Some("u"));
        assert_eq!(o.resource_version, Some(7));
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert!(o.dry_run);
        assert!(o
            .merge_body(&serde_json::json!({"propagationPolicy": "Sideways"}))
            .is_err());
    }

    #[test]
    fn dry_run_accepts_only_all() {
        assert!(parse_dry_run(&["All"]).unwrap());
        assert_eq!(parse_dry_run(&["Some"]).unwrap_err().code(), 400);
    }
}
