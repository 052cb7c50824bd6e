//! Builders for legacy and aggregated discovery documents.

use serde_json::{json, Map, Value};

/// The verbs of a resource that supports every standard operation.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a `status` subresource.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource served under a resource, e.g. `pods/status`.
#[derive(Clone, Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind the subresource takes and returns, with its group/version
    /// when it differs from the parent's (e.g. autoscaling/v1 Scale).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// Everything discovery says about one resource.
#[derive(Clone, Debug)]
pub struct ResourceDescriptor {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural resource name used in URLs.
    pub resource: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl ResourceDescriptor {
    pub fn group_version(&self) -> String {
        gv_string(self.group, self.version)
    }
}

/// One served group/version, in preference order within its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVersion {
    pub group: &'static str,
    pub version: &'static str,
}

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn str_array(items: &[&str]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String((*s).to_string()))
            .collect(),
    )
}

/// `/api`: the legacy core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Groups in first-seen order, each with its versions in first-seen order.
fn groups_of(resources: &[ResourceDescriptor]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in resources {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => groups.push((r.group, vec![r.version])),
        }
    }
    groups
}

/// `/apis`: every named group (the core group is served under `/api`).
pub fn api_group_list(resources: &[ResourceDescriptor]) -> Value {
    let groups: Vec<Value> = groups_of(resources)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": gv_string(g, v), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/<group>/<version>`: `None` when nothing is served there.
pub fn api_resource_list(resources: &[ResourceDescriptor], gv: &GroupVersion) -> Option<Value> {
    let mut list = Vec::new();
    for r in resources
        .iter()
        .filter(|r| r.group == gv.group && r.version == gv.version)
    {
        let mut entry = Map::new();
        entry.insert("name".into(), r.resource.into());
        entry.insert("singularName".into(), r.singular.into());
        entry.insert("namespaced".into(), r.namespaced.into());
        entry.insert("kind".into(), r.kind.into());
        entry.insert("verbs".into(), str_array(r.verbs));
        if !r.short_names.is_empty() {
            entry.insert("shortNames".into(), str_array(r.short_names));
        }
        if !r.categories.is_empty() {
            entry.insert("categories".into(), str_array(r.categories));
        }
        list.push(Value::Object(entry));
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": str_array(s.verbs),
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = s.group.into();
                sub["version"] = s.version.into();
            }
            list.push(sub);
        }
    }
    if list.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv_string(gv.group, gv.version),
        "resources": list,
    }))
}

/// The aggregated `APIGroupDiscoveryList` (apidiscovery.k8s.io/v2) for either
/// the core group (`legacy` = true, served at `/api`) or the named groups
/// (served at `/apis`).
pub fn aggregated_discovery(resources: &[ResourceDescriptor], legacy: bool) -> Value {
    let items: Vec<Value> = groups_of(resources)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == g && r.version == *v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            let mut metadata = Map::new();
            if !g.is_empty() {
                metadata.insert("name".into(), g.into());
            }
            json!({"metadata": metadata, "versions": vs})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &ResourceDescriptor) -> Value {
    let mut entry = json!({
        "resource": r.resource,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": str_array(r.verbs),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = str_array(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = str_array(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = Value::Array(
            r.subresources
                .iter()
                .map(|s| {
                    json!({
                        "subresource": s.name,
                        "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                        "verbs": str_array(s.verbs),
                    })
                })
                .collect(),
        );
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_SUBS: &[Subresource] = &[
        Subresource {
            name: "status",
            group: "",
            version: "v1",
            kind: "Pod",
            verbs: &["get", "patch", "update"],
        },
        Subresource {
            name: "eviction",
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: &["create"],
        },
    ];

    fn sample() -> Vec<ResourceDescriptor> {
        vec![
            ResourceDescriptor {
                group: "",
                version: "v1",
                kind: "Pod",
                resource: "pods",
                singular: "pod",
                namespaced: true,
                verbs: &["get", "list"],
                short_names: &["po"],
                categories: &["all"],
                subresources: POD_SUBS,
            },
            ResourceDescriptor {
                group: "events.k8s.io",
                version: "v1",
                kind: "Event",
                resource: "events",
                singular: "event",
                namespaced: true,
                verbs: &["get"],
                short_names: &["ev"],
                categories: &[],
                subresources: &[],
            },
        ]
    }

    #[test]
    fn resource_list_includes_subresources_with_foreign_kinds() {
        let gv = GroupVersion {
            group: "",
            version: "v1",
        };
        let list = api_resource_list(&sample(), &gv).unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pods", "pods/status", "pods/eviction"]);
        assert_eq!(list["resources"][2]["group"], "policy");
        assert!(list["resources"][1].get("group").is_none());
    }

    #[test]
    fn unknown_group_version_has_no_list() {
        let gv = GroupVersion {
            group: "apps",
            version: "v1",
        };
        assert!(api_resource_list(&sample(), &gv).is_none());
    }

    #[test]
    fn group_list_excludes_core_and_aggregated_splits_them() {
        let groups = api_group_list(&sample());
        assert_eq!(groups["groups"].as_array().unwrap().len(), 1);
        assert_eq!(
            groups["groups"][0]["preferredVersion"]["groupVersion"],
            "events.k8s.io/v1"
        );
        let core = aggregated_discovery(&sample(), true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(
            core["items"][0]["versions"][0]["resources"][0]["scope"],
            "Namespaced"
        );
        let named = aggregated_discovery(&sample(), false);
        assert_eq!(named["items"][0]["metadata"]["name"], "events.k8s.io");
    }
}
