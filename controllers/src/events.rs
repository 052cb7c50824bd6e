//! Events as the upstream controllers record them (events.k8s.io/v1,
//! which `kubectl describe` and `kubectl get events` show). Recording is
//! best effort: a failed Event never fails the controller's work.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;

#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Events {
        Events {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: controller.into(),
                    instance: None,
                },
            ),
        }
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::debug!("recording event {reason}: {e}");
        }
    }

    pub async fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: &str) {
        self.publish(obj, EventType::Normal, reason, note).await
    }

    pub async fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: &str) {
        self.publish(obj, EventType::Warning, reason, note).await
    }
}
