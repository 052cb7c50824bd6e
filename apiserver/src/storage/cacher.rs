//! The watch cache: a `Storage` that keeps an in-memory, event-fed copy of
//! each resource's objects in front of another `Storage`, so that lists and
//! watches (the bulk of an API server's read traffic) are served from memory
//! and the backend carries one watch per resource instead of one per client.
//!
//! This module owns the per-resource caches, the task that feeds each of
//! them, the fan-out to client watchers and the consistency checker. It must
//! not write anything itself (every write goes straight to the inner store,
//! which stays the only source of truth and of revisions), must not serve a
//! read older than the writes acknowledged before it began, must never let a
//! slow watcher block the feed or hold unbounded memory, and must never hand
//! a watcher a gap or a duplicate: when it cannot continue a watch exactly,
//! it ends it with an error so the client re-watches or re-lists.
//!
//! # Shape
//!
//! Requests are routed by prefix to a *resource cache*: the longest prefix
//! given to [`Cacher::new`] that the requested prefix starts with, or, with
//! [`CacherOptions::cache_all_resources`], the resource prefix derived by
//! [`resource_prefix`] (created on first use). Anything else passes straight
//! through. A namespace-narrowed request (`/registry/pods/ns1/`) is served
//! by its resource's cache and filtered by string prefix.
//!
//! Each resource cache holds, under one lock, the objects as of one
//! revision (an ordered map of shared `KeyValue`s), a bounded ring of the
//! most recent events (each with the object's state before it, so the state
//! at any revision the ring covers can be rebuilt), the registered watchers,
//! and that revision. One task feeds it from a single inner watch: first the
//! inner watch's initial state, then its events and progress notifications.
//! Applying an event, pushing it into every matching watcher's buffer and
//! advancing the revision happen under the write lock, so a watcher that
//! registers (under the same lock) at revision `r` gets everything after `r`
//! exactly once.
//!
//! # Reads
//!
//! - `get` goes to the inner store: it is a single-key linearizable read,
//!   cheap there, and it is what `guaranteed_update` needs.
//! - `list` without a revision is consistent: it asks the inner store for
//!   its current revision, waits until the cache has caught up to it, then
//!   serves one snapshot from memory. If the cache does not catch up within
//!   [`CacherOptions::freshness_timeout`] the list falls back to the inner
//!   store (or fails with `TooLargeRevision` when fallback is off). Because
//!   the cache only learns that the store moved on through its own events or
//!   the inner watch's progress notifications, a list right after a write to
//!   *another* resource can wait up to [`CacherOptions::inner_progress_interval`].
//! - `list` at a revision is served from memory when the ring still covers
//!   it, and from the inner store otherwise; the inner store's compaction
//!   floor is checked first so the contract (`Expired` at or below the
//!   floor) holds even while the ring still has the history.
//! - `watch` is served from memory when it starts at or after the oldest
//!   revision the ring covers. A watch from an older, uncompacted revision is
//!   delegated to the inner store (kube-apiserver answers 410 there instead;
//!   delegating costs the backend one watcher but never fails a valid
//!   request). From a compacted revision it is `Expired`.
//!
//! # Failures
//!
//! When the inner watch fails, the feed first resumes from the cache's
//! revision, which loses nothing and keeps every watcher. If the inner store
//! cannot resume (`Expired`: the history was compacted meanwhile), the feed
//! re-lists, and every watcher registered on the old state is ended with an
//! error naming the revision up to which it saw everything.
//!
//! A watcher's buffer is bounded ([`CacherOptions::watcher_buffer`]); when a
//! live event does not fit, the watcher is dropped from the fan-out and its
//! stream ends, after the events already buffered, with `Unavailable`
//! naming the revision to watch again from (usually still in the ring).
//!
//! # Consistency checking
//!
//! [`Cacher::check_consistency`] compares each cache's state at its revision
//! with the inner store's snapshot list at that revision; a mismatch is
//! logged with `tracing::error!`, counted, returned as an error and repaired
//! by a re-list. With `RKUBE_WATCH_CACHE_CHECK=1` (and always in this crate's
//! tests) it also runs periodically.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{
    Event, EventStream, EventType, KeyValue, ListOptions, ListResult, Revision, Storage,
    StorageError, WatchOptions,
};

/// Set to `1` to run the consistency checker periodically.
pub const CHECK_ENV_VAR: &str = "RKUBE_WATCH_CACHE_CHECK";

/// How often the checker runs when enabled through [`CHECK_ENV_VAR`].
const ENV_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// `1`/`true` checks every minute; a number of milliseconds (`200ms`)
/// checks that often, for tests that want mismatches found while they run.
fn check_interval_from_env(value: Option<&str>) -> Option<Duration> {
    match value? {
        "1" | "true" => Some(ENV_CHECK_INTERVAL),
        v => v
            .strip_suffix("ms")?
            .parse()
            .ok()
            .map(Duration::from_millis),
    }
}

/// Most inner-watch items applied under one write lock; bounds how long the
/// feed keeps readers out.
const APPLY_BATCH: usize = 256;

/// Longest pause between attempts to re-establish a failed inner watch.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Most differences a consistency report spells out.
const DIFF_EXAMPLES: usize = 5;

/// Tuning for [`Cacher`].
#[derive(Clone, Debug)]
pub struct CacherOptions {
    /// Cache every `/registry/...` resource on first use (see
    /// [`resource_prefix`]), besides the prefixes given to [`Cacher::new`].
    pub cache_all_resources: bool,
    /// Recent events kept per resource for resuming watches and reading
    /// recent revisions.
    pub event_ring_capacity: usize,
    /// Live events a watcher may have undelivered before it is ended.
    pub watcher_buffer: usize,
    /// Progress interval of the inner watches: the longest a consistent read
    /// waits when the store moved on through writes to other resources.
    pub inner_progress_interval: Duration,
    /// Longest a read waits for the cache to reach the revision it needs.
    pub freshness_timeout: Duration,
    /// On that timeout, serve the read from the inner store (true) or fail
    /// with `TooLargeRevision` (false).
    pub fallback_when_stale: bool,
    /// First pause before re-establishing a failed inner watch; doubles on
    /// each further failure up to a few seconds.
    pub retry_backoff: Duration,
    /// Run [`Cacher::check_consistency`] this often. Defaults to on when
    /// [`CHECK_ENV_VAR`] is `1`, and always in this crate's tests.
    pub consistency_check_interval: Option<Duration>,
    /// Serve consistent reads (lists and watches "from now") from the cache
    /// after waiting for it to catch up. Needs an inner store whose watch
    /// reports progress promptly; without that (etcd before 3.4.25/3.5.8)
    /// such reads go to the inner store instead, as kube-apiserver does.
    pub consistent_reads_from_cache: bool,
}

impl Default for CacherOptions {
    fn default() -> Self {
        let check = if cfg!(test) {
            Some(Duration::from_millis(50))
        } else {
            check_interval_from_env(std::env::var(CHECK_ENV_VAR).ok().as_deref())
        };
        Self {
            cache_all_resources: true,
            event_ring_capacity: 4096,
            watcher_buffer: 1024,
            inner_progress_interval: Duration::from_millis(50),
            consistent_reads_from_cache: true,
            freshness_timeout: Duration::from_secs(3),
            fallback_when_stale: true,
            retry_backoff: Duration::from_millis(100),
            consistency_check_interval: check,
        }
    }
}

/// What the caches have done since [`Cacher::new`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacherStats {
    /// Resource caches in existence.
    pub resources: usize,
    /// Watchers currently registered on caches.
    pub watchers: usize,
    /// Full loads of a cache from the inner store (the first one included).
    pub relists: u64,
    /// Inner watches resumed after a failure without re-listing.
    pub resumes: u64,
    pub lists_from_cache: u64,
    /// Lists of cached resources served by the inner store (old revision
    /// outside the ring, or stale cache).
    pub lists_from_storage: u64,
    pub watches_from_cache: u64,
    /// Watches of cached resources served by the inner store.
    pub watches_from_storage: u64,
    /// Reads that gave up waiting for the cache to catch up.
    pub stale_reads: u64,
    /// Watchers ended because their buffer was full.
    pub slow_watchers_closed: u64,
    /// Watchers ended because their cache re-listed.
    pub watchers_closed_by_relist: u64,
    pub consistency_checks: u64,
    pub inconsistencies: u64,
}

/// The outcome of one [`Cacher::check_consistency`] run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// Caches compared with the inner store and found equal.
    pub checked: usize,
    /// Caches not compared: not loaded yet, or their revision is compacted.
    pub skipped: usize,
}

