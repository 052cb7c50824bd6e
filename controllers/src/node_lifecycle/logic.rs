//! Node lifecycle decisions, without IO: when a node's heartbeat is too
//! old, which taints its Ready condition calls for, whether a pod
//! tolerates a taint, and when a pod on a `NoExecute`-tainted node must be
//! evicted.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use scheduler::filter::tolerates;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The conditions a kubelet posts, set to Unknown when it goes silent.
pub const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The node's last sign of life: its Lease's renewal or its Ready
/// condition's heartbeat, whichever is later.
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let from_lease = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let from_status = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    from_lease.max(from_status)
}

/// The Node's conditions after its kubelet went silent: every kubelet
/// condition Unknown (others kept).
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Vec<NodeCondition> {
    let mut out: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for t in KUBELET_CONDITIONS {
        let unknown = NodeCondition {
            type_: t.to_string(),
            status: "Unknown".into(),
            reason: Some("NodeStatusUnknown".into()),
            message: Some("Kubelet stopped posting node status.".into()),
            last_transition_time: Some(Time(now)),
            last_heartbeat_time: None,
        };
        match out.iter_mut().find(|c| c.type_ == *t) {
            Some(c) if c.status != "Unknown" => {
                let heartbeat = c.last_heartbeat_time.clone();
                *c = NodeCondition {
                    last_heartbeat_time: heartbeat,
                    ..unknown
                };
            }
            Some(_) => {}
            None => out.push(unknown),
        }
    }
    out
}

/// The node's taints as its Ready condition calls for: `unreachable` when
/// Unknown, `not-ready` when False (both NoSchedule and NoExecute), neither
/// when True. Other taints are kept, and an existing taint keeps its
/// `timeAdded`.
pub fn desired_taints(node: &Node, now: Timestamp) -> Vec<Taint> {
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = match ready_condition(node).map(|c| c.status.as_str()) {
        Some("Unknown") => Some(UNREACHABLE),
        Some("False") => Some(NOT_READY),
        _ => None,
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| {
            let ours = t.key == UNREACHABLE || t.key == NOT_READY;
            !ours || Some(t.key.as_str()) == wanted
        })
        .cloned()
        .collect();
    if let Some(key) = wanted {
        for effect in ["NoSchedule", "NoExecute"] {
            if !out.iter().any(|t| t.key == key && t.effect == effect) {
                out.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then_some(Time(now)),
                    value: None,
                });
            }
        }
    }
    out
}

/// When `pod` must leave a node with `taints`: at once for an untolerated
/// NoExecute taint, after `tolerationSeconds` from the taint's
/// `timeAdded` for a bounded toleration, never when all are tolerated
/// without a bound.
pub fn eviction_time(pod: &Pod, taints: &[Taint], now: Timestamp) -> Option<Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut earliest: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let at = if matching.is_empty() {
            Some(now)
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            None
        } else {
            let secs = matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .unwrap_or(0)
                .max(0);
            let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
            Some(added + SignedDuration::from_secs(secs))
        };
        if let Some(at) = at {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};

    fn node(ready: &str, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str, added: Option<Timestamp>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: added.map(Time),
            value: None,
        }
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let now = Timestamp::now();
        let custom = taint("dedicated", "NoSchedule", None);
        let t = desired_taints(&node("Unknown", vec![custom.clone()]), now);
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", "NoSchedule"),
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute")
            ]
        );
        let back = desired_taints(&node("True", t), now);
        assert_eq!(back, [custom]);
        let not_ready = desired_taints(&node("False", vec![]), now);
        assert!(not_ready.iter().all(|t| t.key == NOT_READY));
        let conds = unknown_conditions(&node("True", vec![]), now);
        assert!(conds.iter().all(|c| c.status == "Unknown"));
        assert_eq!(conds.len(), 4);
    }

    #[test]
    fn eviction_waits_for_the_toleration_seconds() {
        let now = Timestamp::now();
        let added = now - SignedDuration::from_secs(100);
        let taints = [taint(UNREACHABLE, "NoExecute", Some(added))];
        let pod = |tolerations: Vec<Toleration>| Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bounded = |secs| Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(secs),
            value: None,
        };
        assert_eq!(eviction_time(&pod(vec![]), &taints, now), Some(now));
        assert_eq!(
            eviction_time(&pod(vec![bounded(300)]), &taints, now),
            Some(added + SignedDuration::from_secs(300))
        );
        let forever = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(eviction_time(&pod(vec![forever]), &taints, now), None);
        assert_eq!(
            eviction_time(&pod(vec![]), &[taint("x", "NoSchedule", None)], now),
            None
        );
    }
}
