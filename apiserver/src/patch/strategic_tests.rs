//! Unit tests for [`super::strategic`]: each case applies one patch to a small object
//! and asserts the exact resulting JSON (list order included).

use serde_json::{json, Value};

use super::strategic::{
    create_two_way_merge_patch, root_for, strategic_merge_patch, StrategicPatchError,
};

const POD: &str = "io.k8s.api.core.v1.Pod";
const SERVICE: &str = "io.k8s.api.core.v1.Service";
const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn apply(root: &str, original: Value, patch: Value) -> Value {
    strategic_merge_patch(root, &original, &patch)
        .unwrap_or_else(|e| panic!("patch {patch} failed: {e}"))
}

fn apply_err(root: &str, original: Value, patch: Value) -> StrategicPatchError {
    match strategic_merge_patch(root, &original, &patch) {
        Ok(v) => panic!("patch {patch} unexpectedly succeeded: {v}"),
        Err(e) => e,
    }
}

/// A pod whose spec is `spec`.
fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn containers(pod: &Value) -> &Value {
    &pod["spec"]["containers"]
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["name"].as_str().expect("a name"))
        .collect()
}

/// True when no key anywhere in `v` starts with `$`.
fn free_of_directives(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| !k.starts_with('$') && free_of_directives(v)),
        Value::Array(l) => l.iter().all(free_of_directives),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------
// Maps

#[test]
fn labels_added_changed_and_removed_with_null() {
    let original = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
    let patch = json!({"metadata": {"labels": {"a": "one", "b": null, "c": "3"}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p", "labels": {"a": "one", "c": "3"}}})
    );
}

#[test]
fn null_for_a_missing_key_is_ignored() {
    let original = json!({"metadata": {"name": "p"}});
    let patch = json!({"metadata": {"labels": null, "annotations": {"x": null, "y": "1"}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p", "annotations": {"y": "1"}}})
    );
}

#[test]
fn null_deletes_a_whole_subtree() {
    let original = pod(json!({"containers": [{"name": "a"}], "nodeSelector": {"x": "y"}}));
    let out = apply(POD, original, json!({"spec": {"nodeSelector": null}}));
    assert_eq!(out["spec"], json!({"containers": [{"name": "a"}]}));
}

#[test]
fn patch_directive_replace_on_a_map() {
    let original = pod(json!({"containers": [], "nodeSelector": {"a": "1", "b": "2"}}));
    let patch = json!({"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}});
    let out = apply(POD, original, patch);
    assert_eq!(out["spec"]["nodeSelector"], json!({"c": "3"}));
}

#[test]
fn patch_directive_replace_at_the_root() {
    let original = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
    let patch = json!({"$patch": "replace", "metadata": {"name": "q"}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "q"}})
    );
}

#[test]
fn patch_directive_delete_on_a_map_empties_it() {
    // Upstream leaves an empty object behind rather than removing the key.
    let original = json!({"metadata": {"name": "p", "labels": {"a": "1"}}});
    let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p", "labels": {}}})
    );
}

#[test]
fn patch_directive_delete_on_a_missing_map_adds_nothing() {
    let original = json!({"metadata": {"name": "p"}});
    let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p"}})
    );
}

#[test]
fn patch_directive_merge_is_the_default() {
    let original = json!({"metadata": {"labels": {"a": "1"}}});
    let patch = json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}})
    );
}

#[test]
fn replace_strategy_replaces_an_object_field() {
    // PodDisruptionBudgetSpec.selector carries patchStrategy=replace.
    let original = json!({"spec": {"minAvailable": 1, "selector": {
        "matchLabels": {"app": "a"},
        "matchExpressions": [{"key": "tier", "operator": "Exists"}]
    }}});
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
    assert_eq!(
        apply("io.k8s.api.policy.v1.PodDisruptionBudget", original, patch),
        json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "b"}}}})
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let original = json!({"spec": {"replicas": 2, "strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    assert_eq!(
        apply(DEPLOYMENT, original, patch),
        json!({"spec": {"replicas": 2, "strategy": {"type": "Recreate"}}})
    );
}

#[test]
fn retain_keys_keeps_listed_fields_and_merges_them() {
    let original = json!({"spec": {"strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }}});
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["rollingUpdate", "type"],
        "rollingUpdate": {"maxSurge": 2}
    }}});
    assert_eq!(
        apply(DEPLOYMENT, original, patch),
        json!({"spec": {"strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}
        }}})
    );
}