/// The resource prefix a prefix or key belongs to under the registry's key
/// layout: `/registry/<resource>/` for core resources, and
/// `/registry/<group>/<resource>/` when the first segment contains a `.`
/// (a group such as `apps.example.com`). Groups without a dot (`apps`,
/// `batch`) cannot be told from a core resource by shape; they get one cache
/// for the whole group unless their resource prefixes are given to
/// [`Cacher::new`]. `None` when the prefix does not reach that far.
pub fn resource_prefix(prefix: &str) -> Option<&str> {
    const ROOT: &str = "/registry/";
    let rest = prefix.strip_prefix(ROOT)?;
    let first = rest.find('/')?;
    if first == 0 {
        return None;
    }
    let end = if rest[..first].contains('.') {
        let second = rest[first + 1..].find('/')?;
        if second == 0 {
            return None;
        }
        first + 1 + second
    } else {
        first
    };
    Some(&prefix[..ROOT.len() + end + 1])
}

#[derive(Default)]
struct Counters {
    relists: AtomicU64,
    resumes: AtomicU64,
    lists_from_cache: AtomicU64,
    lists_from_storage: AtomicU64,
    watches_from_cache: AtomicU64,
    watches_from_storage: AtomicU64,
    stale_reads: AtomicU64,
    slow_watchers_closed: AtomicU64,
    watchers_closed_by_relist: AtomicU64,
    consistency_checks: AtomicU64,
    inconsistencies: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

// The guarded state is only changed by code that cannot panic halfway
// through an update, so a poisoned lock is recovered rather than propagated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The cacher

/// A watch cache in front of another store. See the module documentation.
pub struct Cacher {
    me: Weak<Cacher>,
    inner: Arc<dyn Storage>,
    name: String,
    opts: Arc<CacherOptions>,
    /// Configured resource prefixes, longest first so the first match is the
    /// most specific.
    configured: Vec<String>,
    caches: RwLock<BTreeMap<String, Arc<ResourceCache>>>,
    counters: Arc<Counters>,
    checker: Mutex<Option<AbortHandle>>,
    stopped: AtomicBool,
}

impl Cacher {
    /// Wraps `inner`, caching the resources under `prefixes` (and, with
    /// `cache_all_resources`, every registry resource on first use).
    ///
    /// Called inside a Tokio runtime, the caches for `prefixes` start loading
    /// at once, so their rings cover history from now on; otherwise each
    /// starts on first use.
    pub fn new(inner: Arc<dyn Storage>, prefixes: Vec<String>, opts: CacherOptions) -> Arc<Self> {
        let mut configured = prefixes;
        configured.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        configured.dedup();
        let name = format!("{}+watch-cache", inner.name());
        let this = Arc::new_cyclic(|me| Cacher {
            me: me.clone(),
            inner,
            name,
            opts: Arc::new(opts),
            configured,
            caches: RwLock::new(BTreeMap::new()),
            counters: Arc::new(Counters::default()),
            checker: Mutex::new(None),
            stopped: AtomicBool::new(false),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            for p in &this.configured {
                this.cache_for(p);
            }
        }
        this
    }

    pub fn stats(&self) -> CacherStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let caches = read(&self.caches);
        CacherStats {
            resources: caches.len(),
            watchers: caches
                .values()
                .map(|cache| read(&cache.state).watchers.len())
                .sum(),
            relists: get(&c.relists),
            resumes: get(&c.resumes),
            lists_from_cache: get(&c.lists_from_cache),
            lists_from_storage: get(&c.lists_from_storage),
            watches_from_cache: get(&c.watches_from_cache),
            watches_from_storage: get(&c.watches_from_storage),
            stale_reads: get(&c.stale_reads),
            slow_watchers_closed: get(&c.slow_watchers_closed),
            watchers_closed_by_relist: get(&c.watchers_closed_by_relist),
            consistency_checks: get(&c.consistency_checks),
            inconsistencies: get(&c.inconsistencies),
        }
    }

    /// The resource prefixes that currently have a cache.
    pub fn cached_prefixes(&self) -> Vec<String> {
        read(&self.caches).keys().cloned().collect()
    }

    /// Compares every loaded cache's state at its revision with the inner
    /// store's list at that revision. A mismatch is logged as an error,
    /// counted in [`CacherStats::inconsistencies`], makes that cache re-list,
    /// and is returned as `Internal` (after all caches were checked).
    pub async fn check_consistency(&self) -> Result<ConsistencyReport, StorageError> {
        let caches: Vec<_> = read(&self.caches).values().cloned().collect();
        let mut report = ConsistencyReport::default();
        let mut first_error = None;
        for cache in caches {
            match cache.check().await {
                Ok(true) => report.checked += 1,
                Ok(false) => report.skipped += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Stops every feed and ends every cache-served watch with
    /// `Unavailable`; later requests pass through to the inner store.
    /// Dropping the cacher does the same.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(h) = lock(&self.checker).take() {
            h.abort();
        }
        let caches = std::mem::take(&mut *write(&self.caches));
        for cache in caches.values() {
            cache.stop();
        }
    }

    /// The cache serving `prefix`, created and started if needed; `None`
    /// means the request passes through.
    fn cache_for(&self, prefix: &str) -> Option<Arc<ResourceCache>> {
        let resource = self
            .configured
            .iter()
            .find(|c| prefix.starts_with(c.as_str()))
            .map(String::as_str)
            .or_else(|| {
                self.opts
                    .cache_all_resources
                    .then(|| resource_prefix(prefix))
                    .flatten()
            })?;
        if let Some(cache) = read(&self.caches).get(resource) {
            cache.start();
            return Some(cache.clone());
        }
        let cache = {
            let mut caches = write(&self.caches);
            // Checked under the lock that `shutdown` empties, so no cache is
            // created after it.
            if self.stopped.load(Ordering::SeqCst) {
                return None;
            }
            caches
                .entry(resource.to_owned())
                .or_insert_with(|| {
                    Arc::new(ResourceCache::new(
                        resource.to_owned(),
                        self.inner.clone(),
                        self.opts.clone(),
                        self.counters.clone(),
                    ))
                })
                .clone()
        };
        cache.start();
        self.start_checker();
        Some(cache)
    }

    fn start_checker(&self) {
        let Some(interval) = self.opts.consistency_check_interval else {
            return;
        };
        let mut checker = lock(&self.checker);
        if checker.is_some() || self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let me = self.me.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                // Only a weak reference between runs, so the checker does not
                // keep a dropped cacher alive.
                let Some(cacher) = me.upgrade() else { return };
                if let Err(e) = cacher.check_consistency().await {
                    // Mismatches were already logged as errors by the check.
                    tracing::debug!(error = %e, "watch cache consistency check failed");
                }
            }
        });
        *checker = Some(task.abort_handle());
    }

    fn stale(&self, cache: &ResourceCache, needed: Revision) -> Result<(), StorageError> {
        bump(&self.counters.stale_reads);
        let have = cache.revision();
        tracing::warn!(
            prefix = %cache.prefix,
            needed,
            have,
            "watch cache did not catch up in time"
        );
        if self.opts.fallback_when_stale {
            Ok(())
        } else {
            Err(StorageError::TooLargeRevision {
                requested: needed,
                current: have,
            })
        }
    }

    /// The contract's checks for an explicit revision, made against the
    /// inner store (the cache's ring may still hold compacted history); then
    /// waits, bounded, for the cache to reach the revision.
    async fn check_requested(
        &self,
        cache: &ResourceCache,
        requested: Revision,
    ) -> Result<(), StorageError> {
        let floor = self.inner.compacted_revision().await?;
        if floor > 0 && requested <= floor {
            return Err(StorageError::Expired {
                requested,
                compacted: floor,
            });
        }
        if requested > cache.revision() {
            let current = self.inner.current_revision().await?;
            if requested > current {
                return Err(StorageError::TooLargeRevision { requested, current });
            }
            // A miss here just means the request is served by the inner store.
            cache.wait_fresh(requested).await;
        }
        Ok(())
    }
}

