//! Server-side table printing: the columns and cells of the
//! `meta.k8s.io/v1` Table the API server returns for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, which is what
//! `kubectl get` renders.
//!
//! This module owns, per kind, the column definitions and the computation of
//! each row's cells from a stored JSON object, matching kube-apiserver's
//! built-in printers column for column and cell for cell (the pod status
//! reason, restart counts with "(5m ago)", `<none>`/`<pending>` placeholders,
//! the human-readable ages, ...). It does no IO and does not assemble the
//! Table envelope: the caller adds `kind`/`apiVersion`, list metadata, and the
//! per-row `object` (usually PartialObjectMetadata), and drops the column
//! definitions when the client asked for `noHeaders`.
//!
//! kube-apiserver always prints in wide mode, so every row has one cell per
//! column, including the priority-1 columns kubectl only shows with
//! `-o wide`. kubectl adds NAMESPACE (with `-A`) and LABELS itself.
//!
//! Kinds are named by kind id (see [`crate::selector`]): `"Pod"`,
//! `"apps/Deployment"` (or bare `"Deployment"`), `"events.k8s.io/Event"`.
//! Kinds without a printer get upstream's default table: Name and Created At.
//! Column descriptions are our own wording; clients do not display them.

mod apps;
mod batch;
mod core_v1;
mod discovery;
mod event;
mod pod;
mod policy;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::selector::label::{format_labels, LabelSelector};

/// One column definition of a Table (`meta.k8s.io/v1` TableColumnDefinition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// `name` for the column holding the object name, empty otherwise.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for normal columns, 1 for those kubectl shows only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as it appears in a Table's `columnDefinitions`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A normal column.
pub(crate) const fn col(name: &'static str, type_: &'static str, desc: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description: desc,
        priority: 0,
    }
}

/// A column kubectl shows only with `-o wide`.
pub(crate) const fn wide(name: &'static str, type_: &'static str, desc: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description: desc,
        priority: 1,
    }
}

/// The Name column every printer starts with (Event has it last, as a wide
/// column).
pub(crate) const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: "Name of the object, unique within its namespace (or within the cluster for \
                  cluster-scoped kinds).",
    priority: 0,
};

pub(crate) const AGE: Column = col(
    "Age",
    "string",
    "Time elapsed since the object was created (metadata.creationTimestamp).",
);

pub(crate) const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of the containers in the pod template.",
);
pub(crate) const IMAGES: Column = wide(
    "Images",
    "string",
    "Images of the containers in the pod template.",
);

/// Upstream's default table, for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Created At",
        "date",
        "When the object was created (metadata.creationTimestamp), in RFC 3339 form.",
    ),
];

/// Which printer handles a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Printer {
    Pod,
    PodTemplate,
    ReplicationController,
    Service,
    Namespace,
    Node,
    Event,
    EventsV1Event,
    ConfigMap,
    Secret,
    Endpoints,
    ServiceAccount,
    ResourceQuota,
    ComponentStatus,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
    CronJob,
    PodDisruptionBudget,
    ControllerRevision,
    EndpointSlice,
    Default,
    Lease,
}