#[test]
fn retain_keys_in_a_volume_switches_its_source() {
    let original = pod(json!({"containers": [], "volumes": [
        {"name": "data", "emptyDir": {}},
        {"name": "other", "hostPath": {"path": "/x"}}
    ]}));
    let patch = json!({"spec": {"volumes": [{
        "$retainKeys": ["configMap", "name"],
        "name": "data",
        "configMap": {"name": "cm"}
    }]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        out["spec"]["volumes"],
        json!([
            {"name": "data", "configMap": {"name": "cm"}},
            {"name": "other", "hostPath": {"path": "/x"}}
        ])
    );
}

#[test]
fn retain_keys_rejects_fields_it_does_not_list() {
    let original = json!({"spec": {"strategy": {"type": "Recreate"}}});
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "rollingUpdate": {"maxSurge": 1}
    }}});
    let err = apply_err(DEPLOYMENT, original, patch);
    assert!(
        matches!(err, StrategicPatchError::InvalidRetainKeys { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "spec.strategy: invalid $retainKeys directive: field \"rollingUpdate\" is set by the \
         patch but not listed"
    );
}

#[test]
fn retain_keys_must_be_a_list() {
    let original = json!({"spec": {"strategy": {"type": "Recreate"}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": "type"}}});
    let err = apply_err(DEPLOYMENT, original, patch);
    assert!(
        matches!(err, StrategicPatchError::InvalidRetainKeys { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Lists merged by key

#[test]
fn containers_change_image_of_one() {
    let original = pod(json!({"containers": [
        {"name": "a", "image": "a:1", "imagePullPolicy": "Always"},
        {"name": "b", "image": "b:1"}
    ]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([
            {"name": "a", "image": "a:2", "imagePullPolicy": "Always"},
            {"name": "b", "image": "b:1"}
        ])
    );
}

#[test]
fn containers_add_one_goes_first() {
    // Without $setElementOrder upstream puts new elements before the live ones.
    let original = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
    let patch = json!({"spec": {"containers": [{"name": "sidecar", "image": "s"}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([{"name": "sidecar", "image": "s"}, {"name": "a", "image": "a"}])
    );
}

#[test]
fn containers_add_after_with_set_element_order() {
    let original = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "sidecar"}],
        "containers": [{"name": "sidecar", "image": "s"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([{"name": "a", "image": "a"}, {"name": "sidecar", "image": "s"}])
    );
}

#[test]
fn containers_delete_one() {
    let original = pod(json!({"containers": [
        {"name": "a", "image": "a"},
        {"name": "b", "image": "b"},
        {"name": "c", "image": "c"}
    ]}));
    let patch = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}});
    let out = apply(POD, original, patch);
    assert_eq!(names(containers(&out)), ["a", "c"]);
}

#[test]
fn delete_of_a_missing_element_is_a_no_op() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {"containers": [{"name": "zz", "$patch": "delete"}]}});
    assert_eq!(names(containers(&apply(POD, original, patch))), ["a"]);
}

#[test]
fn delete_removes_every_duplicate() {
    let original = pod(json!({"containers": [
        {"name": "a"}, {"name": "a"}, {"name": "b", "image": "x"}, {"name": "c"}, {"name": "c"}
    ]}));
    let patch = json!({"spec": {"containers": [
        {"name": "a", "$patch": "delete"},
        {"name": "c", "$patch": "delete"}
    ]}});
    let out = apply(POD, original, patch);
    assert_eq!(containers(&out), &json!([{"name": "b", "image": "x"}]));
}

#[test]
fn delete_and_re_add_in_one_patch() {
    let original = pod(json!({"containers": [{"name": "a", "image": "old", "args": ["x"]}]}));
    let patch = json!({"spec": {"containers": [
        {"name": "a", "$patch": "delete"},
        {"name": "a", "image": "new"}
    ]}});
    let out = apply(POD, original, patch);
    assert_eq!(containers(&out), &json!([{"name": "a", "image": "new"}]));
}

#[test]
fn patch_order_wins_for_the_elements_it_names() {
    let original = pod(json!({"containers": [
        {"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}
    ]}));
    let patch = json!({"spec": {"containers": [
        {"name": "3", "image": "c"},
        {"name": "1", "image": "a"},
        {"name": "2", "imagePullPolicy": "Never"}
    ]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([
            {"name": "3", "image": "c"},
            {"name": "1", "image": "a"},
            {"name": "2", "image": "b", "imagePullPolicy": "Never"}
        ])
    );
}

#[test]
fn untouched_elements_keep_their_place_relative_to_patched_ones() {
    let original = pod(json!({"containers": [
        {"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}
    ]}));
    let patch = json!({"spec": {"containers": [
        {"name": "3", "image": "c"},
        {"name": "1", "image": "a"}
    ]}});
    let out = apply(POD, original, patch);
    assert_eq!(names(containers(&out)), ["2", "3", "1"]);
}

#[test]
fn env_merges_by_name() {
    let original = pod(json!({"containers": [{"name": "a", "env": [
        {"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "C", "value": "3"}
    ]}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "env": [
        {"name": "B", "value": "2", "valueFrom": null},
        {"name": "C", "$patch": "delete"},
        {"name": "D", "value": "4"}
    ]}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out)[0]["env"],
        json!([
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
            {"name": "D", "value": "4"}
        ])
    );
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let original = pod(json!({"containers": [{"name": "a", "volumeMounts": [
        {"name": "v1", "mountPath": "/data"},
        {"name": "v2", "mountPath": "/cache"}
    ]}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
        {"mountPath": "/data", "readOnly": true},
        {"mountPath": "/cache", "$patch": "delete"}
    ]}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out)[0]["volumeMounts"],
        json!([{"name": "v1", "mountPath": "/data", "readOnly": true}])
    );
}

#[test]
fn container_ports_merge_by_container_port() {
    let original = pod(json!({"containers": [{"name": "a", "ports": [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 443, "name": "https"}
    ]}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "ports": [
        {"containerPort": 443, "protocol": "TCP"},
        {"containerPort": 8080}
    ]}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out)[0]["ports"],
        json!([
            {"containerPort": 80, "name": "http"},
            {"containerPort": 443, "name": "https", "protocol": "TCP"},
            {"containerPort": 8080}
        ])
    );
}

#[test]
fn merge_keys_compare_numbers_by_value() {
    let original = pod(json!({"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "ports": [
        {"containerPort": 80.0, "name": "http"}
    ]}]}});
    let out = apply(POD, original, patch);
    assert_eq!(containers(&out)[0]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(containers(&out)[0]["ports"][0]["name"], "http");
}

#[test]
fn service_ports_merge_by_port() {
    let original = json!({"spec": {"type": "ClusterIP", "ports": [
        {"port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"port": 443, "targetPort": 8443, "protocol": "TCP"}
    ]}});
    let patch = json!({"spec": {"ports": [
        {"port": 80, "targetPort": "http"},
        {"port": 443, "$patch": "delete"}
    ]}});
    assert_eq!(
        apply(SERVICE, original, patch),
        json!({"spec": {"type": "ClusterIP", "ports": [
            {"port": 80, "targetPort": "http", "protocol": "TCP"}
        ]}})
    );
}

#[test]
fn image_pull_secrets_merge_by_name() {
    let original = pod(json!({"containers": [], "imagePullSecrets": [{"name": "a"}]}));
    let patch = json!({"spec": {"imagePullSecrets": [{"name": "a"}, {"name": "b"}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        out["spec"]["imagePullSecrets"],
        json!([{"name": "a"}, {"name": "b"}])
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"ownerReferences": [
        {"uid": "u1", "kind": "ReplicaSet", "name": "rs", "controller": true}
    ]}});
    let patch = json!({"metadata": {"ownerReferences": [
        {"uid": "u1", "controller": null, "blockOwnerDeletion": true}
    ]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"ownerReferences": [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs", "blockOwnerDeletion": true}
        ]}})
    );
}

#[test]
fn status_conditions_merge_by_type() {
    let original = json!({"status": {"conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "MemoryPressure", "status": "False"}
    ]}});
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        apply("io.k8s.api.core.v1.Node", original, patch),
        json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "False"}
        ]}})
    );
}

#[test]
fn deployment_template_containers_merge() {
    let original = json!({"spec": {"replicas": 1, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]}]}
    }}});
    let patch = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "env": [{"name": "B", "value": "2"}]}
    ]}}}});
    assert_eq!(
        apply(DEPLOYMENT, original, patch),
        json!({"spec": {"replicas": 3, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "env": [
                {"name": "B", "value": "2"},
                {"name": "A", "value": "1"}
            ]}]}
        }}})
    );
}

