//! The `PodStatus` the kubelet reports, computed from the pod spec, what the
//! runtime says about the pod's sandbox and containers, and what the pod
//! worker knows (why a container is waiting, probe results).
//!
//! The rules follow upstream's kubelet: per-container state from the newest
//! runtime container and `lastState` from the one before it; a phase from
//! those states and the restart policy (init containers first, sidecars —
//! init containers with `restartPolicy: Always` — counted like long-running
//! containers); and the kubelet-owned conditions, whose
//! `lastTransitionTime` only moves when their status changes.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use runtime::types::{self as rt, SandboxState};

use super::qos;

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

pub const POD_SCHEDULED: &str = "PodScheduled";
pub const POD_READY_TO_START_CONTAINERS: &str = "PodReadyToStartContainers";
pub const INITIALIZED: &str = "Initialized";
pub const CONTAINERS_READY: &str = "ContainersReady";
pub const READY: &str = "Ready";
/// Conditions the kubelet computes; any other condition in the previous
/// status (readiness gates, `DisruptionTarget`, …) is carried over.
const KUBELET_CONDITIONS: [&str; 5] = [
    POD_READY_TO_START_CONTAINERS,
    INITIALIZED,
    READY,
    CONTAINERS_READY,
    POD_SCHEDULED,
];

/// Why a container is not running, as the pod worker last saw it
/// (`ErrImagePull`, `ImagePullBackOff`, `CreateContainerConfigError`,
/// `CrashLoopBackOff`, …) with its message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Everything the status is computed from.
#[derive(Debug, Clone, Copy)]
pub struct StatusInputs<'a> {
    pub pod: &'a Pod,
    /// The status last reported (the status manager's, else `pod.status`).
    pub previous: Option<&'a PodStatus>,
    /// The pod's newest sandbox, if there is one.
    pub sandbox: Option<&'a rt::SandboxStatus>,
    /// Every runtime container of the pod, all attempts, in any order.
    pub containers: &'a [rt::ContainerStatus],
    /// The `containerID` scheme (`containerd`, `youki`, …).
    pub runtime_name: &'a str,
    /// Why containers are waiting, by container name.
    pub waiting: &'a BTreeMap<String, Waiting>,
    /// Readiness probe results of the current containers, by name; absent
    /// means no result yet.
    pub readiness: &'a BTreeMap<String, bool>,
    /// Startup probe results, likewise.
    pub startup: &'a BTreeMap<String, bool>,
    /// The node's IPs, primary first.
    pub host_ips: &'a [String],
    /// The kubelet is done with the pod (deleted, evicted, deadline
    /// exceeded): containers will not restart whatever the policy.
    pub pod_is_terminal: bool,
    pub now: SystemTime,
}

/// An API timestamp, cut to whole seconds as the API serializes it, so
/// that a status read back compares equal to the one computed.
pub fn to_time(t: SystemTime) -> Time {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether the kubelet would (re)start this container on its next sync,
/// judging by its newest runtime container.
fn should_restart(pod: &Pod, container: &Container, latest: Option<&rt::ContainerStatus>) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(latest) = latest else { return true };
    match latest.state {
        rt::ContainerState::Running => false,
        rt::ContainerState::Created | rt::ContainerState::Unknown => true,
        rt::ContainerState::Exited => {
            let policy = if is_sidecar(container) {
                "Always"
            } else {
                restart_policy(pod)
            };
            match policy {
                "Never" => false,
                "OnFailure" => latest.exit_code.unwrap_or(0) != 0,
                _ => true,
            }
        }
    }
}

fn terminated(state: &ContainerState) -> Option<&ContainerStateTerminated> {
    state.terminated.as_ref()
}

fn waiting_state(reason: Option<&str>, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: reason.filter(|r| !r.is_empty()).map(Into::into),
            message: message.filter(|m| !m.is_empty()).map(Into::into),
        }),
        ..Default::default()
    }
}

