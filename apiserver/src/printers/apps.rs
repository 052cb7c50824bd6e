//! Rows of the apps/v1 kinds: Deployment, ReplicaSet, DaemonSet,
//! StatefulSet and ControllerRevision.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{
    age, at, col, containers_cells, desired_replicas, int, label_selector_cell, labels_cell, list,
    name, s, text, wide, Column, AGE, CONTAINERS, IMAGES, NAME,
};
use crate::selector::LabelSelector;

const SELECTOR: Column = wide(
    "Selector",
    "string",
    "Label selector of the pods it manages.",
);

pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Ready replicas out of desired replicas."),
    col(
        "Up-to-date",
        "string",
        "Replicas running the current pod template.",
    ),
    col(
        "Available",
        "string",
        "Replicas available to serve (ready for minReadySeconds).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn deployment_row(d: &Value, now: OffsetDateTime) -> Vec<Value> {
    let [names, images] = containers_cells(at(d, &["spec", "template", "spec"]));
    // Unlike the other workloads, an empty selector prints as "" here.
    let selector = at(d, &["spec", "selector"]).unwrap_or(&Value::Null);
    let selector = match LabelSelector::from_label_selector_json(selector) {
        Ok(sel) => sel.to_string(),
        Err(_) => "<invalid>".to_string(),
    };
    vec![
        name(d),
        s(format!(
            "{}/{}",
            int(d, &["status", "readyReplicas"]),
            desired_replicas(d)
        )),
        json!(int(d, &["status", "updatedReplicas"])),
        json!(int(d, &["status", "availableReplicas"])),
        age(d, now),
        names,
        images,
        s(selector),
    ]
}

pub(super) const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Number of replicas it should run (spec.replicas).",
    ),
    col(
        "Current",
        "integer",
        "Number of replicas observed (status.replicas).",
    ),
    col(
        "Ready",
        "integer",
        "Number of ready replicas (status.readyReplicas).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn replica_set_row(rs: &Value, now: OffsetDateTime) -> Vec<Value> {
    let [names, images] = containers_cells(at(rs, &["spec", "template", "spec"]));
    vec![
        name(rs),
        json!(desired_replicas(rs)),
        json!(int(rs, &["status", "replicas"])),
        json!(int(rs, &["status", "readyReplicas"])),
        age(rs, now),
        names,
        images,
        label_selector_cell(rs, &["spec", "selector"]),
    ]
}

pub(super) const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Number of nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Number of nodes running at least one daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "Number of nodes whose daemon pod is ready.",
    ),
    col(
        "Up-to-date",
        "integer",
        "Number of nodes running the current pod template.",
    ),
    col(
        "Available",
        "integer",
        "Number of nodes whose daemon pod is available.",
    ),
    col(
        "Node Selector",
        "string",
        "Node selector of the pod template.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn daemon_set_row(ds: &Value, now: OffsetDateTime) -> Vec<Value> {
    let [names, images] = containers_cells(at(ds, &["spec", "template", "spec"]));
    let status = |field: &str| json!(int(ds, &["status", field]));
    vec![
        name(ds),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        labels_cell(ds, &["spec", "template", "spec", "nodeSelector"]),
        age(ds, now),
        names,
        images,
        label_selector_cell(ds, &["spec", "selector"]),
    ]
}

pub(super) const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Ready replicas out of desired replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub(super) fn stateful_set_row(ss: &Value, now: OffsetDateTime) -> Vec<Value> {
    let [names, images] = containers_cells(at(ss, &["spec", "template", "spec"]));
    vec![
        name(ss),
        s(format!(
            "{}/{}",
            int(ss, &["status", "readyReplicas"]),
            desired_replicas(ss)
        )),
        age(ss, now),
        names,
        images,
    ]
}

pub(super) const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The object whose revision this is (its controlling owner).",
    ),
    col("Revision", "string", "Revision number of the snapshot."),
    AGE,
];