#[test]
fn patch_directive_replace_on_a_list() {
    let original = pod(json!({"containers": [{"name": "a", "image": "a"}, {"name": "b"}]}));
    let patch = json!({"spec": {"containers": [
        {"$patch": "replace"},
        {"name": "c", "image": "c"}
    ]}});
    let out = apply(POD, original, patch);
    assert_eq!(containers(&out), &json!([{"name": "c", "image": "c"}]));
}

#[test]
fn patch_directive_replace_alone_empties_a_list() {
    let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
    let patch = json!({"spec": {"containers": [{"$patch": "replace"}]}});
    assert_eq!(containers(&apply(POD, original, patch)), &json!([]));
}

#[test]
fn empty_patch_list_leaves_a_merging_list_alone() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let out = apply(POD, original.clone(), json!({"spec": {"containers": []}}));
    assert_eq!(out, original);
}

// ---------------------------------------------------------------------------------
// Lists of primitives and replaced lists

#[test]
fn finalizers_union() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch = json!({"metadata": {"finalizers": ["b", "c"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["a", "b", "c"]}})
    );
}

#[test]
fn finalizers_new_value_goes_first_and_duplicates_collapse() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "a"]}});
    let patch = json!({"metadata": {"finalizers": ["c", "c"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["c", "a", "b"]}})
    );
}