fn printer(kind: &str) -> Printer {
    let (group, kind) = crate::selector::split_kind_id(kind);
    // Core kinds only match without a group, so that a custom resource that
    // happens to be called "Pod" keeps the default table; other kinds are
    // also accepted bare.
    match (group, kind) {
        ("", "Pod") => Printer::Pod,
        ("", "PodTemplate") => Printer::PodTemplate,
        ("", "ReplicationController") => Printer::ReplicationController,
        ("", "Service") => Printer::Service,
        ("", "Namespace") => Printer::Namespace,
        ("", "Node") => Printer::Node,
        ("", "Event") => Printer::Event,
        ("events.k8s.io", "Event") => Printer::EventsV1Event,
        ("", "ConfigMap") => Printer::ConfigMap,
        ("", "Secret") => Printer::Secret,
        ("", "Endpoints") => Printer::Endpoints,
        ("", "ServiceAccount") => Printer::ServiceAccount,
        ("", "ResourceQuota") => Printer::ResourceQuota,
        ("", "ComponentStatus") => Printer::ComponentStatus,
        ("" | "apps", "Deployment") => Printer::Deployment,
        ("" | "apps", "ReplicaSet") => Printer::ReplicaSet,
        ("" | "apps", "DaemonSet") => Printer::DaemonSet,
        ("" | "apps", "StatefulSet") => Printer::StatefulSet,
        ("" | "batch", "Job") => Printer::Job,
        ("" | "batch", "CronJob") => Printer::CronJob,
        ("" | "policy", "PodDisruptionBudget") => Printer::PodDisruptionBudget,
        ("" | "apps", "ControllerRevision") => Printer::ControllerRevision,
        ("" | "discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
        ("" | "coordination.k8s.io", "Lease") => Printer::Lease,
        _ => Printer::Default,
    }
}

/// Whether `kind` has its own printer (otherwise it gets the default table).
pub fn has_printer(kind: &str) -> bool {
    printer(kind) != Printer::Default
}

/// The column definitions for `kind`.
pub fn columns(kind: &str) -> &'static [Column] {
    match printer(kind) {
        Printer::Pod => pod::POD_COLUMNS,
        Printer::PodTemplate => pod::POD_TEMPLATE_COLUMNS,
        Printer::ReplicationController => core_v1::RC_COLUMNS,
        Printer::Service => core_v1::SERVICE_COLUMNS,
        Printer::Namespace => core_v1::NAMESPACE_COLUMNS,
        Printer::Node => core_v1::NODE_COLUMNS,
        Printer::Event | Printer::EventsV1Event => event::EVENT_COLUMNS,
        Printer::ConfigMap => core_v1::CONFIG_MAP_COLUMNS,
        Printer::Secret => core_v1::SECRET_COLUMNS,
        Printer::Endpoints => core_v1::ENDPOINTS_COLUMNS,
        Printer::ServiceAccount => core_v1::SERVICE_ACCOUNT_COLUMNS,
        Printer::Lease => core_v1::LEASE_COLUMNS,
        Printer::ResourceQuota => core_v1::RESOURCE_QUOTA_COLUMNS,
        Printer::ComponentStatus => core_v1::COMPONENT_STATUS_COLUMNS,
        Printer::Deployment => apps::DEPLOYMENT_COLUMNS,
        Printer::ReplicaSet => apps::REPLICA_SET_COLUMNS,
        Printer::DaemonSet => apps::DAEMON_SET_COLUMNS,
        Printer::StatefulSet => apps::STATEFUL_SET_COLUMNS,
        Printer::Job => batch::JOB_COLUMNS,
        Printer::CronJob => batch::CRON_JOB_COLUMNS,
        Printer::PodDisruptionBudget => policy::PDB_COLUMNS,
        Printer::ControllerRevision => apps::CONTROLLER_REVISION_COLUMNS,
        Printer::EndpointSlice => discovery::ENDPOINT_SLICE_COLUMNS,
        Printer::Default => DEFAULT_COLUMNS,
    }
}

/// The `columnDefinitions` array of a Table for `kind`.
pub fn column_definitions(kind: &str) -> Value {
    Value::Array(columns(kind).iter().map(Column::to_json).collect())
}

/// The cells of `obj`'s row, one per column of [`columns`]`(kind)`; ages are
/// computed against `now`.
pub fn row(kind: &str, obj: &Value, now: OffsetDateTime) -> Vec<Value> {
    match printer(kind) {
        Printer::Pod => pod::pod_row(obj, now),
        Printer::PodTemplate => pod::pod_template_row(obj),
        Printer::ReplicationController => core_v1::rc_row(obj, now),
        Printer::Service => core_v1::service_row(obj, now),
        Printer::Namespace => core_v1::namespace_row(obj, now),
        Printer::Node => core_v1::node_row(obj, now),
        Printer::Event => event::event_row(obj, now, event::Shape::CoreV1),
        Printer::EventsV1Event => event::event_row(obj, now, event::Shape::EventsV1),
        Printer::ConfigMap => core_v1::config_map_row(obj, now),
        Printer::Secret => core_v1::secret_row(obj, now),
        Printer::Endpoints => core_v1::endpoints_row(obj, now),
        Printer::ServiceAccount => core_v1::service_account_row(obj, now),
        Printer::Lease => core_v1::lease_row(obj, now),
        Printer::ResourceQuota => core_v1::resource_quota_row(obj, now),
        Printer::ComponentStatus => core_v1::component_status_row(obj),
        Printer::Deployment => apps::deployment_row(obj, now),
        Printer::ReplicaSet => apps::replica_set_row(obj, now),
        Printer::DaemonSet => apps::daemon_set_row(obj, now),
        Printer::StatefulSet => apps::stateful_set_row(obj, now),
        Printer::Job => batch::job_row(obj, now),
        Printer::CronJob => batch::cron_job_row(obj, now),
        Printer::PodDisruptionBudget => policy::pdb_row(obj, now),
        Printer::ControllerRevision => apps::controller_revision_row(obj, now),
        Printer::EndpointSlice => discovery::endpoint_slice_row(obj, now),
        Printer::Default => default_row(obj),
    }
}

