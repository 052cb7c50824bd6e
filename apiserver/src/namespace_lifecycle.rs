//! The namespace finalizer: when a namespace is Terminating, delete every
//! object in it, then clear its `kubernetes` finalizer so it goes away.
//! Runs as one background task per API server, woken by deletes and a
//! periodic sweep (to resume work interrupted by a restart).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::meta;
use crate::registry::options::{DeleteOptions, ListOptions, WriteOptions};
use crate::registry::Registry;

const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(registry: Arc<Registry>) {
    loop {
        if let Err(e) = sweep(&registry).await {
            tracing::warn!(error = %e, "namespace cleanup failed; will retry");
        }
        tokio::select! {
            _ = registry.namespace_deleted.notified() => {}
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
    }
}

/// One pass over terminating namespaces.
pub async fn sweep(registry: &Registry) -> Result<(), crate::error::ApiError> {
    let ns_kind = registry
        .find("", "v1", "namespaces")
        .expect("namespaces are served");
    let list = registry
        .list(&ns_kind, None, &ListOptions::default())
        .await?;
    for ns in list["items"].as_array().into_iter().flatten() {
        if meta::deletion_timestamp(ns).is_none() {
            continue;
        }
        let name = meta::name(ns).to_string();
        if empty_namespace(registry, &name).await? {
            registry
                .finalize_namespace(
                    &name,
                    json!({"spec": {"finalizers": []}}),
                    &WriteOptions::default(),
                )
                .await?;
            tracing::info!(namespace = %name, "namespace deleted");
        }
    }
    Ok(())
}

/// Deletes what is left in `ns`; true once nothing is.
async fn empty_namespace(registry: &Registry, ns: &str) -> Result<bool, crate::error::ApiError> {
    let mut empty = true;
    let force = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for s in registry.strategies() {
        let d = s.descriptor();
        if !d.namespaced || !d.verbs.contains(&"list") {
            continue;
        }
        let list = registry.list(s, Some(ns), &ListOptions::default()).await?;
        let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
        for item in items {
            empty = false;
            match registry
                .delete(s.as_ref(), Some(ns), meta::name(&item), &force)
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason == crate::error::Reason::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(empty)
}