#[test]
fn finalizers_patch_order_is_preserved() {
    let original = json!({"metadata": {"finalizers": ["1", "2", "3"]}});
    let patch = json!({"metadata": {"finalizers": ["3", "1"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["2", "3", "1"]}})
    );
}

#[test]
fn delete_from_primitive_list() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c", "b"]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["a", "c"]}})
    );
}

#[test]
fn delete_from_primitive_list_and_add_in_one_patch() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch = json!({"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a"],
        "finalizers": ["c"]
    }});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["c", "b"]}})
    );
}

#[test]
fn delete_from_primitive_list_on_a_missing_list_is_a_no_op() {
    let original = json!({"metadata": {"name": "p"}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p"}})
    );
}

#[test]
fn container_args_are_replaced() {
    let original =
        pod(json!({"containers": [{"name": "a", "args": ["--x", "--y"], "command": ["run"]}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "args": ["--z"]}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([{"name": "a", "args": ["--z"], "command": ["run"]}])
    );
}

#[test]
fn tolerations_are_replaced() {
    let original = pod(json!({"containers": [], "tolerations": [
        {"key": "a", "operator": "Exists"}
    ]}));
    let patch = json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
    let out = apply(POD, original, patch);
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn type_change_takes_the_patch_value() {
    let original = json!({"metadata": {"labels": "not-a-map"}});
    let patch = json!({"metadata": {"labels": {"a": "1", "b": null}}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"labels": {"a": "1"}}})
    );
}

// ---------------------------------------------------------------------------------
// $setElementOrder

#[test]
fn set_element_order_reorders_without_content_changes() {
    let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}));
    let patch = json!({"spec": {"$setElementOrder/containers": [
        {"name": "c"}, {"name": "a"}, {"name": "b"}
    ]}});
    assert_eq!(
        names(containers(&apply(POD, original, patch))),
        ["c", "a", "b"]
    );
}

#[test]
fn set_element_order_keeps_server_only_elements_in_place() {
    // "injected" is not in the order list: it stays after "a", where it lived.
    let original = pod(json!({"containers": [
        {"name": "a"}, {"name": "injected"}, {"name": "b"}
    ]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "new"}],
        "containers": [{"name": "new"}]
    }});
    assert_eq!(
        names(containers(&apply(POD, original, patch))),
        ["a", "injected", "b", "new"]
    );
}

