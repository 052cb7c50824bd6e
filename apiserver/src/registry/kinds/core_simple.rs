//! Kinds whose only special behaviour is their descriptor and typed shape.

use openapi::{ResourceDescriptor, Subresource};
use serde_json::Value;

use super::{ALL_VERBS, STATUS_VERBS};
use crate::registry::strategy::{roundtrip, Strategy};
use k8s_openapi::api::core::v1 as core;

macro_rules! simple_kind {
    ($name:ident, $ty:ty, $desc:expr) => {
        simple_kind!($name, $ty, $desc, false);
    };
    ($name:ident, $ty:ty, $desc:expr, $returns_deleted:expr) => {
        pub struct $name;
        impl Strategy for $name {
            fn descriptor(&self) -> &ResourceDescriptor {
                static D: ResourceDescriptor = $desc;
                &D
            }
            fn normalize(&self, obj: Value) -> Result<Value, String> {
                roundtrip::<$ty>(obj)
            }
            fn returns_deleted_object(&self) -> bool {
                $returns_deleted
            }
        }
    };
}

/// Upstream's ReturnDeletedObject for a kind (see
/// [`Strategy::returns_deleted_object`]).
const RETURNS_DELETED_OBJECT: bool = true;

const fn core_kind(
    kind: &'static str,
    resource: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> ResourceDescriptor {
    ResourceDescriptor {
        group: "",
        version: "v1",
        kind,
        resource,
        singular,
        namespaced,
        verbs: ALL_VERBS,
        short_names,
        categories: &[],
        subresources: &[],
    }
}

simple_kind!(
    ConfigMaps,
    core::ConfigMap,
    core_kind("ConfigMap", "configmaps", "configmap", true, &["cm"])
);
simple_kind!(
    Endpoints,
    core::Endpoints,
    core_kind("Endpoints", "endpoints", "endpoints", true, &["ep"])
);
simple_kind!(
    ServiceAccounts,
    core::ServiceAccount,
    core_kind(
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"]
    ),
    RETURNS_DELETED_OBJECT
);
simple_kind!(
    LimitRanges,
    core::LimitRange,
    core_kind("LimitRange", "limitranges", "limitrange", true, &["limits"])
);
simple_kind!(
    PodTemplates,
    core::PodTemplate,
    core_kind("PodTemplate", "podtemplates", "podtemplate", true, &[]),
    RETURNS_DELETED_OBJECT
);
simple_kind!(
    Events,
    core::Event,
    core_kind("Event", "events", "event", true, &["ev"])
);
simple_kind!(
    ResourceQuotas,
    core::ResourceQuota,
    ResourceDescriptor {
        subresources: &[Subresource {
            name: "status",
            group: "",
            version: "v1",
            kind: "ResourceQuota",
            verbs: STATUS_VERBS
        }],
        ..core_kind(
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            true,
            &["quota"]
        )
    },
    RETURNS_DELETED_OBJECT
);
simple_kind!(
    Bindings,
    core::Binding,
    ResourceDescriptor {
        verbs: &["create"],
        ..core_kind("Binding", "bindings", "binding", true, &[])
    }
);

/// Nodes keep the status their kubelet reports on create.
pub struct Nodes;

impl Strategy for Nodes {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            subresources: &[
                Subresource {
                    name: "status",
                    group: "",
                    version: "v1",
                    kind: "Node",
                    verbs: STATUS_VERBS,
                },
                Subresource {
                    name: "proxy",
                    group: "",
                    version: "v1",
                    kind: "NodeProxyOptions",
                    verbs: &["get"],
                },
            ],
            ..core_kind("Node", "nodes", "node", false, &["no"])
        };
        &D
    }
    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<core::Node>(obj)
    }
    fn prepare_for_create(&self, _obj: &mut Value) {}
}

/// Secrets: `stringData` is a write-only convenience folded into `data`
/// (base64) before anything else sees the object, as upstream's conversion does.
pub struct Secrets;

impl Strategy for Secrets {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = core_kind("Secret", "secrets", "secret", true, &[]);
        &D
    }
    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<core::Secret>(obj)
    }
    fn fold_write_only_fields(&self, obj: &mut Value) {
        fold_string_data(obj);
    }
}

fn fold_string_data(obj: &mut Value) {
    use base64::Engine;
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Default::default()));
    if !data.is_object() {
        *data = Value::Object(Default::default());
    }
    let data = data.as_object_mut().expect("object");
    for (k, v) in string_data {
        let text = v.as_str().unwrap_or_default();
        data.insert(
            k,
            Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

/// events.k8s.io/v1 Events: another version of the core Events resource,
/// stored once as core/v1 (as kube-apiserver does), converted on the way in
/// and out.
pub struct EventsV1;

/// (events.k8s.io/v1 field, core/v1 field) pairs that only differ in name.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(obj: Value, api_version: &str, to_core: bool) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    for (v1, core) in EVENT_FIELDS {
        let (from, to) = if to_core { (*v1, *core) } else { (*core, *v1) };
        if let Some(v) = map.remove(from) {
            map.insert(to.to_string(), v);
        }
    }
    map.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(map)
}

impl Strategy for EventsV1 {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "events.k8s.io",
            version: "v1",
            kind: "Event",
            resource: "events",
            singular: "event",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["ev"],
            categories: &[],
            subresources: &[],
        };
        &D
    }
    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::events::v1::Event>(obj)
    }
    fn storage_resource(&self) -> (&'static str, &'static str) {
        ("", "events")
    }
    fn stored_to_served(&self, obj: Value) -> Value {
        rename_fields(obj, "events.k8s.io/v1", false)
    }
    fn served_to_stored(&self, obj: Value) -> Value {
        rename_fields(obj, "v1", true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_convert_between_versions_losslessly() {
        let v1 = serde_json::json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started",
            "reportingController": "kubelet", "deprecatedCount": 2,
        });
        let core = EventsV1.served_to_stored(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["count"], 2);
        assert_eq!(EventsV1.stored_to_served(core), v1);
    }

    #[test]
    fn string_data_is_folded_into_data_and_wins() {
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eQ=="},
            "stringData": {"b": "two", "c": "three"},
        });
        let mut out = Secrets.normalize(secret).unwrap();
        Secrets.fold_write_only_fields(&mut out);
        assert!(out.get("stringData").is_none());
        assert_eq!(
            out["data"],
            serde_json::json!({"a": "eA==", "b": "dHdv", "c": "dGhyZWU="})
        );
    }
}
