//! The IO half: watches, the loop deciding the queued pods, binding (what
//! is reported about it is `reporting`'s).
//!
//! Three watches (Nodes, Pods, Namespaces) send their events to the one
//! loop, which owns everything: the cluster view (`cache::Cluster`, updated
//! one event at a time), the queue of pending pods (priority, then age)
//! and the waiting room of unschedulable ones. After a (re)list the view
//! is replaced by what was listed, so a restarted scheduler (or a new
//! leader) simply finds whatever is pending.
//!
//! Each pass decides the due pods one at a time, applying the events that
//! arrived meanwhile before each decision. A placed pod is assumed onto
//! its node at once and its `pods/binding` request runs in the background
//! (a bounded number at a time); a failed binding drops the assumption and
//! is reported. So decisions never wait for the API server, and two pods
//! never both get the last free slot while the watch lags behind.
//!
//! A pod that fits nowhere gets `PodScheduled=False/Unschedulable` with the
//! message and a `FailedScheduling` Warning Event, and waits: it is tried
//! again once something that could make room happened (a node added or
//! changed in a way that matters, a pod on a node deleted or finished, the
//! pod's own spec changed; for a pod with required pod affinity or
//! DoNotSchedule spread constraints also a pod placed or relabelled), but
//! not before its back-off (1 s doubling to 10 s by default) has passed,
//! and in any case after `unschedulable_retry`. A status update of a
//! pending pod (such as the condition written here) is no such change, so
//! nothing loops.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Binding, Namespace, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::algorithm;
use crate::cache::{is_terminal, node_name, uid, Cluster};
use crate::queue::Queue;
use crate::reporting::Reporter;
use crate::{topology_spread, SchedulerOptions, DEFAULT_SCHEDULER_NAME};

const GATED_MESSAGE: &str = "Scheduling is blocked due to non-empty scheduling gates";

/// Binding requests in flight at once.
const BINDS_IN_FLIGHT: usize = 16;

/// Runs the scheduler until the future is dropped; it does not end on its
/// own (the watches retry with back-off). Needs to list and watch nodes,
/// pods and namespaces, create `pods/binding` and events, and patch
/// `pods/status`.
pub async fn run(client: Client, opts: SchedulerOptions) {
    let (changes_tx, changes) = mpsc::unbounded_channel();
    let _watches = AbortOnDrop(vec![
        tokio::spawn(forward(
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
            changes_tx.clone(),
            Change::Node,
            "node",
        )),
        tokio::spawn(forward(
            watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
            changes_tx.clone(),
            Change::Pod,
            "pod",
        )),
        tokio::spawn(forward(
            watcher(
                Api::<Namespace>::all(client.clone()),
                watcher::Config::default(),
            ),
            changes_tx,
            Change::Namespace,
            "namespace",
        )),
    ]);
    let reporter = Reporter::new(client.clone(), &opts.scheduler_name);
    let (bound_tx, bound) = mpsc::unbounded_channel();
    let mut scheduler = Scheduler {
        client,
        opts,
        reporter,
        changes,
        bound_tx,
        bound,
        bind_slots: Arc::new(Semaphore::new(BINDS_IN_FLIGHT)),
        cluster: Cluster::default(),
        queue: Queue::default(),
        waiting: HashMap::new(),
        relists: Relists::default(),
        listed: [false; 3],
        generation: 0,
        placements: 0,
        turn: 0,
        next_node: 0,
        caught_up: false,
    };
    if !scheduler.wait_for_lists().await {
        return;
    }
    tracing::info!(scheduler = %scheduler.opts.scheduler_name, "scheduler started");
    scheduler.run().await
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

/// A watch event for the loop.
enum Change {
    Node(Box<watcher::Event<Node>>),
    Pod(Box<watcher::Event<Pod>>),
    Namespace(Box<watcher::Event<Namespace>>),
}

/// Sends a watch's events to the loop, retrying with back-off on errors.
async fn forward<K, S>(
    events: S,
    to: UnboundedSender<Change>,
    wrap: fn(Box<watcher::Event<K>>) -> Change,
    what: &'static str,
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut events = events.default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if to.send(wrap(Box::new(event))).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!("scheduler: {what} watch: {e}"),
        }
    }
}

