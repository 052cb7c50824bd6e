//! The disruption controller: computes each PodDisruptionBudget's status
//! (expected and healthy pods, the healthy count it requires, and how many
//! disruptions that allows), which the API server's eviction honours and
//! `kubectl drain` relies on.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

use crate::pods;
use crate::selector::Selector;
use crate::Error;

/// (desiredHealthy, disruptionsAllowed) for `expected` pods of which
/// `healthy` are ready.
pub fn budget(pdb: &PodDisruptionBudget, expected: i32, healthy: i32) -> (i32, i32) {
    let spec = pdb.spec.clone().unwrap_or_default();
    let of = |v: &IntOrString| match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            (pct * f64::from(expected) / 100.0).ceil() as i32
        }
    };
    let desired = match (&spec.min_available, &spec.max_unavailable) {
        (Some(min), _) => of(min),
        (None, Some(max)) => (expected - of(max)).max(0),
        // Neither: no disruption may leave fewer than all expected pods.
        (None, None) => expected,
    };
    (desired, (healthy - desired).max(0))
}

pub async fn run(client: kube::Client) {
    let (pod_store, writer) = reflector::store();
    let pod_events = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let controller = Controller::new(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    );
    let budgets = controller.store();
    let ctx = Arc::new((client, pod_store));
    controller
        .watches_stream(pod_events, move |pod: Pod| {
            let ns = pod.namespace();
            budgets
                .state()
                .iter()
                .filter(|b| b.namespace() == ns)
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(
            reconcile,
            |_, e, _| {
                tracing::warn!("disruption budgets: {e}");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(
    pdb: Arc<PodDisruptionBudget>,
    ctx: Arc<(kube::Client, Store<Pod>)>,
) -> Result<Action, Error> {
    let (client, pods) = ctx.as_ref();
    let ns = pdb.namespace().unwrap_or_default();
    let selector = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(Selector::from_label_selector)
        .unwrap_or_default();
    let all = pods.state();
    let selected: Vec<&Pod> = all
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pods::is_active(p))
        .filter(|p| selector.matches(p.metadata.labels.as_ref()))
        .map(|p| p.as_ref())
        .collect();
    let expected = selected.len() as i32;
    let healthy = selected.iter().filter(|p| pods::is_ready(p)).count() as i32;
    let (desired, allowed) = budget(&pdb, expected, healthy);
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let previous = pdb.status.clone().unwrap_or_default();
    let changed = previous.current_healthy != healthy
        || previous.desired_healthy != desired
        || previous.disruptions_allowed != allowed
        || previous.expected_pods != expected
        || previous.observed_generation != pdb.metadata.generation
        || !previous
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "DisruptionAllowed" && c.status == status);
    if changed {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"status": {
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "observedGeneration": pdb.metadata.generation.unwrap_or(0),
            "conditions": [{"type": "DisruptionAllowed", "status": status, "reason": reason,
                "message": "", "lastTransitionTime": now,
                "observedGeneration": pdb.metadata.generation.unwrap_or(0)}],
        }});
        Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
            .patch_status(
                &pdb.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn budgets_from_min_available_or_max_unavailable() {
        assert_eq!(budget(&pdb(Some(IntOrString::Int(2)), None), 3, 3), (2, 1));
        assert_eq!(budget(&pdb(Some(IntOrString::Int(2)), None), 3, 2), (2, 0));
        assert_eq!(
            budget(&pdb(Some(IntOrString::String("50%".into())), None), 3, 3),
            (2, 1)
        );
        assert_eq!(budget(&pdb(None, Some(IntOrString::Int(1))), 4, 4), (3, 1));
        assert_eq!(budget(&pdb(None, None), 2, 2), (2, 0));
    }
}
