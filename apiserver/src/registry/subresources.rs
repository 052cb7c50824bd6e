//! Subresources that are not plain status updates: pod binding and the
//! namespace finalize step (eviction is `eviction.rs`, the autoscaling/v1
//! Scale `scale.rs`). Each is built on the generic store's verbs.

use serde_json::{json, Value};

use super::options::WriteOptions;
use super::store::Part;
use super::strategy::Strategy;
use super::Registry;
use crate::error::{ApiError, ApiResult};
use crate::meta;

/// The `Status` a successful subresource POST answers with.
pub(super) fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

impl Registry {
    pub(super) fn kind(&self, resource: &str) -> std::sync::Arc<dyn Strategy> {
        self.find("", "v1", resource)
            .expect("core kinds are always served")
    }

    /// `pods/binding` and `bindings`: sets `spec.nodeName` of an unbound pod.
    pub async fn bind(
        &self,
        ns: Option<&str>,
        pod: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let name = pod
            .map(String::from)
            .unwrap_or_else(|| meta::name(&body).to_string());
        if meta::name(&body) != name && !meta::name(&body).is_empty() {
            return Err(ApiError::bad_request(format!(
                "the name of the binding ({}) does not match the name of the pod ({name})",
                meta::name(&body)
            )));
        }
        let node = body
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            let err = crate::validation::field_error::FieldError::required("target.name", "");
            return Err(ApiError::invalid("", "Binding", &name, &[err]));
        }
        let pods = self.kind("pods");
        self.update_with(pods.as_ref(), ns, &name, Part::Internal, opts, |old| {
            if meta::deletion_timestamp(old).is_some() {
                return Err(ApiError::conflict("", "pods", &name, "pod is being deleted, cannot be assigned to a host"));
            }
            let current = meta::str_at(old, &["spec", "nodeName"]).unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    &name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            let mut new = old.clone();
            new["spec"]["nodeName"] = json!(node);
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let conditions = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
            new["status"]["conditions"] = Value::Array(conditions);
            Ok(new)
        })
        .await?;
        Ok(success(201))
    }

    /// `namespaces/finalize`: replaces `spec.finalizers`; a terminating
    /// namespace with none left is removed.
    pub async fn finalize_namespace(
        &self,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Vec<String>)> {
        let finalizers = body
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        let ns_kind = self.kind("namespaces");
        let out = self
            .update_with(ns_kind.as_ref(), None, name, Part::Internal, opts, |old| {
                let mut new = old.clone();
                new["spec"]["finalizers"] = finalizers.clone();
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    let rv = body.pointer("/metadata/resourceVersion").cloned();
                    match rv {
                        Some(rv) => m.insert("resourceVersion".into(), rv),
                        None => m.remove("resourceVersion"),
                    };
                }
                Ok(new)
            })
            .await?;
        Ok((out, Vec::new()))
    }
}
