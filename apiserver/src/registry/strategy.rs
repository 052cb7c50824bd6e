//! The per-kind strategy: everything that differs between kinds on the way
//! into and out of storage. The generic store (`store.rs`) calls these hooks;
//! a kind overrides only what it needs.
//!
//! Strategies hold no IO of their own, except the `admit_*` hooks, which get
//! the registry to reach storage (e.g. service IP allocation).

use openapi::ResourceDescriptor;
use serde_json::Value;

use crate::error::ApiResult;
use crate::registry::Registry;
use crate::validation::field_error::FieldErrors;

pub trait Strategy: Send + Sync + 'static {
    fn descriptor(&self) -> &ResourceDescriptor;

    /// Decodes the object into its typed form and back: rejects values of the
    /// wrong JSON type (400) and drops unknown fields, as kube-apiserver's
    /// decoder does. Returns the normalized object.
    fn normalize(&self, obj: Value) -> Result<Value, String>;

    /// The (group, resource) whose storage this kind shares; another version
    /// of the same resource converts with `stored_to_served`/`served_to_stored`.
    fn storage_resource(&self) -> (&'static str, &'static str) {
        let d = self.descriptor();
        (d.group, d.resource)
    }

    /// Converts a stored object to the version this kind serves.
    fn stored_to_served(&self, obj: Value) -> Value {
        obj
    }

    /// Converts an object of this kind's version to the stored version.
    fn served_to_stored(&self, obj: Value) -> Value {
        obj
    }

    /// Folds write-only convenience fields into their stored form (runs
    /// right after `normalize`, on every write).
    fn fold_write_only_fields(&self, _obj: &mut Value) {}

    /// `metadata.generation` starts at 1 and grows when
    /// [`generation_changed`](Self::generation_changed) says so.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether an update of `old` into `new` (both defaulted, status rules
    /// applied) changes the desired state, bumping `metadata.generation`:
    /// by default, any change of `spec`.
    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        new.get("spec") != old.get("spec")
    }

    /// For kinds with an autoscaling/v1 `scale` subresource: the selector of
    /// the pods they manage, as the string the Scale reports in
    /// `status.selector` (e.g. `app=web,tier in (a,b)`). `Err` when the
    /// stored selector does not convert.
    fn scale_selector(&self, _obj: &Value) -> Result<String, String> {
        Ok(String::new())
    }

    fn has_status(&self) -> bool {
        self.descriptor()
            .subresources
            .iter()
            .any(|s| s.name == "status")
    }

    /// Whether a DELETE that removes the object at once answers with the
    /// object (upstream's ReturnDeletedObject: pods, services, namespaces...)
    /// rather than a `Status` naming it. A deletion left pending (grace
    /// period, finalizers) answers with the object whatever this says.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// PUT on a missing object creates it (kube-apiserver's AllowCreateOnUpdate).
    fn allow_create_on_update(&self) -> bool {
        false
    }

    fn default(&self, obj: &mut Value) {
        crate::defaults::apply_defaults(self.descriptor().kind, obj);
    }

    fn validate(&self, obj: &Value) -> FieldErrors {
        crate::validation::validate(self.descriptor().kind, obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> FieldErrors {
        crate::validation::validate_update(self.descriptor().kind, obj, old)
    }

    /// Clears what a client may not set on create (usually `status`).
    fn prepare_for_create(&self, obj: &mut Value) {
        if self.has_status() {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
    }

    /// Adjusts an update of the main resource: with a status subresource,
    /// status is kept from the old object.
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if self.has_status() {
            copy_field(obj, old, "status");
        }
    }

    /// Adjusts an update through `/status`: only status comes from the client.
    fn prepare_for_status_update(&self, obj: &mut Value, old: &Value) {
        let status = obj.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(m) = merged.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        // Metadata the client is allowed to touch through status updates
        // (resourceVersion precondition) is taken from its object.
        if let Some(rv) = obj.pointer("/metadata/resourceVersion").cloned() {
            crate::meta::metadata_mut(&mut merged).insert("resourceVersion".into(), rv);
        }
        *obj = merged;
    }

    /// The value of a field selector term; `None` when the kind does not
    /// support that field label.
    fn field_value(&self, field: &str, obj: &Value) -> Option<Option<String>> {
        let d = self.descriptor();
        crate::selector::field::field_value(&crate::selector::kind_id(d.group, d.kind), field, obj)
    }

    /// Called before a create is stored; may allocate shared resources
    /// (synchronously: it runs inside the update loop).
    fn admit_create(&self, _registry: &Registry, _obj: &mut Value) -> ApiResult<()> {
        Ok(())
    }

    /// Called before an update is stored.
    fn admit_update(&self, _registry: &Registry, _obj: &mut Value, _old: &Value) -> ApiResult<()> {
        Ok(())
    }

    /// Called after an object is gone from storage (or a create failed), to
    /// release what `admit_create` took.
    fn release(&self, _registry: &Registry, _obj: &Value) {}
}

/// Sets `to[field]` to `from[field]` (or removes it when `from` lacks it).
pub fn copy_field(to: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(v) => to[field] = v.clone(),
        None => {
            if let Some(m) = to.as_object_mut() {
                m.remove(field);
            }
        }
    }
}

/// The typed round trip behind `Strategy::normalize` for a k8s-openapi type.
pub fn roundtrip<K>(obj: Value) -> Result<Value, String>
where
    K: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}