/// One runtime container as an API container status (before probes).
fn convert(
    cs: &rt::ContainerStatus,
    spec: &Container,
    runtime_name: &str,
    old: Option<&ContainerStatus>,
) -> ContainerStatus {
    let id = format!("{runtime_name}://{}", cs.id);
    let image = if cs.image.is_empty() {
        spec.image.clone().unwrap_or_default()
    } else {
        cs.image.clone()
    };
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image,
        image_id: cs.image_id.clone(),
        container_id: Some(id.clone()),
        restart_count: i32::try_from(cs.attempt).unwrap_or(i32::MAX),
        ..Default::default()
    };
    status.state = Some(match cs.state {
        rt::ContainerState::Running => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: cs.started_at.map(to_time),
            }),
            ..Default::default()
        },
        rt::ContainerState::Exited => {
            let exit_code = cs.exit_code.unwrap_or(0);
            let reason = if !cs.reason.is_empty() {
                cs.reason.clone()
            } else if exit_code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            };
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code,
                    reason: Some(reason),
                    message: Some(cs.message.clone()).filter(|m| !m.is_empty()),
                    started_at: cs.started_at.map(to_time),
                    finished_at: cs.finished_at.map(to_time),
                    container_id: Some(id),
                    signal: None,
                }),
                ..Default::default()
            }
        }
        rt::ContainerState::Unknown
            if old
                .and_then(|o| o.state.as_ref())
                .is_some_and(|s| s.running.is_some()) =>
        {
            // It ran and vanished: report it as failed rather than as
            // never started, so run-once pods are not run twice.
            status.restart_count = old.map_or(0, |o| o.restart_count) + 1;
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("ContainerStatusUnknown".into()),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
        // Created but not started, or unknown: waiting to run.
        _ => waiting_state(None, None),
    });
    status
}

/// The API statuses of `specs` (the pod's containers or init containers),
/// in spec order, before probe results are applied.
fn container_statuses(
    input: &StatusInputs<'_>,
    specs: &[Container],
    is_init: bool,
    old: &[ContainerStatus],
) -> Vec<ContainerStatus> {
    let pod = input.pod;
    let has_init = pod
        .spec
        .as_ref()
        .is_some_and(|s| !s.init_containers.as_deref().unwrap_or_default().is_empty());
    let default_reason = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let old_of = |name: &str| old.iter().find(|o| o.name == name);

    // Newest first: the first seen is the current state, the second the
    // previous one.
    let mut runtime: Vec<&rt::ContainerStatus> = input.containers.iter().collect();
    runtime.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.attempt.cmp(&a.attempt))
    });

    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let old = old_of(&spec.name);
        let mine: Vec<&rt::ContainerStatus> = runtime
            .iter()
            .copied()
            .filter(|c| c.name == spec.name)
            .collect();
        let mut status = match (mine.first(), old) {
            (Some(latest), _) => {
                let mut s = convert(latest, spec, input.runtime_name, old);
                if let Some(prev) = mine.get(1) {
                    s.last_state = convert(prev, spec, input.runtime_name, None).state;
                }
                s
            }
            // A terminated container that the runtime forgot stays as it was.
            (None, Some(o)) if o.state.as_ref().and_then(terminated).is_some() => o.clone(),
            (None, o) => ContainerStatus {
                name: spec.name.clone(),
                image: spec.image.clone().unwrap_or_default(),
                state: Some(waiting_state(Some(default_reason), None)),
                restart_count: o.map_or(0, |o| o.restart_count),
                last_state: o.and_then(|o| o.last_state.clone()),
                ..Default::default()
            },
        };

        // What the worker knows about a container it will (re)start.
        let latest = mine.first().copied();
        let init_done = is_init
            && latest
                .is_some_and(|l| l.state == rt::ContainerState::Exited && l.exit_code == Some(0));
        if !init_done && should_restart(pod, spec, latest) {
            if let Some(w) = input.waiting.get(&spec.name) {
                if status.state.as_ref().and_then(terminated).is_some() {
                    status.last_state = status.state.take();
                }
                status.state = Some(waiting_state(Some(&w.reason), Some(&w.message)));
            }
        }
        out.push(status);
    }
    out
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|s| s.running.is_some())
}

/// Fills `started` and `ready` from probe results: a container without a
/// startup probe has started once running, one without a readiness probe is
/// ready once started; a plain init container is ready once it succeeded.
fn apply_probes(
    input: &StatusInputs<'_>,
    specs: &[Container],
    statuses: &mut [ContainerStatus],
    is_init: bool,
) {
    for (spec, status) in specs.iter().zip(statuses.iter_mut()) {
        let started = is_running(status)
            && (spec.startup_probe.is_none() || input.startup.get(&spec.name) == Some(&true));
        status.started = Some(started);
        status.ready = if is_init && !is_sidecar(spec) {
            status
                .state
                .as_ref()
                .and_then(terminated)
                .is_some_and(|t| t.exit_code == 0)
        } else {
            started
                && (spec.readiness_probe.is_none()
                    || input.readiness.get(&spec.name) == Some(&true))
        };
    }
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn last_terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.last_state.as_ref().and_then(terminated)
}

/// Whether a regular container has run: initialization is then over, even
/// while a sidecar restarts.
fn any_regular_started(pod: &Pod, statuses: &[ContainerStatus]) -> bool {
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    containers.filter_map(|c| find(statuses, &c.name)).any(|s| {
        let state = s.state.as_ref();
        is_running(s) || state.and_then(terminated).is_some() || last_terminated(s).is_some()
    })
}