/// Objects received since a watch's `Init`, applied at its `InitDone`.
#[derive(Default)]
struct Relists {
    nodes: Option<Vec<Arc<Node>>>,
    pods: Option<Vec<Arc<Pod>>>,
    namespaces: Option<Vec<Namespace>>,
}

/// The result of a binding request made in the background.
struct Bound {
    pod: Arc<Pod>,
    node: String,
    /// The cluster's generation when the pod was placed.
    generation: u64,
    result: Result<(), kube::Error>,
}

/// An unschedulable pod waiting to be tried again.
struct Waiting {
    failures: u32,
    /// `Scheduler::generation` when it was last tried.
    generation: u64,
    /// `Scheduler::placements` then, if placements can help it.
    placements: Option<u64>,
    /// The pod as tried; a changed spec may fit now.
    tried: Arc<Pod>,
    /// Earliest retry once something changed.
    retry_at: Instant,
    /// Retry even if nothing changed.
    flush_at: Instant,
}

struct Scheduler {
    client: Client,
    opts: SchedulerOptions,
    reporter: Reporter,
    changes: UnboundedReceiver<Change>,
    bound_tx: UnboundedSender<Bound>,
    bound: UnboundedReceiver<Bound>,
    bind_slots: Arc<Semaphore>,
    cluster: Cluster,
    queue: Queue,
    waiting: HashMap<String, Waiting>,
    relists: Relists,
    /// Whether nodes, pods and namespaces have been listed once.
    listed: [bool; 3],
    /// Bumped on every change that could make room for a waiting pod.
    generation: u64,
    /// Bumped whenever a pod is placed somewhere or relabelled.
    placements: u64,
    /// Tie-break counter for `algorithm::schedule_from`.
    turn: usize,
    /// Where the next decision starts filtering.
    next_node: usize,
    /// Whether events were applied during the current pass.
    caught_up: bool,
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Whether pods placed elsewhere can make `pod` fit: required pod
/// affinity, or DoNotSchedule spreading.
fn placements_can_help(pod: &Pod) -> bool {
    let affinity = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty());
    affinity || !topology_spread::constraints(pod, topology_spread::DO_NOT_SCHEDULE).is_empty()
}

fn same_spec(a: &Arc<Pod>, b: &Arc<Pod>) -> bool {
    Arc::ptr_eq(a, b) || a.spec == b.spec
}

impl Scheduler {
    /// Applies events until every watch has listed once; false if the
    /// watches ended.
    async fn wait_for_lists(&mut self) -> bool {
        while !self.listed.iter().all(|l| *l) {
            match self.changes.recv().await {
                Some(change) => self.apply(change),
                None => return false,
            }
        }
        true
    }

