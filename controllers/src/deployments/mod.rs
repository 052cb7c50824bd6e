//! The deployment controller: rolls a Deployment's pod template out
//! through ReplicaSets. Each template gets its own ReplicaSet (named by
//! its hash and labelled `pod-template-hash`); a rolling update scales
//! the new one up and the old ones down within maxSurge/maxUnavailable,
//! Recreate empties the old ones first; revisions are ReplicaSet
//! annotations (what `kubectl rollout history/undo` read), old
//! ReplicaSets beyond `revisionHistoryLimit` are deleted, and the status
//! carries the Available and Progressing conditions `kubectl rollout
//! status` waits on.

pub mod logic;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use serde_json::{json, Value};

use crate::events::Events;
use crate::pods;
use crate::selector::Selector;
use crate::Error;

struct Ctx {
    client: kube::Client,
    replica_sets: Store<ReplicaSet>,
    events: Events,
}

pub async fn run(client: kube::Client) {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let replica_sets: Api<ReplicaSet> = Api::all(client.clone());
    let controller = Controller::new(deployments, watcher::Config::default())
        .owns(replica_sets.clone(), watcher::Config::default());
    let (rs_store, rs_task) = crate::cache::store::<ReplicaSet>(&client);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        replica_sets: rs_store,
        events: Events::new(client, "deployment-controller"),
    });
    controller
        .run(
            reconcile,
            |_, e, _| {
                tracing::warn!("deployments: {e}");
                Action::requeue(Duration::from_secs(2))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
    rs_task.abort();
}

fn owner_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.name_any(),
        uid: d.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

async fn scale(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    replicas: i32,
    d: &Deployment,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {"annotations": {logic::DESIRED_REPLICAS: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).to_string()}},
        "spec": {"replicas": replicas},
    });
    api.patch(
        &rs.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let spec = d.spec.clone().unwrap_or_default();
    let Some(selector) = Selector::from_label_selector(&spec.selector).filter(|s| !s.is_empty())
    else {
        return Ok(Action::await_change());
    };
    let ns = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    // Owned ReplicaSets, adopting orphans the selector matches.
    let mut owned: Vec<ReplicaSet> = Vec::new();
    for rs in ctx.replica_sets.state() {
        if rs.namespace().as_deref() != Some(ns.as_str())
            || rs.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        match pods::controller_of(&rs.metadata) {
            Some(r) if r.uid == uid => owned.push((*rs).clone()),
            None if selector.matches(rs.metadata.labels.as_ref()) => {
                let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                refs.push(owner_ref(&d));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": rs.uid()}});
                api.patch(
                    &rs.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
                owned.push((*rs).clone());
            }
            _ => {}
        }
    }
    let replicas = spec.replicas.unwrap_or(1);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (surge, max_unavailable) = if recreate {
        (0, 0)
    } else {
        logic::surge_and_unavailable(&d, replicas)
    };
    let max_revision = owned.iter().map(logic::revision).max().unwrap_or(0);
    let mut created = None;
    // The revision the new ReplicaSet has (or gets now).
    let revision;
    let new = match logic::find_new(&d, &owned).cloned() {
        Some(rs) => {
            // An old template coming back (a rollback) is the newest revision again.
            let others_max = owned
                .iter()
                .filter(|o| o.uid() != rs.uid())
                .map(logic::revision)
                .max()
                .unwrap_or(0);
            if logic::revision(&rs) <= others_max {
                let mut annotations = logic::copied_annotations(&d);
                annotations.insert(logic::REVISION.into(), (max_revision + 1).to_string());
                let patch = json!({"metadata": {"annotations": annotations}});
                api.patch(
                    &rs.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
                revision = max_revision + 1;
            } else {
                revision = logic::revision(&rs);
            }
            rs
        }
        None if spec.paused == Some(true) => return write_status(&ctx, &d, &owned, None, "").await,
        None => {
            let rs = new_replica_set(&d, &owned, max_revision + 1, replicas, surge, recreate);
            let rs = match api.create(&PostParams::default(), &rs).await {
                Ok(rs) => rs,
                // The cache has not seen it yet: look again shortly.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Ok(Action::requeue(Duration::from_millis(200)))
                }
                Err(e) => return Err(e.into()),
            };
            ctx.events
                .normal(
                    d.as_ref(),
                    "ScalingReplicaSet",
                    &format!(
                        "Scaled up replica set {} from 0 to {}",
                        rs.name_any(),
                        replicas_of(&rs)
                    ),
                )
                .await;
            created = Some(rs.name_any());
            revision = max_revision + 1;
            owned.push(rs.clone());
            rs
        }
    };
    let current_revision = d
        .annotations()
        .get(logic::REVISION)
        .cloned()
        .unwrap_or_default();
    if current_revision != revision.to_string() {
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {logic::REVISION: revision.to_string()}}});
        deployments
            .patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    let old: Vec<ReplicaSet> = owned
        .iter()
        .filter(|rs| rs.uid() != new.uid())
        .cloned()
        .collect();
    if spec.paused != Some(true) {
        if recreate {
            let old_running = old.iter().any(|rs| {
                replicas_of(rs) > 0 || rs.status.as_ref().is_some_and(|s| s.replicas > 0)
            });
            for rs in old.iter().filter(|rs| replicas_of(rs) > 0) {
                scale(&api, rs, 0, &d).await?;
                event_scaled(&ctx, &d, rs, 0).await;
            }
            if !old_running && replicas_of(&new) != replicas {
                scale(&api, &new, replicas, &d).await?;
                event_scaled(&ctx, &d, &new, replicas).await;
            }
        } else {
            let up = logic::rolling_scale_up(replicas, surge, &new, &owned);
            if up != replicas_of(&new) {
                scale(&api, &new, up, &d).await?;
                event_scaled(&ctx, &d, &new, up).await;
            }
            for (name, target) in logic::rolling_scale_down(replicas, max_unavailable, &new, &old) {
                if let Some(rs) = old.iter().find(|rs| rs.name_any() == name) {
                    scale(&api, rs, target, &d).await?;
                    event_scaled(&ctx, &d, rs, target).await;
                }
            }
        }
        clean_up_history(&api, &d, &old).await?;
    }
    write_status(
        &ctx,
        &d,
        &owned,
        Some(&new),
        created.as_deref().unwrap_or(""),
    )
    .await
}

