//! Event rows, for both core/v1 Events and events.k8s.io/v1 Events. Upstream
//! prints both through the same internal type, so the columns are shared and
//! the events.k8s.io field names (`regarding`, `note`, `deprecated*`) are
//! read in place of their core/v1 counterparts.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{at, col, int, name, s, since, text, timestamp, wide, Column, NAME};

/// Name is the last column here, and wide-only.
const EVENT_NAME: Column = Column {
    priority: 1,
    ..NAME
};

pub(super) const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "Time since the event was last observed.",
    ),
    col("Type", "string", "Type of the event (Normal or Warning)."),
    col(
        "Reason",
        "string",
        "Short machine-readable reason for the event.",
    ),
    col(
        "Object",
        "string",
        "The object the event is about, as kind/name.",
    ),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about (fieldPath).",
    ),
    wide(
        "Source",
        "string",
        "The component (and host) that reported the event.",
    ),
    col(
        "Message",
        "string",
        "Human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "Time since the event was first observed.",
    ),
    wide("Count", "string", "Number of times the event has occurred."),
    EVENT_NAME,
];

/// Which API version's field names the stored object uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    CoreV1,
    EventsV1,
}

/// The object field holding each piece of information, per shape.
struct Fields {
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source: &'static str,
}

const CORE_V1: Fields = Fields {
    involved: "involvedObject",
    message: "message",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    source: "source",
};

const EVENTS_V1: Fields = Fields {
    involved: "regarding",
    message: "note",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    source: "deprecatedSource",
};

pub(super) fn event_row(ev: &Value, now: OffsetDateTime, shape: Shape) -> Vec<Value> {
    let f = match shape {
        Shape::CoreV1 => &CORE_V1,
        Shape::EventsV1 => &EVENTS_V1,
    };
    // Events from the new API only have eventTime; old ones only the
    // first/last timestamps.
    let first = match timestamp(ev, &[f.first]) {
        Some(t) => since(Some(t), now),
        None => since(timestamp(ev, &["eventTime"]), now),
    };
    let mut last = match timestamp(ev, &[f.last]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(ev, &[f.count]);
    if let Some(series) = at(ev, &["series"]) {
        last = since(timestamp(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = text(ev, &[f.involved, "kind"]).to_lowercase();
    let object_name = text(ev, &[f.involved, "name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = first_non_empty(
        text(ev, &[f.source, "component"]),
        text(ev, &["reportingController"]),
    );
    let host = first_non_empty(
        text(ev, &[f.source, "host"]),
        text(ev, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };

    vec![
        s(last),
        s(text(ev, &["type"])),
        s(text(ev, &["reason"])),
        s(target),
        s(text(ev, &[f.involved, "fieldPath"])),
        s(source),
        s(text(ev, &[f.message]).trim()),
        s(first),
        json!(count),
        name(ev),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, NOW};
    use super::super::{columns, row};
    use serde_json::json;

    #[test]
    fn columns_in_upstream_order() {
        let names: Vec<_> = columns("Event")
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            names,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
        );
        assert_eq!(columns("Event")[9].format, "name");
        assert_eq!(columns("events.k8s.io/Event"), columns("Event"));
    }

    #[test]
    fn core_event() {
        let ev = json!({
            "metadata": {"name": "web-1.17c", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning",
            "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(42), "count": 12
        });
        assert_eq!(
            row("Event", &ev, NOW),
            [
                json!("42s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, node-a"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(12),
                json!("web-1.17c")
            ]
        );
    }

    #[test]
    fn new_style_event_in_core_shape() {
        let ev = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node"},
            "reason": "Starting", "type": "Normal", "message": "",
            "eventTime": "2024-05-10T11:59:30.000000Z",
            "reportingController": "kubelet", "reportingInstance": "node-b"
        });
        let r = row("Event", &ev, NOW);
        assert_eq!(r[0], json!("30s"));
        assert_eq!(r[3], json!("node"));
        assert_eq!(r[5], json!("kubelet, node-b"));
        assert_eq!(r[7], json!("30s"));
        assert_eq!(r[8], json!(1));
        let series = json!({
            "metadata": {"name": "e"}, "eventTime": ago(600),
            "series": {"count": 4, "lastObservedTime": ago(10)}
        });
        let r = row("Event", &series, NOW);
        assert_eq!(
            (r[0].clone(), r[7].clone(), r[8].clone()),
            (json!("10s"), json!("10m"), json!(4))
        );
        let timeless = json!({"metadata": {"name": "e"}});
        let r = row("Event", &timeless, NOW);
        assert_eq!(
            (r[0].clone(), r[7].clone()),
            (json!("<unknown>"), json!("<unknown>"))
        );
    }

    #[test]
    fn events_k8s_io_event() {
        let ev = json!({
            "metadata": {"name": "e1"},
            "regarding": {"kind": "Deployment", "name": "web", "fieldPath": ""},
            "note": "  Scaled up replica set web-5d to 3 ",
            "reason": "ScalingReplicaSet", "type": "Normal",
            "eventTime": ago(200), "reportingController": "deployment-controller",
            "deprecatedSource": {"component": ""}, "deprecatedCount": 2,
            "deprecatedFirstTimestamp": ago(300), "deprecatedLastTimestamp": ago(200)
        });
        assert_eq!(
            row("events.k8s.io/Event", &ev, NOW),
            [
                json!("3m20s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller"),
                json!("Scaled up replica set web-5d to 3"),
                json!("5m"),
                json!(2),
                json!("e1")
            ]
        );
    }
}