/// The pod's phase from its container statuses.
pub fn pod_phase(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    pod_is_terminal: bool,
) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return PENDING;
    };
    let policy = restart_policy(pod);
    let initialized_before = any_regular_started(pod, regular);
    let (mut pending_init, mut pending_sidecars, mut failed_init) = (0, 0, 0);
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);

    for c in spec.init_containers.iter().flatten() {
        let Some(s) = find(init, &c.name) else {
            if is_sidecar(c) {
                unknown += 1;
            } else {
                pending_init += 1;
            }
            continue;
        };
        let state = s.state.clone().unwrap_or_default();
        if is_sidecar(c) {
            // Sidecars count as running containers; a stopped one does not
            // decide the phase.
            if state.running.is_some() {
                if s.started != Some(true) {
                    pending_sidecars += 1;
                }
                running += 1;
            } else if state.terminated.is_none() && state.waiting.is_some() {
                if last_terminated(s).is_none() {
                    pending_sidecars += 1;
                    waiting += 1;
                }
            } else if state.terminated.is_none() {
                pending_sidecars += 1;
                unknown += 1;
            }
            continue;
        }
        if state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state.waiting.is_some() {
            match last_terminated(s) {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }

    for c in &spec.containers {
        let Some(s) = find(regular, &c.name) else {
            unknown += 1;
            continue;
        };
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if last_terminated(s).is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }

    if failed_init > 0 && policy == "Never" {
        return FAILED;
    }
    if pending_init > 0 || (pending_sidecars > 0 && !initialized_before) || waiting > 0 {
        return PENDING;
    }
    if running > 0 && unknown == 0 {
        return RUNNING;
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if pod_is_terminal || policy != "Always" {
            if stopped == succeeded {
                return SUCCEEDED;
            }
            if pod_is_terminal || policy == "Never" {
                return FAILED;
            }
        }
        // Always, or OnFailure with failures: restarting.
        return RUNNING;
    }
    PENDING
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(Into::into),
        message,
        ..Default::default()
    }
}

/// Go's `%s` of a string slice: `[a b]`.
fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

fn initialized_condition(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let specs = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten());
    let (mut unknown, mut incomplete) = (vec![], vec![]);
    for c in specs {
        match find(init, &c.name) {
            None => unknown.push(c.name.clone()),
            Some(s) if is_sidecar(c) && s.started != Some(true) => incomplete.push(c.name.clone()),
            Some(s) if !is_sidecar(c) && !s.ready => incomplete.push(c.name.clone()),
            Some(_) => {}
        }
    }
    if phase == SUCCEEDED && unknown.is_empty() {
        return condition(INITIALIZED, true, Some("PodCompleted"), None);
    }
    if any_regular_started(pod, regular) {
        return condition(INITIALIZED, true, None, None);
    }
    let mut msgs = vec![];
    if !unknown.is_empty() {
        msgs.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        msgs.push(format!(
            "containers with incomplete status: {}",
            go_list(&incomplete)
        ));
    }
    if msgs.is_empty() {
        condition(INITIALIZED, true, None, None)
    } else {
        condition(
            INITIALIZED,
            false,
            Some("ContainersNotInitialized"),
            Some(msgs.join(", ")),
        )
    }
}

fn containers_ready_condition(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let spec = pod.spec.as_ref();
    let sidecars = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| is_sidecar(c));
    let (mut unknown, mut unready) = (vec![], vec![]);
    let sidecar_pairs = sidecars.map(|c| (c, find(init, &c.name)));
    let regular_pairs = spec
        .into_iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c, find(regular, &c.name)));
    for (c, s) in sidecar_pairs.chain(regular_pairs) {
        match s {
            None => unknown.push(c.name.clone()),
            Some(s) if !s.ready => unready.push(c.name.clone()),
            Some(_) => {}
        }
    }
    if phase == SUCCEEDED && unknown.is_empty() {
        return condition(CONTAINERS_READY, false, Some("PodCompleted"), None);
    }
    if phase == FAILED {
        return condition(CONTAINERS_READY, false, Some("PodFailed"), None);
    }
    let mut msgs = vec![];
    if !unknown.is_empty() {
        msgs.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !unready.is_empty() {
        msgs.push(format!(
            "containers with unready status: {}",
            go_list(&unready)
        ));
    }
    if msgs.is_empty() {
        condition(CONTAINERS_READY, true, None, None)
    } else {
        condition(
            CONTAINERS_READY,
            false,
            Some("ContainersNotReady"),
            Some(msgs.join(", ")),
        )
    }
}

