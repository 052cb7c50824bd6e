//! The IO half: watches, the queue of pending pods, binding, reporting.
//!
//! Two watches (Nodes, Pods) fill reflector stores and wake the loop. Each
//! pass reads the pending pods from the pod store (level-triggered: after a
//! restart whatever is pending is simply found again), orders them by
//! priority then age, and schedules them one at a time against a view of
//! the cluster built from the stores.
//!
//! Assume, then confirm: a pod is counted on its node from the moment this
//! scheduler decides, before the binding request is sent, and stays counted
//! until the pod store shows it bound (or gone). The next decision, made
//! before the watch has caught up, therefore sees the room already taken,
//! and two pods never both get the last free slot.
//!
//! A pod that fits nowhere gets `PodScheduled=False/Unschedulable` with the
//! message and a `FailedScheduling` Warning Event, and waits: it is tried
//! again once something that could make room happened (a node added or
//! changed in a way that matters, a pod on a node deleted or finished, the
//! pod's own spec changed), but not before its back-off (1 s doubling to
//! 10 s by default) has passed, and in any case after
//! `unschedulable_retry`. A status update of a pending pod (such as the
//! condition written here) is no such change, so nothing loops.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{self, AtomicU64};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::algorithm;
use crate::cache::{is_terminal, node_name, Assumptions};
use crate::node_info::NodeInfo;
use crate::{SchedulerOptions, DEFAULT_SCHEDULER_NAME};

const GATED_MESSAGE: &str = "Scheduling is blocked due to non-empty scheduling gates";

/// Runs the scheduler until the future is dropped; it does not end on its
/// own (the watches retry with back-off). Needs to list and watch nodes
/// and pods, create `pods/binding` and events, and patch `pods/status`.
pub async fn run(client: Client, opts: SchedulerOptions) {
    let signals = Arc::new(Signals::default());
    let (nodes, node_writer) = reflector::store::<Node>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let _watches = AbortOnDrop(vec![
        tokio::spawn(watch_nodes(
            Api::all(client.clone()),
            node_writer,
            signals.clone(),
        )),
        tokio::spawn(watch_pods(
            Api::all(client.clone()),
            pod_writer,
            signals.clone(),
        )),
    ]);
    if nodes.wait_until_ready().await.is_err() || pods.wait_until_ready().await.is_err() {
        return;
    }
    tracing::info!(scheduler = %opts.scheduler_name, "scheduler started");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: opts.scheduler_name.clone(),
            instance: None,
        },
    );
    Scheduler {
        client,
        opts,
        nodes,
        pods,
        signals,
        recorder,
        assumed: Assumptions::default(),
        waiting: HashMap::new(),
        turn: 0,
    }
    .run()
    .await
}

/// Aborts the watch tasks when `run` ends or is dropped.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What the watches tell the loop.
#[derive(Default)]
struct Signals {
    wake: Notify,
    /// Bumped on every change that could make an unschedulable pod fit.
    generation: AtomicU64,
}

impl Signals {
    fn changed(&self) {
        self.generation.fetch_add(1, atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn work(&self) {
        self.wake.notify_one();
    }

    fn generation(&self) -> u64 {
        self.generation.load(atomic::Ordering::SeqCst)
    }
}

/// The parts of a Node the filters read; an update that leaves them alone
/// (a heartbeat) cannot make a pod fit.
fn node_signature(node: &Node) -> String {
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    json!([
        node.metadata.labels,
        spec.and_then(|s| s.taints.as_ref()),
        spec.and_then(|s| s.unschedulable),
        status.and_then(|s| s.allocatable.as_ref()),
        status.and_then(|s| s.capacity.as_ref()),
        ready,
    ])
    .to_string()
}

async fn watch_nodes(api: Api<Node>, writer: Writer<Node>, signals: Arc<Signals>) {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(node)) => {
                let signature = node_signature(&node);
                if seen.insert(node.name_any(), signature.clone()) != Some(signature) {
                    signals.changed();
                }
            }
            Ok(watcher::Event::Delete(node)) => {
                seen.remove(&node.name_any());
                signals.changed();
            }
            Ok(watcher::Event::Init) => seen.clear(),
            Ok(watcher::Event::InitApply(node)) => {
                seen.insert(node.name_any(), node_signature(&node));
            }
            // The store now holds the (re)listed nodes.
            Ok(watcher::Event::InitDone) => signals.changed(),
            Err(e) => tracing::warn!("scheduler: node watch: {e}"),
        }
    }
}