#[test]
fn set_element_order_with_additions_follows_the_order_list() {
    // Mirrors upstream's "merge lists of maps" three-way case.
    let original = pod(json!({"containers": [
        {"name": "1", "image": "a"},
        {"name": "2", "args": ["2"], "image": "b"}
    ]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([
            {"name": "4", "image": "4"},
            {"name": "1", "image": "a"},
            {"name": "2", "args": ["2"], "image": "b"},
            {"name": "3", "image": "3"}
        ])
    );
}

#[test]
fn set_element_order_with_add_and_delete() {
    // Mirrors upstream's "add map and delete map from merging list" three-way case.
    let original = pod(json!({"containers": [
        {"name": "1"}, {"name": "2", "image": "b"}, {"name": "4", "image": "c"}
    ]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
        "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([{"name": "2", "image": "b"}, {"name": "4", "image": "c"}, {"name": "3"}])
    );
}

#[test]
fn set_element_order_with_add_and_delete_and_conflict() {
    // Mirrors the "with conflict" variant of the case above.
    let original = pod(json!({"containers": [{"name": "1"}, {"name": "4", "image": "c"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
        "containers": [{"name": "2"}, {"name": "3"}, {"name": "1", "$patch": "delete"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(names(containers(&out)), ["4", "2", "3"]);
}

#[test]
fn set_element_order_may_name_elements_that_do_not_exist() {
    let original = pod(json!({"containers": [{"name": "1"}, {"name": "3"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
        "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(
        containers(&out),
        &json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])
    );
}

#[test]
fn set_element_order_for_a_new_list() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/initContainers": [{"name": "y"}, {"name": "x"}],
        "initContainers": [{"name": "y"}, {"name": "x"}]
    }});
    let out = apply(POD, original, patch);
    assert_eq!(names(&out["spec"]["initContainers"]), ["y", "x"]);
}

#[test]
fn set_element_order_on_primitives_with_deletion() {
    // Mirrors upstream's "delete items in lists of scalars".
    let original = json!({"metadata": {"finalizers": ["1", "2", "3", "4"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["1", "2"],
        "$deleteFromPrimitiveList/finalizers": ["3"]
    }});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["1", "2", "4"]}})
    );
}

#[test]
fn set_element_order_on_primitives_reorders() {
    let original = json!({"metadata": {"finalizers": ["1", "3"]}});
    let patch = json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["3", "1"]}})
    );
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let original = pod(json!({"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]
    }});
    let err = apply_err(POD, original, patch);
    assert!(
        matches!(err, StrategicPatchError::InvalidSetElementOrder { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("spec.containers: invalid $setElementOrder"),
        "{err}"
    );
}

#[test]
fn set_element_order_entries_need_the_merge_key() {
    let original = pod(json!({"containers": [{"name": "1"}]}));
    let patch = json!({"spec": {"$setElementOrder/containers": [{"image": "x"}]}});
    let err = apply_err(POD, original, patch);
    assert!(
        matches!(err, StrategicPatchError::MissingMergeKey { .. }),
        "{err}"
    );
}

#[test]
fn set_element_order_on_a_replaced_list_is_ignored() {
    let original = pod(json!({"containers": [{"name": "a", "args": ["1", "2"]}]}));
    let patch = json!({"spec": {"containers": [{
        "name": "a",
        "$setElementOrder/args": ["2", "1"],
        "args": ["3"]
    }]}});
    let out = apply(POD, original, patch);
    assert_eq!(containers(&out), &json!([{"name": "a", "args": ["3"]}]));
}

// ---------------------------------------------------------------------------------
// Unknown fields

#[test]
fn unknown_fields_merge_maps_and_replace_lists() {
    let original = json!({"spec": {"containers": [], "x-extra": {
        "a": 1,
        "list": [{"name": "a"}, {"name": "b"}],
        "nested": {"keep": true, "drop": 1}
    }}});
    let patch = json!({"spec": {"x-extra": {
        "b": 2,
        "list": [{"name": "c"}],
        "nested": {"drop": null}
    }}});
    let out = apply(POD, original, patch);
    assert_eq!(
        out["spec"]["x-extra"],
        json!({"a": 1, "b": 2, "list": [{"name": "c"}], "nested": {"keep": true}})
    );
}

#[test]
fn unknown_root_fields_are_added() {
    let original = json!({"metadata": {"name": "p"}});
    let patch = json!({"whatever": {"x": [1, 2]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"name": "p"}, "whatever": {"x": [1, 2]}})
    );
}

// ---------------------------------------------------------------------------------
// New values never carry directives

#[test]
fn new_values_are_cleaned_of_directives_and_nulls() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {
        "containers": [{
            "name": "new",
            "image": null,
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}],
            "$setElementOrder/ports": [{"containerPort": 2}, {"containerPort": 1}],
            "ports": [{"containerPort": 2}, {"containerPort": 1}],
            "resources": {"$patch": "replace", "limits": {"cpu": "1"}}
        }],
        "initContainers": [{"$patch": "replace"}, {"name": "i", "$retainKeys": ["name"]}],
        "affinity": {"nodeAffinity": {"$patch": "delete"}},
        "nodeSelector": {"$patch": "replace", "disk": "ssd"}
    }});
    let out = apply(POD, original, patch);
    assert!(free_of_directives(&out), "{out}");
    assert_eq!(
        out["spec"],
        json!({
            "containers": [
                {
                    "name": "new",
                    "env": [{"name": "X", "value": "1"}],
                    "ports": [{"containerPort": 2}, {"containerPort": 1}],
                    "resources": {"limits": {"cpu": "1"}}
                },
                {"name": "a"}
            ],
            "initContainers": [{"name": "i"}],
            "affinity": {},
            "nodeSelector": {"disk": "ssd"}
        })
    );
}