/// The `conditions` of `obj`'s row, when upstream sets any: pods that have
/// finished (Succeeded or Failed) carry a `Completed` condition.
pub fn row_conditions(kind: &str, obj: &Value) -> Option<Value> {
    if printer(kind) != Printer::Pod {
        return None;
    }
    let (reason, message) = match text(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has finished successfully."),
        "Failed" => ("Failed", "The pod has finished with a failure."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// The default table's row: the name and the creation time as RFC 3339 in
/// UTC, whole seconds (Go's zero time when unset, as upstream prints it).
fn default_row(obj: &Value) -> Vec<Value> {
    let created = timestamp(obj, &["metadata", "creationTimestamp"])
        .map(crate::meta::format_time)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name(obj), Value::String(created)]
}

// ---------------------------------------------------------------------------
// Durations and timestamps.

/// A duration the way kubectl and kube-apiserver print ages: about two
/// significant figures, e.g. `45s`, `3m20s`, `15m`, `5h10m`, `20h`, `2d3h`,
/// `45d`, `3y20d`, `9y`.
///
/// The rounding is upstream's `duration.HumanDuration`: everything truncates;
/// up to one second in the future (clock skew) prints as `0s`, further as
/// `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.whole_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The timestamp at `path`, or `None` when it is missing, unparsable, or
/// Go's zero time (which upstream treats as unset).
pub(crate) fn timestamp(obj: &Value, path: &[&str]) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(at(obj, path)?.as_str()?, &Rfc3339).ok()?;
    (t.unix_timestamp() != GO_ZERO_TIME_UNIX).then_some(t)
}

/// 0001-01-01T00:00:00Z in Unix seconds.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Upstream's translateTimestampSince: the age of `t`, `<unknown>` if unset.
pub(crate) fn since(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

/// The Age cell of an object.
pub(crate) fn age(obj: &Value, now: OffsetDateTime) -> Value {
    Value::String(since(
        timestamp(obj, &["metadata", "creationTimestamp"]),
        now,
    ))
}

// ---------------------------------------------------------------------------
// JSON access. Objects come from storage already validated; a missing or
// mistyped field reads as its Go zero value, as it would after decoding.

pub(crate) fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(obj, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

pub(crate) fn text<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn int(obj: &Value, path: &[&str]) -> i64 {
    at(obj, path).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn boolean(obj: &Value, path: &[&str]) -> bool {
    at(obj, path).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn list<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn object<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(obj, path).and_then(Value::as_object)
}

/// The Name cell.
pub(crate) fn name(obj: &Value) -> Value {
    Value::String(text(obj, &["metadata", "name"]).to_string())
}

pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// `spec.replicas` of a workload. Defaulting sets it to 1 before an object is
/// stored, so an absent value reads as 1.
pub(crate) fn desired_replicas(obj: &Value) -> i64 {
    at(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The Containers and Images cells of a pod spec: names and images joined
/// by `,`.
pub(crate) fn containers_cells(pod_spec: Option<&Value>) -> [Value; 2] {
    let containers = pod_spec.map_or(&[][..], |spec| list(spec, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    [s(names.join(",")), s(images.join(","))]
}

/// A label map as upstream's FormatLabels (`<none>` when empty).
pub(crate) fn labels_cell(obj: &Value, path: &[&str]) -> Value {
    s(format_labels(object(obj, path)))
}

/// A `metav1.LabelSelector` as upstream's FormatLabelSelector: its string
/// form, `<none>` when that is empty (also for a missing selector), and
/// `<error>` when it does not convert.
pub(crate) fn label_selector_cell(obj: &Value, path: &[&str]) -> Value {
    let sel = at(obj, path).unwrap_or(&Value::Null);
    match LabelSelector::from_label_selector_json(sel) {
        Ok(sel) => {
            let text = sel.to_string();
            s(if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            })
        }
        Err(_) => s("<error>"),
    }
}

/// An IntOrString as Go's `IntOrString.String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use time::macros::datetime;
    use time::OffsetDateTime;

    /// The fixed "now" of the printer tests.
    pub const NOW: OffsetDateTime = datetime!(2024-05-10 12:00:00 UTC);

    /// An RFC 3339 timestamp `secs` seconds before [`NOW`].
    pub fn ago(secs: i64) -> String {
        let t = NOW - time::Duration::seconds(secs);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{ago, NOW};
    use super::*;

    #[test]
    fn human_duration_table() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "60s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (659, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (5 * 3600 + 10 * 60 + 59, "5h10m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (51 * 3600, "2d3h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (45 * 86400, "45d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (8 * 365 * 86400 - 1, "7y364d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400, "20y"),
        ];
        for &(secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(secs)), want, "{secs}s");
        }
        // Fractions truncate toward zero, as Go's int(d.Seconds()).
        assert_eq!(human_duration(Duration::milliseconds(1999)), "1s");
        assert_eq!(human_duration(Duration::milliseconds(-1999)), "0s");
        assert_eq!(human_duration(Duration::milliseconds(-2000)), "<invalid>");
    }

    #[test]
    fn timestamps() {
        let obj = json!({"a": "2024-05-10T11:59:00Z", "z": "0001-01-01T00:00:00Z",
                         "m": "2024-05-10T11:58:59.123456Z", "bad": "yesterday"});
        assert_eq!(since(timestamp(&obj, &["a"]), NOW), "60s");
        assert_eq!(since(timestamp(&obj, &["m"]), NOW), "60s");
        assert_eq!(since(timestamp(&obj, &["z"]), NOW), "<unknown>");
        assert_eq!(since(timestamp(&obj, &["missing"]), NOW), "<unknown>");
        assert_eq!(since(timestamp(&obj, &["bad"]), NOW), "<unknown>");
    }

    #[test]
    fn default_table() {
        assert!(!has_printer("LimitRange"));
        assert_eq!(
            columns("LimitRange")
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
            ["Name", "Created At"]
        );
        assert_eq!(columns("LimitRange")[0].format, "name");
        assert_eq!(columns("LimitRange")[1].type_, "date");
        let lr =
            json!({"metadata": {"name": "limits", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(
            row("LimitRange", &lr, NOW),
            [json!("limits"), json!("2024-01-02T03:04:05Z")]
        );
        let lr =
            json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-02T05:04:05.5+02:00"}});
        assert_eq!(
            row("LimitRange", &lr, NOW)[1],
            json!("2024-01-02T03:04:05Z")
        );
        let lr = json!({"metadata": {"name": "x"}});
        assert_eq!(
            row("LimitRange", &lr, NOW)[1],
            json!("0001-01-01T00:00:00Z")
        );
        // A core kind name in another group is not the core kind.
        assert!(!has_printer("example.com/Pod"));
        assert!(has_printer("apps/Deployment") && has_printer("Deployment"));
        assert!(!has_printer("apps/Pod"));
    }

    #[test]
    fn every_row_fills_every_column() {
        let kinds = [
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "Service",
            "Namespace",
            "Node",
            "Event",
            "events.k8s.io/Event",
            "ConfigMap",
            "Secret",
            "Endpoints",
            "ServiceAccount",
            "ResourceQuota",
            "ComponentStatus",
            "LimitRange",
            "apps/Deployment",
            "apps/ReplicaSet",
            "apps/DaemonSet",
            "apps/StatefulSet",
            "batch/Job",
            "batch/CronJob",
            "policy/PodDisruptionBudget",
            "apps/ControllerRevision",
            "discovery.k8s.io/EndpointSlice",
            "example.com/Widget",
        ];
        let empty = json!({"metadata": {"name": "x", "creationTimestamp": ago(5)}});
        for kind in kinds {
            let cols = columns(kind);
            assert_eq!(row(kind, &empty, NOW).len(), cols.len(), "{kind}");
            assert_eq!(row(kind, &json!({}), NOW).len(), cols.len(), "{kind}");
            assert_eq!(
                cols.iter().filter(|c| c.format == "name").count(),
                1,
                "{kind}"
            );
            assert!(cols.iter().all(|c| !c.description.is_empty()), "{kind}");
            assert_eq!(
                column_definitions(kind).as_array().unwrap().len(),
                cols.len()
            );
        }
    }

    #[test]
    fn column_json() {
        assert_eq!(
            columns("Pod")[0].to_json(),
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME.description, "priority": 0})
        );
    }

    #[test]
    fn pod_row_conditions() {
        let done = json!({"status": {"phase": "Succeeded"}});
        assert_eq!(
            row_conditions("Pod", &done).unwrap()[0]["type"],
            "Completed"
        );
        assert_eq!(
            row_conditions("Pod", &done).unwrap()[0]["reason"],
            "Succeeded"
        );
        assert!(row_conditions("Pod", &json!({"status": {"phase": "Running"}})).is_none());
        assert!(row_conditions("Service", &done).is_none());
    }
}
