//! The autoscaling/v1 `scale` subresource of every kind that declares one
//! (ReplicationControllers, Deployments, ReplicaSets): a Scale view of the
//! parent's `spec.replicas`, `status.replicas` and pod selector (from
//! `Strategy::scale_selector`). Writes change only `spec.replicas` and go
//! through the parent's update rules (generation, validation).

use serde_json::{json, Value};

use super::options::WriteOptions;
use super::patch::{self, PatchType};
use super::store::Part;
use super::strategy::Strategy;
use super::Registry;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::validation::field_error::FieldError;

/// The Scale of a scalable object.
pub fn scale_of(s: &dyn Strategy, obj: &Value) -> ApiResult<Value> {
    let selector = s.scale_selector(obj).map_err(ApiError::internal)?;
    let m = &obj["metadata"];
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    }))
}

/// `spec.replicas` of a Scale written by a client: absent is 0 (Go's zero
/// value), negative is invalid, anything but an int32 does not decode.
fn requested_replicas(scale: &Value, name: &str) -> ApiResult<i64> {
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => return Ok(0),
        Some(r) => r,
    };
    let Some(n) = replicas.as_i64().filter(|n| i32::try_from(*n).is_ok()) else {
        return Err(ApiError::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {replicas} is not an int32"
        )));
    };
    if n < 0 {
        let err = FieldError::invalid(
            "spec.replicas",
            n,
            crate::validation::meta::IS_NEGATIVE_ERROR_MSG,
        );
        return Err(ApiError::invalid("autoscaling", "Scale", name, &[err]));
    }
    Ok(n)
}

impl Registry {
    pub async fn get_scale(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        scale_of(s, &self.get(s, ns, name).await?)
    }

    /// PUT or PATCH of a Scale: changes `spec.replicas` of the parent. A
    /// `metadata.uid` or `metadata.resourceVersion` in the Scale is a
    /// precondition on the parent.
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
            .update_with(s, ns, name, Part::Main, opts, |old| {
                let current = scale_of(s, old)?;
                let scale = match patch_type {
                    Some(pt) => patch::apply(pt, &current, &body)?,
                    None => body.clone(),
                };
                let replicas = requested_replicas(&scale, name)?;
                let uid = meta::str_at(&scale, &["metadata", "uid"]).unwrap_or("");
                let old_uid = meta::str_at(old, &["metadata", "uid"]).unwrap_or("");
                if !uid.is_empty() && uid != old_uid {
                    return Err(ApiError::conflict(
                        d.group,
                        &format!("{}/scale", d.resource),
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
                        ),
                    ));
                }
                let mut new = old.clone();
                new["spec"]["replicas"] = json!(replicas);
                // A patch carries the current resourceVersion (it patched the
                // current Scale); only one the client wrote is a precondition.
                let rv = meta::str_at(&scale, &["metadata", "resourceVersion"]).unwrap_or("");
                let client_rv = match patch_type {
                    Some(_) => body.pointer("/metadata/resourceVersion").is_some(),
                    None => true,
                };
                let m = meta::metadata_mut(&mut new);
                if rv.is_empty() || !client_rv {
                    m.remove("resourceVersion");
                } else {
                    m.insert("resourceVersion".into(), json!(rv));
                }
                Ok(new)
            })
            .await?;
        scale_of(s, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(kind: &str) -> std::sync::Arc<dyn Strategy> {
        super::super::kinds::all()
            .into_iter()
            .find(|s| s.descriptor().kind == kind)
            .expect(kind)
    }

    #[test]
    fn scale_views_of_each_controller() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}},
            "status": {"replicas": 2}
        });
        for kind in ["Deployment", "ReplicaSet"] {
            assert_eq!(
                scale_of(strategy(kind).as_ref(), &d).unwrap(),
                json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                       "metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                                    "resourceVersion": "7",
                                    "creationTimestamp": "2024-01-01T00:00:00Z"},
                       "spec": {"replicas": 3},
                       "status": {"replicas": 2, "selector": "app=web,tier in (a,b)"}}),
                "{kind}"
            );
        }
        let rc = json!({"metadata": {"name": "rc"},
                        "spec": {"replicas": 1, "selector": {"tier": "fe", "app": "web"}}});
        let scale = scale_of(strategy("ReplicationController").as_ref(), &rc).unwrap();
        assert_eq!(
            scale["status"],
            json!({"replicas": 0, "selector": "app=web,tier=fe"})
        );
    }

    #[test]
    fn replicas_must_be_a_non_negative_int32() {
        assert_eq!(requested_replicas(&json!({"spec": {}}), "x").unwrap(), 0);
        assert_eq!(
            requested_replicas(&json!({"spec": {"replicas": 5}}), "x").unwrap(),
            5
        );
        let neg = requested_replicas(&json!({"spec": {"replicas": -1}}), "web").unwrap_err();
        assert_eq!(neg.code(), 422);
        assert_eq!(
            neg.message,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let big = json!({"spec": {"replicas": 1u64 << 31}});
        assert_eq!(requested_replicas(&big, "x").unwrap_err().code(), 400);
        assert_eq!(
            requested_replicas(&json!({"spec": {"replicas": "3"}}), "x")
                .unwrap_err()
                .code(),
            400
        );
    }
}