impl Drop for Cacher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[async_trait]
impl Storage for Cacher {
    fn name(&self) -> &str {
        &self.name
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        self.inner.compacted_revision().await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError> {
        self.inner.create(key, value).await
    }

    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let Some(cache) = self.cache_for(prefix) else {
            return self.inner.list(prefix, opts).await;
        };
        match opts.revision {
            None if !self.opts.consistent_reads_from_cache => {}
            None => {
                let target = self.inner.current_revision().await?;
                if cache.wait_fresh(target).await {
                    if let Some(result) = cache.list_at(prefix, &opts, None, target) {
                        bump(&self.counters.lists_from_cache);
                        return Ok(result);
                    }
                }
                self.stale(&cache, target)?;
            }
            Some(requested) => {
                self.check_requested(&cache, requested).await?;
                if let Some(result) = cache.list_at(prefix, &opts, Some(requested), 0) {
                    bump(&self.counters.lists_from_cache);
                    return Ok(result);
                }
            }
        }
        bump(&self.counters.lists_from_storage);
        self.inner.list(prefix, opts).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue, StorageError> {
        self.inner.compare_and_swap(key, expected, value).await
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        self.inner.compare_and_delete(key, expected).await
    }

    async fn watch(&self, prefix: &str, opts: WatchOptions) -> Result<EventStream, StorageError> {
        let Some(cache) = self.cache_for(prefix) else {
            return self.inner.watch(prefix, opts).await;
        };
        let registered = match opts.after_revision {
            None if !self.opts.consistent_reads_from_cache => None,
            None => {
                // "From now" must include every write acknowledged before
                // the call, like a consistent list.
                let target = self.inner.current_revision().await?;
                if cache.wait_fresh(target).await {
                    cache.register(prefix, None, target, &opts)
                } else {
                    self.stale(&cache, target)?;
                    None
                }
            }
            Some(requested) => {
                self.check_requested(&cache, requested).await?;
                cache.register(prefix, Some(requested), 0, &opts)
            }
        };
        match registered {
            Some(stream) => {
                bump(&self.counters.watches_from_cache);
                Ok(stream)
            }
            None => {
                bump(&self.counters.watches_from_storage);
                self.inner.watch(prefix, opts).await
            }
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }
}

// ---------------------------------------------------------------------------
// One resource's cache

/// What readers may wait on: whether the cache is loaded and its revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Freshness {
    ready: bool,
    revision: Revision,
}

struct ResourceCache {
    prefix: String,
    inner: Arc<dyn Storage>,
    opts: Arc<CacherOptions>,
    counters: Arc<Counters>,
    state: RwLock<State>,
    /// Published by the feed after each change of `State::{ready,revision}`.
    fresh: watch::Sender<Freshness>,
    /// Asks the feed to drop its state and load it again.
    relist: Notify,
    feed: Mutex<Feed>,
}

/// The feed task's lifecycle; one lock orders `start` against `stop`.
enum Feed {
    NotStarted,
    Running(AbortHandle),
    Stopped,
}

struct State {
    /// False until the first load completed.
    ready: bool,
    /// `items` is the state as of this revision; every event up to it has
    /// been applied and fanned out.
    revision: Revision,
    items: BTreeMap<String, Arc<KeyValue>>,
    /// The most recent events in revision order. It holds every event of the
    /// resource in `(ring_floor, revision]`.
    ring: VecDeque<RingEntry>,
    ring_floor: Revision,
    watchers: Vec<WatcherSlot>,
}

struct RingEntry {
    event: Arc<Event>,
    /// The key's state just before the event; `None` if it did not exist.
    prev: Option<Arc<KeyValue>>,
}

struct WatcherSlot {
    prefix: String,
    tx: mpsc::Sender<Arc<Event>>,
    end: Arc<WatchEnd>,
}

/// Why the cache stopped feeding a watcher; read by its stream once the
/// buffered events are delivered.
#[derive(Default)]
struct WatchEnd(Mutex<Option<EndReason>>);

#[derive(Clone, Copy)]
enum EndReason {
    /// The buffer was full; everything up to `seen_upto` was buffered.
    Overflow {
        seen_upto: Revision,
        buffer: usize,
    },
    /// The cache re-listed; everything up to `seen_upto` was buffered.
    Relisted {
        seen_upto: Revision,
    },
    Stopped,
}

impl WatchEnd {
    fn set(&self, reason: EndReason) {
        lock(&self.0).get_or_insert(reason);
    }

    fn error(&self) -> StorageError {
        let msg = match *lock(&self.0) {
            Some(EndReason::Overflow { seen_upto, buffer }) => format!(
                "watch fell more than {buffer} events behind and was closed; watch again from revision {seen_upto}"
            ),
            Some(EndReason::Relisted { seen_upto }) => format!(
                "the watch cache re-listed from storage; watch again from revision {seen_upto}"
            ),
            Some(EndReason::Stopped) | None => "watch cache stopped".to_owned(),
        };
        StorageError::Unavailable(msg)
    }
}

/// Why the feed stopped following an inner watch.
enum Interrupt {
    Relist,
    Failed(StorageError),
}

impl ResourceCache {
    fn new(
        prefix: String,
        inner: Arc<dyn Storage>,
        opts: Arc<CacherOptions>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            prefix,
            inner,
            opts,
            counters,
            state: RwLock::new(State {
                ready: false,
                revision: 0,
                items: BTreeMap::new(),
                ring: VecDeque::new(),
                ring_floor: 0,
                watchers: Vec::new(),
            }),
            fresh: watch::channel(Freshness::default()).0,
            relist: Notify::new(),
            feed: Mutex::new(Feed::NotStarted),
        }
    }

    /// Spawns the feed once. Must run inside a Tokio runtime.
    fn start(self: &Arc<Self>) {
        let mut feed = lock(&self.feed);
        if let Feed::NotStarted = *feed {
            let task = tokio::spawn(self.clone().run_feed());
            *feed = Feed::Running(task.abort_handle());
        }
    }

    fn stop(&self) {
        if let Feed::Running(h) = std::mem::replace(&mut *lock(&self.feed), Feed::Stopped) {
            h.abort();
        }
        let mut st = write(&self.state);
        for w in st.watchers.drain(..) {
            w.end.set(EndReason::Stopped);
        }
    }

    fn revision(&self) -> Revision {
        read(&self.state).revision
    }

    fn publish(&self, ready: bool, revision: Revision) {
        let now = Freshness { ready, revision };
        self.fresh.send_if_modified(|f| {
            let changed = *f != now;
            *f = now;
            changed
        });
    }

    /// Waits, at most `freshness_timeout`, until the cache is loaded and at
    /// or past `revision`.
    async fn wait_fresh(&self, revision: Revision) -> bool {
        let mut rx = self.fresh.subscribe();
        let wait = rx.wait_for(|f| f.ready && f.revision >= revision);
        let caught_up = matches!(
            tokio::time::timeout(self.opts.freshness_timeout, wait).await,
            Ok(Ok(_))
        );
        caught_up
    }

    // -- the feed -----------------------------------------------------------

