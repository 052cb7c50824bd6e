//! The DaemonSet controller: one pod per eligible node (pinned to it by
//! node affinity, placed by the scheduler), none elsewhere, failed pods
//! replaced, and a rolling update that replaces pods of an older template
//! at most `maxUnavailable` nodes at a time. Templates are recorded as
//! ControllerRevisions (what `kubectl rollout history ds` lists).

pub mod logic;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;

use crate::deployments::logic::{scaled, template_hash};
use crate::events::Events;
use crate::pods;
use crate::replicas::logic::Expectations;
use crate::Error;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    expectations: Mutex<Expectations>,
    events: Events,
}

pub async fn run(client: kube::Client) {
    let (pod_store, pod_task) = crate::cache::store::<Pod>(&client);
    let (node_store, node_task) = crate::cache::store::<Node>(&client);
    let controller = Controller::new(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let sets = controller.store();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods: pod_store,
        nodes: node_store,
        expectations: Mutex::new(Expectations::default()),
        events: Events::new(client.clone(), "daemonset-controller"),
    });
    controller
        // Any node change may change where daemons belong.
        .watches(
            Api::<Node>::all(client),
            watcher::Config::default(),
            move |_| {
                sets.state()
                    .iter()
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            reconcile,
            |_, e, _| {
                tracing::warn!("daemonsets: {e}");
                Action::requeue(Duration::from_secs(2))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
    pod_task.abort();
    node_task.abort();
}

fn owner_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: ds.name_any(),
        uid: ds.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn hash_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(logic::HASH_LABEL)
        .map(String::as_str)
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = ds.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", ds.name_any());
    let uid = ds.uid().unwrap_or_default();
    let spec = ds.spec.clone().unwrap_or_default();
    let hash = template_hash(
        &spec.template,
        ds.status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0),
    );
    record_revision(&ctx, &ds, &hash).await;
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let all_pods = ctx.pods.state();
    let owned: Vec<&Pod> = all_pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| pods::controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .map(|p| p.as_ref())
        .collect();
    let live: BTreeSet<String> = owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    let caught_up = ctx
        .expectations
        .lock()
        .expect("not poisoned")
        .satisfied(&key, &live);
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        if let Some(n) = logic::node_of(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let nodes = ctx.nodes.state();
    let eligible: BTreeSet<String> = nodes
        .iter()
        .filter(|n| logic::should_run(&ds, n))
        .map(|n| n.name_any())
        .collect();
    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    if caught_up {
        for node in &eligible {
            let here = by_node.get(node).cloned().unwrap_or_default();
            let running: Vec<&Pod> = here
                .iter()
                .copied()
                .filter(|p| pods::is_active(p))
                .collect();
            // Failed daemons are replaced; extra ones on a node go.
            for p in here.iter().filter(|p| !pods::is_active(p)) {
                deleted.push(p.name_any());
            }
            for p in running.iter().skip(1) {
                deleted.push(p.name_any());
            }
            if running.is_empty() {
                let mut template = logic::pinned_template(&spec.template, node);
                let meta = template.metadata.get_or_insert_with(Default::default);
                meta.labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(logic::HASH_LABEL.into(), hash.clone());
                let pod = crate::replicas::logic::pod_from_template(&template, owner_ref(&ds), &ns);
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        ctx.events
                            .normal(
                                ds.as_ref(),
                                "SuccessfulCreate",
                                &format!("Created pod: {}", p.name_any()),
                            )
                            .await;
                        created.push(p.name_any());
                    }
                    Err(e) => {
                        ctx.events
                            .warning(ds.as_ref(), "FailedCreate", &format!("Error creating: {e}"))
                            .await
                    }
                }
            }
        }
        // Daemons on nodes that should not run one.
        for (node, here) in &by_node {
            if !eligible.contains(node) {
                deleted.extend(here.iter().map(|p| p.name_any()));
            }
        }
        // Rolling update: old-template pods go, within maxUnavailable.
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            != Some("OnDelete");
        if rolling {
            let max_unavailable = scaled(
                spec.update_strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref())
                    .and_then(|r| r.max_unavailable.as_ref()),
                eligible.len() as i32,
                "1",
                false,
            )
            .max(1) as usize;
            let unavailable = eligible
                .iter()
                .filter(|n| {
                    !by_node
                        .get(*n)
                        .is_some_and(|ps| ps.iter().any(|p| pods::is_available(p, min_ready, now)))
                })
                .count();
            let mut budget = max_unavailable.saturating_sub(unavailable);
            for node in &eligible {
                let Some(here) = by_node.get(node) else {
                    continue;
                };
                for p in here
                    .iter()
                    .filter(|p| pods::is_active(p) && hash_of(p) != Some(hash.as_str()))
                {
                    let counts = pods::is_available(p, min_ready, now);
                    if counts && budget == 0 {
                        continue;
                    }
                    if counts {
                        budget -= 1;
                    }
                    deleted.push(p.name_any());
                }
            }
        }
        deleted.sort();
        deleted.dedup();
        for name in &deleted {
            match pods_api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    ctx.events
                        .normal(
                            ds.as_ref(),
                            "SuccessfulDelete",
                            &format!("Deleted pod: {name}"),
                        )
                        .await
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        ctx.expectations
            .lock()
            .expect("not poisoned")
            .expect(&key, created, deleted.clone());
    }
    // Status.
    let count = |f: &dyn Fn(&Pod) -> bool| {
        eligible
            .iter()
            .filter(|n| by_node.get(*n).is_some_and(|ps| ps.iter().any(|p| f(p))))
            .count() as i32
    };
    let desired = eligible.len() as i32;
    let current = count(&|p| pods::is_active(p));
    let ready = count(&|p| pods::is_active(p) && pods::is_ready(p));
    let available = count(&|p| pods::is_active(p) && pods::is_available(p, min_ready, now));
    let updated = count(&|p| pods::is_active(p) && hash_of(p) == Some(hash.as_str()));
    let misscheduled = by_node.keys().filter(|n| !eligible.contains(*n)).count() as i32;
    let status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": (desired - available).max(0),
        "updatedNumberScheduled": updated,
        "observedGeneration": ds.metadata.generation.unwrap_or(0),
    });
    let previous = serde_json::to_value(ds.status.clone().unwrap_or_default()).unwrap_or_default();
    let differs = status
        .as_object()
        .expect("object")
        .iter()
        .any(|(k, v)| previous[k].as_i64().unwrap_or(0) != v.as_i64().unwrap_or(0));
    if differs {
        Api::<DaemonSet>::namespaced(ctx.client.clone(), &ns)
            .patch_status(
                &ds.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
    }
    if ready > available {
        return Ok(Action::requeue(
            Duration::from_secs(min_ready.max(1) as u64),
        ));
    }
    Ok(Action::requeue(Duration::from_secs(if caught_up {
        60
    } else {
        1
    })))
}

/// Records the template as a ControllerRevision `<ds>-<hash>` (best
/// effort: it is history, not state).
async fn record_revision(ctx: &Ctx, ds: &DaemonSet, hash: &str) {
    let ns = ds.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let name = format!("{}-{hash}", ds.name_any());
    if matches!(api.get_opt(&name).await, Ok(Some(_)) | Err(_)) {
        return;
    }
    let existing = api
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let revision = existing
        .iter()
        .filter(|r| pods::controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .map(|r| r.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    // Labelled like the pods, so the DaemonSet's selector finds its history.
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(logic::HASH_LABEL.into(), hash.into());
    let cr = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(ns),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref(ds)]),
            ..Default::default()
        },
        data: Some(RawExtension(json!({"spec": {"template": template}}))),
        revision,
    };
    let _ = api.create(&PostParams::default(), &cr).await;
}