#[test]
fn original_null_is_an_empty_object() {
    let out = apply(POD, Value::Null, json!({"metadata": {"name": "p"}}));
    assert_eq!(out, json!({"metadata": {"name": "p"}}));
}

// ---------------------------------------------------------------------------------
// Errors

#[test]
fn error_patch_not_an_object() {
    let err = apply_err(POD, json!({}), json!([1]));
    assert_eq!(err, StrategicPatchError::PatchNotObject("a list"));
    assert_eq!(
        err.to_string(),
        "the strategic merge patch must be a JSON object, got a list"
    );
}

#[test]
fn error_original_not_an_object() {
    let err = apply_err(POD, json!("x"), json!({}));
    assert_eq!(err, StrategicPatchError::OriginalNotObject("a string"));
}

#[test]
fn error_unknown_root() {
    let err = apply_err("example.com.v1.Widget", json!({}), json!({}));
    assert_eq!(
        err,
        StrategicPatchError::UnknownRoot("example.com.v1.Widget".into())
    );
}

#[test]
fn error_invalid_patch_directive_on_a_map() {
    let err = apply_err(
        POD,
        json!({"metadata": {"labels": {}}}),
        json!({"metadata": {"labels": {"$patch": "remove"}}}),
    );
    assert_eq!(
        err.to_string(),
        "metadata.labels: invalid $patch directive \"remove\": expected \"replace\", \
         \"delete\" or \"merge\""
    );
}

#[test]
fn error_invalid_patch_directive_in_a_list() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {"containers": [{"name": "a", "$patch": 1}]}});
    let err = apply_err(POD, original, patch);
    assert!(
        matches!(err, StrategicPatchError::InvalidDirective { .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("spec.containers: "), "{err}");
}

#[test]
fn error_list_element_missing_merge_key() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {"containers": [{"image": "x"}]}});
    let err = apply_err(POD, original, patch);
    assert_eq!(
        err,
        StrategicPatchError::MissingMergeKey {
            at: "spec.containers".into(),
            key: "name".into(),
            element: r#"{"image":"x"}"#.into(),
        }
    );
    assert_eq!(
        err.to_string(),
        r#"spec.containers: list element {"image":"x"} does not contain the merge key "name""#
    );
}

#[test]
fn error_delete_directive_missing_merge_key() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {"containers": [{"$patch": "delete", "image": "x"}]}});
    let err = apply_err(POD, original, patch);
    assert!(
        matches!(err, StrategicPatchError::MissingMergeKey { .. }),
        "{err}"
    );
}