    async fn run(mut self) {
        loop {
            let wake_at = self.pass().await;
            if self.caught_up {
                continue;
            }
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(change) = self.changes.recv() => self.apply(change),
                Some(bound) = self.bound.recv() => self.finish_binding(bound).await,
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

    /// Applies the events and binding results that arrived, without
    /// waiting for more.
    async fn catch_up(&mut self) {
        while let Ok(change) = self.changes.try_recv() {
            self.apply(change);
            self.caught_up = true;
        }
        while let Ok(bound) = self.bound.try_recv() {
            self.finish_binding(bound).await;
            self.caught_up = true;
        }
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Node(event) => self.apply_node(*event),
            Change::Pod(event) => self.apply_pod(*event),
            Change::Namespace(event) => self.apply_namespace(*event),
        }
    }

    fn apply_node(&mut self, event: watcher::Event<Node>) {
        match event {
            watcher::Event::Apply(node) => {
                if self.cluster.set_node(Arc::new(node)) {
                    self.generation += 1;
                }
            }
            watcher::Event::Delete(node) => {
                self.cluster.remove_node(&node.name_any());
                self.generation += 1;
            }
            watcher::Event::Init => self.relists.nodes = Some(Vec::new()),
            watcher::Event::InitApply(node) => {
                self.relists
                    .nodes
                    .get_or_insert_with(Vec::new)
                    .push(Arc::new(node));
            }
            watcher::Event::InitDone => {
                let nodes = self.relists.nodes.take().unwrap_or_default();
                self.cluster.replace_nodes(nodes);
                self.listed[0] = true;
                self.generation += 1;
            }
        }
    }

    fn track_pending(&mut self, pod: &Arc<Pod>) {
        if self.is_pending(pod) {
            self.queue.insert(pod.clone());
        } else {
            self.queue.remove(uid(pod));
        }
    }

    fn apply_pod(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Apply(pod) => {
                let pod = Arc::new(pod);
                self.track_pending(&pod);
                let effect = self.cluster.set_pod(pod);
                if effect.freed {
                    self.generation += 1;
                }
                if effect.placed {
                    self.placements += 1;
                }
            }
            watcher::Event::Delete(pod) => {
                self.queue.remove(uid(&pod));
                if self.cluster.remove_pod(&pod).freed {
                    self.generation += 1;
                }
            }
            watcher::Event::Init => self.relists.pods = Some(Vec::new()),
            watcher::Event::InitApply(pod) => {
                self.relists
                    .pods
                    .get_or_insert_with(Vec::new)
                    .push(Arc::new(pod));
            }
            watcher::Event::InitDone => {
                let pods = self.relists.pods.take().unwrap_or_default();
                self.queue.clear();
                for pod in &pods {
                    self.track_pending(pod);
                }
                self.cluster.replace_pods(&pods);
                self.listed[1] = true;
                self.generation += 1;
                self.placements += 1;
            }
        }
    }

    fn apply_namespace(&mut self, event: watcher::Event<Namespace>) {
        let namespaces = &mut self.cluster.namespaces;
        match event {
            watcher::Event::Apply(ns) => {
                namespaces.set(&ns.name_any(), ns.metadata.labels.unwrap_or_default());
                // A namespace's labels decide which pods affinity terms
                // with a namespace selector see.
                self.placements += 1;
            }
            watcher::Event::Delete(ns) => namespaces.remove(&ns.name_any()),
            watcher::Event::Init => self.relists.namespaces = Some(Vec::new()),
            watcher::Event::InitApply(ns) => {
                self.relists
                    .namespaces
                    .get_or_insert_with(Vec::new)
                    .push(ns);
            }
            watcher::Event::InitDone => {
                namespaces.clear();
                for ns in self.relists.namespaces.take().unwrap_or_default() {
                    namespaces.set(&ns.name_any(), ns.metadata.labels.unwrap_or_default());
                }
                self.listed[2] = true;
                self.placements += 1;
            }
        }
    }

    /// Whether a waiting pod is due now; if not, when it will be.
    fn due(&self, pod: &Arc<Pod>) -> Result<(), Instant> {
        let Some(w) = self.waiting.get(uid(pod)) else {
            return Ok(());
        };
        let changed = self.generation > w.generation
            || w.placements.is_some_and(|p| self.placements > p)
            || !same_spec(&w.tried, pod);
        let due = if changed { w.retry_at } else { w.flush_at };
        if Instant::now() < due {
            Err(due)
        } else {
            Ok(())
        }
    }

