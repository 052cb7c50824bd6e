//! The pending pods this scheduler is responsible for, in upstream's
//! queue order: higher priority first, then older, then by namespace,
//! name and UID.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::cache::uid;

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A pod's place in the queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    priority: Reverse<i32>,
    created: Option<Timestamp>,
    namespace: String,
    name: String,
    uid: String,
}

impl QueueKey {
    fn of(pod: &Pod) -> QueueKey {
        QueueKey {
            priority: Reverse(priority(pod)),
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: uid(pod).to_string(),
        }
    }
}

/// The pending pods, by UID and in queue order.
#[derive(Default)]
pub struct Queue {
    order: BTreeMap<QueueKey, Arc<Pod>>,
    keys: HashMap<String, QueueKey>,
}

impl Queue {
    pub fn insert(&mut self, pod: Arc<Pod>) {
        let key = QueueKey::of(&pod);
        if let Some(old) = self.keys.insert(key.uid.clone(), key.clone()) {
            self.order.remove(&old);
        }
        self.order.insert(key, pod);
    }

    pub fn remove(&mut self, pod_uid: &str) {
        if let Some(key) = self.keys.remove(pod_uid) {
            self.order.remove(&key);
        }
    }

    pub fn get(&self, pod_uid: &str) -> Option<&Arc<Pod>> {
        self.keys.get(pod_uid).and_then(|k| self.order.get(k))
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.keys.clear();
    }
}

impl Queue {
    /// The queued pods, in order.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.order.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::pod_requesting;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn queued(name: &str, priority: i32, created: i64) -> Arc<Pod> {
        let mut p = pod_requesting(name, &[]);
        p.spec.as_mut().unwrap().priority = Some(priority);
        p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        Arc::new(p)
    }

    fn names(q: &Queue) -> Vec<String> {
        q.pods()
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn priority_then_age_then_name() {
        let mut q = Queue::default();
        q.insert(queued("young", 0, 20));
        q.insert(queued("b-old", 0, 10));
        q.insert(queued("a-old", 0, 10));
        q.insert(queued("urgent", 100, 30));
        assert_eq!(names(&q), ["urgent", "a-old", "b-old", "young"]);
        // Updated in place: a new priority moves it, nothing is doubled.
        q.insert(queued("young", 1000, 20));
        assert_eq!(names(&q), ["young", "urgent", "a-old", "b-old"]);
        q.remove("uid-urgent");
        assert!(q.get("uid-urgent").is_none());
        assert_eq!(names(&q), ["young", "a-old", "b-old"]);
        q.clear();
        assert!(q.pods().is_empty());
    }
}
