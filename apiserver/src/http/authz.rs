//! `authorization.k8s.io/v1` self reviews (`kubectl auth can-i`). rkube has
//! no RBAC yet: every authenticated user may do everything, and the reviews
//! say so (with that reason) instead of pretending to evaluate policies.

use axum::body::Body;
use axum::http::{Method, Response};
use serde_json::{json, Value};

use super::negotiate::{self, Form};
use super::request_info::ResourcePath;
use crate::error::{ApiError, ApiResult, Reason};

pub const GROUP: &str = "authorization.k8s.io";
const REASON: &str = "rkube authorizes every authenticated user (no RBAC yet)";

pub fn descriptors() -> Vec<openapi::ResourceDescriptor> {
    ["SelfSubjectAccessReview", "SelfSubjectRulesReview"]
        .iter()
        .zip(["selfsubjectaccessreviews", "selfsubjectrulesreviews"])
        .zip(["selfsubjectaccessreview", "selfsubjectrulesreview"])
        .map(|((kind, resource), singular)| openapi::ResourceDescriptor {
            group: GROUP,
            version: "v1",
            kind,
            resource,
            singular,
            namespaced: false,
            verbs: &["create"],
            short_names: &[],
            categories: &[],
            subresources: &[],
        })
        .collect()
}

pub fn handle(
    method: &Method,
    path: &ResourcePath,
    body: Value,
    form: &Form,
) -> ApiResult<Response<Body>> {
    let kind = match path.resource.as_str() {
        "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
        "selfsubjectrulesreviews" => "SelfSubjectRulesReview",
        _ => {
            return Err(ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            ))
        }
    };
    if *method != Method::POST || path.name.is_some() || path.namespace.is_some() {
        return Err(ApiError::method_not_allowed(
            method.as_str(),
            &path.resource,
        ));
    }
    if body
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != kind)
    {
        return Err(ApiError::bad_request(format!("expected a {kind}")));
    }
    let mut review = body;
    review["apiVersion"] = json!(format!("{GROUP}/v1"));
    review["kind"] = json!(kind);
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    review["status"] = if kind == "SelfSubjectAccessReview" {
        if review.pointer("/spec/resourceAttributes").is_none()
            && review.pointer("/spec/nonResourceAttributes").is_none()
        {
            let err = crate::validation::field_error::FieldError::required(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            );
            return Err(ApiError::invalid(GROUP, kind, "", &[err]));
        }
        json!({"allowed": true, "reason": REASON})
    } else {
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    };
    Ok(negotiate::object_response(201, form, kind, &review))
}