    /// Keeps the cache fed for as long as it exists: load, follow, and on
    /// failure resume from the cache's revision or, when the history needed
    /// is gone, load again.
    async fn run_feed(self: Arc<Self>) {
        let mut resume: Option<Revision> = None;
        let mut backoff = self.opts.retry_backoff;
        loop {
            let opts = WatchOptions {
                after_revision: resume,
                send_initial: resume.is_none(),
                progress_interval: Some(self.opts.inner_progress_interval),
            };
            let interrupt = match self.inner.watch(&self.prefix, opts).await {
                Err(e) => Interrupt::Failed(e),
                Ok(mut stream) => {
                    let loaded = match resume {
                        None => self.load(&mut stream).await,
                        Some(_) => {
                            bump(&self.counters.resumes);
                            Ok(())
                        }
                    };
                    match loaded {
                        Ok(()) => {
                            backoff = self.opts.retry_backoff;
                            self.follow(&mut stream).await
                        }
                        Err(e) => Interrupt::Failed(e),
                    }
                }
            };
            match interrupt {
                Interrupt::Relist => resume = None,
                Interrupt::Failed(e) => {
                    let (ready, revision) = {
                        let st = read(&self.state);
                        (st.ready, st.revision)
                    };
                    // Expired: the history after our revision is gone, so
                    // only a fresh load can continue. TooLargeRevision: the
                    // store went backwards; our state cannot be trusted.
                    let must_relist = matches!(
                        e,
                        StorageError::Expired { .. } | StorageError::TooLargeRevision { .. }
                    ) || !ready;
                    resume = if must_relist { None } else { Some(revision) };
                    tracing::warn!(
                        prefix = %self.prefix,
                        error = %e,
                        revision,
                        relist = must_relist,
                        "watch cache lost its storage watch"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                }
            }
        }
    }

    /// Reads an inner watch's initial state and installs it.
    async fn load(&self, stream: &mut EventStream) -> Result<(), StorageError> {
        let mut items = BTreeMap::new();
        loop {
            match stream.next().await {
                Some(Ok(e)) if e.kind == EventType::Progress => {
                    self.install(items, e.revision);
                    return Ok(());
                }
                Some(Ok(e)) if e.kind == EventType::Added => {
                    items.insert(e.kv.key.clone(), Arc::new(e.kv));
                }
                Some(Ok(e)) => {
                    return Err(StorageError::Internal(format!(
                        "{:?} event in a watch's initial state",
                        e.kind
                    )))
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(StorageError::Unavailable(
                        "storage watch ended during its initial state".into(),
                    ))
                }
            }
        }
    }

    /// Replaces the state with a freshly loaded one. Watchers of the old
    /// state are ended: the events between the two states are unknown.
    fn install(&self, items: BTreeMap<String, Arc<KeyValue>>, revision: Revision) {
        bump(&self.counters.relists);
        let ready = {
            let mut st = write(&self.state);
            let same = st.ready && st.revision == revision && st.items == items;
            if !same {
                if st.ready && st.revision == revision {
                    tracing::error!(
                        prefix = %self.prefix,
                        revision,
                        "watch cache state differed from storage at the same revision"
                    );
                }
                let seen_upto = st.revision;
                for w in st.watchers.drain(..) {
                    w.end.set(EndReason::Relisted { seen_upto });
                    bump(&self.counters.watchers_closed_by_relist);
                }
                st.items = items;
                st.ring.clear();
                st.ring_floor = revision;
                st.revision = revision;
            }
            st.ready = true;
            st.ready
        };
        tracing::debug!(prefix = %self.prefix, revision, "watch cache loaded");
        self.publish(ready, revision);
    }

    /// Applies the inner watch's items until it fails or a re-list is asked
    /// for.
    async fn follow(&self, stream: &mut EventStream) -> Interrupt {
        loop {
            let first = tokio::select! {
                biased;
                () = self.relist.notified() => return Interrupt::Relist,
                item = stream.next() => item,
            };
            let mut batch = vec![first];
            // Take whatever else is already there so that one lock covers a
            // burst. A pending `next` leaves the stream's state intact.
            while batch.len() < APPLY_BATCH && matches!(batch.last(), Some(Some(Ok(_)))) {
                match stream.next().now_or_never() {
                    Some(item) => batch.push(item),
                    None => break,
                }
            }
            if let Err(e) = self.apply(batch) {
                return Interrupt::Failed(e);
            }
        }
    }

    fn apply(&self, batch: Vec<Option<Result<Event, StorageError>>>) -> Result<(), StorageError> {
        let mut failure = None;
        let (ready, revision) = {
            let mut st = write(&self.state);
            for item in batch {
                match item {
                    Some(Ok(e)) => st.apply(e, self),
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    None => {
                        failure = Some(StorageError::Unavailable("storage watch ended".into()));
                        break;
                    }
                }
            }
            // Forget watchers whose streams were dropped.
            st.watchers.retain(|w| !w.tx.is_closed());
            (st.ready, st.revision)
        };
        self.publish(ready, revision);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // -- reads --------------------------------------------------------------

    /// A list served from memory at `at` (or the current revision, which
    /// must be at least `min_revision`); `None` when the cache cannot serve it.
    fn list_at(
        &self,
        prefix: &str,
        opts: &ListOptions,
        at: Option<Revision>,
        min_revision: Revision,
    ) -> Option<ListResult> {
        let limit = opts.limit.filter(|l| *l > 0);
        let (revision, candidates) = {
            let st = read(&self.state);
            let at = st.servable(at, min_revision)?;
            // Without a predicate every candidate matches, so one past the
            // limit tells whether there are more. With one, only pointers are
            // copied under the lock and the predicate runs outside it.
            let max = match opts.predicate {
                None => limit.map(|l| l.saturating_add(1)),
                Some(_) => None,
            };
            (
                at,
                st.snapshot(prefix, opts.start_after.as_deref(), at, max),
            )
        };
        let mut items = Vec::new();
        let mut more = false;
        for kv in candidates {
            if opts.predicate.as_ref().is_some_and(|p| !p(&kv)) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                break;
            }
            items.push(KeyValue::clone(&kv));
        }
        Some(ListResult {
            items,
            revision,
            more,
        })
    }

    /// Registers a watcher starting after `at` (or now, at least
    /// `min_revision`); `None` when the cache cannot serve it.
    fn register(
        self: &Arc<Self>,
        prefix: &str,
        at: Option<Revision>,
        min_revision: Revision,
        opts: &WatchOptions,
    ) -> Option<EventStream> {
        let mut st = write(&self.state);
        let at = st.servable(at, min_revision)?;
        let mut backlog = VecDeque::new();
        if opts.send_initial {
            let initial = st.snapshot(prefix, None, at, None);
            backlog.extend(initial.into_iter().map(Backlog::Initial));
            backlog.push_back(Backlog::Progress(at));
        }
        let first = st.ring.partition_point(|e| e.event.revision <= at);
        backlog.extend(
            st.ring
                .range(first..)
                .filter(|e| e.event.kv.key.starts_with(prefix))
                .map(|e| Backlog::Change(e.event.clone())),
        );
        let (tx, rx) = mpsc::channel(self.opts.watcher_buffer.max(1));
        let end = Arc::new(WatchEnd::default());
        st.watchers.push(WatcherSlot {
            prefix: prefix.to_owned(),
            tx,
            end: end.clone(),
        });
        drop(st);
        let watch = CacheWatch {
            cache: Arc::downgrade(self),
            backlog,
            rx,
            end,
            last: at,
            progress_interval: opts.progress_interval,
            progress_due: opts.progress_interval.map(|i| Instant::now() + i),
            done: false,
        };
        let stream = futures::stream::unfold(watch, |mut w| async move {
            let item = w.next().await?;
            Some((item, w))
        });
        Some(Box::pin(stream))
    }

    /// Compares the state with the inner store; `Ok(false)` when skipped.
    async fn check(&self) -> Result<bool, StorageError> {
        let (revision, items) = {
            let st = read(&self.state);
            if !st.ready {
                return Ok(false);
            }
            (
                st.revision,
                st.snapshot(&self.prefix, None, st.revision, None),
            )
        };
        bump(&self.counters.consistency_checks);
        let opts = ListOptions {
            revision: Some(revision),
            ..Default::default()
        };
        let stored = match self.inner.list(&self.prefix, opts).await {
            Ok(l) => l.items,
            // History compacted since: nothing to compare with.
            Err(StorageError::Expired { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(diff) = describe_diff(&items, &stored) else {
            return Ok(true);
        };
        bump(&self.counters.inconsistencies);
        tracing::error!(
            prefix = %self.prefix,
            revision,
            %diff,
            "watch cache is inconsistent with storage; re-listing"
        );
        self.relist.notify_one();
        Err(StorageError::Internal(format!(
            "watch cache for {} differs from storage at revision {revision}: {diff}",
            self.prefix
        )))
    }
}

/// Describes how the cache's items differ from the store's (both in key
/// order); `None` when equal.
fn describe_diff(cached: &[Arc<KeyValue>], stored: &[KeyValue]) -> Option<String> {
    use std::cmp::Ordering::{Greater, Less};
    let mut examples = Vec::new();
    let mut total = 0usize;
    let (mut c, mut s) = (cached.iter().peekable(), stored.iter().peekable());
    loop {
        let order = match (c.peek(), s.peek()) {
            (None, None) => break,
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (Some(x), Some(y)) => x.key.cmp(&y.key),
        };
        let diff = match (order, c.peek(), s.peek()) {
            (Less, Some(x), _) => Some(format!("{} only in cache", x.key)),
            (Greater, _, Some(y)) => Some(format!("{} missing from cache", y.key)),
            (_, Some(x), Some(y)) if ***x != **y => Some(format!(
                "{} differs (cache mod_revision {}, storage {})",
                x.key, x.mod_revision, y.mod_revision
            )),
            _ => None,
        };
        if order != Greater {
            c.next();
        }
        if order != Less {
            s.next();
        }
        if let Some(d) = diff {
            total += 1;
            if examples.len() < DIFF_EXAMPLES {
                examples.push(d);
            }
        }
    }
    (total > 0).then(|| format!("{total} difference(s): {}", examples.join("; ")))
}

impl State {
    /// The revision a read at `at` (or now, at least `min_revision`) is
    /// served at, if this state can serve it.
    fn servable(&self, at: Option<Revision>, min_revision: Revision) -> Option<Revision> {
        if !self.ready || self.revision < min_revision {
            return None;
        }
        let at = at.unwrap_or(self.revision);
        (self.ring_floor <= at && at <= self.revision).then_some(at)
    }

    /// The objects under `prefix` after `start_after`, in key order, as of
    /// `at` (which the ring must cover); at most `max` of them.
    fn snapshot(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Revision,
        max: Option<usize>,
    ) -> Vec<Arc<KeyValue>> {
        // A start key before the prefix does not narrow it.
        let after = start_after.filter(|s| *s >= prefix);
        let in_range = |key: &str| key.starts_with(prefix) && after.is_none_or(|a| key > a);

        // The state at `at` of every key changed since: the first later
        // event of a key carries the key's state before it.
        let mut undo: BTreeMap<&str, Option<&Arc<KeyValue>>> = BTreeMap::new();
        if at < self.revision {
            let first = self.ring.partition_point(|e| e.event.revision <= at);
            for e in self.ring.range(first..) {
                let key = e.event.kv.key.as_str();
                if in_range(key) {
                    undo.entry(key).or_insert(e.prev.as_ref());
                }
            }
        }

        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let mut current = self
            .items
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, kv)| kv)
            .take_while(|kv| kv.key.starts_with(prefix))
            .peekable();
        let mut undo = undo.into_iter().peekable();
        let mut out = Vec::new();
        while max.is_none_or(|m| out.len() < m) {
            // Merge the two key-ordered sources; an undo entry replaces the
            // current state of its key.
            let take_undo = match (current.peek(), undo.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(c), Some((k, _))) => *k <= c.key.as_str(),
            };
            let item = if take_undo {
                let (key, state) = undo.next().expect("peeked");
                if current.peek().is_some_and(|c| c.key == key) {
                    current.next();
                }
                state.cloned()
            } else {
                current.next().cloned()
            };
            out.extend(item);
        }
        out
    }

    /// Applies one inner-watch item and fans it out.
    fn apply(&mut self, e: Event, cache: &ResourceCache) {
        if e.kind == EventType::Progress {
            self.revision = self.revision.max(e.revision);
            return;
        }
        if e.revision <= self.revision {
            // The contract rules this out; applying it would corrupt both the
            // state and every watcher's stream.
            tracing::error!(
                prefix = %cache.prefix,
                revision = e.revision,
                cache_revision = self.revision,
                "storage watch repeated or reordered an event; ignored"
            );
            return;
        }
        let prev = match e.kind {
            EventType::Deleted => self.items.remove(&e.kv.key),
            _ => self.items.insert(e.kv.key.clone(), Arc::new(e.kv.clone())),
        };
        if (e.kind == EventType::Added) == prev.is_some() {
            tracing::warn!(
                prefix = %cache.prefix,
                key = %e.kv.key,
                kind = ?e.kind,
                "storage watch event does not match the cached state"
            );
        }
        let revision = e.revision;
        let event = Arc::new(e);
        let buffer = cache.opts.watcher_buffer.max(1);
        self.watchers.retain(|w| {
            if !event.kv.key.starts_with(&w.prefix) {
                return true;
            }
            match w.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.end.set(EndReason::Overflow {
                        seen_upto: revision - 1,
                        buffer,
                    });
                    bump(&cache.counters.slow_watchers_closed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.ring.push_back(RingEntry { event, prev });
        while self.ring.len() > cache.opts.event_ring_capacity {
            if let Some(old) = self.ring.pop_front() {
                self.ring_floor = old.event.revision;
            }
        }
        self.revision = revision;
    }
}

// ---------------------------------------------------------------------------
// Watch streams served from a cache

enum Backlog {
    /// An object of the initial state.
    Initial(Arc<KeyValue>),
    Change(Arc<Event>),
    Progress(Revision),
}

struct CacheWatch {
    // Weak, so open watches do not keep a stopped cache (and its store) alive.
    cache: Weak<ResourceCache>,
    /// Initial state and replayed events, delivered before the live buffer.
    backlog: VecDeque<Backlog>,
    rx: mpsc::Receiver<Arc<Event>>,
    end: Arc<WatchEnd>,
    /// The newest revision delivered (events or progress).
    last: Revision,
    progress_interval: Option<Duration>,
    progress_due: Option<Instant>,
    done: bool,
}

/// What a watcher finds when its progress timer fires.
enum Idle {
    Event(Arc<Event>),
    Progress(Revision),
    Closed,
    /// The cache is gone; only the buffer is left to drain.
    Orphaned,
}

impl CacheWatch {
    async fn next(&mut self) -> Option<Result<Event, StorageError>> {
        if self.done {
            return None;
        }
        if let Some(item) = self.backlog.pop_front() {
            return Some(Ok(self.deliver(item)));
        }
        loop {
            let received = match self.progress_due {
                None => self.rx.recv().await,
                Some(due) => tokio::select! {
                    item = self.rx.recv() => item,
                    () = tokio::time::sleep_until(due) => match self.idle() {
                        Idle::Event(e) => Some(e),
                        Idle::Progress(r) => return Some(Ok(self.deliver(Backlog::Progress(r)))),
                        Idle::Closed => None,
                        Idle::Orphaned => {
                            self.progress_due = None;
                            continue;
                        }
                    },
                },
            };
            return Some(match received {
                Some(e) => Ok(self.deliver(Backlog::Change(e))),
                None => {
                    self.done = true;
                    Err(self.end.error())
                }
            });
        }
    }

    /// The progress the watcher may report: the cache's revision, but only
    /// if nothing is waiting in the buffer. Checked under the state lock, so
    /// no event up to that revision can still be on its way in.
    fn idle(&mut self) -> Idle {
        let Some(cache) = self.cache.upgrade() else {
            return Idle::Orphaned;
        };
        let st = read(&cache.state);
        match self.rx.try_recv() {
            Ok(e) => Idle::Event(e),
            Err(mpsc::error::TryRecvError::Empty) => Idle::Progress(st.revision.max(self.last)),
            Err(mpsc::error::TryRecvError::Disconnected) => Idle::Closed,
        }
    }

    fn deliver(&mut self, item: Backlog) -> Event {
        let e = match item {
            Backlog::Initial(kv) => Event {
                kind: EventType::Added,
                revision: kv.mod_revision,
                kv: Arc::unwrap_or_clone(kv),
            },
            Backlog::Change(e) => Arc::unwrap_or_clone(e),
            Backlog::Progress(r) => Event::progress(r),
        };
        self.last = self.last.max(e.revision);
        self.progress_due = self.progress_interval.map(|i| Instant::now() + i);
        e
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use serde_json::json;

    use super::*;
    use crate::storage::embedded::{EmbeddedOptions, EmbeddedStore};
    use crate::storage::suite::StoreFixture;

    const WAIT: Duration = Duration::from_secs(30);
    const PODS: &str = "/registry/pods/";

    // -- fixtures -----------------------------------------------------------

    struct Fixture {
        cacher: Arc<Cacher>,
        embedded: Arc<EmbeddedStore>,
        flaky: Option<Arc<Flaky>>,
        /// Mismatches the case provokes on purpose.
        expected_inconsistencies: u64,
        // Last, so the stores are closed before the directory goes.
        _dir: tempfile::TempDir,
    }

    impl StoreFixture for Fixture {
        fn store(&self) -> Arc<dyn Storage> {
            self.cacher.clone()
        }
    }

    impl Drop for Fixture {
        /// Every case ends with a consistency check of every cache it used,
        /// besides the periodic ones that ran meanwhile.
        fn drop(&mut self) {
            if std::thread::panicking() {
                return;
            }
            let cacher = self.cacher.clone();
            let checked = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(cacher.check_consistency())
            });
            if self.expected_inconsistencies == 0 {
                checked.expect("the watch cache must match storage when a case ends");
            }
            assert_eq!(
                self.cacher.stats().inconsistencies,
                self.expected_inconsistencies,
                "the consistency checker found mismatches"
            );
        }
    }

    fn test_opts() -> CacherOptions {
        CacherOptions {
            inner_progress_interval: Duration::from_millis(20),
            retry_backoff: Duration::from_millis(10),
            ..Default::default()
        }
    }

    fn fixture_with(prefixes: &[&str], opts: CacherOptions, flaky: bool) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let embedded = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let flaky = flaky.then(|| Arc::new(Flaky::new(embedded.clone())));
        let inner: Arc<dyn Storage> = match &flaky {
            Some(f) => f.clone(),
            None => embedded.clone(),
        };
        let prefixes = prefixes.iter().map(|p| p.to_string()).collect();
        Fixture {
            cacher: Cacher::new(inner, prefixes, opts),
            embedded,
            flaky,
            expected_inconsistencies: 0,
            _dir: dir,
        }
    }

    /// One cache for the whole registry, loaded before the case writes, so
    /// replays and old revisions come from its ring.
    fn warm_fixture() -> Fixture {
        let opts = CacherOptions {
            cache_all_resources: false,
            ..test_opts()
        };
        fixture_with(&["/registry/"], opts, false)
    }

    /// A cache per case prefix, created on first use, so history from before
    /// it is served by the inner store.
    fn lazy_fixture() -> Fixture {
        fixture_with(&[], test_opts(), false)
    }

    mod warm {
        use super::*;
        crate::storage_suite!(warm_fixture());
    }

    mod lazy {
        use super::*;
        crate::storage_suite!(lazy_fixture());
    }

    /// A store whose watches can be made to fail, around an embedded one.
    struct Flaky {
        inner: Arc<EmbeddedStore>,
        /// Every open watch fails when this changes.
        epoch: watch::Sender<u64>,
        /// New watches fail while set.
        refuse: AtomicBool,
    }

    impl Flaky {
        fn new(inner: Arc<EmbeddedStore>) -> Self {
            Self {
                inner,
                epoch: watch::channel(0).0,
                refuse: AtomicBool::new(false),
            }
        }

        fn break_watches(&self) {
            self.epoch.send_modify(|e| *e += 1);
        }
    }

    #[async_trait]
    impl Storage for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn current_revision(&self) -> Result<Revision, StorageError> {
            self.inner.current_revision().await
        }
        async fn compacted_revision(&self) -> Result<Revision, StorageError> {
            self.inner.compacted_revision().await
        }
        async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError> {
            self.inner.create(key, value).await
        }
        async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
            self.inner.list(prefix, opts).await
        }
        async fn compare_and_swap(
            &self,
            key: &str,
            expected: Revision,
            value: Vec<u8>,
        ) -> Result<KeyValue, StorageError> {
            self.inner.compare_and_swap(key, expected, value).await
        }
        async fn compare_and_delete(
            &self,
            key: &str,
            expected: Revision,
        ) -> Result<KeyValue, StorageError> {
            self.inner.compare_and_delete(key, expected).await
        }
        async fn watch(
            &self,
            prefix: &str,
            opts: WatchOptions,
        ) -> Result<EventStream, StorageError> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(StorageError::Unavailable("refused by the test".into()));
            }
            let mut broken = self.epoch.subscribe();
            broken.borrow_and_update();
            let inner = self.inner.watch(prefix, opts).await?;
            let stream = futures::stream::unfold(
                (inner, broken, false),
                |(mut inner, mut broken, failed)| async move {
                    if failed {
                        return None;
                    }
                    tokio::select! {
                        biased;
                        _ = broken.changed() => {
                            let e = StorageError::Unavailable("failure injected by the test".into());
                            Some((Err(e), (inner, broken, true)))
                        }
                        item = inner.next() => Some((item?, (inner, broken, false))),
                    }
                },
            );
            Ok(Box::pin(stream))
        }
        async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
            self.inner.compact(revision).await
        }
    }

    // -- helpers ------------------------------------------------------------

    fn obj(name: &str, n: u64) -> Vec<u8> {
        let v = json!({"metadata": {"name": name, "uid": format!("uid-{name}")}, "spec": {"n": n}});
        serde_json::to_vec(&v).expect("json")
    }

    async fn next(stream: &mut EventStream) -> Option<Result<Event, StorageError>> {
        tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("timed out waiting for a watch item")
    }

    async fn next_change(stream: &mut EventStream) -> Event {
        loop {
            match next(stream).await {
                Some(Ok(e)) if e.kind == EventType::Progress => continue,
                Some(Ok(e)) => return e,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    fn change(kind: EventType, kv: &KeyValue) -> Event {
        Event {
            kind,
            kv: kv.clone(),
            revision: kv.mod_revision,
        }
    }

    fn cache_of(cacher: &Cacher, prefix: &str) -> Arc<ResourceCache> {
        read(&cacher.caches)
            .get(prefix)
            .cloned()
            .expect("cache exists")
    }

    // -- cases --------------------------------------------------------------

    #[test]
    fn resource_prefixes() {
        let cases = [
            ("/registry/pods/", Some("/registry/pods/")),
            ("/registry/pods/ns1/", Some("/registry/pods/")),
            ("/registry/pods/ns1/web", Some("/registry/pods/")),
            ("/registry/pods", None),
            ("/registry/", None),
            ("/registry//x/", None),
            ("/other/pods/", None),
            (
                "/registry/example.com/widgets/ns/",
                Some("/registry/example.com/widgets/"),
            ),
            ("/registry/example.com/widgets", None),
            ("/registry/example.com//", None),
            ("/registry/apps/deployments/ns/", Some("/registry/apps/")),
        ];
        for (prefix, want) in cases {
            assert_eq!(resource_prefix(prefix), want, "{prefix}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uncached_prefixes_pass_through() {
        let opts = CacherOptions {
            cache_all_resources: false,
            ..test_opts()
        };
        let f = fixture_with(&[PODS], opts, false);
        let kv = f
            .cacher
            .create("/registry/services/ns/a", obj("a", 0))
            .await
            .unwrap();
        let list = f
            .cacher
            .list("/registry/services/", ListOptions::default())
            .await
            .unwrap();
        assert_eq!(list.items, vec![kv]);
        let s = f.cacher.stats();
        assert_eq!(f.cacher.cached_prefixes(), vec![PODS.to_owned()]);
        assert_eq!((s.lists_from_cache, s.lists_from_storage), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consistent_list_after_write() {
        let f = fixture_with(&[PODS, "/registry/configmaps/"], test_opts(), false);
        let store = f.store();
        let mut live: BTreeMap<String, KeyValue> = BTreeMap::new();
        for i in 0..120u64 {
            let ns = format!("{PODS}ns{}/", i % 3);
            let kv = store
                .create(&format!("{ns}p{i}"), obj("p", i))
                .await
                .unwrap();
            live.insert(kv.key.clone(), kv.clone());
            // Updates and deletes must be visible just as immediately.
            if i % 4 == 1 {
                let old = live.values().next().cloned().unwrap();
                let new = store
                    .compare_and_swap(&old.key, old.mod_revision, obj("p", 1000 + i))
                    .await
                    .unwrap();
                live.insert(new.key.clone(), new);
            }
            if i % 5 == 2 {
                let old = live.values().nth(1).cloned().unwrap();
                store
                    .compare_and_delete(&old.key, old.mod_revision)
                    .await
                    .unwrap();
                live.remove(&old.key);
            }
            let written = store.current_revision().await.unwrap();
            let list = store.list(PODS, ListOptions::default()).await.unwrap();
            assert!(
                list.revision >= written,
                "list at {} < {written}",
                list.revision
            );
            assert_eq!(list.items, live.values().cloned().collect::<Vec<_>>());
            let narrowed = store.list(&ns, ListOptions::default()).await.unwrap();
            let want: Vec<_> = live
                .values()
                .filter(|kv| kv.key.starts_with(&ns))
                .cloned()
                .collect();
            assert_eq!(narrowed.items, want);

            // A write to another resource moves the store on; the pods
            // cache learns of it only through progress and must wait.
            if i % 20 == 0 {
                let cm = store
                    .create(&format!("/registry/configmaps/ns/c{i}"), obj("c", i))
                    .await
                    .unwrap();
                let list = store.list(PODS, ListOptions::default()).await.unwrap();
                assert!(list.revision >= cm.mod_revision);
            }
        }
        let s = f.cacher.stats();
        assert_eq!(s.stale_reads, 0);
        assert_eq!(s.lists_from_storage, 0);
        assert_eq!(s.lists_from_cache, 120 * 2 + 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thousand_watchers_receive_every_event_in_order() {
        const WATCHERS: usize = 1000;
        let f = fixture_with(&[PODS], test_opts(), false);
        let store = f.store();
        let ns0 = format!("{PODS}ns0/");
        let mut streams = Vec::new();
        for i in 0..WATCHERS {
            // Every tenth watches one namespace only.
            let prefix = if i % 10 == 0 {
                ns0.clone()
            } else {
                PODS.to_owned()
            };
            let stream = store.watch(&prefix, WatchOptions::default()).await.unwrap();
            streams.push((prefix, stream));
        }
        assert_eq!(f.cacher.stats().watchers, WATCHERS);

        let mut want = Vec::new();
        for i in 0..60u64 {
            let kv = store
                .create(&format!("{PODS}ns{}/p{i}", i % 2), obj("p", i))
                .await
                .unwrap();
            want.push(change(EventType::Added, &kv));
            if i % 3 == 0 {
                let kv = store
                    .compare_and_swap(&kv.key, kv.mod_revision, obj("p", i + 1))
                    .await
                    .unwrap();
                want.push(change(EventType::Modified, &kv));
            }
        }
        let want_ns0: Vec<_> = want
            .iter()
            .filter(|e| e.kv.key.starts_with(&ns0))
            .cloned()
            .collect();
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|(prefix, mut stream)| {
                let n = if prefix == PODS {
                    want.len()
                } else {
                    want_ns0.len()
                };
                tokio::spawn(async move {
                    let mut got = Vec::with_capacity(n);
                    for _ in 0..n {
                        got.push(next_change(&mut stream).await);
                    }
                    (prefix, got)
                })
            })
            .collect();
        for t in tasks {
            let (prefix, got) = t.await.unwrap();
            if prefix == PODS {
                assert_eq!(got, want);
            } else {
                assert_eq!(got, want_ns0);
            }
        }
        let s = f.cacher.stats();
        assert_eq!(s.watches_from_cache, WATCHERS as u64);
        assert_eq!(s.slow_watchers_closed, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_watcher_is_closed_without_blocking_others() {
        const BUFFER: usize = 8;
        const WRITES: usize = 50;
        let opts = CacherOptions {
            watcher_buffer: BUFFER,
            ..test_opts()
        };
        let f = fixture_with(&[PODS], opts, false);
        let store = f.store();
        let mut slow = store.watch(PODS, WatchOptions::default()).await.unwrap();
        let mut fast = store.watch(PODS, WatchOptions::default()).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..WRITES {
                got.push(next_change(&mut fast).await);
            }
            got
        });
        let mut want = Vec::new();
        for i in 0..WRITES {
            let kv = tokio::time::timeout(
                WAIT,
                store.create(&format!("{PODS}ns/p{i:03}"), obj("p", i as u64)),
            )
            .await
            .expect("a write blocked behind a slow watcher")
            .unwrap();
            want.push(change(EventType::Added, &kv));
            // Let the fast reader keep up with its small buffer.
            tokio::task::yield_now().await;
        }
        assert_eq!(reader.await.unwrap(), want, "the fast watcher was affected");

        // The slow watcher gets what fitted in its buffer, in order, then
        // an error naming where to resume.
        let mut got = Vec::new();
        let err = loop {
            match next(&mut slow).await {
                Some(Ok(e)) => got.push(e),
                Some(Err(e)) => break e,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(got, want[..BUFFER]);
        let resume_from = want[BUFFER].revision - 1;
        assert_eq!(
            err,
            StorageError::Unavailable(format!(
                "watch fell more than {BUFFER} events behind and was closed; watch again from revision {resume_from}"
            ))
        );
        assert!(next(&mut slow).await.is_none());
        let s = f.cacher.stats();
        assert_eq!(s.slow_watchers_closed, 1);

        // Watching again from there replays the rest from the ring.
        let mut again = store
            .watch(
                PODS,
                WatchOptions {
                    after_revision: Some(resume_from),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for e in &want[BUFFER..] {
            assert_eq!(&next_change(&mut again).await, e);
        }
        assert_eq!(f.cacher.stats().watches_from_cache, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inner_watch_error_resumes_without_gap() {
        let f = fixture_with(&[PODS], test_opts(), true);
        let flaky = f.flaky.clone().unwrap();
        let store = f.store();
        let mut w = store.watch(PODS, WatchOptions::default()).await.unwrap();
        let mut want = Vec::new();
        for round in 0..3 {
            for i in 0..4 {
                let kv = store
                    .create(&format!("{PODS}ns/r{round}-{i}"), obj("p", i))
                    .await
                    .unwrap();
                want.push(change(EventType::Added, &kv));
            }
            flaky.break_watches();
        }
        for e in &want {
            assert_eq!(&next_change(&mut w).await, e);
        }
        let cacher = f.cacher.clone();
        crate::storage::suite::eventually(WAIT, "the feed to resume", || {
            let cacher = cacher.clone();
            async move { cacher.stats().resumes >= 1 }
        })
        .await;
        let last = store
            .create(&format!("{PODS}ns/last"), obj("p", 9))
            .await
            .unwrap();
        assert_eq!(next_change(&mut w).await, change(EventType::Added, &last));
        let s = f.cacher.stats();
        assert_eq!(s.relists, 1, "a resumable failure must not re-list");
        assert_eq!(s.watchers_closed_by_relist, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relist_after_inner_watch_expired() {
        let f = fixture_with(&[PODS], test_opts(), true);
        let flaky = f.flaky.clone().unwrap();
        let store = f.store();
        let mut w = store.watch(PODS, WatchOptions::default()).await.unwrap();
        let a = store
            .create(&format!("{PODS}ns/a"), obj("a", 0))
            .await
            .unwrap();
        assert_eq!(next_change(&mut w).await, change(EventType::Added, &a));

        // The feed loses its watch, and the history it would resume from is
        // compacted before it gets another.
        flaky.refuse.store(true, Ordering::SeqCst);
        flaky.break_watches();
        let b = store
            .create(&format!("{PODS}ns/b"), obj("b", 0))
            .await
            .unwrap();
        let a2 = store
            .compare_and_swap(&a.key, a.mod_revision, obj("a", 1))
            .await
            .unwrap();
        // Not at the newest revision: by the contract a watch from the
        // floor itself is Expired too, and the client below watches from
        // its list's revision.
        store.compact(b.mod_revision).await.unwrap();
        flaky.refuse.store(false, Ordering::SeqCst);

        // The old watcher cannot be continued without a gap: it is ended.
        match next(&mut w).await {
            Some(Err(StorageError::Unavailable(msg))) => assert_eq!(
                msg,
                format!(
                    "the watch cache re-listed from storage; watch again from revision {}",
                    a.mod_revision
                )
            ),
            other => panic!("expected the watch to end with an error, got {other:?}"),
        }
        assert!(next(&mut w).await.is_none());
        let s = f.cacher.stats();
        assert_eq!(s.relists, 2);
        assert_eq!(s.watchers_closed_by_relist, 1);

        // Resuming there is impossible (compacted), so the client re-lists,
        // and the cache serves the new state.
        let resume = WatchOptions {
            after_revision: Some(a.mod_revision),
            ..Default::default()
        };
        match store.watch(PODS, resume).await {
            Err(StorageError::Expired { requested, .. }) => assert_eq!(requested, a.mod_revision),
            other => panic!("expected Expired, got {:?}", other.map(|_| ())),
        }
        let list = store.list(PODS, ListOptions::default()).await.unwrap();
        assert_eq!(list.items, vec![a2.clone(), b]);
        let mut w = store
            .watch(
                PODS,
                WatchOptions {
                    after_revision: Some(list.revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let c = store
            .create(&format!("{PODS}ns/c"), obj("c", 0))
            .await
            .unwrap();
        assert_eq!(next_change(&mut w).await, change(EventType::Added, &c));
        let s = f.cacher.stats();
        assert_eq!(s.watches_from_cache, 2);
        assert!(s.lists_from_cache >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consistency_checker_detects_injected_mismatch() {
        let opts = CacherOptions {
            consistency_check_interval: None,
            ..test_opts()
        };
        let mut f = fixture_with(&[PODS], opts, false);
        f.expected_inconsistencies = 1;
        let store = f.store();
        let mut kvs = Vec::new();
        for i in 0..5 {
            kvs.push(
                store
                    .create(&format!("{PODS}ns/p{i}"), obj("p", i))
                    .await
                    .unwrap(),
            );
        }
        store.list(PODS, ListOptions::default()).await.unwrap();
        let report = f.cacher.check_consistency().await.unwrap();
        assert_eq!(
            report,
            ConsistencyReport {
                checked: 1,
                skipped: 0
            }
        );

        // Corrupt the cache behind the feed's back: one object changed, one
        // lost, one invented.
        let cache = cache_of(&f.cacher, PODS);
        {
            let mut st = write(&cache.state);
            let mut changed = KeyValue::clone(&st.items[&kvs[0].key]);
            changed.value = Arc::from(obj("p", 99));
            st.items.insert(changed.key.clone(), Arc::new(changed));
            st.items.remove(&kvs[1].key);
            let invented = KeyValue {
                key: format!("{PODS}ns/zz"),
                ..kvs[2].clone()
            };
            st.items.insert(invented.key.clone(), Arc::new(invented));
        }
        let err = f.cacher.check_consistency().await.unwrap_err();
        let StorageError::Internal(msg) = err else {
            panic!("expected Internal, got {err:?}");
        };
        for part in [
            "3 difference(s)",
            &format!("{} differs", kvs[0].key),
            &format!("{} missing from cache", kvs[1].key),
            &format!("{PODS}ns/zz only in cache"),
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg:?}");
        }
        assert_eq!(f.cacher.stats().inconsistencies, 1);

        // The mismatch makes the cache re-list, which repairs it.
        let cacher = f.cacher.clone();
        crate::storage::suite::eventually(WAIT, "the cache to re-list", || {
            let cacher = cacher.clone();
            async move { cacher.stats().relists >= 2 }
        })
        .await;
        assert_eq!(f.cacher.check_consistency().await.unwrap().checked, 1);
        let list = store.list(PODS, ListOptions::default()).await.unwrap();
        assert_eq!(list.items, kvs);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn periodic_checker_runs() {
        let opts = CacherOptions {
            consistency_check_interval: Some(Duration::from_millis(10)),
            ..test_opts()
        };
        let f = fixture_with(&[PODS], opts, false);
        f.cacher
            .create(&format!("{PODS}ns/a"), obj("a", 0))
            .await
            .unwrap();
        let cacher = f.cacher.clone();
        crate::storage::suite::eventually(WAIT, "periodic checks", || {
            let cacher = cacher.clone();
            async move { cacher.stats().consistency_checks >= 3 }
        })
        .await;
    }

    /// A history over a few keys, then every revision of it read through
    /// the cache (from its ring) and from storage: lists, pages, narrowed
    /// prefixes and watches with their initial state must all agree.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_revisions_match_storage() {
        let opts = CacherOptions {
            cache_all_resources: false,
            event_ring_capacity: 1000,
            ..test_opts()
        };
        let f = fixture_with(&["/registry/"], opts, false);
        let store = f.store();
        let inner: Arc<dyn Storage> = f.embedded.clone();
        store.list(PODS, ListOptions::default()).await.unwrap();
        let start = store.current_revision().await.unwrap();
        let mut live: BTreeMap<String, KeyValue> = BTreeMap::new();
        let mut history = Vec::new();
        let mut seed = 7u64;
        for i in 0..120u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("{PODS}ns{}/k{}", (seed >> 33) % 2, (seed >> 40) % 6);
            match live.get(&key).cloned() {
                None => {
                    let kv = store.create(&key, obj("k", i)).await.unwrap();
                    history.push(change(EventType::Added, &kv));
                    live.insert(key, kv);
                }
                Some(old) if (seed >> 50).is_multiple_of(3) => {
                    let gone = store
                        .compare_and_delete(&key, old.mod_revision)
                        .await
                        .unwrap();
                    history.push(change(EventType::Deleted, &gone));
                    live.remove(&key);
                }
                Some(old) => {
                    let kv = store
                        .compare_and_swap(&key, old.mod_revision, obj("k", i))
                        .await
                        .unwrap();
                    history.push(change(EventType::Modified, &kv));
                    live.insert(key, kv);
                }
            }
        }
        let end = store.current_revision().await.unwrap();
        let ns1 = format!("{PODS}ns1/");
        let small_ring = CacherOptions {
            cache_all_resources: false,
            event_ring_capacity: 10,
            ..test_opts()
        };
        let small = Cacher::new(inner.clone(), vec!["/registry/".into()], small_ring);
        for cacher in [f.cacher.clone(), small] {
            let before = cacher.stats();
            for r in start..=end {
                for prefix in [PODS, ns1.as_str()] {
                    let at = ListOptions {
                        revision: Some(r),
                        ..Default::default()
                    };
                    let want = inner.list(prefix, at.clone()).await.unwrap();
                    let got = cacher.list(prefix, at).await.unwrap();
                    assert_eq!(
                        (got.items, got.revision),
                        (want.items.clone(), want.revision)
                    );

                    let page = ListOptions {
                        revision: Some(r),
                        limit: Some(2),
                        start_after: want.items.first().map(|kv| kv.key.clone()),
                        predicate: None,
                    };
                    let want_page = inner.list(prefix, page.clone()).await.unwrap();
                    let got_page = cacher.list(prefix, page).await.unwrap();
                    assert_eq!(got_page.items, want_page.items);
                    assert_eq!(got_page.more, want_page.more);

                    let opts = WatchOptions {
                        after_revision: Some(r),
                        send_initial: true,
                        progress_interval: None,
                    };
                    let mut got_w = cacher.watch(prefix, opts.clone()).await.unwrap();
                    let mut want_w = inner.watch(prefix, opts).await.unwrap();
                    // The initial state and its Progress, then the changes.
                    let tail = history
                        .iter()
                        .filter(|e| e.revision > r && e.kv.key.starts_with(prefix))
                        .count();
                    for _ in 0..want.items.len() + 1 + tail {
                        let w = next(&mut want_w).await.unwrap().unwrap();
                        let g = next(&mut got_w).await.unwrap().unwrap();
                        assert_eq!(g, w, "watch at {r} under {prefix}");
                    }
                }
            }
            let after = cacher.stats();
            assert_eq!(after.stale_reads, before.stale_reads);
            if Arc::ptr_eq(&cacher, &f.cacher) {
                assert_eq!(
                    after.lists_from_storage, before.lists_from_storage,
                    "the ring covers every revision"
                );
                assert_eq!(after.watches_from_storage, before.watches_from_storage);
            } else {
                assert!(
                    after.lists_from_storage > before.lists_from_storage,
                    "a small ring must delegate"
                );
                assert!(after.watches_from_storage > before.watches_from_storage);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_only_covers_delivered_events() {
        const WRITES: usize = 150;
        let f = fixture_with(&[PODS], test_opts(), false);
        let store = f.store();
        let opts = WatchOptions {
            progress_interval: Some(Duration::from_millis(1)),
            ..Default::default()
        };
        let mut all = store.watch(PODS, opts.clone()).await.unwrap();
        let mut quiet = store.watch(&format!("{PODS}quiet/"), opts).await.unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for i in 0..WRITES {
                    let kv = store
                        .create(&format!("{PODS}ns/p{i}"), obj("p", i as u64))
                        .await
                        .unwrap();
                    last = kv.mod_revision;
                    if i % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                }
                last
            })
        };
        let (mut progress, mut progress_events, mut changes, mut last_change) = (0, 0, 0, 0);
        while changes < WRITES {
            let e = next(&mut all).await.unwrap().unwrap();
            if e.kind == EventType::Progress {
                assert!(e.revision >= progress && e.revision >= last_change, "{e:?}");
                progress = e.revision;
                progress_events += 1;
            } else {
                assert!(
                    e.revision > progress,
                    "event at {} after progress {progress}",
                    e.revision
                );
                assert!(e.revision > last_change);
                last_change = e.revision;
                changes += 1;
            }
        }
        assert!(progress_events > 0, "no progress while idle between writes");
        let last = writer.await.unwrap();
        // A watcher whose prefix never changes still learns the revision.
        loop {
            let e = next(&mut quiet).await.unwrap().unwrap();
            assert_eq!(e.kind, EventType::Progress);
            if e.revision >= last {
                break;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_ends_watches_and_passes_through() {
        let f = fixture_with(&[PODS], test_opts(), false);
        let store = f.store();
        let mut w = store.watch(PODS, WatchOptions::default()).await.unwrap();
        let a = store
            .create(&format!("{PODS}ns/a"), obj("a", 0))
            .await
            .unwrap();
        assert_eq!(next_change(&mut w).await, change(EventType::Added, &a));

        // Dropping a cacher (here a second one) stops it the same way.
        let other = Cacher::new(f.embedded.clone(), vec![PODS.into()], test_opts());
        let mut w2 = other.watch(PODS, WatchOptions::default()).await.unwrap();
        drop(other);

        f.cacher.shutdown();
        for w in [&mut w, &mut w2] {
            match next(w).await {
                Some(Err(StorageError::Unavailable(msg))) => assert_eq!(msg, "watch cache stopped"),
                other => panic!("expected the watch to end with an error, got {other:?}"),
            }
            assert!(next(w).await.is_none());
        }
        let list = store.list(PODS, ListOptions::default()).await.unwrap();
        assert_eq!(list.items, vec![a]);
        let s = f.cacher.stats();
        assert_eq!((s.resources, s.lists_from_cache), (0, 0));
    }
}
