//! The replica managers (ReplicationController and ReplicaSet): keep as
//! many active pods as `spec.replicas` asks, adopting matching orphans and
//! releasing pods that stopped matching, and report the counts in
//! `status`. Level-triggered: every pass compares the pod cache with the
//! desired count; expectations stop a pass from acting again before the
//! cache has seen its last creations and deletions.

pub mod logic;
pub mod owners;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

use self::logic::Expectations;
use self::owners::ReplicaOwner;
use crate::events::Events;
use crate::pods;
use crate::Error;

/// Pods created per pass at most (upstream's burst).
const MAX_BATCH: usize = 500;

struct Ctx<K: ReplicaOwner> {
    client: kube::Client,
    pods: Store<Pod>,
    owners: Store<K>,
    expectations: Mutex<Expectations>,
    events: Events,
}

fn owner_ref<K: ReplicaOwner>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Runs one replica manager until its task is dropped.
pub async fn run<K: ReplicaOwner>(client: kube::Client) {
    let owners_api: Api<K> = Api::all(client.clone());
    let pods_api: Api<Pod> = Api::all(client.clone());
    let (pod_store, pod_writer) = reflector::store();
    let pod_events =
        reflector::reflector(pod_writer, watcher(pods_api, watcher::Config::default()))
            .default_backoff()
            .touched_objects();
    let controller = Controller::new(owners_api, watcher::Config::default());
    let owner_store = controller.store();
    let mapper_owners = owner_store.clone();
    // A pod change wakes its controller, or, for an orphan, every owner in
    // its namespace that selects it (to adopt it).
    let mapper = move |pod: Pod| -> Vec<ObjectRef<K>> {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(r) = pods::controller_of(&pod.metadata) {
            if r.kind == K::kind(&()) {
                return vec![ObjectRef::new(&r.name).within(&ns)];
            }
            return Vec::new();
        }
        mapper_owners
            .state()
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
            .filter(|o| {
                o.selector()
                    .is_some_and(|s| s.matches(pod.metadata.labels.as_ref()))
            })
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods: pod_store,
        owners: owner_store,
        expectations: Mutex::new(Expectations::default()),
        events: Events::new(client, K::CONTROLLER),
    });
    controller
        .watches_stream(pod_events, mapper)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|_| async {})
        .await;
}

fn error_policy<K: ReplicaOwner>(_: Arc<K>, e: &Error, _: Arc<Ctx<K>>) -> Action {
    tracing::warn!(controller = K::CONTROLLER, "reconcile failed: {e}");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    let ns = owner.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", owner.name_any());
    // The store may lag behind a deletion the watch already reported.
    if owner.meta().deletion_timestamp.is_some()
        || ctx
            .owners
            .get(&ObjectRef::from_obj(owner.as_ref()))
            .is_none()
    {
        ctx.expectations.lock().expect("not poisoned").forget(&key);
        return Ok(Action::await_change());
    }
    let Some(selector) = owner.selector().filter(|s| !s.is_empty()) else {
        return Ok(Action::await_change());
    };
    let uid = owner.uid().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut owned: Vec<Pod> = Vec::new();
    for pod in ctx.pods.state() {
        if pod.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let matches = selector.matches(pod.metadata.labels.as_ref());
        match pods::controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    owned.push((*pod).clone());
                } else {
                    release(&pods_api, &pod, &uid).await?;
                }
            }
            None if matches && pods::is_active(&pod) => {
                adopt(&pods_api, &pod, owner_ref(owner.as_ref())).await?;
                owned.push((*pod).clone());
            }
            _ => {}
        }
    }
    let active: Vec<Pod> = owned.into_iter().filter(pods::is_active).collect();
    let live: BTreeSet<String> = active.iter().map(|p| p.name_any()).collect();
    let caught_up = ctx
        .expectations
        .lock()
        .expect("not poisoned")
        .satisfied(&key, &live);
    let mut failure = None;
    if caught_up {
        let desired = owner.desired().max(0) as usize;
        if active.len() < desired {
            failure = create_pods(&ctx, owner.as_ref(), &key, desired - active.len()).await;
        } else if active.len() > desired {
            let doomed = logic::pick_for_deletion(active.clone(), active.len() - desired);
            failure = delete_pods(&ctx, owner.as_ref(), &key, doomed).await;
        }
    }
    let now = Timestamp::now();
    let refs: Vec<&Pod> = active.iter().collect();
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let counts = logic::counts(&refs, &template_labels, owner.min_ready_seconds(), now);
    let status = owners::status(&counts, owner.meta().generation, failure.as_deref());
    if status != owner.current_status() {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(
            &owner.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    // Pods becoming available after minReadySeconds change no object:
    // look again then.
    if counts.ready > counts.available {
        return Ok(Action::requeue(Duration::from_secs(
            owner.min_ready_seconds().max(1) as u64,
        )));
    }
    if !caught_up {
        return Ok(Action::requeue(logic::EXPECTATION_TIMEOUT));
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn adopt(api: &Api<Pod>, pod: &Pod, owner: OwnerReference) -> Result<(), Error> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner);
    // The uid makes the patch apply to this pod only, not a namesake.
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.uid()}});
    ignore_gone(
        api.patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await,
    )
}

async fn release(api: &Api<Pod>, pod: &Pod, owner_uid: &str) -> Result<(), Error> {
    let refs: Vec<OwnerReference> = pod
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid != owner_uid)
        .collect();
    // An empty list is no list: merge patches remove a field with null.
    let refs = if refs.is_empty() {
        json!(null)
    } else {
        json!(refs)
    };
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.uid()}});
    ignore_gone(
        api.patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await,
    )
}

fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates `n` pods in growing batches (1, 2, 4, …) so a failing template
/// costs one error, not hundreds; returns the failure message, if any.
async fn create_pods<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    key: &str,
    n: usize,
) -> Option<String> {
    let template = owner.template()?;
    let ns = owner.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod = logic::pod_from_template(template, owner_ref(owner), &ns);
    let mut created = Vec::new();
    let mut failure = None;
    let mut batch = 1;
    let mut remaining = n.min(MAX_BATCH);
    'batches: while remaining > 0 {
        let size = batch.min(remaining);
        let params = PostParams::default();
        let results = futures::future::join_all((0..size).map(|_| api.create(&params, &pod))).await;
        for r in results {
            match r {
                Ok(p) => {
                    ctx.events
                        .normal(
                            owner,
                            "SuccessfulCreate",
                            &format!("Created pod: {}", p.name_any()),
                        )
                        .await;
                    created.push(p.name_any());
                }
                Err(e) => {
                    let message = match &e {
                        kube::Error::Api(s) => s.message.clone(),
                        other => other.to_string(),
                    };
                    ctx.events
                        .warning(owner, "FailedCreate", &format!("Error creating: {message}"))
                        .await;
                    failure = Some(message);
                }
            }
        }
        if failure.is_some() {
            break 'batches;
        }
        remaining -= size;
        batch *= 2;
    }
    ctx.expectations
        .lock()
        .expect("not poisoned")
        .expect(key, created, Vec::new());
    failure
}

async fn delete_pods<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    key: &str,
    doomed: Vec<Pod>,
) -> Option<String> {
    let ns = owner.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut deleted = Vec::new();
    let mut failure = None;
    for pod in doomed {
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                failure = Some(e.to_string());
                continue;
            }
        }
        ctx.events
            .normal(
                owner,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", pod.name_any()),
            )
            .await;
        deleted.push(pod.name_any());
    }
    ctx.expectations
        .lock()
        .expect("not poisoned")
        .expect(key, Vec::new(), deleted);
    failure
}
