//! discovery.k8s.io/v1 EndpointSlices: generation-tracked (any change but
//! metadata, or a label change, is a new generation), and v1 writes drop
//! the deprecated per-endpoint topology as upstream does.

use openapi::ResourceDescriptor;
use serde_json::Value;

use super::ALL_VERBS;
use crate::registry::strategy::{roundtrip, Strategy};

/// The topology label that carried an endpoint's node before `nodeName`.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

pub struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "discovery.k8s.io",
            version: "v1",
            kind: "EndpointSlice",
            resource: "endpointslices",
            singular: "endpointslice",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            subresources: &[],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::discovery::v1::EndpointSlice>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        let without_meta = |o: &Value| {
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("metadata");
            }
            o
        };
        without_meta(new) != without_meta(old)
            || new.pointer("/metadata/labels") != old.pointer("/metadata/labels")
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        drop_topology(obj, None);
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if obj.get("endpoints") != old.get("endpoints") {
            drop_topology(obj, Some(old));
        }
    }
}

/// Removes `deprecatedTopology` from every endpoint. An endpoint without a
/// `nodeName` keeps the node its topology named, if the previous version of
/// the slice named that node too (so partial updates keep node info).
fn drop_topology(obj: &mut Value, old: Option<&Value>) {
    let previous_nodes: Vec<String> = old
        .and_then(|o| o.get("endpoints"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ep| {
            ep.pointer("/deprecatedTopology")?
                .get(HOSTNAME_LABEL)?
                .as_str()
        })
        .map(str::to_string)
        .collect();
    let Some(endpoints) = obj.get_mut("endpoints").and_then(Value::as_array_mut) else {
        return;
    };
    for ep in endpoints.iter_mut().filter_map(Value::as_object_mut) {
        let Some(topology) = ep.remove("deprecatedTopology") else {
            continue;
        };
        let node = topology.get(HOSTNAME_LABEL).and_then(Value::as_str);
        let has_node = ep.get("nodeName").is_some_and(|n| !n.is_null());
        if let Some(node) = node.filter(|n| !has_node && previous_nodes.iter().any(|p| p == n)) {
            if crate::validation::names::is_dns1123_subdomain(node).is_empty() {
                ep.insert("nodeName".into(), Value::from(node));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generation_follows_content_and_labels() {
        let old = json!({"metadata": {"name": "s", "labels": {"a": "1"}, "annotations": {"x": "1"}},
                         "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]});
        let mut new = old.clone();
        new["metadata"]["annotations"]["x"] = json!("2");
        assert!(!EndpointSlices.generation_changed(&new, &old));
        new["metadata"]["labels"]["a"] = json!("2");
        assert!(EndpointSlices.generation_changed(&new, &old));
        let mut new = old.clone();
        new["endpoints"][0]["addresses"] = json!(["10.0.0.2"]);
        assert!(EndpointSlices.generation_changed(&new, &old));
    }

    #[test]
    fn v1_writes_drop_deprecated_topology() {
        let mut created = json!({"endpoints": [
            {"addresses": ["10.0.0.1"], "deprecatedTopology": {HOSTNAME_LABEL: "n1"}}]});
        EndpointSlices.prepare_for_create(&mut created);
        assert_eq!(created["endpoints"][0], json!({"addresses": ["10.0.0.1"]}));

        // A node named by the previous version survives as nodeName.
        let old = json!({"endpoints": [
            {"addresses": ["10.0.0.1"], "deprecatedTopology": {HOSTNAME_LABEL: "n1"}}]});
        let mut new = json!({"endpoints": [
            {"addresses": ["10.0.0.2"], "deprecatedTopology": {HOSTNAME_LABEL: "n1"}},
            {"addresses": ["10.0.0.3"], "deprecatedTopology": {HOSTNAME_LABEL: "n2"}}]});
        EndpointSlices.prepare_for_update(&mut new, &old);
        assert_eq!(
            new["endpoints"],
            json!([{"addresses": ["10.0.0.2"], "nodeName": "n1"}, {"addresses": ["10.0.0.3"]}])
        );
    }
}