async fn event_scaled(ctx: &Ctx, d: &Deployment, rs: &ReplicaSet, to: i32) {
    let from = replicas_of(rs);
    let verb = if to > from { "up" } else { "down" };
    ctx.events
        .normal(
            d,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {from} to {to}",
                rs.name_any()
            ),
        )
        .await;
}

fn new_replica_set(
    d: &Deployment,
    owned: &[ReplicaSet],
    revision: i64,
    replicas: i32,
    surge: i32,
    recreate: bool,
) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let collision_count = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = logic::template_hash(&spec.template, collision_count);
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(logic::HASH_LABEL.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(logic::HASH_LABEL.into(), hash.clone());
    let mut annotations = logic::copied_annotations(d);
    annotations.insert(logic::REVISION.into(), revision.to_string());
    annotations.insert(logic::DESIRED_REPLICAS.into(), replicas.to_string());
    annotations.insert(logic::MAX_REPLICAS.into(), (replicas + surge).to_string());
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.namespace(),
            labels: meta.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let old_running = owned.iter().any(|o| replicas_of(o) > 0);
    let first = if recreate {
        if old_running {
            0
        } else {
            replicas
        }
    } else {
        let mut all = owned.to_vec();
        all.push(rs.clone());
        logic::rolling_scale_up(replicas, surge, &rs, &all)
    };
    rs.spec.as_mut().expect("set above").replicas = Some(first);
    rs
}