async fn watch_pods(api: Api<Pod>, writer: Writer<Pod>, signals: Arc<Signals>) {
    // Bound pods by UID: their node and whether they still take room.
    let mut bound: HashMap<String, (String, bool)> = HashMap::new();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) => match node_name(&pod) {
                Some(node) => {
                    let now = (node.to_string(), !is_terminal(&pod));
                    // A pod newly bound takes room, it frees none; one that
                    // finished or moved does.
                    match bound.insert(pod.uid().unwrap_or_default(), now.clone()) {
                        Some(before) if before != now && before.1 => signals.changed(),
                        _ => {}
                    }
                }
                None => signals.work(),
            },
            Ok(watcher::Event::Delete(pod)) => match bound.remove(&pod.uid().unwrap_or_default()) {
                Some((_, true)) => signals.changed(),
                _ => signals.work(),
            },
            Ok(watcher::Event::Init) => bound.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(node) = node_name(&pod) {
                    bound.insert(
                        pod.uid().unwrap_or_default(),
                        (node.to_string(), !is_terminal(&pod)),
                    );
                }
            }
            Ok(watcher::Event::InitDone) => signals.changed(),
            Err(e) => tracing::warn!("scheduler: pod watch: {e}"),
        }
    }
}

/// An unschedulable pod waiting to be tried again.
struct Waiting {
    failures: u32,
    /// `Signals::generation` when it was last tried.
    generation: u64,
    /// Its spec then; a changed spec may fit now.
    spec: String,
    /// Earliest retry once something changed.
    retry_at: Instant,
    /// Retry even if nothing changed.
    flush_at: Instant,
}

