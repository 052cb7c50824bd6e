//! The storage contract of the API server: a key/value store with one global,
//! strictly increasing revision, shaped like the interface kube-apiserver needs
//! from etcd.
//!
//! This module owns the trait, its value types and errors, and the single
//! optimistic-concurrency loop (`guaranteed_update`). It knows nothing of HTTP,
//! kinds or strategies; values are opaque bytes except that preconditions read
//! `metadata.uid` from the stored JSON.
//!
//! Invariants every backend keeps (checked by `suite`):
//! - every successful write gets a revision greater than any before it, also
//!   across restarts; a key's `mod_revision` is the revision of its last write;
//! - an acknowledged write is durable;
//! - a watch delivers every change after its start revision, in revision
//!   order, once;
//! - a revision at or below the compacted floor is `Expired`.

pub mod cacher;
pub mod embedded;
pub mod etcd;
#[cfg(test)]
pub mod etcd_test_server;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;

/// The global revision; also every object's `resourceVersion`.
pub type Revision = u64;

/// One stored object as read from a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Arc<[u8]>,
    /// Revision of the write that created the key (the current incarnation).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// A compare-and-swap lost: the key changed since it was read.
    #[error("key {key} was modified concurrently (expected revision {expected}, found {actual})")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// A uid or resourceVersion precondition does not hold.
    #[error("precondition failed for {key}: {message}")]
    PreconditionFailed { key: String, message: String },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Expired {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is in the future.
    #[error("revision {requested} is newer than the current revision {current}")]
    TooLargeRevision {
        requested: Revision,
        current: Revision,
    },
    /// The backend cannot be reached or is shutting down.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage internal error: {0}")]
    Internal(String),
    /// Returned by an update function to abort an update with its own error.
    #[error("{0}")]
    Aborted(String),
}

/// Conditions a delete or update requires of the current object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<Revision>,
}

impl Preconditions {
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.resource_version.is_none()
    }

    /// Checks these preconditions against a stored object.
    pub fn check(&self, current: &KeyValue) -> Result<(), StorageError> {
        if let Some(rv) = self.resource_version {
            if rv != current.mod_revision {
                return Err(StorageError::PreconditionFailed {
                    key: current.key.clone(),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    ),
                });
            }
        }
        if let Some(uid) = &self.uid {
            let actual = stored_uid(&current.value).unwrap_or_default();
            if *uid != actual {
                return Err(StorageError::PreconditionFailed {
                    key: current.key.clone(),
                    message: format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Reads `metadata.uid` from a stored JSON object without decoding the rest.
fn stored_uid(value: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        uid: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        metadata: Option<Meta>,
    }
    serde_json::from_slice::<Obj>(value).ok()?.metadata?.uid
}

/// A filter applied while listing, so that `limit` counts matching items.
pub type Predicate = Arc<dyn Fn(&KeyValue) -> bool + Send + Sync>;

#[derive(Clone, Default)]
pub struct ListOptions {
    /// List the state as of this revision (a consistent snapshot); `None` means
    /// the current revision.
    pub revision: Option<Revision>,
    /// Return at most this many matching items (0 or `None`: all).
    pub limit: Option<usize>,
    /// Start strictly after this key (a continue token's position).
    pub start_after: Option<String>,
    pub predicate: Option<Predicate>,
}

#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// Matching items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list reflects.
    pub revision: Revision,
    /// True when `limit` cut the list short and more matching items may follow.
    pub more: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    /// No object changed; the watch has seen everything up to `revision`.
    Progress,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// For Added/Modified: the new state. For Deleted: the last state before
    /// deletion, with `mod_revision` set to the deletion's revision. For
    /// Progress: a placeholder with an empty key and value.
    pub kv: KeyValue,
    pub revision: Revision,
}

impl Event {
    /// "Nothing changed up to `revision`": a placeholder object, no key.
    pub fn progress(revision: Revision) -> Event {
        Event {
            kind: EventType::Progress,
            kv: KeyValue {
                key: String::new(),
                value: Arc::from(&[][..]),
                create_revision: 0,
                mod_revision: 0,
            },
            revision,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// Deliver changes with revision strictly greater than this; `None` means
    /// from now.
    pub after_revision: Option<Revision>,
    /// First deliver the current state (as of `after_revision`, or now) as
    /// Added events, then a Progress event, then the changes.
    pub send_initial: bool,
    /// Emit a Progress event when idle for this long.
    pub progress_interval: Option<std::time::Duration>,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, StorageError>> + Send>>;

/// The minimal contract the registry needs from a datastore.
///
/// Backends implement the primitives; `guaranteed_update` (the one
/// read-modify-write loop) is built on them once, below.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// A short name for health reports ("embedded", "etcd").
    fn name(&self) -> &str;

    /// The current (latest committed) revision.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// The oldest revision still available for watches and snapshot lists.
    async fn compacted_revision(&self) -> Result<Revision, StorageError>;

    /// Stores a new key; `AlreadyExists` if it exists.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError>;

    async fn get(&self, key: &str) -> Result<KeyValue, StorageError>;

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError>;

    /// Replaces the key's value if its `mod_revision` is still `expected`;
    /// `Conflict` otherwise, `NotFound` if it is gone.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue, StorageError>;

    /// Deletes the key if its `mod_revision` is still `expected`; returns the
    /// deleted state with `mod_revision` set to the deletion revision.
    async fn compare_and_delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> Result<KeyValue, StorageError>;

    async fn watch(&self, prefix: &str, opts: WatchOptions) -> Result<EventStream, StorageError>;

    /// Forgets history at and below `revision`.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;
}

/// What an update function wants done with the current object.
pub enum Update {
    /// Write this value (skipped if equal to the current bytes).
    Write(Vec<u8>),
    /// Delete the object (used by graceful deletion once finalizers are gone).
    Delete,
}

/// The one optimistic-concurrency loop: read, let `update` compute the new
/// value, compare-and-swap, and retry from a fresh read when another writer
/// got there first. An update producing identical bytes writes nothing.
///
/// `update` may return `StorageError::Aborted` (or any error) to stop.
pub async fn guaranteed_update<F>(
    store: &dyn Storage,
    key: &str,
    preconditions: &Preconditions,
    mut update: F,
) -> Result<(KeyValue, bool), StorageError>
where
    F: FnMut(&KeyValue) -> Result<Update, StorageError> + Send,
{
    loop {
        let current = store.get(key).await?;
        preconditions.check(&current)?;
        match update(&current)? {
            Update::Write(value) => {
                if *value == *current.value {
                    return Ok((current, false));
                }
                match store
                    .compare_and_swap(key, current.mod_revision, value)
                    .await
                {
                    Ok(kv) => return Ok((kv, false)),
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Update::Delete => match store.compare_and_delete(key, current.mod_revision).await {
                Ok(kv) => return Ok((kv, true)),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            },
        }
    }
}

/// Deletes a key after checking preconditions against its latest state.
pub async fn delete(
    store: &dyn Storage,
    key: &str,
    preconditions: &Preconditions,
) -> Result<KeyValue, StorageError> {
    let (kv, _) = guaranteed_update(store, key, preconditions, |_| Ok(Update::Delete)).await?;
    Ok(kv)
}