/// Ready is ContainersReady, further held back by readiness gates whose
/// conditions (set by others) are missing or not True.
fn ready_condition(
    pod: &Pod,
    containers_ready: &PodCondition,
    others: &[PodCondition],
) -> PodCondition {
    if containers_ready.status != "True" {
        return PodCondition {
            type_: READY.into(),
            ..containers_ready.clone()
        };
    }
    let gates = pod
        .spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten());
    let mut msgs = vec![];
    for gate in gates {
        let t = &gate.condition_type;
        match others.iter().find(|c| &c.type_ == t) {
            None => msgs.push(format!(
                "corresponding condition of pod readiness gate \"{t}\" does not exist."
            )),
            Some(c) if c.status != "True" => msgs.push(format!(
                "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => {}
        }
    }
    if msgs.is_empty() {
        condition(READY, true, None, None)
    } else {
        condition(
            READY,
            false,
            Some("ReadinessGatesNotReady"),
            Some(msgs.join(", ")),
        )
    }
}

fn sandbox_ready(pod: &Pod, sandbox: Option<&rt::SandboxStatus>) -> bool {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    sandbox.is_some_and(|s| s.state == SandboxState::Ready && (host_network || !s.ips.is_empty()))
}

/// The pod's status as the kubelet reports it.
pub fn pod_status(input: &StatusInputs<'_>) -> PodStatus {
    let pod = input.pod;
    let previous = input.previous.or(pod.status.as_ref());
    let spec = pod.spec.clone().unwrap_or_default();
    let old_init = previous
        .and_then(|p| p.init_container_statuses.clone())
        .unwrap_or_default();
    let old_regular = previous
        .and_then(|p| p.container_statuses.clone())
        .unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();

    let mut init = container_statuses(input, &init_specs, true, &old_init);
    let mut regular = container_statuses(input, &spec.containers, false, &old_regular);
    apply_probes(input, &init_specs, &mut init, true);
    apply_probes(input, &spec.containers, &mut regular, false);

    let mut phase = pod_phase(pod, &init, &regular, input.pod_is_terminal);
    let old_phase = previous.and_then(|p| p.phase.as_deref()).unwrap_or("");
    // A pod never leaves a terminal phase.
    if phase != FAILED && phase != SUCCEEDED && (old_phase == FAILED || old_phase == SUCCEEDED) {
        phase = if old_phase == FAILED {
            FAILED
        } else {
            SUCCEEDED
        };
    }
    let (reason, message) = if phase == old_phase {
        (
            previous.and_then(|p| p.reason.clone()),
            previous.and_then(|p| p.message.clone()),
        )
    } else {
        (None, None)
    };

    // Conditions set by others survive untouched, ahead of the kubelet's.
    let old_conditions = previous
        .and_then(|p| p.conditions.clone())
        .unwrap_or_default();
    let others: Vec<PodCondition> = old_conditions
        .iter()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    let containers_ready = containers_ready_condition(pod, &init, &regular, phase);
    let mut conditions = others.clone();
    conditions.push(condition(
        POD_READY_TO_START_CONTAINERS,
        sandbox_ready(pod, input.sandbox),
        None,
        None,
    ));
    conditions.push(initialized_condition(pod, &init, &regular, phase));
    conditions.push(ready_condition(pod, &containers_ready, &others));
    conditions.push(containers_ready);
    conditions.push(condition(POD_SCHEDULED, true, None, None));
    let now = to_time(input.now);
    for c in conditions
        .iter_mut()
        .filter(|c| KUBELET_CONDITIONS.contains(&c.type_.as_str()))
    {
        let old = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match old {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => {
                o.last_transition_time.clone()
            }
            _ => Some(now.clone()),
        };
    }

    // Host-network pods have the node's addresses; a pod whose sandbox is
    // gone keeps the addresses it had so endpoints can drain.
    let host_network = spec.host_network.unwrap_or(false);
    let mut pod_ips: Vec<String> = if host_network {
        input.host_ips.to_vec()
    } else {
        input
            .sandbox
            .filter(|s| s.state == SandboxState::Ready)
            .map(|s| s.ips.clone())
            .unwrap_or_default()
    };
    if pod_ips.is_empty() {
        let old = previous
            .and_then(|p| p.pod_ips.as_ref())
            .into_iter()
            .flatten();
        pod_ips = old.map(|p| p.ip.clone()).collect();
    }

    regular.sort_by(|a, b| a.name.cmp(&b.name));
    PodStatus {
        phase: Some(phase.into()),
        reason,
        message,
        conditions: Some(conditions),
        container_statuses: Some(regular),
        init_container_statuses: (!init.is_empty()).then_some(init),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        host_ip: input.host_ips.first().cloned(),
        host_ips: (!input.host_ips.is_empty()).then(|| {
            input
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        qos_class: Some(qos::qos_class(pod).into()),
        start_time: previous.and_then(|p| p.start_time.clone()).or(Some(now)),
        nominated_node_name: previous.and_then(|p| p.nominated_node_name.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodReadinessGate, PodSpec, Probe};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::path::PathBuf;
    use std::time::Duration;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn c(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some(format!("img/{name}")),
            ..Default::default()
        }
    }

    fn sidecar(name: &str) -> Container {
        Container {
            restart_policy: Some("Always".into()),
            ..c(name)
        }
    }

    fn pod(policy: &str, containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                init_containers: (!init.is_empty()).then_some(init),
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(name: &str, attempt: u32, created: u64) -> rt::ContainerStatus {
        rt::ContainerStatus {
            id: format!("{name}-{attempt}"),
            sandbox_id: "sb".into(),
            name: name.into(),
            attempt,
            image: format!("img/{name}"),
            image_id: "sha256:abc".into(),
            state: rt::ContainerState::Running,
            pid: Some(42),
            created_at: t(created),
            started_at: Some(t(created + 1)),
            finished_at: None,
            exit_code: None,
            reason: String::new(),
            message: String::new(),
            log_path: PathBuf::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    fn exited(name: &str, attempt: u32, created: u64, code: i32) -> rt::ContainerStatus {
        rt::ContainerStatus {
            state: rt::ContainerState::Exited,
            pid: None,
            finished_at: Some(t(created + 5)),
            exit_code: Some(code),
            ..running(name, attempt, created)
        }
    }

    fn sandbox() -> rt::SandboxStatus {
        rt::SandboxStatus {
            id: "sb".into(),
            metadata: rt::PodMetadata::default(),
            state: SandboxState::Ready,
            created_at: t(0),
            ips: vec!["10.1.0.5".into()],
            netns_path: PathBuf::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// Owns what [`StatusInputs`] borrows.
    struct World {
        pod: Pod,
        previous: Option<PodStatus>,
        sandbox: Option<rt::SandboxStatus>,
        containers: Vec<rt::ContainerStatus>,
        waiting: BTreeMap<String, Waiting>,
        readiness: BTreeMap<String, bool>,
        startup: BTreeMap<String, bool>,
        host_ips: Vec<String>,
        terminal: bool,
        now: SystemTime,
    }

    impl World {
        fn new(pod: Pod, containers: Vec<rt::ContainerStatus>) -> Self {
            World {
                pod,
                previous: None,
                sandbox: Some(sandbox()),
                containers,
                waiting: BTreeMap::new(),
                readiness: BTreeMap::new(),
                startup: BTreeMap::new(),
                host_ips: vec!["192.168.0.2".into()],
                terminal: false,
                now: t(100),
            }
        }

        fn wait(mut self, name: &str, reason: &str, message: &str) -> Self {
            self.waiting.insert(
                name.into(),
                Waiting {
                    reason: reason.into(),
                    message: message.into(),
                },
            );
            self
        }

        fn status(&self) -> PodStatus {
            pod_status(&StatusInputs {
                pod: &self.pod,
                previous: self.previous.as_ref(),
                sandbox: self.sandbox.as_ref(),
                containers: &self.containers,
                runtime_name: "containerd",
                waiting: &self.waiting,
                readiness: &self.readiness,
                startup: &self.startup,
                host_ips: &self.host_ips,
                pod_is_terminal: self.terminal,
                now: self.now,
            })
        }
    }

    fn cond<'a>(s: &'a PodStatus, type_: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    fn cstatus<'a>(s: &'a PodStatus, name: &str) -> &'a ContainerStatus {
        let all = s
            .container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten());
        all.into_iter().find(|c| c.name == name).unwrap()
    }

    fn waiting_reason(s: &ContainerStatus) -> Option<&str> {
        s.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
    }

    #[test]
    fn fresh_pod_is_pending() {
        let mut w = World::new(pod("Always", vec![c("a")], vec![]), vec![]);
        w.sandbox = None;
        let s = w.status();
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        assert_eq!(waiting_reason(cstatus(&s, "a")), Some("ContainerCreating"));
        assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "False");
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        assert_eq!(cond(&s, POD_SCHEDULED).status, "True");
        let ready = cond(&s, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ContainersNotReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a]")
        );
        assert_eq!(s.start_time, Some(to_time(t(100))));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(s.pod_ip, None);
        let types: Vec<&str> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            [
                POD_READY_TO_START_CONTAINERS,
                INITIALIZED,
                READY,
                CONTAINERS_READY,
                POD_SCHEDULED
            ]
        );
    }

    #[test]
    fn running_pod() {
        let s = World::new(
            pod("Always", vec![c("b"), c("a")], vec![]),
            vec![running("a", 0, 1), running("b", 0, 1)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        let names: Vec<&str> = s
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"], "sorted by name");
        let a = cstatus(&s, "a");
        assert!(a.ready && a.started == Some(true));
        assert_eq!(a.container_id.as_deref(), Some("containerd://a-0"));
        assert_eq!(
            (a.image.as_str(), a.image_id.as_str()),
            ("img/a", "sha256:abc")
        );
        assert_eq!(
            a.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(to_time(t(2)))
        );
        for c in [
            POD_READY_TO_START_CONTAINERS,
            INITIALIZED,
            CONTAINERS_READY,
            READY,
            POD_SCHEDULED,
        ] {
            assert_eq!(cond(&s, c).status, "True", "{c}");
        }
        assert_eq!(s.pod_ip.as_deref(), Some("10.1.0.5"));
        assert_eq!(s.pod_ips.as_ref().unwrap()[0].ip, "10.1.0.5");
        assert_eq!(s.host_ip.as_deref(), Some("192.168.0.2"));
        assert_eq!(s.host_ips.as_ref().unwrap()[0].ip, "192.168.0.2");
    }

    #[test]
    fn phases_by_restart_policy() {
        let cases = [
            ("Always", vec![0], RUNNING),
            ("Always", vec![1], RUNNING),
            ("OnFailure", vec![0], SUCCEEDED),
            ("OnFailure", vec![1], RUNNING),
            ("OnFailure", vec![0, 0], SUCCEEDED),
            ("Never", vec![0], SUCCEEDED),
            ("Never", vec![1], FAILED),
            ("Never", vec![0, 2], FAILED),
        ];
        for (policy, codes, want) in cases {
            let names: Vec<String> = (0..codes.len()).map(|i| format!("c{i}")).collect();
            let specs = names.iter().map(|n| c(n)).collect();
            let rts = names
                .iter()
                .zip(&codes)
                .map(|(n, code)| exited(n, 0, 1, *code))
                .collect();
            let s = World::new(pod(policy, specs, vec![]), rts).status();
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} {codes:?}");
        }
        // One still running keeps the pod Running whatever the policy.
        let s = World::new(
            pod("Never", vec![c("a"), c("b")], vec![]),
            vec![exited("a", 0, 1, 1), running("b", 0, 1)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        // A pod the kubelet is done with settles on Succeeded/Failed even
        // under Always.
        let mut w = World::new(
            pod("Always", vec![c("a")], vec![]),
            vec![exited("a", 0, 1, 0)],
        );
        w.terminal = true;
        assert_eq!(w.status().phase.as_deref(), Some(SUCCEEDED));
        w.containers = vec![exited("a", 0, 1, 137)];
        assert_eq!(w.status().phase.as_deref(), Some(FAILED));
    }

    #[test]
    fn terminated_details() {
        let mut oom = exited("a", 0, 1, 137);
        oom.reason = "OOMKilled".into();
        let s = World::new(
            pod("Never", vec![c("a"), c("b"), c("c")], vec![]),
            vec![oom, exited("b", 0, 1, 0), exited("c", 0, 1, 3)],
        )
        .status();
        let term = |n: &str| cstatus(&s, n).state.clone().unwrap().terminated.unwrap();
        assert_eq!(
            (term("a").exit_code, term("a").reason.as_deref()),
            (137, Some("OOMKilled"))
        );
        assert_eq!(term("b").reason.as_deref(), Some("Completed"));
        assert_eq!(term("c").reason.as_deref(), Some("Error"));
        assert_eq!(term("c").started_at, Some(to_time(t(2))));
        assert_eq!(term("c").finished_at, Some(to_time(t(6))));
        assert_eq!(term("c").container_id.as_deref(), Some("containerd://c-0"));
        assert!(!cstatus(&s, "b").ready && cstatus(&s, "b").started == Some(false));
        assert_eq!(
            cond(&s, CONTAINERS_READY).reason.as_deref(),
            Some("PodFailed")
        );
    }

    #[test]
    fn restarts_and_crash_loop() {
        let msg = "back-off 10s restarting failed container=a pod=p_ns(u)";
        // Attempt 0 failed; attempt 1 failed too and waits out its back-off.
        let w = World::new(
            pod("Always", vec![c("a")], vec![]),
            vec![exited("a", 0, 1, 1), exited("a", 1, 20, 2)],
        )
        .wait("a", "CrashLoopBackOff", msg);
        let s = w.status();
        let a = cstatus(&s, "a");
        let waiting = a.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(
            (waiting.reason.as_deref(), waiting.message.as_deref()),
            (Some("CrashLoopBackOff"), Some(msg))
        );
        assert_eq!(
            a.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            2
        );
        assert_eq!(a.restart_count, 1);
        assert_eq!(s.phase.as_deref(), Some(RUNNING));

        // Restarted: running now, the failed attempt is the last state.
        let s = World::new(
            pod("Always", vec![c("a")], vec![]),
            vec![exited("a", 0, 1, 1), running("a", 1, 20)],
        )
        .status();
        let a = cstatus(&s, "a");
        assert!(a.state.as_ref().unwrap().running.is_some());
        assert_eq!(
            a.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Error")
        );
        assert_eq!(a.restart_count, 1);

        // Never restarts: the waiting reason does not hide the exit.
        let s = World::new(
            pod("Never", vec![c("a")], vec![]),
            vec![exited("a", 0, 1, 1)],
        )
        .wait("a", "CrashLoopBackOff", msg)
        .status();
        assert!(cstatus(&s, "a")
            .state
            .as_ref()
            .unwrap()
            .terminated
            .is_some());
    }

    #[test]
    fn waiting_reasons_before_first_start() {
        let s = World::new(pod("Always", vec![c("a")], vec![]), vec![])
            .wait("a", "ErrImagePull", "pull failed")
            .status();
        assert_eq!(waiting_reason(cstatus(&s, "a")), Some("ErrImagePull"));
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        let mut w = World::new(pod("Always", vec![c("a")], vec![]), vec![]).wait(
            "a",
            "CreateContainerConfigError",
            "configmap \"x\" not found",
        );
        w.pod.metadata.deletion_timestamp = Some(to_time(t(50)));
        assert_eq!(
            waiting_reason(cstatus(&w.status(), "a")),
            Some("ContainerCreating"),
            "deleted pods do not restart"
        );
    }

    #[test]
    fn init_containers_in_order() {
        let p = || pod("Always", vec![c("app")], vec![c("i1"), c("i2")]);
        // i1 done, i2 running.
        let s = World::new(p(), vec![exited("i1", 0, 1, 0), running("i2", 0, 10)]).status();
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        let init = cond(&s, INITIALIZED);
        assert_eq!(
            (init.status.as_str(), init.reason.as_deref()),
            ("False", Some("ContainersNotInitialized"))
        );
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [i2]")
        );
        assert!(cstatus(&s, "i1").ready);
        assert_eq!(waiting_reason(cstatus(&s, "app")), Some("PodInitializing"));
        let names: Vec<&str> = s
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["i1", "i2"], "spec order");
        // Nothing started yet.
        let s = World::new(p(), vec![]).status();
        assert_eq!(waiting_reason(cstatus(&s, "i1")), Some("PodInitializing"));
        assert_eq!(
            cond(&s, INITIALIZED).message.as_deref(),
            Some("containers with incomplete status: [i1 i2]")
        );
        // All done and the app runs.
        let s = World::new(
            p(),
            vec![
                exited("i1", 0, 1, 0),
                exited("i2", 0, 10, 0),
                running("app", 0, 20),
            ],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        // A finished init container is not put back into waiting.
        let s = World::new(p(), vec![exited("i1", 0, 1, 0), running("i2", 0, 10)])
            .wait("i1", "CrashLoopBackOff", "x")
            .status();
        assert!(cstatus(&s, "i1")
            .state
            .as_ref()
            .unwrap()
            .terminated
            .is_some());
    }

    #[test]
    fn init_failures() {
        // Never: a failed init container fails the pod.
        let s = World::new(
            pod("Never", vec![c("app")], vec![c("i1")]),
            vec![exited("i1", 0, 1, 1)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some(FAILED));
        // Always: it is retried, the pod stays Pending.
        let w = World::new(
            pod("Always", vec![c("app")], vec![c("i1")]),
            vec![exited("i1", 0, 1, 1)],
        )
        .wait("i1", "CrashLoopBackOff", "back-off");
        let s = w.status();
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        let i1 = cstatus(&s, "i1");
        assert_eq!(waiting_reason(i1), Some("CrashLoopBackOff"));
        assert_eq!(
            i1.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
    }

    #[test]
    fn sidecars() {
        let p = |probe: bool| {
            let mut s = sidecar("side");
            if probe {
                s.startup_probe = Some(Probe::default());
            }
            pod("Never", vec![c("app")], vec![s])
        };
        // Started sidecar: the app may run; both count for readiness.
        let s = World::new(p(false), vec![running("side", 0, 1), running("app", 0, 10)]).status();
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        assert!(cstatus(&s, "side").ready);
        assert_eq!(cond(&s, CONTAINERS_READY).status, "True");
        // A sidecar still waiting on its startup probe holds initialization.
        let s = World::new(p(true), vec![running("side", 0, 1)]).status();
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        assert_eq!(
            cond(&s, INITIALIZED).message.as_deref(),
            Some("containers with incomplete status: [side]")
        );
        assert_eq!(cstatus(&s, "side").started, Some(false));
        let mut w = World::new(p(true), vec![running("side", 0, 1)]);
        w.startup.insert("side".into(), true);
        assert_eq!(cond(&w.status(), INITIALIZED).status, "True");
        // A sidecar restarting after the app started does not make the pod
        // Pending again.
        let w = World::new(
            p(false),
            vec![exited("side", 0, 1, 1), running("app", 0, 10)],
        )
        .wait("side", "CrashLoopBackOff", "x");
        let s = w.status();
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        assert_eq!(cond(&s, INITIALIZED).status, "True");
        assert_eq!(
            cond(&s, CONTAINERS_READY).message.as_deref(),
            Some("containers with unready status: [side]")
        );
        // App done (Never), sidecar stopped: the sidecar's exit does not
        // decide the phase.
        let s = World::new(
            p(false),
            vec![exited("side", 0, 1, 137), exited("app", 0, 10, 0)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some(SUCCEEDED));
    }

    #[test]
    fn probes() {
        let mut app = c("app");
        app.readiness_probe = Some(Probe::default());
        let mut w = World::new(pod("Always", vec![app], vec![]), vec![running("app", 0, 1)]);
        assert!(!cstatus(&w.status(), "app").ready, "no result yet");
        w.readiness.insert("app".into(), false);
        assert!(!cstatus(&w.status(), "app").ready);
        w.readiness.insert("app".into(), true);
        assert!(cstatus(&w.status(), "app").ready);
        w.pod.spec.as_mut().unwrap().containers[0].startup_probe = Some(Probe::default());
        let s = w.status();
        assert_eq!(cstatus(&s, "app").started, Some(false));
        assert!(!cstatus(&s, "app").ready, "not ready before started");
    }

    #[test]
    fn transition_times_and_foreign_conditions() {
        let mut p = pod("Always", vec![c("a")], vec![]);
        p.spec.as_mut().unwrap().readiness_gates = Some(vec![PodReadinessGate {
            condition_type: "example.com/lb".into(),
        }]);
        let mut w = World::new(p, vec![running("a", 0, 1)]);
        w.now = t(10);
        let first = w.status();
        let ready = cond(&first, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ReadinessGatesNotReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );
        assert_eq!(
            cond(&first, CONTAINERS_READY).last_transition_time,
            Some(to_time(t(10)))
        );

        // Someone else sets the gate's condition; Ready flips, the rest keep
        // their transition times.
        let mut prev = first.clone();
        prev.conditions.as_mut().unwrap().push(PodCondition {
            type_: "example.com/lb".into(),
            status: "True".into(),
            ..Default::default()
        });
        w.previous = Some(prev);
        w.now = t(20);
        let second = w.status();
        assert_eq!(cond(&second, READY).status, "True");
        assert_eq!(
            cond(&second, READY).last_transition_time,
            Some(to_time(t(20)))
        );
        assert_eq!(
            cond(&second, CONTAINERS_READY).last_transition_time,
            Some(to_time(t(10)))
        );
        assert_eq!(
            second.conditions.as_ref().unwrap()[0].type_,
            "example.com/lb",
            "kept, first"
        );
        assert_eq!(second.start_time, Some(to_time(t(10))), "start time kept");
    }

    #[test]
    fn terminal_phase_sticks_and_keeps_reason() {
        let mut w = World::new(
            pod("Always", vec![c("a")], vec![]),
            vec![running("a", 0, 1)],
        );
        w.previous = Some(PodStatus {
            phase: Some(FAILED.into()),
            reason: Some("Evicted".into()),
            message: Some("low memory".into()),
            ..Default::default()
        });
        let s = w.status();
        assert_eq!(s.phase.as_deref(), Some(FAILED));
        assert_eq!(s.reason.as_deref(), Some("Evicted"));
        assert_eq!(s.message.as_deref(), Some("low memory"));
    }

    #[test]
    fn vanished_container_and_addresses() {
        // It was running; now the runtime cannot say.
        let mut w = World::new(pod("Never", vec![c("a")], vec![]), vec![running("a", 0, 1)]);
        w.previous = Some(w.status());
        let mut lost = running("a", 0, 1);
        lost.state = rt::ContainerState::Unknown;
        w.containers = vec![lost];
        w.sandbox = None;
        let s = w.status();
        let term = cstatus(&s, "a").state.clone().unwrap().terminated.unwrap();
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (137, Some("ContainerStatusUnknown"))
        );
        assert_eq!(cstatus(&s, "a").restart_count, 1);
        assert_eq!(s.phase.as_deref(), Some(FAILED));
        assert_eq!(
            s.pod_ip.as_deref(),
            Some("10.1.0.5"),
            "kept after the sandbox is gone"
        );

        let mut p = pod("Always", vec![c("a")], vec![]);
        p.spec.as_mut().unwrap().host_network = Some(true);
        let mut w = World::new(p, vec![running("a", 0, 1)]);
        w.sandbox.as_mut().unwrap().ips.clear();
        let s = w.status();
        assert_eq!(s.pod_ip.as_deref(), Some("192.168.0.2"));
        assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "True");
    }

    #[test]
    fn times_truncate_to_seconds() {
        let t1 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_750);
        assert_eq!(
            to_time(t1),
            to_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(to_time(t1).0.as_second(), 1_700_000_000);
    }
}
