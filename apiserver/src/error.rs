//! The API server's error type: every failure a request can meet, with the
//! HTTP code and `metav1.Status` reason kube-apiserver uses for it.
//!
//! Errors are built close to where they happen (storage, registry, decoding)
//! and turned into a `Status` body exactly once, at the HTTP edge
//! (`ApiError::to_status`). Nothing here does IO.

use serde_json::{json, Value};

use crate::storage::StorageError;
use crate::validation::field_error::{invalid_message, FieldError};

/// The `reason` of a `metav1.Status`, which clients match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    NotAcceptable,
    Invalid,
    Timeout,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::Invalid => "Invalid",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Gone | Reason::Expired => 410,
            Reason::RequestEntityTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::Invalid => 422,
            Reason::TooManyRequests => 429,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
            Reason::Timeout => 504,
        }
    }
}

/// What a `Status.details` names: the object the error is about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Value>,
    pub retry_after_seconds: Option<u64>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct ApiError {
    pub reason: Reason,
    pub message: String,
    pub details: Option<Box<Details>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Reason::InternalError, message)
    }

    pub fn method_not_allowed(verb: &str, resource: &str) -> Self {
        Self::new(
            Reason::MethodNotAllowed,
            format!("the server does not allow this method on the requested resource ({verb} {resource})"),
        )
    }

    /// "pods \"x\" not found", as kube-apiserver words it.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::about(
            Reason::NotFound,
            group,
            resource,
            name,
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::about(
            Reason::AlreadyExists,
            group,
            resource,
            name,
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
    }

    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::about(
            Reason::Conflict,
            group,
            resource,
            name,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
        )
    }

    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let causes = errs
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
            .collect();
        ApiError {
            reason: Reason::Invalid,
            message: invalid_message(&qualified(group, kind), name, errs),
            details: Some(Box::new(Details {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                causes,
                retry_after_seconds: None,
            })),
        }
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(Reason::Expired, message)
    }

    fn about(reason: Reason, group: &str, resource: &str, name: &str, message: String) -> Self {
        ApiError {
            reason,
            message,
            details: Some(Box::new(Details {
                name: name.to_string(),
                group: group.to_string(),
                kind: resource.to_string(),
                ..Default::default()
            })),
        }
    }

    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    /// The `metav1.Status` body for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code(),
        });
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if !d.name.is_empty() {
                details.insert("name".into(), d.name.clone().into());
            }
            if !d.group.is_empty() {
                details.insert("group".into(), d.group.clone().into());
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), d.kind.clone().into());
            }
            if !d.causes.is_empty() {
                details.insert("causes".into(), Value::Array(d.causes.clone()));
            }
            if let Some(s) = d.retry_after_seconds {
                details.insert("retryAfterSeconds".into(), s.into());
            }
            status["details"] = Value::Object(details);
        }
        status
    }

    /// Maps a storage failure on one object to the API error a client expects.
    pub fn from_storage(err: StorageError, group: &str, resource: &str, name: &str) -> Self {
        match err {
            StorageError::NotFound { .. } => Self::not_found(group, resource, name),
            StorageError::AlreadyExists { .. } => Self::already_exists(group, resource, name),
            StorageError::Conflict { .. } => Self::conflict(
                group,
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            StorageError::PreconditionFailed { message, .. } => {
                Self::conflict(group, resource, name, &message)
            }
            other => Self::from(other),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Expired {
                requested,
                compacted,
            } => ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StorageError::TooLargeRevision { requested, current } => {
                let mut e = ApiError::new(
                    Reason::Timeout,
                    format!("Too large resource version: {requested}, current: {current}"),
                );
                e.details = Some(Box::new(Details {
                    retry_after_seconds: Some(1),
                    ..Default::default()
                }));
                e
            }
            StorageError::Unavailable(m) => ApiError::new(Reason::ServiceUnavailable, m),
            StorageError::Aborted(m) => ApiError::bad_request(m),
            StorageError::NotFound { key } => {
                ApiError::new(Reason::NotFound, format!("{key} not found"))
            }
            StorageError::AlreadyExists { key } => {
                ApiError::new(Reason::AlreadyExists, format!("{key} already exists"))
            }
            StorageError::Conflict { key, .. } => {
                ApiError::new(Reason::Conflict, format!("{key} was modified concurrently"))
            }
            StorageError::PreconditionFailed { message, .. } => {
                ApiError::new(Reason::Conflict, message)
            }
            StorageError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// "pods" or "deployments.apps": how kube-apiserver names a resource in messages.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_matches_upstream_shape() {
        let s = ApiError::not_found("", "pods", "web").to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "pods \"web\" not found");
        assert_eq!(s["details"]["name"], "web");
        assert_eq!(s["details"]["kind"], "pods");
    }

    #[test]
    fn storage_expired_is_410() {
        let e = ApiError::from(StorageError::Expired {
            requested: 3,
            compacted: 9,
        });
        assert_eq!(e.code(), 410);
        assert_eq!(e.to_status()["reason"], "Expired");
    }
}
