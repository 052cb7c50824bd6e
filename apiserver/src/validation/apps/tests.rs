//! Messages and field paths of the apps/v1 validation, on defaulted objects
//! (as the registry validates them).

use serde_json::{json, Value};

use crate::defaults::apply_defaults;
use crate::validation::{validate, validate_update};

fn defaulted(kind: &str, spec: Value) -> Value {
    let mut obj = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
    apply_defaults(kind, &mut obj);
    obj
}

fn workload(kind: &str) -> Value {
    defaulted(
        kind,
        json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        }),
    )
}

fn msgs(kind: &str, obj: &Value) -> Vec<String> {
    validate(kind, obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn update_msgs(kind: &str, new: &Value, old: &Value) -> Vec<String> {
    validate_update(kind, new, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_workloads_pass() {
    for kind in ["Deployment", "ReplicaSet", "DaemonSet"] {
        assert_eq!(msgs(kind, &workload(kind)), Vec::<String>::new(), "{kind}");
        let w = workload(kind);
        assert!(update_msgs(kind, &w, &w).is_empty(), "{kind}");
    }
}

#[test]
fn selector_is_required_and_must_match_the_template() {
    for kind in ["Deployment", "ReplicaSet"] {
        let mut d = workload(kind);
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            msgs(kind, &d),
            [
                "spec.selector: Required value",
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#
            ],
            "{kind}"
        );
        let mut d = workload(kind);
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        assert_eq!(
            msgs(kind, &d),
            [
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`"#
            ],
            "{kind}"
        );
        let mut d = workload(kind);
        d["spec"]["selector"] = json!({});
        assert_eq!(
            msgs(kind, &d),
            ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"],
            "{kind}"
        );
    }
    // A set-based selector is matched as such.
    let mut d = workload("Deployment");
    d["spec"]["selector"] =
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]});
    assert!(msgs("Deployment", &d).is_empty());
}

#[test]
fn daemon_set_selector_rules() {
    let mut ds = workload("DaemonSet");
    ds["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        msgs("DaemonSet", &ds),
        [
            r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#
        ]
    );
    ds["spec"]["selector"] = json!({"matchLabels": {}});
    assert_eq!(
        msgs("DaemonSet", &ds),
        ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"]
    );
}

#[test]
fn counts_and_bounds() {
    let mut d = workload("Deployment");
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["minReadySeconds"] = json!(700);
    assert_eq!(
        msgs("Deployment", &d),
        [
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
        ]
    );
    let mut rs = workload("ReplicaSet");
    rs["spec"]["replicas"] = json!(-2);
    assert_eq!(
        msgs("ReplicaSet", &rs),
        ["spec.replicas: Invalid value: -2: must be greater than or equal to 0"]
    );
}

#[test]
fn template_pods_always_restart() {
    let mut d = workload("Deployment");
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
    assert_eq!(
        msgs("Deployment", &d),
        [
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
        ]
    );
    // The template is validated as a pod template.
    let mut d = workload("DaemonSet");
    d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Bad_Name");
    assert!(msgs("DaemonSet", &d)
        .iter()
        .any(|m| m.starts_with("spec.template.spec.containers[0].name: Invalid value")));
}

#[test]
fn deployment_strategies() {
    let mut d = workload("Deployment");
    d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": "0%"});
    assert_eq!(
        msgs("Deployment", &d),
        [
            r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0"#
        ]
    );
    let mut d = workload("Deployment");
    d["spec"]["strategy"]["type"] = json!("Recreate");
    assert_eq!(
        msgs("Deployment", &d),
        ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
    );
    let mut d = workload("Deployment");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    assert!(msgs("Deployment", &d).is_empty());
    let mut d = workload("Deployment");
    d["spec"]["strategy"] = json!({"type": "BlueGreen"});
    assert_eq!(
        msgs("Deployment", &d),
        [
            r#"spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate""#
        ]
    );
}

#[test]
fn daemon_set_rolling_update_needs_exactly_one_bound() {
    let mut ds = workload("DaemonSet");
    ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 1, "maxSurge": "10%"});
    assert_eq!(
        msgs("DaemonSet", &ds),
        [
            r#"spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"10%"}: may not be set when maxUnavailable is non-zero"#
        ]
    );
    ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 0});
    assert_eq!(
        msgs("DaemonSet", &ds),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]
    );
    ds["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    assert!(msgs("DaemonSet", &ds).is_empty());
}

#[test]
fn selectors_are_immutable() {
    for kind in ["Deployment", "ReplicaSet", "DaemonSet"] {
        let old = workload(kind);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "fe"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "fe"});
        assert_eq!(
            update_msgs(kind, &new, &old),
            [
                r#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"fe"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
            ],
            "{kind}"
        );
        // An empty list where there was none is no change.
        let mut same = old.clone();
        same["spec"]["selector"]["matchExpressions"] = json!([]);
        assert!(update_msgs(kind, &same, &old).is_empty(), "{kind}");
    }
}

#[test]
fn status_counters() {
    let old = workload("ReplicaSet");
    let mut new = old.clone();
    new["status"] = json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 2});
    assert_eq!(
        update_msgs("ReplicaSet", &new, &old),
        [
            "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
            "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas"
        ]
    );
    let mut old = workload("Deployment");
    old["status"] = json!({"collisionCount": 2});
    let mut new = old.clone();
    new["status"] = json!({"collisionCount": 1, "observedGeneration": -1});
    assert_eq!(
        update_msgs("Deployment", &new, &old),
        [
            "status.observedGeneration: Invalid value: -1: must be greater than or equal to 0",
            "status.collisionCount: Invalid value: 1: cannot be decremented"
        ]
    );
}

#[test]
fn controller_revisions() {
    let cr = json!({"metadata": {"name": "web-1", "namespace": "default"}, "revision": 1});
    assert_eq!(
        msgs("ControllerRevision", &cr),
        ["data: Required value: data is mandatory"]
    );
    let old = json!({"metadata": {"name": "web-1", "namespace": "default"},
                     "revision": 1, "data": {"spec": {"a": 1}}});
    assert!(msgs("ControllerRevision", &old).is_empty());
    let mut new = old.clone();
    new["data"] = json!({"spec": {"a": 2}});
    new["revision"] = json!(-1);
    let errs = update_msgs("ControllerRevision", &new, &old);
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0],
        "revision: Invalid value: -1: must be greater than or equal to 0"
    );
    assert!(errs[1].starts_with("data: Invalid value:") && errs[1].ends_with("field is immutable"));
}
