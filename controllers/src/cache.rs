//! A watched cache of one kind, for controllers that read but do not need
//! to be woken by every change.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};

/// A store of every `K`, filled by a background task (returned; abort it
/// to stop watching).
pub fn store<K>(client: &kube::Client) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    (store, tokio::spawn(stream.for_each(|_| async {})))
}