    /// Tries every pending pod that is due; returns when the next waiting
    /// one becomes due without any change.
    async fn pass(&mut self) -> Option<Instant> {
        self.catch_up().await;
        let live: Vec<Arc<Pod>> = self.queue.pods();
        self.waiting.retain(|uid, _| self.queue.get(uid).is_some());
        // What arrives from here on may concern pods this pass has passed
        // already (or new ones): if anything does, another pass follows.
        self.caught_up = false;

        let mut wake_at = None;
        for pod in live {
            self.catch_up().await;
            let pod_uid = uid(&pod);
            // Bound, deleted or replaced meanwhile, or already placed.
            let Some(pod) = self.queue.get(pod_uid).cloned() else {
                continue;
            };
            if self.cluster.is_assumed(pod_uid) {
                continue;
            }
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_some_and(|g| !g.is_empty())
            {
                self.reporter
                    .set_condition(&pod, "SchedulingGated", GATED_MESSAGE)
                    .await;
                continue;
            }
            if let Err(due) = self.due(&pod) {
                wake_at = earliest(wake_at, due);
                continue;
            }
            let generation = self.generation;
            let placed =
                algorithm::schedule_from(&pod, &self.cluster, &mut self.turn, &mut self.next_node);
            match placed {
                Ok(node) => {
                    self.cluster.assume(&pod, &node);
                    self.placements += 1;
                    self.start_binding(pod, node, generation).await;
                }
                Err(failure) => {
                    let message = failure.to_string();
                    tracing::debug!(pod = %pod.name_any(), "unschedulable: {message}");
                    wake_at = earliest(wake_at, self.wait(&pod, generation));
                    self.reporter.failed(&pod, "Unschedulable", &message).await;
                }
            }
        }
        wake_at
    }

    /// Sends the binding in the background; waits only for a free slot.
    async fn start_binding(&mut self, pod: Arc<Pod>, node: String, generation: u64) {
        let slot = self
            .bind_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let client = self.client.clone();
        let done = self.bound_tx.clone();
        tokio::spawn(async move {
            let result = bind(client, &pod, &node).await;
            drop(slot);
            let _ = done.send(Bound {
                pod,
                node,
                generation,
                result,
            });
        });
    }

    async fn finish_binding(&mut self, bound: Bound) {
        let Bound {
            pod,
            node,
            generation,
            result,
        } = bound;
        let pod_uid = uid(&pod).to_string();
        match result {
            Ok(()) => {
                self.waiting.remove(&pod_uid);
                let namespace = pod.namespace().unwrap_or_default();
                tracing::info!(pod = %format!("{namespace}/{}", pod.name_any()), node = %node, "scheduled");
                self.reporter.scheduled(&pod, &node);
            }
            Err(e) => {
                self.cluster.forget(&pod_uid);
                let gone = matches!(&e, kube::Error::Api(s) if s.is_conflict() || s.is_not_found());
                if gone {
                    // Bound by someone else or deleted: the watch will
                    // show it.
                    tracing::debug!(pod = %pod.name_any(), "binding refused: {e}");
                    return;
                }
                tracing::warn!(pod = %pod.name_any(), node = %node, "binding failed: {e}");
                let message = format!("running Bind plugin \"DefaultBinder\": {e}");
                self.wait(&pod, generation);
                self.reporter.failed(&pod, "SchedulerError", &message).await;
            }
        }
    }

    /// Puts `pod` in the waiting room after a failed attempt made when the
    /// cluster was at `generation`; returns when it is due regardless.
    fn wait(&mut self, pod: &Arc<Pod>, generation: u64) -> Instant {
        let now = Instant::now();
        let failures = self.waiting.get(uid(pod)).map_or(0, |w| w.failures) + 1;
        let backoff = self
            .opts
            .initial_backoff
            .saturating_mul(1 << (failures - 1).min(16))
            .min(self.opts.max_backoff);
        let flush_at = now + self.opts.unschedulable_retry.max(backoff);
        self.waiting.insert(
            uid(pod).to_string(),
            Waiting {
                failures,
                generation,
                placements: placements_can_help(pod).then_some(self.placements),
                tried: pod.clone(),
                retry_at: now + backoff,
                flush_at,
            },
        );
        flush_at
    }
}

async fn bind(client: Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
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
    Api::<Pod>::namespaced(client, &namespace)
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &pod.name_any(),
            &PostParams::default(),
            &binding,
        )
        .await
        .map(drop)
}