struct Scheduler {
    client: Client,
    opts: SchedulerOptions,
    nodes: Store<Node>,
    pods: Store<Pod>,
    signals: Arc<Signals>,
    recorder: Recorder,
    assumed: Assumptions,
    waiting: HashMap<String, Waiting>,
    /// Tie-break counter for `algorithm::schedule`.
    turn: usize,
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn spec_signature(pod: &Pod) -> String {
    serde_json::to_string(&pod.spec).unwrap_or_default()
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Higher priority first, then older first, then by name.
fn queue_order(a: &Arc<Pod>, b: &Arc<Pod>) -> Ordering {
    priority(b)
        .cmp(&priority(a))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a).cmp(&created(b))
        })
        .then_with(|| a.namespace().cmp(&b.namespace()))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Scheduler {
    async fn run(mut self) {
        loop {
            let wake_at = self.pass().await;
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.signals.wake.notified() => {}
                _ = timer => {}
            }
        }
    }

    /// Whether `pod` waits for this scheduler.
    fn is_pending(&self, pod: &Pod) -> bool {
        let Some(spec) = pod.spec.as_ref() else {
            return false;
        };
        let scheduler = spec
            .scheduler_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_SCHEDULER_NAME);
        node_name(pod).is_none()
            && scheduler == self.opts.scheduler_name
            && pod.metadata.deletion_timestamp.is_none()
            && !is_terminal(pod)
    }

    /// The cluster as the next decision sees it.
    fn snapshot(&self) -> Vec<NodeInfo> {
        self.assumed.snapshot(self.nodes.state(), self.pods.state())
    }

    /// Tries every pending pod that is due; returns when the next waiting
    /// one becomes due without any change.
    async fn pass(&mut self) -> Option<Instant> {
        let pods = &self.pods;
        self.assumed
            .confirm(|ns, name| pods.get(&ObjectRef::new(name).within(ns)));
        let mut pending: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| self.is_pending(p))
            .collect();
        pending.sort_by(queue_order);
        let live: HashSet<String> = pending.iter().map(|p| uid(p)).collect();
        self.waiting.retain(|uid, _| live.contains(uid));

        let mut wake_at = None;
        let mut view: Option<(u64, Vec<NodeInfo>)> = None;
        for pod in pending {
            let pod_uid = uid(&pod);
            if self.assumed.contains(&pod_uid) {
                continue;
            }
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_some_and(|g| !g.is_empty())
            {
                self.set_condition(&pod, "SchedulingGated", GATED_MESSAGE)
                    .await;
                continue;
            }
            let generation = self.signals.generation();
            if let Some(w) = self.waiting.get(&pod_uid) {
                let changed = generation > w.generation || spec_signature(&pod) != w.spec;
                let due = if changed { w.retry_at } else { w.flush_at };
                if Instant::now() < due {
                    wake_at = earliest(wake_at, due);
                    continue;
                }
            }
            if view.as_ref().is_none_or(|(g, _)| *g != generation) {
                view = Some((generation, self.snapshot()));
            }
            let (_, infos) = view.as_mut().expect("just built");
            match algorithm::schedule(&pod, infos, &mut self.turn) {
                Ok(node) => {
                    let as_bound = self.assumed.assume(&pod, &node);
                    if let Some(info) = infos.iter_mut().find(|n| n.name() == node) {
                        info.add_pod(as_bound);
                    }
                    if let Err(e) = self.bind(&pod, &node).await {
                        self.assumed.forget(&pod_uid);
                        view = None;
                        let gone = matches!(&e, kube::Error::Api(s) if s.is_conflict() || s.is_not_found());
                        if gone {
                            // Bound by someone else or deleted: the watch
                            // will show it.
                            tracing::debug!(pod = %pod.name_any(), "binding refused: {e}");
                            continue;
                        }
                        tracing::warn!(pod = %pod.name_any(), node = %node, "binding failed: {e}");
                        let message = format!("running Bind plugin \"DefaultBinder\": {e}");
                        wake_at = earliest(wake_at, self.wait(&pod, generation));
                        self.report_failure(&pod, "SchedulerError", &message).await;
                        continue;
                    }
                    self.waiting.remove(&pod_uid);
                    tracing::info!(
                        pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()),
                        node = %node,
                        "scheduled"
                    );
                    self.event(
                        &pod,
                        EventType::Normal,
                        "Scheduled",
                        "Binding",
                        format!(
                            "Successfully assigned {}/{} to {node}",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ),
                    );
                }
                Err(failure) => {
                    let message = failure.to_string();
                    tracing::debug!(pod = %pod.name_any(), "unschedulable: {message}");
                    wake_at = earliest(wake_at, self.wait(&pod, generation));
                    self.report_failure(&pod, "Unschedulable", &message).await;
                }
            }
        }
        wake_at
    }

    /// Puts `pod` in the waiting room after a failed attempt made when the
    /// cluster was at `generation`; returns when it is due regardless.
    fn wait(&mut self, pod: &Pod, generation: u64) -> Instant {
        let now = Instant::now();
        let failures = self.waiting.get(&uid(pod)).map_or(0, |w| w.failures) + 1;
        let backoff = self
            .opts
            .initial_backoff
            .saturating_mul(1 << (failures - 1).min(16))
            .min(self.opts.max_backoff);
        let flush_at = now + self.opts.unschedulable_retry.max(backoff);
        self.waiting.insert(
            uid(pod),
            Waiting {
                failures,
                generation,
                spec: spec_signature(pod),
                retry_at: now + backoff,
                flush_at,
            },
        );
        flush_at
    }

    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), kube::Error> {
        let namespace = pod.namespace().unwrap_or_default();
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name_any()),
                namespace: Some(namespace.clone()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.into()),
                ..Default::default()
            },
        };
        Api::<Pod>::namespaced(self.client.clone(), &namespace)
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &pod.name_any(),
                &PostParams::default(),
                &binding,
            )
            .await
            .map(drop)
    }

    async fn report_failure(&self, pod: &Pod, reason: &str, message: &str) {
        self.set_condition(pod, reason, message).await;
        self.event(
            pod,
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message.to_string(),
        );
    }

    /// Sets `PodScheduled=False` with `reason` and `message`, unless the
    /// pod shows exactly that already.
    async fn set_condition(&self, pod: &Pod, reason: &str, message: &str) {
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        }) {
            return;
        }
        let since = current
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": since,
        }]}});
        let api = Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            tracing::debug!(pod = %pod.name_any(), "cannot set PodScheduled: {e}");
        }
    }

    /// Records an Event about `pod` without holding up scheduling.
    fn event(&self, pod: &Pod, type_: EventType, reason: &str, action: &str, note: String) {
        let recorder = self.recorder.clone();
        let reference = pod.object_ref(&());
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!("cannot record event: {e}");
            }
        });
    }
}