/// Deletes empty old ReplicaSets beyond the history limit, oldest first.
async fn clean_up_history(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    old: &[ReplicaSet],
) -> Result<(), Error> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| replicas_of(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0))
        .collect();
    if empty.len() <= limit {
        return Ok(());
    }
    empty.sort_by_key(|rs| logic::revision(rs));
    for rs in &empty[..empty.len() - limit] {
        match api
            .delete(&rs.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn condition(
    existing: &[Value],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    progressed: bool,
    now: &str,
) -> Value {
    let old = existing.iter().find(|c| c["type"] == type_);
    let transition = match old {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let update = match old {
        Some(c) if c["status"] == status && c["reason"] == reason && !progressed => {
            c["lastUpdateTime"].clone()
        }
        _ => json!(now),
    };
    json!({"type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "lastUpdateTime": update})
}

async fn write_status(
    ctx: &Ctx,
    d: &Deployment,
    owned: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    created: &str,
) -> Result<Action, Error> {
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| owned.iter().map(f).sum::<i32>();
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let total = sum(&|rs| status_of(rs).replicas);
    let ready = sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0));
    let available = sum(&|rs| status_of(rs).available_replicas.unwrap_or(0));
    let updated = new.map(|rs| status_of(rs).replicas).unwrap_or(0);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let max_unavailable = if recreate {
        0
    } else {
        logic::surge_and_unavailable(d, replicas).1
    };
    let previous =
        serde_json::to_value(d.status.clone().unwrap_or_default()).unwrap_or(Value::Null);
    let existing: Vec<Value> = previous["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let progressed = previous["updatedReplicas"].as_i64().unwrap_or(0) != i64::from(updated)
        || previous["availableReplicas"].as_i64().unwrap_or(0) != i64::from(available)
        || previous["readyReplicas"].as_i64().unwrap_or(0) != i64::from(ready)
        || !created.is_empty();
    let now = Timestamp::now();
    let now_s = now.to_string();
    let available_cond = if available >= replicas - max_unavailable {
        condition(
            &existing,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            false,
            &now_s,
        )
    } else {
        condition(
            &existing,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            false,
            &now_s,
        )
    };
    let old: Vec<ReplicaSet> = owned
        .iter()
        .filter(|rs| new.is_none_or(|n| rs.uid() != n.uid()))
        .cloned()
        .collect();
    let new_name = new.map(|rs| rs.name_any()).unwrap_or_default();
    let done = new.is_some_and(|n| logic::complete(replicas, n, &old));
    let deadline = spec.progress_deadline_seconds.unwrap_or(600);
    let previous_progress = existing.iter().find(|c| c["type"] == "Progressing");
    let last_progress = previous_progress
        .and_then(|c| c["lastUpdateTime"].as_str())
        .and_then(|t| t.parse::<Timestamp>().ok());
    let stalled = !done
        && !progressed
        && last_progress.is_some_and(|t| t + SignedDuration::from_secs(i64::from(deadline)) < now);
    let progressing = if spec.paused == Some(true) {
        condition(
            &existing,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            false,
            &now_s,
        )
    } else if done {
        condition(
            &existing,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            progressed,
            &now_s,
        )
    } else if stalled
        || previous_progress
            .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded" && !progressed)
    {
        condition(
            &existing,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            false,
            &now_s,
        )
    } else if !created.is_empty() {
        condition(
            &existing,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{created}\""),
            true,
            &now_s,
        )
    } else {
        condition(
            &existing,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{new_name}\" is progressing."),
            progressed,
            &now_s,
        )
    };
    let status = json!({
        "observedGeneration": d.metadata.generation.unwrap_or(0),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (total.max(replicas) - available).max(0),
        "conditions": [available_cond, progressing],
    });
    // Times aside, is anything different? Avoid writes that change nothing.
    let strip = |v: &Value| {
        let mut v = v.clone();
        for c in v["conditions"].as_array_mut().into_iter().flatten() {
            c.as_object_mut().map(|o| {
                o.remove("lastUpdateTime");
                o.remove("lastTransitionTime")
            });
        }
        for k in ["collisionCount", "terminatingReplicas"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        for k in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
        ] {
            if v[k].is_null() {
                v[k] = json!(0);
            }
        }
        v
    };
    if strip(&status) != strip(&previous) || progressed {
        let deployments: Api<Deployment> =
            Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
        deployments
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
    }
    if done || spec.paused == Some(true) {
        return Ok(Action::requeue(Duration::from_secs(300)));
    }
    // Look again for the progress deadline even if nothing changes.
    Ok(Action::requeue(Duration::from_secs(
        deadline.clamp(1, 10) as u64
    )))
}
