//! The registry of kinds: which resources are served, where each is kept in
//! storage, and the generic store (`store.rs`) that runs every verb for every
//! kind through its strategy.
//!
//! Owns the mapping from (group, version, resource) to strategy and the
//! storage key layout. Must not know about HTTP.

pub mod eviction;
pub mod kinds;
pub mod options;
pub mod patch;
pub mod scale;
mod splice;
pub mod store;
pub mod strategy;
pub mod subresources;
pub mod watch;

use std::sync::Arc;

use openapi::ResourceDescriptor;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::storage::{KeyValue, Storage};
use kinds::ServiceAllocators;
use strategy::Strategy;

pub struct Registry {
    pub storage: Arc<dyn Storage>,
    kinds: Vec<Arc<dyn Strategy>>,
    pub services: ServiceAllocators,
    /// Wakes the namespace finalizer when a namespace starts terminating.
    pub namespace_deleted: tokio::sync::Notify,
    pub pod_admission: PodAdmission,
}

/// What admission adds to new pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAdmission {
    pub not_ready_toleration_seconds: i64,
    pub unreachable_toleration_seconds: i64,
}

impl Default for PodAdmission {
    fn default() -> Self {
        PodAdmission {
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 300,
        }
    }
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, service_cidr: &str) -> Result<Self, String> {
        Ok(Registry {
            storage,
            kinds: kinds::all(),
            services: ServiceAllocators::new(service_cidr)?,
            namespace_deleted: tokio::sync::Notify::new(),
            pod_admission: PodAdmission::default(),
        })
    }

    pub fn strategies(&self) -> &[Arc<dyn Strategy>] {
        &self.kinds
    }

    pub fn descriptors(&self) -> Vec<ResourceDescriptor> {
        let mut d: Vec<ResourceDescriptor> =
            self.kinds.iter().map(|k| k.descriptor().clone()).collect();
        d.sort_by_key(|r| (!r.group.is_empty(), r.group, r.resource));
        d
    }

    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<Arc<dyn Strategy>> {
        self.kinds
            .iter()
            .find(|k| {
                let d = k.descriptor();
                d.group == group && d.version == version && d.resource == resource
            })
            .cloned()
    }

    pub fn find_kind(&self, group: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        self.kinds
            .iter()
            .find(|k| k.descriptor().group == group && k.descriptor().kind == kind)
            .cloned()
    }

    /// Storage prefix of a resource, optionally narrowed to one namespace.
    pub fn prefix(s: &dyn Strategy, namespace: Option<&str>) -> String {
        let (group, resource) = s.storage_resource();
        let mut p = String::from("/registry/");
        if !group.is_empty() {
            p.push_str(group);
            p.push('/');
        }
        p.push_str(resource);
        p.push('/');
        if let Some(ns) = namespace.filter(|_| s.descriptor().namespaced) {
            p.push_str(ns);
            p.push('/');
        }
        p
    }

    pub fn key(s: &dyn Strategy, namespace: Option<&str>, name: &str) -> String {
        let mut k = Self::prefix(s, namespace);
        k.push_str(name);
        k
    }

    /// A stored object with `metadata.resourceVersion` set from its revision.
    pub fn decode(kv: &KeyValue) -> ApiResult<Value> {
        let mut obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
        crate::meta::metadata_mut(&mut obj).insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
        Ok(obj)
    }

    /// A stored object in the version `s` serves.
    pub fn decode_as(s: &dyn Strategy, kv: &KeyValue) -> ApiResult<Value> {
        Ok(s.stored_to_served(Self::decode(kv)?))
    }

    /// The bytes stored for an object served by `s`.
    pub fn encode_as(s: &dyn Strategy, obj: &Value) -> Vec<u8> {
        Self::encode(&s.served_to_stored(obj.clone()))
    }

    /// The bytes stored for an object: everything but `resourceVersion`,
    /// which is the storage revision.
    pub fn encode(obj: &Value) -> Vec<u8> {
        // Invariant: every stored object has a name (clients' caches key
        // objects by it; kube-runtime's reflectors panic without one).
        debug_assert!(
            !crate::meta::name(obj).is_empty(),
            "storing an object without a name: {obj}"
        );
        if obj.pointer("/metadata/resourceVersion").is_none() {
            return serde_json::to_vec(obj).expect("JSON values always serialize");
        }
        let mut obj = obj.clone();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        serde_json::to_vec(&obj).expect("JSON values always serialize")
    }
}
