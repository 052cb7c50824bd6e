//! apps/v1 kinds: Deployments and ReplicaSets (generation-tracked, with
//! `status` and the autoscaling/v1 `scale` subresource served by
//! `registry/scale.rs`), DaemonSets (`status`, and the template generation
//! upstream keeps in an annotation), and ControllerRevisions (immutable
//! snapshots; validation forbids changing `data`).

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::registry::strategy::{copy_field, roundtrip, Strategy};
use crate::selector::LabelSelector;
use k8s_openapi::api::apps::v1 as apps;

const fn apps_kind(
    kind: &'static str,
    resource: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
) -> ResourceDescriptor {
    ResourceDescriptor {
        group: "apps",
        version: "v1",
        kind,
        resource,
        singular,
        namespaced: true,
        verbs: ALL_VERBS,
        short_names,
        categories,
        subresources,
    }
}

const fn status_of(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group: "apps",
        version: "v1",
        kind,
        verbs: STATUS_VERBS,
    }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: STATUS_VERBS,
};

/// The typed round trip of a workload, except that an absent
/// `spec.selector` stays absent: the typed form makes it `{}` (which selects
/// everything), while upstream keeps a nil selector, reported as missing.
fn roundtrip_workload<K>(obj: Value) -> Result<Value, String>
where
    K: serde::de::DeserializeOwned + serde::Serialize,
{
    let absent = obj.pointer("/spec/selector").is_none_or(Value::is_null);
    let mut out = roundtrip::<K>(obj)?;
    if absent {
        if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("selector");
        }
    }
    Ok(out)
}

/// The Scale selector of a workload: its `metav1.LabelSelector` in string form.
fn label_selector_string(obj: &Value) -> Result<String, String> {
    let selector = obj.pointer("/spec/selector").unwrap_or(&Value::Null);
    LabelSelector::from_label_selector_json(selector)
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

pub struct Deployments;

impl Strategy for Deployments {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = apps_kind(
            "Deployment",
            "deployments",
            "deployment",
            &["deploy"],
            &["all"],
            &[status_of("Deployment"), SCALE],
        );
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip_workload::<apps::Deployment>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Annotations count as desired state too: the controller copies them
    /// to the ReplicaSets it makes.
    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        new.get("spec") != old.get("spec")
            || new.pointer("/metadata/annotations") != old.pointer("/metadata/annotations")
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }

    fn scale_selector(&self, obj: &Value) -> Result<String, String> {
        label_selector_string(obj)
    }
}

pub struct ReplicaSets;

impl Strategy for ReplicaSets {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = apps_kind(
            "ReplicaSet",
            "replicasets",
            "replicaset",
            &["rs"],
            &["all"],
            &[status_of("ReplicaSet"), SCALE],
        );
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip_workload::<apps::ReplicaSet>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"replicas": 0});
    }

    fn scale_selector(&self, obj: &Value) -> Result<String, String> {
        label_selector_string(obj)
    }
}

/// The annotation apps/v1 DaemonSets carry their template generation in
/// (the internal `spec.templateGeneration`): 1 on create, one more on every
/// template change, never set by clients on update.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

pub struct DaemonSets;

impl DaemonSets {
    fn template_generation(obj: &Value) -> i64 {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(TEMPLATE_GENERATION))
            .and_then(Value::as_str)
            .and_then(|g| g.parse().ok())
            .unwrap_or(0)
    }

    fn set_template_generation(obj: &mut Value, generation: i64) {
        let meta = crate::meta::metadata_mut(obj);
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[TEMPLATE_GENERATION] = json!(generation.to_string());
    }
}

impl Strategy for DaemonSets {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = apps_kind(
            "DaemonSet",
            "daemonsets",
            "daemonset",
            &["ds"],
            &["all"],
            &[status_of("DaemonSet")],
        );
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip_workload::<apps::DaemonSet>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                               "numberMisscheduled": 0, "numberReady": 0});
        let generation = Self::template_generation(obj).max(1);
        Self::set_template_generation(obj, generation);
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        copy_field(obj, old, "status");
        // Templates compare as stored, i.e. defaulted.
        let mut defaulted = obj.clone();
        self.default(&mut defaulted);
        let changed = defaulted.pointer("/spec/template") != old.pointer("/spec/template");
        let generation = Self::template_generation(old) + i64::from(changed);
        Self::set_template_generation(obj, generation);
    }
}

pub struct ControllerRevisions;

impl Strategy for ControllerRevisions {
    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = apps_kind(
            "ControllerRevision",
            "controllerrevisions",
            "controllerrevision",
            &[],
            &[],
            &[],
        );
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<apps::ControllerRevision>(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(labels: Value) -> Value {
        json!({"metadata": {"name": "agent"},
               "spec": {"selector": {"matchLabels": {"app": "agent"}},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"containers": [{"name": "a", "image": "agent"}]}}}})
    }

    #[test]
    fn an_absent_selector_stays_absent() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"template": {}}});
        let out = Deployments.normalize(d).unwrap();
        assert!(out["spec"].get("selector").is_none(), "{out}");
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
                        "spec": {"selector": {}, "template": {}}});
        assert_eq!(
            DaemonSets.normalize(ds).unwrap()["spec"]["selector"],
            json!({})
        );
    }

    #[test]
    fn scale_selectors_print_like_upstream() {
        let d = json!({"spec": {"selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            Deployments.scale_selector(&d).unwrap(),
            "app=web,!canary,tier in (a,b)"
        );
        assert_eq!(ReplicaSets.scale_selector(&json!({})).unwrap(), "");
        let bad =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert!(ReplicaSets.scale_selector(&bad).is_err());
    }

    #[test]
    fn creates_start_with_empty_statuses() {
        let mut d = json!({"status": {"replicas": 9}});
        Deployments.prepare_for_create(&mut d);
        assert_eq!(d["status"], json!({}));
        ReplicaSets.prepare_for_create(&mut d);
        assert_eq!(d["status"], json!({"replicas": 0}));
    }

    #[test]
    fn deployment_annotations_bump_the_generation() {
        let old = json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"replicas": 1}});
        let mut new = old.clone();
        assert!(!Deployments.generation_changed(&new, &old));
        new["metadata"]["annotations"]["a"] = json!("2");
        assert!(Deployments.generation_changed(&new, &old));
        assert!(!ReplicaSets.generation_changed(&new, &old));
    }

    #[test]
    fn daemon_set_template_generation() {
        let mut created = ds(json!({"app": "agent"}));
        DaemonSets.prepare_for_create(&mut created);
        assert_eq!(created["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert_eq!(created["status"]["numberReady"], 0);
        DaemonSets.default(&mut created);

        // Unchanged template (even before defaulting): generation stays.
        let mut same = ds(json!({"app": "agent"}));
        DaemonSets.prepare_for_update(&mut same, &created);
        assert_eq!(same["metadata"]["annotations"][TEMPLATE_GENERATION], "1");

        // A client cannot set it; a template change bumps it.
        let mut changed = ds(json!({"app": "agent", "v": "2"}));
        DaemonSets::set_template_generation(&mut changed, 7);
        DaemonSets.prepare_for_update(&mut changed, &created);
        assert_eq!(changed["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
        assert_eq!(changed["status"], created["status"]);
    }
}
