//! Subresources that are not plain status updates: pod binding and
//! eviction, the autoscaling/v1 Scale of replication controllers, and the
//! namespace finalize step. Each is built on the generic store's verbs.

use serde_json::{json, Value};

use super::options::{DeleteOptions, WriteOptions};
use super::patch::{self, PatchType};
use super::store::Part;
use super::strategy::Strategy;
use super::Registry;
use crate::error::{ApiError, ApiResult};
use crate::meta;

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

impl Registry {
    fn kind(&self, resource: &str) -> std::sync::Arc<dyn Strategy> {
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
        self.update_with(pods.as_ref(), ns, &name, Part::Internal, opts.dry_run, |old| {
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

    /// `pods/eviction`: deletes the pod with the eviction's delete options
    /// (no disruption budgets are served yet, so every eviction is allowed).
    pub async fn evict(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let body_name = meta::name(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in Eviction object ({body_name} != {name})"
            )));
        }
        let mut delete = DeleteOptions {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        if let Some(o) = body.get("deleteOptions").filter(|o| o.is_object()) {
            delete.merge_body(o)?;
        }
        self.delete(self.kind("pods").as_ref(), ns, name, &delete)
            .await?;
        Ok(success(201))
    }

    fn scale_of(obj: &Value) -> Value {
        let selector = obj
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                let mut parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                parts.sort();
                parts.join(",")
            })
            .unwrap_or_default();
        let m = &obj["metadata"];
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
            },
            "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
            "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
        })
    }

    pub async fn get_scale(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        Ok(Self::scale_of(&self.get(s, ns, name).await?))
    }

    /// PUT or PATCH of a Scale: changes `spec.replicas` of the parent.
    pub async fn update_scale(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        patch_type: Option<PatchType>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let d = s.descriptor();
        let out = self
            .update_with(s, ns, name, Part::Main, opts.dry_run, |old| {
                let current = Self::scale_of(old);
                let scale = match patch_type {
                    Some(pt) => patch::apply(pt, &current, &body)?,
                    None => body.clone(),
                };
                let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                if !replicas
                    .as_i64()
                    .is_some_and(|r| (0..=i32::MAX as i64).contains(&r))
                {
                    let err = crate::validation::field_error::FieldError::invalid(
                        "spec.replicas",
                        replicas.clone(),
                        "must be greater than or equal to 0",
                    );
                    return Err(ApiError::invalid("autoscaling", "Scale", name, &[err]));
                }
                let mut new = old.clone();
                new["spec"]["replicas"] = replicas;
                let rv = scale
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let m = meta::metadata_mut(&mut new);
                if rv.is_empty()
                    || patch_type.is_some() && body.pointer("/metadata/resourceVersion").is_none()
                {
                    m.remove("resourceVersion");
                } else {
                    m.insert("resourceVersion".into(), json!(rv));
                }
                Ok(new)
            })
            .await?;
        let _ = d;
        Ok(Self::scale_of(&out))
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
            .update_with(
                ns_kind.as_ref(),
                None,
                name,
                Part::Internal,
                opts.dry_run,
                |old| {
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
                },
            )
            .await?;
        Ok((out, Vec::new()))
    }
}
