//! Pod and PodTemplate rows. The pod row carries the one non-trivial
//! computation of `kubectl get pods`: the STATUS reason (phase, init progress,
//! container waiting/terminated reasons, Terminating, ...), READY counts that
//! include started sidecars, and RESTARTS with the time of the last restart.

use serde_json::Value;
use time::OffsetDateTime;

use super::{
    age, at, boolean, col, containers_cells, int, labels_cell, list, name, s, since, text,
    timestamp, wide, Column, AGE, NAME,
};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all containers of the pod.",
    ),
    col(
        "Status",
        "string",
        "Summary of the pod's state, derived from its phase and containers.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts, with how long ago the last container restarted.",
    ),
    AGE,
    wide("IP", "string", "The pod's first IP address."),
    wide("Node", "string", "The node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "The node the scheduler nominated after preemption.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates whose condition is True, out of all.",
    ),
];

pub(super) const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of the containers in the template.",
    ),
    col(
        "Images",
        "string",
        "Images of the containers in the template.",
    ),
    col(
        "Pod Labels",
        "string",
        "Labels of the pods made from the template.",
    ),
];

/// `state.<which>` of a container status, when set.
fn state<'a>(status: &'a Value, which: &str) -> Option<&'a Value> {
    at(status, &["state", which])
}

/// When the container's previous run ended, if it has ended before.
fn last_termination(status: &Value) -> Option<OffsetDateTime> {
    timestamp(status, &["lastState", "terminated", "finishedAt"])
}

/// Keeps the later of `latest` and `t`.
fn bump(latest: &mut Option<OffsetDateTime>, t: Option<OffsetDateTime>) {
    if let Some(t) = t {
        if latest.is_none_or(|l| l < t) {
            *latest = Some(t);
        }
    }
}