#[test]
fn error_nested_location_names_the_element() {
    let original = pod(json!({"containers": [{"name": "web", "env": [{"name": "A"}]}]}));
    let patch = json!({"spec": {"containers": [{"name": "web", "env": [{"value": "1"}]}]}});
    let err = apply_err(POD, original, patch);
    assert!(
        err.to_string()
            .starts_with(r#"spec.containers[name="web"].env: list element"#),
        "{err}"
    );
}

#[test]
fn error_unknown_directive() {
    let err = apply_err(POD, json!({}), json!({"metadata": {"$bogus": 1}}));
    assert_eq!(
        err,
        StrategicPatchError::UnknownDirective {
            at: "metadata".into(),
            key: "$bogus".into()
        }
    );
}

#[test]
fn error_malformed_delete_from_primitive_list() {
    let original = json!({"metadata": {"finalizers": ["a"]}});
    let err = apply_err(
        POD,
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
    );
    assert!(
        matches!(
            err,
            StrategicPatchError::InvalidDeleteFromPrimitiveList { .. }
        ),
        "{err}"
    );
    let err = apply_err(
        POD,
        original,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
    );
    assert!(
        matches!(
            err,
            StrategicPatchError::InvalidDeleteFromPrimitiveList { .. }
        ),
        "{err}"
    );
}

#[test]
fn error_mixed_list_element_types() {
    let original = json!({"metadata": {"finalizers": ["a"]}});
    let err = apply_err(POD, original, json!({"metadata": {"finalizers": [1]}}));
    assert!(
        matches!(err, StrategicPatchError::InvalidList { .. }),
        "{err}"
    );
}

#[test]
fn error_set_element_order_not_a_list() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = json!({"spec": {"$setElementOrder/containers": {"name": "a"}}});
    let err = apply_err(POD, original, patch);
    assert!(
        matches!(err, StrategicPatchError::InvalidSetElementOrder { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Roots

#[test]
fn roots_cover_the_served_kinds() {
    for (api_version, kind) in [
        ("v1", "Pod"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("v1", "Binding"),
        ("events.k8s.io/v1", "Event"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ControllerRevision"),
        ("batch/v1", "CronJob"),
        ("policy/v1", "Eviction"),
        ("policy/v1", "PodDisruptionBudget"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
    ] {
        let root = root_for(api_version, kind).unwrap_or_else(|| panic!("{api_version} {kind}"));
        let out = strategic_merge_patch(root, &json!({}), &json!({"metadata": {"name": "x"}}));
        assert_eq!(out.unwrap(), json!({"metadata": {"name": "x"}}));
    }
}

#[test]
fn job_template_uses_the_pod_spec_schema() {
    let root = root_for("batch/v1", "CronJob").unwrap();
    let original = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "a"}]
    }}}}}});
    let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "b"}]
    }}}}}});
    let out = strategic_merge_patch(root, &original, &patch).unwrap();
    assert_eq!(
        out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "b"}])
    );
}

// ---------------------------------------------------------------------------------
// Two-way patch creation

fn two_way(root: &str, original: &Value, modified: &Value) -> Value {
    create_two_way_merge_patch(root, original, modified)
        .unwrap_or_else(|e| panic!("diff failed: {e}"))
}

/// The computed patch turns `original` into `modified`.
fn assert_round_trip(root: &str, original: Value, modified: Value) -> Value {
    let patch = two_way(root, &original, &modified);
    assert_eq!(
        apply(root, original, patch.clone()),
        modified,
        "patch was {patch}"
    );
    patch
}

#[test]
fn two_way_maps_and_scalars() {
    let patch = assert_round_trip(
        POD,
        json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}),
        json!({"metadata": {"name": "p", "labels": {"a": "1", "c": "3"}}}),
    );
    assert_eq!(
        patch,
        json!({"metadata": {"labels": {"b": null, "c": "3"}}, "spec": null})
    );
}

#[test]
fn two_way_identical_objects_give_an_empty_patch() {
    let obj = pod(json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}));
    assert_eq!(two_way(POD, &obj, &obj), json!({}));
}

#[test]
fn two_way_merging_list_of_objects() {
    let patch = assert_round_trip(
        POD,
        pod(json!({"containers": [
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:1"},
            {"name": "c", "image": "c:1"}
        ]})),
        pod(json!({"containers": [
            {"name": "c", "image": "c:1"},
            {"name": "new", "image": "n:1"},
            {"name": "a", "image": "a:2"}
        ]})),
    );
    assert_eq!(
        patch,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "new"}, {"name": "a"}],
            "containers": [
                {"name": "new", "image": "n:1"},
                {"name": "a", "image": "a:2"},
                {"name": "b", "$patch": "delete"}
            ]
        }})
    );
}

#[test]
fn two_way_reorder_only() {
    let patch = assert_round_trip(
        POD,
        pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
        pod(json!({"containers": [{"name": "b"}, {"name": "a"}]})),
    );
    assert_eq!(
        patch,
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}})
    );
}

