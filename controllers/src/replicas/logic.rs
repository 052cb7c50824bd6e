//! What a replica manager decides, without IO: which pods to delete when
//! there are too many (the order upstream uses), the status it reports,
//! the pod it creates from its template, and the expectations that keep
//! it from acting twice on a cache that has not caught up yet.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// Orders pods so that the ones to delete first come first: unscheduled
/// before scheduled, Pending before Unknown before Running, not ready
/// before ready, ready for less time before longer, more restarts before
/// fewer, newer before older.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(pods::is_ready(a).cmp(&pods::is_ready(b)))
        // Ready more recently (a later timestamp) goes first.
        .then(pods::ready_since(b).cmp(&pods::ready_since(a)))
        .then(pods::restart_count(b).cmp(&pods::restart_count(a)))
        .then(created(b).cmp(&created(a)))
}

/// The `diff` pods to delete out of `active`.
pub fn pick_for_deletion(mut active: Vec<Pod>, diff: usize) -> Vec<Pod> {
    active.sort_by(deletion_order);
    active.truncate(diff);
    active
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaCounts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
}

pub fn counts(
    active: &[&Pod],
    template_labels: &std::collections::BTreeMap<String, String>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> ReplicaCounts {
    let n = |f: &dyn Fn(&Pod) -> bool| active.iter().filter(|p| f(p)).count() as i32;
    ReplicaCounts {
        replicas: active.len() as i32,
        fully_labeled: n(&|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        }),
        ready: n(&|p| pods::is_ready(p)),
        available: n(&|p| pods::is_available(p, min_ready_seconds, now)),
    }
}

/// A new pod for `owner` from its template: named after the owner,
/// controlled by it.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner: OwnerReference,
    namespace: &str,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name)),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Creations and deletions a manager has asked for and not yet seen in its
/// pod cache, per owner. While any are outstanding (and not timed out) the
/// manager does not act again, or it would create or delete twice.
#[derive(Default)]
pub struct Expectations {
    pending: HashMap<String, Pending>,
}

struct Pending {
    creates: BTreeSet<String>,
    deletes: BTreeSet<String>,
    since: Instant,
}

/// How long to trust an expectation before acting again regardless (an
/// event may have been lost).
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(5);

impl Expectations {
    /// Records the pods just created and asked to be deleted for `owner`.
    pub fn expect(&mut self, owner: &str, creates: Vec<String>, deletes: Vec<String>) {
        if creates.is_empty() && deletes.is_empty() {
            return;
        }
        self.pending.insert(
            owner.to_string(),
            Pending {
                creates: creates.into_iter().collect(),
                deletes: deletes.into_iter().collect(),
                since: Instant::now(),
            },
        );
    }

    /// Whether the cache has caught up with `owner`'s last actions, given
    /// the names of its live (not terminating) pods the cache holds.
    pub fn satisfied(&mut self, owner: &str, live: &BTreeSet<String>) -> bool {
        let Some(p) = self.pending.get_mut(owner) else {
            return true;
        };
        p.creates.retain(|n| !live.contains(n));
        p.deletes.retain(|n| live.contains(n));
        if (p.creates.is_empty() && p.deletes.is_empty()) || p.since.elapsed() > EXPECTATION_TIMEOUT
        {
            self.pending.remove(owner);
            return true;
        }
        false
    }

    pub fn forget(&mut self, owner: &str) {
        self.pending.remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::jiff::SignedDuration;

    #[test]
    fn unscheduled_pending_and_unready_pods_go_first() {
        let now = Timestamp::now();
        let old_ready = pod(
            "old-ready",
            "n1",
            "Running",
            Some(now - SignedDuration::from_secs(100)),
        );
        let new_ready = pod(
            "new-ready",
            "n1",
            "Running",
            Some(now - SignedDuration::from_secs(1)),
        );
        let unready = pod("unready", "n1", "Running", None);
        let pending = pod("pending", "n1", "Pending", None);
        let unscheduled = pod("unscheduled", "", "Pending", None);
        let all = vec![
            old_ready.clone(),
            unready.clone(),
            new_ready.clone(),
            unscheduled.clone(),
            pending.clone(),
        ];
        let names: Vec<String> = pick_for_deletion(all, 5)
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn expectations_hold_until_seen_or_timed_out() {
        let mut e = Expectations::default();
        e.expect("ns/rc", vec!["new".into()], vec!["old".into()]);
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        assert!(!e.satisfied("ns/rc", &set(&["old"])), "neither seen");
        assert!(
            !e.satisfied("ns/rc", &set(&["old", "new"])),
            "old still there"
        );
        assert!(e.satisfied("ns/rc", &set(&["new"])));
        assert!(e.satisfied("ns/other", &set(&[])));
    }

    #[test]
    fn status_counts_ready_and_available() {
        let now = Timestamp::now();
        let a = pod(
            "a",
            "n",
            "Running",
            Some(now - SignedDuration::from_secs(30)),
        );
        let b = pod("b", "n", "Running", Some(now));
        let c = pod("c", "n", "Pending", None);
        let labels = Default::default();
        let got = counts(&[&a, &b, &c], &labels, 10, now);
        assert_eq!(
            got,
            ReplicaCounts {
                replicas: 3,
                fully_labeled: 3,
                ready: 2,
                available: 1
            }
        );
    }
}