pub(super) fn controller_revision_row(cr: &Value, now: OffsetDateTime) -> Vec<Value> {
    vec![
        name(cr),
        s(controller_of(cr)),
        json!(int(cr, &["revision"])),
        age(cr, now),
    ]
}

/// The controlling owner as `kind.group/name` in lower case (`kind/name`
/// for the core group), `<none>` without one.
fn controller_of(obj: &Value) -> String {
    let owners = list(obj, &["metadata", "ownerReferences"]);
    let Some(owner) = owners.iter().find(|o| o["controller"] == true) else {
        return "<none>".to_string();
    };
    let group = text(owner, &["apiVersion"])
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    let kind = text(owner, &["kind"]);
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{}", group_kind.to_lowercase(), text(owner, &["name"]))
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::json;

    fn template() -> serde_json::Value {
        json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                       {"name": "sidecar", "image": "busybox"}]}})
    }

    #[test]
    fn deployment() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3 * 86400)},
            "spec": {"replicas": 3, "template": template(),
                     "selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            row("apps/Deployment", &d, NOW),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3d"),
                json!("nginx,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web,tier notin (db)")
            ]
        );
        let fresh = json!({"metadata": {"name": "x"}, "spec": {"selector": {}}});
        let r = row("Deployment", &fresh, NOW);
        assert_eq!((r[1].clone(), r[7].clone()), (json!("0/1"), json!("")));
        let bad = json!({"metadata": {"name": "x"},
                         "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert_eq!(row("Deployment", &bad, NOW)[7], json!("<invalid>"));
    }

    #[test]
    fn replica_set() {
        let rs = json!({
            "metadata": {"name": "web-5d", "creationTimestamp": ago(100)},
            "spec": {"replicas": 2, "template": template(), "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        assert_eq!(
            row("apps/ReplicaSet", &rs, NOW),
            [
                json!("web-5d"),
                json!(2),
                json!(2),
                json!(1),
                json!("100s"),
                json!("nginx,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        let no_selector = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(row("ReplicaSet", &no_selector, NOW)[7], json!("<none>"));
        let bad = json!({"metadata": {"name": "x"},
                         "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}});
        assert_eq!(row("ReplicaSet", &bad, NOW)[7], json!("<error>"));
    }

    #[test]
    fn daemon_set() {
        let ds = json!({
            "metadata": {"name": "agent", "creationTimestamp": ago(86400)},
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "a", "image": "agent:2"}]}},
                     "selector": {"matchLabels": {"name": "agent"}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        assert_eq!(
            row("apps/DaemonSet", &ds, NOW),
            [
                json!("agent"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("24h"),
                json!("a"),
                json!("agent:2"),
                json!("name=agent")
            ]
        );
    }

    #[test]
    fn stateful_set() {
        let ss = json!({
            "metadata": {"name": "db", "creationTimestamp": ago(7 * 3600)},
            "spec": {"replicas": 3, "template": template()},
            "status": {"readyReplicas": 3}
        });
        assert_eq!(
            row("apps/StatefulSet", &ss, NOW),
            [
                json!("db"),
                json!("3/3"),
                json!("7h"),
                json!("nginx,sidecar"),
                json!("nginx:1.27,busybox")
            ]
        );
    }

    #[test]
    fn controller_revision() {
        let cr = json!({
            "metadata": {"name": "agent-5d8f", "creationTimestamp": ago(120),
                         "ownerReferences": [
                             {"apiVersion": "v1", "kind": "Pod", "name": "x"},
                             {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                              "controller": true}]},
            "revision": 3
        });
        assert_eq!(
            row("apps/ControllerRevision", &cr, NOW),
            [
                json!("agent-5d8f"),
                json!("daemonset.apps/agent"),
                json!(3),
                json!("2m")
            ]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(row("ControllerRevision", &orphan, NOW)[1], json!("<none>"));
        let core = json!({"metadata": {"name": "x", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "controller": true}]}});
        assert_eq!(
            row("ControllerRevision", &core, NOW)[1],
            json!("replicationcontroller/rc")
        );
    }
}