#[test]
fn two_way_primitive_merging_list() {
    let patch = assert_round_trip(
        POD,
        json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        json!({"metadata": {"finalizers": ["c", "d", "a"]}}),
    );
    assert_eq!(
        patch,
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "$setElementOrder/finalizers": ["c", "d", "a"],
            "finalizers": ["d"]
        }})
    );
}

#[test]
fn two_way_replaced_list_is_sent_whole() {
    let patch = assert_round_trip(
        POD,
        pod(json!({"containers": [{"name": "a", "args": ["1", "2"]}]})),
        pod(json!({"containers": [{"name": "a", "args": ["2"]}]})),
    );
    assert_eq!(
        patch,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "args": ["2"]}]
        }})
    );
}

#[test]
fn two_way_retain_keys_for_deployment_strategy() {
    let patch = assert_round_trip(
        DEPLOYMENT,
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(
        patch,
        json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "rollingUpdate": null,
            "type": "Recreate"
        }}})
    );
}

#[test]
fn two_way_retain_keys_for_volumes() {
    let patch = assert_round_trip(
        POD,
        pod(json!({"containers": [], "volumes": [{"name": "v", "emptyDir": {}}]})),
        pod(json!({"containers": [], "volumes": [{"name": "v", "configMap": {"name": "cm"}}]})),
    );
    assert_eq!(
        patch["spec"]["volumes"],
        json!([{
            "$retainKeys": ["configMap", "name"],
            "configMap": {"name": "cm"},
            "emptyDir": null,
            "name": "v"
        }])
    );
}

#[test]
fn two_way_nested_lists_and_new_fields() {
    assert_round_trip(
        DEPLOYMENT,
        json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}]}
        ]}}}}),
        json!({"metadata": {"name": "d", "labels": {"x": "y"}}, "spec": {"replicas": 2,
            "template": {"spec": {"containers": [
                {"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                 "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                {"name": "sidecar", "image": "s"}
            ], "initContainers": [{"name": "init"}]}}}}),
    );
}

#[test]
fn two_way_list_emptied() {
    let patch = assert_round_trip(
        POD,
        json!({"metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1"}]}}),
        json!({"metadata": {"finalizers": [], "ownerReferences": []}}),
    );
    assert_eq!(
        patch,
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "ownerReferences": [{"uid": "1", "$patch": "delete"}]
        }})
    );
}

#[test]
fn two_way_requires_merge_keys() {
    let err = create_two_way_merge_patch(
        POD,
        &pod(json!({"containers": [{"name": "a"}]})),
        &pod(json!({"containers": [{"image": "x"}]})),
    )
    .unwrap_err();
    assert!(
        matches!(err, StrategicPatchError::MissingMergeKey { .. }),
        "{err}"
    );
}

#[test]
fn set_element_order_with_duplicates_groups_them() {
    // Mirrors upstream's duplicate demonstration for merging primitive lists.
    let original = json!({"metadata": {"finalizers": ["1", "2", "3", "2", "4"]}});
    let patch = json!({"metadata": {"$setElementOrder/finalizers": ["2", "1", "4", "3", "2"]}});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["2", "2", "1", "4", "3"]}})
    );
}

#[test]
fn set_element_order_places_an_addition_before_later_live_values() {
    // Mirrors upstream's "retainKeys map adds an item in nested merging int list".
    let original = json!({"metadata": {"finalizers": ["1", "2", "3"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["1", "2", "4"],
        "finalizers": ["4"]
    }});
    assert_eq!(
        apply(POD, original, patch),
        json!({"metadata": {"finalizers": ["1", "2", "4", "3"]}})
    );
}

#[test]
fn two_way_delete_in_one_list_and_reorder_another() {
    let patch = assert_round_trip(
        POD,
        pod(json!({
            "containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
            "initContainers": [{"name": "c", "image": "c"}, {"name": "d", "image": "d"}]
        })),
        pod(json!({
            "containers": [{"name": "b", "image": "b"}],
            "initContainers": [{"name": "d", "image": "d"}, {"name": "c", "image": "c"}]
        })),
    );
    assert_eq!(
        patch,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}],
            "$setElementOrder/initContainers": [{"name": "d"}, {"name": "c"}],
            "containers": [{"name": "a", "$patch": "delete"}]
        }})
    );
}
