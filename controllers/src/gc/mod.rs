//! The garbage collector: deletes objects whose owners are all gone
//! (background propagation), removes references to owners deleted with
//! `propagationPolicy: Orphan`, deletes dependents of owners deleted in the
//! foreground and lets those owners go once no blocking dependent is left.
//!
//! It watches the kinds that own or are owned in this cluster (one
//! reflector each), plans over a snapshot (`logic.rs`) on every change and
//! at least every few seconds, and confirms an owner's absence with a live
//! read before deleting anything, since the caches of different kinds lag
//! each other.

pub mod logic;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    Preconditions, PropagationPolicy,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

use self::logic::{Key, Snapshot, Step};

/// The kinds collected and consulted as owners:
/// (group, version, kind, plural, namespaced).
const KINDS: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Pod", "pods", true),
    (
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
    ),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "Node", "nodes", false),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    (
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
];

/// How often a pass runs with no change seen.
const RESYNC: Duration = Duration::from_secs(10);

fn resource(kind: &str) -> Option<(ApiResource, bool)> {
    KINDS
        .iter()
        .find(|k| k.2 == kind)
        .map(|(g, v, k, plural, namespaced)| {
            (
                ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural),
                *namespaced,
            )
        })
}

fn api_for(client: &kube::Client, key: &Key) -> Option<Api<DynamicObject>> {
    let (ar, namespaced) = resource(&key.kind)?;
    Some(if namespaced {
        Api::namespaced_with(client.clone(), &key.namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    })
}

struct Watched {
    kind: &'static str,
    store: Store<DynamicObject>,
}

pub async fn run(client: kube::Client) {
    let changed = Arc::new(tokio::sync::Notify::new());
    let ready: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut watched = Vec::new();
    let mut tasks = Vec::new();
    for (_, _, kind, _, _) in KINDS {
        let (ar, _) = resource(kind).expect("listed");
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let writer = reflector::store::Writer::new(ar.clone());
        let store = writer.as_reader();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff();
        let notify = changed.clone();
        tasks.push(tokio::spawn(async move {
            stream.for_each(|_| async { notify.notify_one() }).await;
        }));
        let (ready, readiness) = (ready.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            if readiness.wait_until_ready().await.is_ok() {
                ready.lock().expect("not poisoned").insert(kind.to_string());
            }
        }));
        watched.push(Watched { kind, store });
    }
    let _guard = AbortOnDrop(tasks);
    loop {
        let _ = tokio::time::timeout(RESYNC, changed.notified()).await;
        // Let a burst of changes settle into one pass.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let snapshot = snapshot(&watched, &ready.lock().expect("not poisoned"));
        for step in logic::plan(&snapshot) {
            if let Err(e) = execute(&client, &snapshot, step).await {
                tracing::warn!("garbage collector: {e}");
            }
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn snapshot(watched: &[Watched], ready: &BTreeSet<String>) -> Snapshot {
    let mut s = Snapshot {
        known_kinds: ready.clone(),
        ..Default::default()
    };
    for w in watched {
        if !resource(w.kind).is_some_and(|(_, namespaced)| namespaced) {
            s.cluster_scoped.insert(w.kind.to_string());
        }
        for o in w.store.state() {
            s.objects.insert(logic::key_of(w.kind, &o), (*o).clone());
        }
    }
    s
}

fn ok_if_gone<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether any owner of `dependent` still exists, asking the API server
/// (not the caches).
async fn any_owner_alive(
    client: &kube::Client,
    key: &Key,
    dependent: &DynamicObject,
) -> Result<bool, kube::Error> {
    for r in dependent.metadata.owner_references.iter().flatten() {
        let owner_key = Key {
            kind: r.kind.clone(),
            namespace: key.namespace.clone(),
            name: r.name.clone(),
        };
        let Some(api) = api_for(client, &owner_key) else {
            return Ok(true);
        };
        if let Some(o) = api.get_opt(&r.name).await? {
            if o.metadata.uid.as_deref() == Some(r.uid.as_str()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

async fn execute(client: &kube::Client, s: &Snapshot, step: Step) -> Result<(), kube::Error> {
    let delete = |uid: &str, policy| DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match step {
        Step::Delete { key, uid } => {
            let (Some(api), Some(obj)) = (api_for(client, &key), s.objects.get(&key)) else {
                return Ok(());
            };
            if any_owner_alive(client, &key, obj).await? {
                return Ok(());
            }
            tracing::info!(kind = %key.kind, ns = %key.namespace, name = %key.name, "deleting: its owners are gone");
            ok_if_gone(
                api.delete(&key.name, &delete(&uid, PropagationPolicy::Background))
                    .await,
            )
        }
        Step::DeleteForeground { key, uid } => {
            let Some(api) = api_for(client, &key) else {
                return Ok(());
            };
            ok_if_gone(
                api.delete(&key.name, &delete(&uid, PropagationPolicy::Foreground))
                    .await,
            )
        }
        Step::DropReference { key, owner_uid } => {
            let (Some(api), Some(obj)) = (api_for(client, &key), s.objects.get(&key)) else {
                return Ok(());
            };
            let refs: Vec<_> = obj
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.uid != owner_uid)
                .cloned()
                .collect();
            let refs = if refs.is_empty() {
                json!(null)
            } else {
                json!(refs)
            };
            let patch = json!({"metadata": {"ownerReferences": refs, "uid": obj.metadata.uid}});
            ok_if_gone(
                api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )
        }
        Step::RemoveFinalizer { key, finalizer } => {
            let (Some(api), Some(obj)) = (api_for(client, &key), s.objects.get(&key)) else {
                return Ok(());
            };
            let rest: Vec<&String> = obj
                .metadata
                .finalizers
                .iter()
                .flatten()
                .filter(|f| f.as_str() != finalizer)
                .collect();
            let patch = json!({"metadata": {"finalizers": rest, "uid": obj.metadata.uid}});
            ok_if_gone(
                api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )
        }
    }
}
