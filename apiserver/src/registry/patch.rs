//! Applies the three patch formats kube-apiserver accepts to an object.
//! Pure: the store calls this inside its update loop.

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Reason};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            _ => None,
        }
    }
}

pub fn apply(patch_type: PatchType, original: &Value, patch: &Value) -> ApiResult<Value> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is invalid: {e}")))?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    Reason::Invalid,
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            let api_version = original
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = original.get("kind").and_then(Value::as_str).unwrap_or("");
            let root = crate::patch::strategic::root_for(api_version, kind).ok_or_else(|| {
                ApiError::new(
                    Reason::UnsupportedMediaType,
                    format!("strategic merge patch is not supported for {api_version}/{kind}"),
                )
            })?;
            crate::patch::strategic::strategic_merge_patch(root, original, patch)
                .map_err(|e| ApiError::bad_request(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_op_failure_is_invalid_not_500() {
        let err = apply(
            PatchType::Json,
            &json!({"a": 1}),
            &json!([{"op": "test", "path": "/a", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn merge_patch_null_removes() {
        let out = apply(
            PatchType::Merge,
            &json!({"a": 1, "b": 2}),
            &json!({"b": null}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": 1}));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::Strategic)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }
}
