//! The endpoints controller: keeps each selector-bearing Service's
//! Endpoints object equal to the addresses of the pods it selects
//! (`logic.rs`), and deletes Endpoints whose Service is gone. Services
//! without a selector are left alone (their Endpoints are the user's).

pub mod logic;
pub mod slices;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};

use crate::selector::Selector;
use crate::Error;

/// Set on every Endpoints object this controller writes (as upstream
/// does), which is also how it knows which ones are its to delete.
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
}

pub async fn run(client: kube::Client) {
    let (pod_store, pod_writer) = reflector::store();
    let pods = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let (ep_store, ep_writer) = reflector::store();
    let endpoints = reflector::reflector(
        ep_writer,
        watcher(
            Api::<Endpoints>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let for_pods = services.clone();
    let (slice_store, slice_task) = crate::cache::store::<EndpointSlice>(&client);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods: pod_store,
        endpoints: ep_store.clone(),
        slices: slice_store,
    });
    let sweeper = tokio::spawn(sweep_orphans(client, services.clone(), ep_store));
    controller
        // A pod change may move it into or out of any service of its
        // namespace.
        .watches_stream(pods, move |pod: Pod| {
            let ns = pod.namespace();
            for_pods
                .state()
                .iter()
                .filter(|s| s.namespace() == ns)
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        // An Endpoints object changed by someone else is put back.
        .watches_stream(endpoints, |ep: Endpoints| {
            Some(ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default()))
        })
        .run(
            reconcile,
            |_, e, _| {
                tracing::warn!("endpoints: {e}");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
    sweeper.abort();
    slice_task.abort();
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(selector_map) = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .filter(|s| !s.is_empty())
    else {
        return Ok(Action::await_change());
    };
    let ns = svc.namespace().unwrap_or_default();
    let selector = Selector::from_map(&selector_map);
    let pods = ctx.pods.state();
    let selected: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| selector.matches(p.metadata.labels.as_ref()))
        .map(|p| p.as_ref())
        .collect();
    let subsets = logic::subsets(&svc, &selected);
    sync_slices(&ctx, &svc, &subsets).await?;
    let current = ctx
        .endpoints
        .get(&ObjectRef::new(&svc.name_any()).within(&ns));
    let labels = svc.metadata.labels.clone();
    if let Some(cur) = &current {
        let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
        if same_subsets && cur.metadata.labels == labels {
            return Ok(Action::await_change());
        }
    }
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let mut ep = Endpoints {
        metadata: ObjectMeta {
            name: Some(svc.name_any()),
            namespace: Some(ns.clone()),
            labels,
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    let mut annotations = current
        .as_ref()
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    annotations.insert(
        TRIGGER_TIME.into(),
        k8s_openapi::jiff::Timestamp::now().to_string(),
    );
    ep.metadata.annotations = Some(annotations);
    match current {
        Some(cur) => {
            ep.metadata.resource_version = cur.metadata.resource_version.clone();
            api.replace(&svc.name_any(), &PostParams::default(), &ep)
                .await?;
        }
        None => match api.create(&PostParams::default(), &ep).await {
            Ok(_) => {}
            // Exists already (our cache lags): the next pass replaces it.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Ok(Action::requeue(Duration::from_millis(200)))
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(Action::await_change())
}

/// Makes the service's managed EndpointSlices equal to `subsets` (they
/// are owned by the service, so the garbage collector removes them with
/// it).
async fn sync_slices(
    ctx: &Ctx,
    svc: &Service,
    subsets: &[k8s_openapi::api::core::v1::EndpointSubset],
) -> Result<(), Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let wanted = slices::slices(svc, subsets);
    let existing: Vec<_> = ctx
        .slices
        .state()
        .into_iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
        .filter(|s| {
            let l = s.labels();
            l.get(slices::SERVICE_NAME) == Some(&svc.name_any())
                && l.get(slices::MANAGED_BY).map(String::as_str) == Some(slices::MANAGER)
        })
        .collect();
    for want in &wanted {
        let name = want.metadata.name.clone().unwrap_or_default();
        match existing.iter().find(|s| s.name_any() == name) {
            Some(cur) if cur.endpoints == want.endpoints && cur.ports == want.ports => {}
            Some(cur) => {
                let mut next = want.clone();
                next.metadata.resource_version = cur.metadata.resource_version.clone();
                api.replace(&name, &PostParams::default(), &next).await?;
            }
            None => match api.create(&PostParams::default(), want).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    for stale in existing
        .iter()
        .filter(|s| !wanted.iter().any(|w| w.metadata.name == s.metadata.name))
    {
        let _ = api
            .delete(&stale.name_any(), &DeleteParams::default())
            .await;
    }
    Ok(())
}

/// Deletes Endpoints of selector services that no longer exist, every
/// few seconds (a deleted service gives the controller nothing to
/// reconcile).
async fn sweep_orphans(
    client: kube::Client,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if services.wait_until_ready().await.is_err() {
            continue;
        }
        for ep in endpoints.state() {
            let ns = ep.namespace().unwrap_or_default();
            let key = ObjectRef::new(&ep.name_any()).within(&ns);
            // Only Endpoints this controller wrote; others are the user's.
            let ours = ep.annotations().contains_key(TRIGGER_TIME);
            if !ours || services.get(&key).is_some() {
                continue;
            }
            let api: Api<Service> = Api::namespaced(client.clone(), &ns);
            if let Ok(None) = api.get_opt(&ep.name_any()).await {
                let eps: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
                let _ = eps.delete(&ep.name_any(), &DeleteParams::default()).await;
            }
        }
    }
}
