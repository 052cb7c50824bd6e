//! What the scheduler tells the API about its decisions, besides the
//! binding: `Scheduled` and `FailedScheduling` Events and the pod's
//! `PodScheduled=False` condition.
//!
//! `Scheduled` events are one-offs (one per pod), so they are written
//! directly by a background writer, a few at a time, from a bounded
//! queue: when the queue is full (the API server is slower than the
//! scheduler) further events are dropped, as upstream's event broadcaster
//! drops them. `FailedScheduling` events go through kube-runtime's
//! `Recorder`, which turns repeated failures of a pod into one event with
//! a series.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as ApiEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter as EventSource};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// `Scheduled` events waiting to be written, at most.
const QUEUED_EVENTS: usize = 1000;
/// `Scheduled` events written at once.
const EVENT_WRITERS: usize = 4;

pub struct Reporter {
    client: Client,
    name: String,
    recorder: Recorder,
    scheduled: mpsc::Sender<ApiEvent>,
    writer: JoinHandle<()>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl Reporter {
    /// Reports as `scheduler_name`.
    pub fn new(client: Client, scheduler_name: &str) -> Reporter {
        let (scheduled, queue) = mpsc::channel::<ApiEvent>(QUEUED_EVENTS);
        let writer_client = client.clone();
        let writer = tokio::spawn(async move {
            let events = futures::stream::unfold(queue, |mut queue| async move {
                queue.recv().await.map(|event| (event, queue))
            });
            events
                .for_each_concurrent(EVENT_WRITERS, |event| {
                    let client = writer_client.clone();
                    async move {
                        let namespace = event.metadata.namespace.clone().unwrap_or_default();
                        let api = Api::<ApiEvent>::namespaced(client, &namespace);
                        if let Err(e) = api.create(&PostParams::default(), &event).await {
                            tracing::debug!("cannot record event: {e}");
                        }
                    }
                })
                .await
        });
        Reporter {
            recorder: Recorder::new(
                client.clone(),
                EventSource {
                    controller: scheduler_name.to_string(),
                    instance: None,
                },
            ),
            client,
            name: scheduler_name.to_string(),
            scheduled,
            writer,
        }
    }

    /// The `Scheduled` event for `pod`, bound to `node`.
    pub fn scheduled(&self, pod: &Pod, node: &str) {
        let now = Timestamp::now();
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let event = ApiEvent {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            action: Some("Binding".into()),
            reason: Some("Scheduled".into()),
            note: Some(format!(
                "Successfully assigned {namespace}/{name} to {node}"
            )),
            event_time: Some(MicroTime(now)),
            regarding: Some(pod.object_ref(&())),
            reporting_controller: Some(self.name.clone()),
            reporting_instance: Some(self.name.clone()),
            type_: Some("Normal".into()),
            ..Default::default()
        };
        if self.scheduled.try_send(event).is_err() {
            tracing::debug!(pod = %name, "event queue full: Scheduled event dropped");
        }
    }

    /// `PodScheduled=False` with `reason` and `message`, and a
    /// `FailedScheduling` Warning Event.
    pub async fn failed(&self, pod: &Pod, reason: &str, message: &str) {
        self.set_condition(pod, reason, message).await;
        let recorder = self.recorder.clone();
        let reference = pod.object_ref(&());
        let event = Event {
            type_: EventType::Warning,
            reason: "FailedScheduling".into(),
            note: Some(message.to_string()),
            action: "Scheduling".into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!("cannot record event: {e}");
            }
        });
    }

    /// Sets `PodScheduled=False` with `reason` and `message`, unless the
    /// pod shows exactly that already.
    pub async fn set_condition(&self, pod: &Pod, reason: &str, message: &str) {
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
            .unwrap_or_else(|| Time(Timestamp::now()));
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
}