fn has_condition(pod: &Value, kind: &str) -> bool {
    list(pod, &["status", "conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == kind && text(c, &["status"]) == "True")
}

/// Why a terminated container ended: its reason, else its signal or exit code.
fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = text(t, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    match int(t, &["signal"]) {
        0 => format!("{prefix}ExitCode:{}", int(t, &["exitCode"])),
        signal => format!("{prefix}Signal:{signal}"),
    }
}

pub(super) fn pod_row(pod: &Value, now: OffsetDateTime) -> Vec<Value> {
    let init_specs = list(pod, &["spec", "initContainers"]);
    // Init containers with restartPolicy Always are sidecars: they count as
    // containers of the pod and keep running next to the main ones.
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, &["name"]) == name && text(c, &["restartPolicy"]) == "Always")
    };
    let total = list(pod, &["spec", "containers"]).len()
        + init_specs
            .iter()
            .filter(|c| text(c, &["restartPolicy"]) == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart = None;
    let mut sidecar_last_restart = None;

    let phase = text(pod, &["status", "phase"]);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();
    if list(pod, &["status", "conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    // The first init container that has not completed decides the status.
    let mut initializing = false;
    for (i, cs) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts += int(cs, &["restartCount"]);
        bump(&mut last_restart, last_termination(cs));
        let sidecar = is_sidecar(text(cs, &["name"]));
        if sidecar {
            sidecar_restarts += int(cs, &["restartCount"]);
            bump(&mut sidecar_last_restart, last_termination(cs));
        }
        let terminated = state(cs, "terminated");
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && boolean(cs, &["started"]) {
            if boolean(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = state(cs, "waiting").map_or("", |w| text(w, &["reason"]));
        reason = if let Some(t) = terminated {
            terminated_reason(t, "Init:")
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        // Only sidecar restarts carry over to the main containers' count.
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        // Walked backwards, so the first container with a reason wins.
        for cs in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(cs, &["restartCount"]);
            bump(&mut last_restart, last_termination(cs));
            let waiting_reason = state(cs, "waiting").map_or("", |w| text(w, &["reason"]));
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = state(cs, "terminated") {
                reason = terminated_reason(t, "");
            } else if boolean(cs, &["ready"]) && state(cs, "running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while others still run.
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let mut ip = list(pod, &["status", "podIPs"])
        .first()
        .map_or("", |ip| text(ip, &["ip"]));
    if ip.is_empty() {
        // Conversion fills podIPs from podIP when only the latter is set.
        ip = text(pod, &["status", "podIP"]);
    }
    let gates = list(pod, &["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let passing = gates
            .iter()
            .filter(|g| {
                let kind = text(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == kind)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{passing}/{}", gates.len())
    };

    vec![
        name(pod),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        age(pod, now),
        s(or_none(ip)),
        s(or_none(text(pod, &["spec", "nodeName"]))),
        s(or_none(text(pod, &["status", "nominatedNodeName"]))),
        s(gates_cell),
    ]
}

fn or_none(v: &str) -> String {
    if v.is_empty() { "<none>" } else { v }.to_string()
}

pub(super) fn pod_template_row(obj: &Value) -> Vec<Value> {
    let [names, images] = containers_cells(at(obj, &["template", "spec"]));
    vec![
        name(obj),
        names,
        images,
        labels_cell(obj, &["template", "metadata", "labels"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::{json, Value};

    fn cells(pod: &Value) -> Vec<String> {
        row("Pod", pod, NOW)
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    fn running_container(name: &str, restarts: i64, last_exit_secs_ago: Option<i64>) -> Value {
        let mut c = json!({
            "name": name, "ready": true, "restartCount": restarts, "started": true,
            "state": {"running": {"startedAt": ago(100)}}
        });
        if let Some(secs) = last_exit_secs_ago {
            c["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                                                   "finishedAt": ago(secs)}});
        }
        c
    }

    #[test]
    fn running_pod_with_restarts() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(3 * 86400 + 7200)},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}, {"name": "log"}]},
            "status": {
                "phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    running_container("app", 3, Some(300)),
                    running_container("log", 2, Some(4000)),
                ]
            }
        });
        assert_eq!(
            cells(&pod),
            [
                "web-1",
                "2/2",
                "Running",
                "5 (5m ago)",
                "3d2h",
                "10.244.1.5",
                "node-a",
                "<none>",
                "<none>"
            ]
        );
    }

    #[test]
    fn restarts_without_a_last_state_have_no_suffix() {
        let pod = json!({
            "metadata": {"name": "p", "creationTimestamp": ago(60)},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running", "containerStatuses": [running_container("app", 4, None)]}
        });
        assert_eq!(cells(&pod)[3], "4");
    }

    #[test]
    fn pending_pod() {
        let pod = json!({
            "metadata": {"name": "pending", "creationTimestamp": ago(12)},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
            ]}
        });
        assert_eq!(
            cells(&pod),
            ["pending", "0/1", "Pending", "0", "12s", "<none>", "<none>", "<none>", "<none>"]
        );
        // A freshly created pod with no status at all.
        let bare = json!({"metadata": {"name": "new"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(cells(&bare)[1..5], ["0/1", "", "0", "<unknown>"]);
    }

    #[test]
    fn container_waiting_reason_wins() {
        let pod = json!({
            "metadata": {"name": "p", "creationTimestamp": ago(600)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 6,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(45)}}},
                running_container("b", 0, None)
            ]}
        });
        assert_eq!(
            cells(&pod)[1..4],
            ["1/2", "CrashLoopBackOff", "6 (45s ago)"]
        );

        let pulling = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}
        });
        assert_eq!(cells(&pulling)[2], "ContainerCreating");
    }

    #[test]
    fn terminated_containers() {
        let pod = |state: Value, phase: &str| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": phase, "containerStatuses": [{"name": "a", "state": state}]}
            })
        };
        let done = pod(
            json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
            "Succeeded",
        );
        assert_eq!(cells(&done)[1..3], ["0/1", "Completed"]);
        let oom = pod(
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
            "Failed",
        );
        assert_eq!(cells(&oom)[2], "OOMKilled");
        let code = pod(json!({"terminated": {"exitCode": 3}}), "Failed");
        assert_eq!(cells(&code)[2], "ExitCode:3");
        let signal = pod(
            json!({"terminated": {"exitCode": 0, "signal": 9}}),
            "Failed",
        );
        assert_eq!(cells(&signal)[2], "Signal:9");
    }

    #[test]
    fn completed_container_next_to_running_one() {
        let pod = |ready: bool| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                    "containerStatuses": [
                        running_container("a", 0, None),
                        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
                    ]}
            })
        };
        assert_eq!(cells(&pod(true))[1..3], ["1/2", "Running"]);
        assert_eq!(cells(&pod(false))[1..3], ["1/2", "NotReady"]);
    }

    #[test]
    fn terminating_pod() {
        let pod = json!({
            "metadata": {"name": "bye", "creationTimestamp": ago(7200), "deletionTimestamp": ago(-30)},
            "spec": {"nodeName": "node-b", "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
                       "containerStatuses": [running_container("app", 0, None)]}
        });
        assert_eq!(
            cells(&pod),
            [
                "bye",
                "1/1",
                "Terminating",
                "0",
                "120m",
                "fd00::5",
                "node-b",
                "<none>",
                "<none>"
            ]
        );
        // A finished pod being deleted keeps its final status.
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        done["status"]["containerStatuses"] = json!([
            {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]);
        assert_eq!(cells(&done)[2], "Completed");
        // Deleted after its node was lost.
        let mut lost = pod.clone();
        lost["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells(&lost)[2], "Unknown");
    }

    #[test]
    fn status_reason_and_scheduling_gates() {
        let evicted = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Failed", "reason": "Evicted"}
        });
        assert_eq!(cells(&evicted)[2], "Evicted");
        let gated = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
            ]}
        });
        assert_eq!(cells(&gated)[2], "SchedulingGated");
    }

    #[test]
    fn init_containers() {
        let pod = |init_statuses: Value, conditions: Value| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                         "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "conditions": conditions,
                           "initContainerStatuses": init_statuses,
                           "containerStatuses": [{"name": "a", "restartCount": 0,
                               "state": {"waiting": {"reason": "PodInitializing"}}}]}
            })
        };
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let running = json!({"running": {}});
        let progress = pod(
            json!([{"name": "i1", "state": done}, {"name": "i2", "state": running}]),
            json!([]),
        );
        assert_eq!(cells(&progress)[1..4], ["0/1", "Init:1/2", "0"]);

        let crash = pod(
            json!([{"name": "i1", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}},
                   {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]),
            json!([]),
        );
        assert_eq!(
            cells(&crash)[2..4],
            ["Init:CrashLoopBackOff", "4 (20s ago)"]
        );

        let failed = pod(
            json!([{"name": "i1", "state": {"terminated": {"exitCode": 2}}}, {"name": "i2"}]),
            json!([]),
        );
        assert_eq!(cells(&failed)[2], "Init:ExitCode:2");
        let signalled = pod(
            json!([{"name": "i1", "state": {"terminated": {"exitCode": 1, "signal": 15}}}]),
            json!([]),
        );
        assert_eq!(cells(&signalled)[2], "Init:Signal:15");
        let reasoned = pod(
            json!([{"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
            json!([]),
        );
        assert_eq!(cells(&reasoned)[2], "Init:Error");

        // All init containers done: the main containers decide.
        let finished = pod(
            json!([{"name": "i1", "state": done}, {"name": "i2", "state": done}]),
            json!([]),
        );
        assert_eq!(cells(&finished)[2], "PodInitializing");
    }

    #[test]
    fn sidecars_count_as_containers() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init"}, {"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}]
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [
                    {"name": "init", "restartCount": 7,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}},
                    {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                     "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(400)}}}
                ],
                "containerStatuses": [running_container("app", 2, Some(90))]
            }
        });
        // Regular init container restarts are not counted once initialized.
        assert_eq!(cells(&pod)[1..4], ["2/2", "Running", "3 (90s ago)"]);
    }

    #[test]
    fn readiness_gates() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}],
                     "readinessGates": [{"conditionType": "example.com/lb"},
                                        {"conditionType": "example.com/dns"}]},
            "status": {"phase": "Running", "nominatedNodeName": "n9", "conditions": [
                {"type": "example.com/lb", "status": "True"},
                {"type": "example.com/dns", "status": "False"}
            ]}
        });
        let c = cells(&pod);
        assert_eq!(c[7], "n9");
        assert_eq!(c[8], "1/2");
    }

    #[test]
    fn pod_template() {
        let pt = json!({
            "metadata": {"name": "tmpl"},
            "template": {"metadata": {"labels": {"run": "x", "app": "y"}},
                         "spec": {"containers": [{"name": "a", "image": "nginx:1"},
                                                 {"name": "b", "image": "busybox"}]}}
        });
        assert_eq!(
            row("PodTemplate", &pt, NOW),
            [
                json!("tmpl"),
                json!("a,b"),
                json!("nginx:1,busybox"),
                json!("app=y,run=x")
            ]
        );
    }
}
