//! The etcd storage backend: `Storage` on an etcd v3 cluster, laid out like
//! kube-apiserver's so that `etcdctl get --prefix /registry` looks familiar.
//!
//! This module owns the key mapping, the translation of each trait operation
//! into etcd requests (transactions, ranges, watches, compactions), the
//! mapping of etcd's errors onto `StorageError`, the periodic compactor and
//! the tracking of the compacted revision. It must not know about kinds, HTTP
//! or JSON (values are opaque bytes), must not retry a request that may have
//! reached etcd (a retried write could apply twice; `guaranteed_update` above
//! it owns retries), and must never wait on etcd without a deadline, except
//! on an idle watch, which HTTP/2 keepalive guards instead.
//!
//! # Connections and errors
//!
//! One gRPC client balances requests over all endpoints. Every unary
//! request, and the start of every watch, has `request_timeout` as its
//! deadline; past it the operation fails with `Unavailable`, as do
//! connection failures, etcd's "no leader" and its timeouts. The client
//! keeps picking a dead member now and then, so a request that could not
//! even connect (and so cannot have been applied) is retried, with backoff,
//! until its deadline: with one member of three down requests succeed; with
//! every member down they fail after the deadline rather than at once.
//!
//! # Keys
//!
//! The keys the trait receives start with `/registry`. The configured
//! `EtcdOptions::prefix` replaces that leading `/registry`: with the default
//! prefix `/registry`, trait key `/registry/pods/ns/a` is etcd key
//! `/registry/pods/ns/a`; with prefix `/tenant-a/registry` it is
//! `/tenant-a/registry/pods/ns/a`. Reads map etcd keys back the same way.
//! Trait keys outside `/registry` are rejected, so the mapping is a
//! bijection and nothing is ever written outside the prefix, except
//! `compact_rev_key` (below).
//!
//! # Revisions
//!
//! The trait's revision is etcd's: an object's `resourceVersion` is its
//! key's `mod_revision`, and a list or write reports the header revision of
//! the etcd response. Every write is a single-key transaction, so each gets
//! its own etcd revision:
//! - create: `if create_revision(k) == 0 then put`;
//! - compare-and-swap: `if mod_revision(k) == expected && version(k) > 0
//!   then put; get k (keys only) else get k (keys only)` — the read inside
//!   the transaction returns the new `create_revision` without shipping the
//!   old value back; the `version > 0` guard keeps `expected == 0` from
//!   creating a missing key;
//! - compare-and-delete: the same guard, then a delete returning the
//!   previous state.
//!
//! Reads are linearizable (never serializable), so a read after an
//! acknowledged write sees it, whichever member answers.
//!
//! # Compaction
//!
//! The trait says "history at and below the compacted revision is gone".
//! etcd's compaction at `r` keeps revision `r` itself readable; this backend
//! is stricter and treats a request for a revision at or below the highest
//! compaction it knows of as `Expired`. It knows of: its own `compact`
//! calls, its periodic compactor, the value of `compact_rev_key` (read at
//! connect and on every compactor tick), and the compact revision etcd
//! reports when a read or watch hits a compacted revision. Compactions by
//! other clients it has not yet learned about are only noticed once etcd
//! itself refuses a revision (anything below etcd's compaction revision).
//!
//! The periodic compactor follows kube-apiserver's protocol, so several API
//! servers (rkube or kube) sharing one etcd compact once per interval between
//! them: every `compaction_interval` it runs `if version(compact_rev_key) ==
//! v then put(compact_rev_key, r)`, where `r` is the revision it saw at the
//! previous tick; the winner compacts to `r`, the others learn the new
//! version (and `r` as the compacted revision). History of at least one
//! interval is always kept. `compact_rev_key` lives at the etcd root, outside
//! the prefix, exactly where kube-apiserver keeps it, because compaction is
//! global to the etcd cluster whatever the prefix.
//!
//! # Watches
//!
//! Each trait watch is one etcd watch (its own gRPC stream, multiplexed on
//! the shared connection) with `prev_kv`, started at `after + 1`. "From now"
//! first reads the current revision, so the start is an exact revision.
//! `send_initial` lists the prefix at the start revision page by page
//! (Added events), sends Progress at that revision, then watches from the
//! revision after it. A cancellation for compaction becomes `Expired`; a
//! broken stream becomes `Unavailable` and ends the stream (the caller
//! re-watches from its last revision).
//!
//! Progress: with `progress_interval`, the etcd watch asks for etcd's
//! periodic progress notifications. Those travel through the same per-watch
//! queue as events and are only sent to watchers that are caught up, so
//! their revision is safe to report. Progress requested by the client
//! (`RequestProgress`) is answered out of band in etcd before 3.4.25 / 3.5.8
//! and can overtake events still queued (the test
//! `progress_never_runs_ahead_of_events` catches exactly that on 3.4.23 if
//! such answers are trusted), so requests are only made to servers whose
//! version, read once at connect, has the fix. When the interval passes with
//! nothing delivered, the stream emits Progress at the highest revision known
//! safe: the start revision, the last delivered event, or the last trusted
//! progress notification. On an unfixed etcd this revision advances over
//! other prefixes' writes only as often as the server's
//! `--experimental-watch-progress-notify-interval` (default 10 minutes; run
//! such an etcd with a few seconds).

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, GetResponse, Identity,
    KvClient, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchStream,
};

use super::{
    Event, EventStream, EventType, KeyValue, ListOptions, ListResult, Revision, Storage,
    StorageError, WatchOptions,
};

/// The prefix every trait key starts with; replaced by the configured one.
const TRAIT_ROOT: &str = "/registry";

/// The default etcd prefix: kube-apiserver's layout.
pub const DEFAULT_PREFIX: &str = "/registry";

/// The key through which API servers sharing an etcd agree on compactions
/// (kube-apiserver's name and place: the etcd root).
pub const COMPACT_REV_KEY: &str = "compact_rev_key";

/// Keys fetched per range request when listing; bounds one response's size
/// (etcd's own limit counts all keys, matching or not).
const LIST_PAGE: usize = 500;

/// Largest gRPC message accepted from etcd. etcd's own send limit is
/// effectively unbounded and one page of large objects can exceed tonic's
/// 4 MiB default; this is gRPC's maximum.
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// HTTP/2 keepalive on the connection, so that a watch on a dead or
/// partitioned member fails instead of waiting forever (kube-apiserver's
/// values). Pings are only sent while a stream is open: etcd's default
/// enforcement closes connections that ping while idle.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

// gRPC status codes (stable wire values), matched without naming tonic.
const GRPC_CANCELLED: i32 = 1;
const GRPC_UNKNOWN: i32 = 2;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_UNAVAILABLE: i32 = 14;

/// TLS material for talking to etcd over `https://` endpoints.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// CA bundle that signed the etcd servers' certificates. Required: no
    /// system trust roots are built in.
    pub ca_file: PathBuf,
    /// Client certificate and key, for etcd's `--client-cert-auth`; both or
    /// neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Replaces the leading `/registry` of every key (see the module docs).
    /// Must start with `/` and not be just `/`; a trailing `/` is ignored.
    pub prefix: String,
    pub tls: Option<EtcdTls>,
    /// How often the periodic compactor runs; `Duration::ZERO` disables it.
    pub compaction_interval: Duration,
    /// Deadline of every unary request (and of connecting and starting a
    /// watch); past it the operation fails with `Unavailable`.
    pub request_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            tls: None,
            compaction_interval: Duration::from_secs(5 * 60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The etcd-backed store. See the module documentation for the design.
pub struct EtcdStore {
    shared: Arc<Shared>,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

/// What requests and open watch streams need; watch streams hold it so they
/// keep working (until etcd ends them) after the store is dropped.
struct Shared {
    kv: KvClient,
    watch: WatchClient,
    /// For error messages.
    endpoints: String,
    /// The etcd prefix replacing `/registry`, without a trailing `/`.
    prefix: String,
    timeout: Duration,
    /// The highest compaction known (see the module docs); 0 if none.
    compacted: AtomicU64,
    /// Whether etcd answers progress requests in order with events.
    ordered_progress_requests: bool,
    server_version: String,
}

// ---------------------------------------------------------------------------
// Helpers

fn internal(msg: impl Into<String>) -> StorageError {
    StorageError::Internal(msg.into())
}

/// A trait revision as etcd's signed revision.
fn etcd_revision(r: Revision) -> Result<i64, StorageError> {
    i64::try_from(r).map_err(|_| internal(format!("revision {r} is out of etcd's range")))
}

/// An etcd revision as the trait's; etcd never reports negative ones.
fn revision(r: i64) -> Revision {
    Revision::try_from(r).unwrap_or(0)
}

/// The end of the etcd range holding every key that starts with `prefix`:
/// the prefix with its last byte below 0xff incremented (and the rest
/// dropped). All-0xff or empty prefixes range to the end of the keyspace,
/// which etcd spells `\0`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The smallest key strictly after `key`.
fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

fn grpc_status(e: &etcd_client::Error) -> Option<(i32, &str)> {
    match e {
        etcd_client::Error::GRpcStatus(s) => Some((s.code() as i32, s.message())),
        _ => None,
    }
}

/// etcd's `ErrCompacted`: the requested revision is below its compaction.
fn is_compacted(e: &etcd_client::Error) -> bool {
    grpc_status(e).is_some_and(|(_, m)| m.contains("required revision has been compacted"))
}

/// etcd's `ErrFutureRev`: the requested revision does not exist yet.
fn is_future_revision(e: &etcd_client::Error) -> bool {
    grpc_status(e).is_some_and(|(_, m)| m.contains("required revision is a future revision"))
}

/// Whether etcd's answers to progress requests are ordered with events:
/// fixed in 3.4.25 and 3.5.8; every 3.6+ has the fix.
fn progress_requests_are_ordered(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    match (major, minor) {
        (3, 4) => patch >= 25,
        (3, 5) => patch >= 8,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

/// Whether a request failed before reaching etcd: no connection to the
/// chosen endpoint could be made. Only such requests are retried (even
/// writes: they cannot have been applied).
fn never_sent(e: &etcd_client::Error) -> bool {
    grpc_status(e).is_some_and(|(code, m)| code == GRPC_UNAVAILABLE && m.contains("connect error"))
}

/// Runs `request` until it reaches etcd, for at most `deadline`. The
/// client balances over all endpoints and keeps picking a dead member now
/// and then; a retry goes to another pick. With every member down this
/// waits out the deadline, with backoff. `Err` carries the last failure
/// when the deadline passed.
async fn until_sent<T, F, Fut>(
    deadline: Duration,
    mut request: F,
) -> Result<Result<T, etcd_client::Error>, Option<String>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let mut last = None;
    let attempts = async {
        let mut backoff = Duration::from_millis(5);
        loop {
            match request().await {
                Err(e) if never_sent(&e) => {
                    last = Some(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    };
    match tokio::time::timeout(deadline, attempts).await {
        Ok(result) => Ok(result),
        Err(_) => Err(last),
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, StorageError> {
    std::fs::read(path)
        .map_err(|e| internal(format!("cannot read etcd {what} {}: {e}", path.display())))
}

fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, StorageError> {
    let mut opts =
        TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem(&tls.ca_file, "CA")?));
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            opts = opts.identity(Identity::from_pem(
                read_pem(cert, "client certificate")?,
                read_pem(key, "client key")?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(internal(
                "etcd TLS: cert_file and key_file must be given together",
            ))
        }
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------
// Requests

impl Shared {
    fn to_etcd(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let rest = key
            .strip_prefix(TRAIT_ROOT)
            .ok_or_else(|| internal(format!("key {key:?} is outside {TRAIT_ROOT}")))?;
        let mut out = Vec::with_capacity(self.prefix.len() + rest.len());
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(rest.as_bytes());
        Ok(out)
    }

    fn trait_key(&self, key: &[u8]) -> Result<String, StorageError> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .ok_or_else(|| {
                internal(format!(
                    "etcd returned key {:?} outside prefix {:?}",
                    String::from_utf8_lossy(key),
                    self.prefix
                ))
            })?;
        Ok(format!("{TRAIT_ROOT}{rest}"))
    }

    fn to_kv(&self, kv: etcd_client::KeyValue) -> Result<KeyValue, StorageError> {
        let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue {
            key: self.trait_key(&key)?,
            value: Arc::from(value),
            create_revision: revision(create_revision),
            mod_revision: revision(mod_revision),
        })
    }

    fn floor(&self) -> Revision {
        self.compacted.load(Ordering::SeqCst)
    }

    fn learn_compacted(&self, r: Revision) {
        self.compacted.fetch_max(r, Ordering::SeqCst);
    }

    fn map_err(&self, what: &str, e: etcd_client::Error) -> StorageError {
        let unavailable = match &e {
            etcd_client::Error::GRpcStatus(s) => {
                let code = s.code() as i32;
                let message = s.message();
                // tonic reports some connection failures as Unknown
                // "transport error"; etcd's "no leader" and timeouts are
                // Unavailable; an overloaded etcd or one out of space (its
                // NOSPACE alarm) is ResourceExhausted, as is an oversized
                // request, which retrying cannot fix.
                matches!(
                    code,
                    GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED | GRPC_CANCELLED
                ) || (code == GRPC_UNKNOWN && message.contains("transport"))
                    || (code == GRPC_RESOURCE_EXHAUSTED
                        && (message.contains("too many requests")
                            || message.contains("database space exceeded")))
            }
            etcd_client::Error::TransportError(_)
            | etcd_client::Error::IoError(_)
            | etcd_client::Error::WatchError(_) => true,
            _ => false,
        };
        if unavailable {
            StorageError::Unavailable(format!("etcd {what} at {} failed: {e}", self.endpoints))
        } else {
            StorageError::Internal(format!("etcd {what} failed: {e}"))
        }
    }

    /// Runs one request under the deadline (see [`until_sent`]), leaving
    /// etcd's error unmapped for callers that look at it.
    async fn raw<T, F, Fut>(
        &self,
        what: &str,
        request: F,
    ) -> Result<Result<T, etcd_client::Error>, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        until_sent(self.timeout, request).await.map_err(|last| {
            StorageError::Unavailable(format!(
                "etcd {what} at {} timed out after {:?}{}",
                self.endpoints,
                self.timeout,
                last.map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ))
        })
    }

    /// Runs one request under the deadline and maps its error.
    async fn call<T, F, Fut>(&self, what: &str, request: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.raw(what, request)
            .await?
            .map_err(|e| self.map_err(what, e))
    }

    async fn raw_get(
        &self,
        what: &str,
        key: Vec<u8>,
        opts: Option<GetOptions>,
    ) -> Result<Result<GetResponse, etcd_client::Error>, StorageError> {
        self.raw(what, || {
            let (mut kv, key, opts) = (self.kv.clone(), key.clone(), opts.clone());
            async move { kv.get(key, opts).await }
        })
        .await
    }

    async fn get_raw_key(
        &self,
        key: Vec<u8>,
        opts: Option<GetOptions>,
    ) -> Result<GetResponse, StorageError> {
        self.raw_get("get", key, opts)
            .await?
            .map_err(|e| self.map_err("get", e))
    }

    async fn txn(&self, what: &str, txn: Txn) -> Result<TxnResponse, StorageError> {
        self.call(what, || {
            let (mut kv, txn) = (self.kv.clone(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        // A linearizable count of one key: the cheapest read that carries
        // the cluster's current revision in its header.
        let resp = self
            .get_raw_key(
                COMPACT_REV_KEY.into(),
                Some(GetOptions::new().with_count_only()),
            )
            .await?;
        Ok(revision(resp.header().map_or(0, |h| h.revision())))
    }

    /// The error for a revision etcd reported as compacted: asks etcd for
    /// its compaction revision (a watch from a compacted revision is
    /// cancelled carrying it) and raises the known floor to it.
    async fn expired(&self, requested: Revision) -> StorageError {
        if let Some(c) = self.probe_compaction(requested).await {
            self.learn_compacted(c);
        }
        StorageError::Expired {
            requested,
            compacted: self.floor().max(requested),
        }
    }

    async fn probe_compaction(&self, requested: Revision) -> Option<Revision> {
        let start = etcd_revision(requested.max(1)).ok()?;
        let mut client = self.watch.clone();
        let probe = async move {
            let opts = etcd_client::WatchOptions::new().with_start_revision(start);
            let mut stream = client.watch(COMPACT_REV_KEY, Some(opts)).await.ok()?;
            loop {
                let resp = stream.message().await.ok()??;
                if resp.canceled() {
                    return (resp.compact_revision() > 0)
                        .then(|| revision(resp.compact_revision()));
                }
                if !resp.created() {
                    return None;
                }
            }
        };
        tokio::time::timeout(self.timeout, probe)
            .await
            .ok()
            .flatten()
    }

    /// The error for a revision etcd reported as in the future.
    async fn too_large(&self, requested: Revision) -> StorageError {
        match self.current_revision().await {
            Ok(current) => StorageError::TooLargeRevision { requested, current },
            Err(e) => e,
        }
    }

    /// The locally known part of the rule for a requested revision: above
    /// the compaction floor (etcd checks the rest).
    fn check_floor(&self, requested: Revision) -> Result<(), StorageError> {
        let floor = self.floor();
        if floor > 0 && requested <= floor {
            return Err(StorageError::Expired {
                requested,
                compacted: floor,
            });
        }
        Ok(())
    }

    /// One range request over `[start, end)`, at `at` (0: current), mapping
    /// compaction and future-revision refusals for the trait revision
    /// `requested`.
    async fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        at: i64,
        limit: usize,
        requested: Revision,
    ) -> Result<GetResponse, StorageError> {
        let mut opts = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        if at > 0 {
            opts = opts.with_revision(at);
        }
        match self.raw_get("range", start, Some(opts)).await? {
            Ok(resp) => Ok(resp),
            Err(e) if is_compacted(&e) => Err(self.expired(requested).await),
            Err(e) if is_future_revision(&e) => Err(self.too_large(requested).await),
            Err(e) => Err(self.map_err("range", e)),
        }
    }

    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        let mut resp = self.get_raw_key(self.to_etcd(key)?, None).await?;
        match resp.take_kvs().into_iter().next() {
            Some(found) => self.to_kv(found),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let etcd_prefix = self.to_etcd(prefix)?;
        let end = prefix_end(&etcd_prefix);
        // Revision 0 in etcd means "current"; the trait's revision 0 is the
        // empty state before the first write, which etcd's revision 1 is.
        let (mut at, requested) = match opts.revision {
            Some(r) => {
                self.check_floor(r)?;
                let Ok(at) = etcd_revision(r.max(1)) else {
                    return Err(self.too_large(r).await);
                };
                (at, r)
            }
            None => (0, 0),
        };
        let mut start = etcd_prefix.clone();
        if let Some(after) = opts.start_after.as_deref().filter(|a| *a >= prefix) {
            if !after.starts_with(prefix) {
                // Every key under the prefix sorts before `after`.
                let current = self.current_revision().await?;
                let revision = match opts.revision {
                    Some(r) if r > current => {
                        return Err(StorageError::TooLargeRevision {
                            requested: r,
                            current,
                        })
                    }
                    Some(r) => r,
                    None => current,
                };
                return Ok(ListResult {
                    items: Vec::new(),
                    revision,
                    more: false,
                });
            }
            start = key_after(&self.to_etcd(after)?);
        }
        let limit = opts.limit.filter(|l| *l > 0);
        // Without a predicate one key past the limit tells whether there is
        // more; with one, matches are unknown until read.
        let page = match (limit, &opts.predicate) {
            (Some(l), None) => (l + 1).min(LIST_PAGE),
            _ => LIST_PAGE,
        };
        let mut items = Vec::new();
        let mut more = false;
        'pages: loop {
            let mut resp = self
                .range(start.clone(), end.clone(), at, page, requested)
                .await?;
            if at == 0 {
                // Later pages read at the first page's revision, so the
                // whole list is one consistent snapshot.
                at = resp.header().map_or(0, |h| h.revision());
            }
            let etcd_more = resp.more();
            let kvs = resp.take_kvs();
            let Some(last) = kvs.last().map(|kv| kv.key().to_vec()) else {
                break;
            };
            for kv in kvs {
                let kv = self.to_kv(kv)?;
                if opts.predicate.as_ref().is_some_and(|p| !p(&kv)) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    more = true;
                    break 'pages;
                }
                items.push(kv);
            }
            if !etcd_more {
                break;
            }
            start = key_after(&last);
        }
        Ok(ListResult {
            items,
            revision: opts.revision.unwrap_or(revision(at)),
            more,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError> {
        let etcd_key = self.to_etcd(key)?;
        let value: Arc<[u8]> = Arc::from(value);
        let txn = Txn::new()
            .when([Compare::create_revision(
                etcd_key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(etcd_key, value.to_vec(), None)]);
        let resp = self.txn("create", txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let rev = revision(resp.header().map_or(0, |h| h.revision()));
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    /// The guard of swaps and deletes: the key exists at `expected`.
    fn unchanged_since(key: &[u8], expected: i64) -> [Compare; 2] {
        [
            Compare::mod_revision(key.to_vec(), CompareOp::Equal, expected),
            Compare::version(key.to_vec(), CompareOp::Greater, 0),
        ]
    }

    /// Why a guarded write's transaction failed, from its `get` (keys only)
    /// of the key.
    fn lost(
        &self,
        key: &str,
        expected: Revision,
        responses: Vec<TxnOpResponse>,
    ) -> Result<StorageError, StorageError> {
        let current = match responses.into_iter().next() {
            Some(TxnOpResponse::Get(mut r)) => r.take_kvs().into_iter().next(),
            _ => return Err(internal("etcd transaction returned no read of the key")),
        };
        Ok(match current {
            None => StorageError::NotFound {
                key: key.to_owned(),
            },
            Some(kv) => StorageError::Conflict {
                key: key.to_owned(),
                expected,
                actual: revision(kv.mod_revision()),
            },
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue, StorageError> {
        let etcd_key = self.to_etcd(key)?;
        let keys_only = || Some(GetOptions::new().with_keys_only());
        let value: Arc<[u8]> = Arc::from(value);
        let txn = Txn::new()
            .when(Self::unchanged_since(&etcd_key, etcd_revision(expected)?))
            .and_then([
                TxnOp::put(etcd_key.clone(), value.to_vec(), None),
                TxnOp::get(etcd_key.clone(), keys_only()),
            ])
            .or_else([TxnOp::get(etcd_key, keys_only())]);
        let resp = self.txn("compare-and-swap", txn).await?;
        if !resp.succeeded() {
            return Err(self.lost(key, expected, resp.op_responses())?);
        }
        let rev = revision(resp.header().map_or(0, |h| h.revision()));
        // The read after the put, in the same transaction, sees the put.
        let written = resp
            .op_responses()
            .into_iter()
            .nth(1)
            .and_then(|r| match r {
                TxnOpResponse::Get(mut r) => r.take_kvs().into_iter().next(),
                _ => None,
            });
        let written = written.ok_or_else(|| internal("etcd swap returned no read of the key"))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision(written.create_revision()),
            mod_revision: rev,
        })
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let etcd_key = self.to_etcd(key)?;
        let txn = Txn::new()
            .when(Self::unchanged_since(&etcd_key, etcd_revision(expected)?))
            .and_then([TxnOp::delete(
                etcd_key.clone(),
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(
                etcd_key,
                Some(GetOptions::new().with_keys_only()),
            )]);
        let resp = self.txn("compare-and-delete", txn).await?;
        if !resp.succeeded() {
            return Err(self.lost(key, expected, resp.op_responses())?);
        }
        let rev = revision(resp.header().map_or(0, |h| h.revision()));
        let prev = resp
            .op_responses()
            .into_iter()
            .next()
            .and_then(|r| match r {
                TxnOpResponse::Delete(mut d) => d.take_prev_kvs().into_iter().next(),
                _ => None,
            });
        let prev = prev.ok_or_else(|| internal("etcd delete returned no previous state"))?;
        let mut gone = self.to_kv(prev)?;
        gone.mod_revision = rev;
        Ok(gone)
    }

    async fn compact(&self, rev: Revision) -> Result<(), StorageError> {
        if rev <= self.floor() {
            return Ok(());
        }
        let Ok(at) = etcd_revision(rev) else {
            return Err(self.too_large(rev).await);
        };
        let compaction = self
            .raw("compact", || {
                let mut kv = self.kv.clone();
                async move { kv.compact(at, None).await }
            })
            .await?;
        match compaction {
            Ok(_) => {}
            // Someone compacted further already: history at `rev` is gone.
            Err(e) if is_compacted(&e) => {}
            Err(e) if is_future_revision(&e) => return Err(self.too_large(rev).await),
            Err(e) => return Err(self.map_err("compact", e)),
        }
        self.learn_compacted(rev);
        Ok(())
    }

    /// Reads `compact_rev_key`: its version (the compactor's turn counter)
    /// and the revision it names (the latest agreed compaction).
    fn parse_compact_key(kv: Option<&etcd_client::KeyValue>) -> (i64, Revision) {
        match kv {
            Some(kv) => (
                kv.version(),
                std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.trim().parse::<Revision>().ok())
                    .unwrap_or(0),
            ),
            None => (0, 0),
        }
    }

    async fn read_compact_key(&self) -> Result<(i64, Revision), StorageError> {
        let resp = self.get_raw_key(COMPACT_REV_KEY.into(), None).await?;
        Ok(Self::parse_compact_key(resp.kvs().first()))
    }

    /// One compactor tick (kube-apiserver's protocol, see the module docs):
    /// returns the compact key's version to expect next time and the
    /// revision to compact to next time.
    async fn compaction_round(
        &self,
        version: i64,
        target: Revision,
    ) -> Result<(i64, Revision), StorageError> {
        let txn = Txn::new()
            .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, version)])
            .and_then([TxnOp::put(COMPACT_REV_KEY, target.to_string(), None)])
            .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
        let resp = self.txn("compaction turn", txn).await?;
        let seen = revision(resp.header().map_or(0, |h| h.revision()));
        if !resp.succeeded() {
            // Another server took this turn: follow its count and learn
            // what it compacted to.
            let current = match resp.op_responses().into_iter().next() {
                Some(TxnOpResponse::Get(r)) => Self::parse_compact_key(r.kvs().first()),
                _ => (0, 0),
            };
            self.learn_compacted(current.1);
            return Ok((current.0, seen));
        }
        // The turn is taken whether or not etcd compacts; a failure is only
        // logged, and the next winner compacts further anyway.
        if target > 0 {
            match self.compact(target).await {
                Ok(()) => tracing::debug!(revision = target, "etcd store: compacted"),
                Err(e) => tracing::warn!(error = %e, "etcd store: compaction failed"),
            }
        }
        Ok((version + 1, seen))
    }
}

async fn run_compactor(shared: Weak<Shared>, interval: Duration, mut version: i64) {
    let mut target: Revision = 0;
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.compaction_round(version, target).await {
            Ok((v, next)) => (version, target) = (v, next),
            // The turn was not taken: the next tick tries the same one.
            Err(e) => tracing::warn!(error = %e, "etcd store: periodic compaction failed"),
        }
    }
}

// ---------------------------------------------------------------------------
// The store

impl EtcdStore {
    /// Connects to an etcd cluster and checks that it answers (failing with
    /// `Unavailable` after `request_timeout` otherwise). Starts the periodic
    /// compactor unless `compaction_interval` is zero; it stops when the
    /// store is dropped.
    pub async fn connect(
        endpoints: &[String],
        opts: EtcdOptions,
    ) -> Result<Arc<Self>, StorageError> {
        if endpoints.is_empty() {
            return Err(internal("no etcd endpoints configured"));
        }
        // A prefix not starting with `/` (or just `/`) would cover
        // `compact_rev_key` and other tools' keys at the root.
        let prefix = opts.prefix.trim_end_matches('/');
        if !prefix.starts_with('/') {
            return Err(internal(format!(
                "etcd prefix {:?} must start with '/' and name a directory",
                opts.prefix
            )));
        }
        let joined = endpoints.join(",");
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(opts.request_timeout)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(false)
            // Requests (watches above all) fail on a member that lost its
            // leader, rather than stalling on a minority partition.
            .with_require_leader(true);
        if let Some(tls) = &opts.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let unavailable = |e: String| {
            StorageError::Unavailable(format!("cannot connect to etcd at {joined}: {e}"))
        };
        let client = tokio::time::timeout(
            opts.request_timeout,
            Client::connect(endpoints, Some(connect)),
        )
        .await
        .map_err(|_| unavailable(format!("timed out after {:?}", opts.request_timeout)))?
        .map_err(|e| unavailable(e.to_string()))?;
        let maintenance = client.maintenance_client();
        let status = until_sent(opts.request_timeout, || {
            let mut maintenance = maintenance.clone();
            async move { maintenance.status().await }
        })
        .await
        .map_err(|last| {
            unavailable(format!(
                "no answer within {:?}{}",
                opts.request_timeout,
                last.map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ))
        })?
        .map_err(|e| unavailable(e.to_string()))?;
        let server_version = status.version().to_owned();
        let shared = Arc::new(Shared {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            endpoints: joined,
            prefix: prefix.to_owned(),
            timeout: opts.request_timeout,
            compacted: AtomicU64::new(0),
            ordered_progress_requests: progress_requests_are_ordered(&server_version),
            server_version,
        });
        let (compact_version, compacted) = shared.read_compact_key().await?;
        shared.learn_compacted(compacted);
        let compactor = (!opts.compaction_interval.is_zero()).then(|| {
            tokio::spawn(run_compactor(
                Arc::downgrade(&shared),
                opts.compaction_interval,
                compact_version,
            ))
        });
        tracing::info!(
            endpoints = %shared.endpoints,
            prefix = %shared.prefix,
            version = %shared.server_version,
            compacted,
            "etcd store connected"
        );
        Ok(Arc::new(Self { shared, compactor }))
    }

    /// The etcd server version seen at connect.
    /// Whether this etcd orders progress notifications after the events
    /// they cover (3.4.25+, 3.5.8+), so caches may rely on them.
    pub fn progress_requests_supported(&self) -> bool {
        self.shared.ordered_progress_requests
    }

    pub fn server_version(&self) -> &str {
        &self.shared.server_version
    }

    /// The etcd key a trait key is stored under.
    pub fn etcd_key(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.shared.to_etcd(key)
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(task) = self.compactor.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl Storage for EtcdStore {
    fn name(&self) -> &str {
        "etcd"
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.shared.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.shared.floor())
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError> {
        self.shared.create(key, value).await
    }

    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        self.shared.get(key).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        self.shared.list(prefix, opts).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue, StorageError> {
        self.shared.compare_and_swap(key, expected, value).await
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        self.shared.compare_and_delete(key, expected).await
    }

    async fn watch(&self, prefix: &str, opts: WatchOptions) -> Result<EventStream, StorageError> {
        let shared = self.shared.clone();
        let etcd_prefix = shared.to_etcd(prefix)?;
        let current = shared.current_revision().await?;
        let start = match opts.after_revision {
            Some(r) if r > current => {
                return Err(StorageError::TooLargeRevision {
                    requested: r,
                    current,
                })
            }
            Some(r) => {
                shared.check_floor(r)?;
                r
            }
            None => current,
        };
        let phase = if opts.send_initial {
            Phase::Initial {
                next_key: etcd_prefix.clone(),
            }
        } else {
            Phase::Start
        };
        let state = WatchState {
            range_end: prefix_end(&etcd_prefix),
            etcd_prefix,
            shared,
            phase,
            start,
            pending: VecDeque::new(),
            done: false,
            safe: start,
            progress_interval: opts.progress_interval,
            progress_due: opts
                .progress_interval
                .map(|i| tokio::time::Instant::now() + i),
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        });
        Ok(Box::pin(stream))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.shared.compact(revision).await
    }
}

// ---------------------------------------------------------------------------
// Watch streams

enum Phase {
    /// Sending the state at the start revision as Added events, a page of
    /// keys at a time, from `next_key`.
    Initial { next_key: Vec<u8> },
    /// The etcd watch is yet to be opened.
    Start,
    /// Following the etcd watch with this id.
    Live { stream: Box<WatchStream>, id: i64 },
}

struct WatchState {
    shared: Arc<Shared>,
    etcd_prefix: Vec<u8>,
    range_end: Vec<u8>,
    phase: Phase,
    /// Changes after this revision are delivered.
    start: Revision,
    pending: VecDeque<Result<Event, StorageError>>,
    done: bool,
    /// Every change up to here has been delivered (or did not match); the
    /// only revision Progress may report.
    safe: Revision,
    progress_interval: Option<Duration>,
    /// When to emit the next Progress if nothing else is delivered first.
    progress_due: Option<tokio::time::Instant>,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event, StorageError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                self.progress_due = self
                    .progress_interval
                    .map(|i| tokio::time::Instant::now() + i);
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                self.done = true;
                // Drop the etcd stream now rather than with the state.
                self.phase = Phase::Start;
                // After whatever the failed fill already queued.
                self.pending.push_back(Err(e));
            }
        }
    }

    async fn fill(&mut self) -> Result<(), StorageError> {
        match &mut self.phase {
            Phase::Initial { next_key } => {
                let from = std::mem::take(next_key);
                let at = etcd_revision(self.start.max(1))?;
                let mut resp = self
                    .shared
                    .range(from, self.range_end.clone(), at, LIST_PAGE, self.start)
                    .await?;
                let more = resp.more();
                let kvs = resp.take_kvs();
                match kvs.last() {
                    Some(last) if more => {
                        self.phase = Phase::Initial {
                            next_key: key_after(last.key()),
                        }
                    }
                    _ => self.phase = Phase::Start,
                }
                for kv in kvs {
                    let kv = self.shared.to_kv(kv)?;
                    let revision = kv.mod_revision;
                    self.pending.push_back(Ok(Event {
                        kind: EventType::Added,
                        kv,
                        revision,
                    }));
                }
                if matches!(self.phase, Phase::Start) {
                    self.pending.push_back(Ok(Event::progress(self.start)));
                }
                Ok(())
            }
            Phase::Start => {
                let mut opts = etcd_client::WatchOptions::new()
                    .with_range(self.range_end.clone())
                    .with_start_revision(etcd_revision(self.start + 1)?)
                    .with_prev_key();
                if self.progress_interval.is_some() {
                    opts = opts.with_progress_notify();
                }
                let stream = self
                    .shared
                    .call("watch", || {
                        let mut client = self.shared.watch.clone();
                        let (key, opts) = (self.etcd_prefix.clone(), opts.clone());
                        async move { client.watch(key, Some(opts)).await }
                    })
                    .await?;
                // The id is learned from the creation response.
                self.phase = Phase::Live {
                    stream: Box::new(stream),
                    id: -1,
                };
                Ok(())
            }
            Phase::Live { stream, id } => {
                let received = match self.progress_due {
                    Some(due) => tokio::select! {
                        message = stream.message() => Some(message),
                        _ = tokio::time::sleep_until(due) => None,
                    },
                    None => Some(stream.message().await),
                };
                let resp = match received {
                    None => {
                        self.pending.push_back(Ok(Event::progress(self.safe)));
                        if self.shared.ordered_progress_requests {
                            // The answer arrives as a response below; a
                            // failure to ask shows up there too.
                            let _ = stream.request_progress().await;
                        }
                        return Ok(());
                    }
                    Some(Err(e)) => return Err(self.shared.map_err("watch", e)),
                    Some(Ok(None)) => {
                        return Err(StorageError::Unavailable(format!(
                            "etcd at {} ended the watch",
                            self.shared.endpoints
                        )))
                    }
                    Some(Ok(Some(resp))) => resp,
                };
                if resp.canceled() {
                    let compacted = revision(resp.compact_revision());
                    if compacted > 0 {
                        self.shared.learn_compacted(compacted);
                        return Err(StorageError::Expired {
                            requested: self.safe,
                            compacted: self.shared.floor().max(self.safe),
                        });
                    }
                    return Err(StorageError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    )));
                }
                if resp.created() {
                    *id = resp.watch_id();
                    return Ok(());
                }
                let header = revision(resp.header().map_or(0, |h| h.revision()));
                if resp.events().is_empty() {
                    // A progress notification. Periodic ones (our watch id)
                    // are ordered with events; answers to requests (id -1)
                    // only on fixed servers.
                    let trusted = (*id >= 0 && resp.watch_id() == *id)
                        || self.shared.ordered_progress_requests;
                    if trusted && self.progress_interval.is_some() {
                        self.safe = self.safe.max(header);
                        self.pending.push_back(Ok(Event::progress(self.safe)));
                    }
                    return Ok(());
                }
                for e in resp.events() {
                    let event = self.convert(e)?;
                    // Not the header revision: while etcd catches a watcher
                    // up from history it may stamp a batch with a revision
                    // whose remaining events are still to come.
                    self.safe = self.safe.max(event.revision);
                    self.pending.push_back(Ok(event));
                }
                Ok(())
            }
        }
    }

    fn convert(&self, e: &etcd_client::Event) -> Result<Event, StorageError> {
        let kv = e
            .kv()
            .ok_or_else(|| internal("etcd watch event without a key"))?;
        let at = revision(kv.mod_revision());
        match e.event_type() {
            etcd_client::EventType::Put => {
                let kv = self.shared.to_kv(kv.clone())?;
                let kind = if kv.create_revision == kv.mod_revision {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                Ok(Event {
                    kind,
                    kv,
                    revision: at,
                })
            }
            etcd_client::EventType::Delete => {
                // etcd omits the previous state when the revision before
                // the delete was compacted away under a lagging watcher.
                let Some(prev) = e.prev_kv() else {
                    return Err(StorageError::Expired {
                        requested: self.safe,
                        compacted: self.shared.floor().max(at.saturating_sub(1)).max(self.safe),
                    });
                };
                let mut gone = self.shared.to_kv(prev.clone())?;
                gone.mod_revision = at;
                Ok(Event {
                    kind: EventType::Deleted,
                    kv: gone,
                    revision: at,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures::StreamExt;

    use super::*;
    use crate::storage::etcd_test_server::{EtcdTestOptions, EtcdTestServer, EtcdTestTls};
    use crate::storage::suite::StoreFixture;

    const WAIT: Duration = Duration::from_secs(30);

    /// A store on its own throw-away etcd. Declared store first, so it is
    /// dropped before the server is killed.
    struct Fixture {
        store: Arc<EtcdStore>,
        server: EtcdTestServer,
    }

    impl StoreFixture for Fixture {
        fn store(&self) -> Arc<dyn Storage> {
            self.store.clone()
        }
    }

    fn test_options() -> EtcdOptions {
        EtcdOptions {
            compaction_interval: Duration::ZERO,
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    async fn fixture_with(opts: EtcdOptions) -> Fixture {
        let server = EtcdTestServer::start().await;
        let store = EtcdStore::connect(&[server.client_url()], opts)
            .await
            .expect("connect to the test etcd");
        Fixture { store, server }
    }

    // One etcd per case: several cases compact, and etcd's compaction is
    // global, so sharing a server would let one case expire another's
    // revisions (a member starts in well under a second). The test server
    // sends its own progress notifications every 100ms, which is what lets
    // `watch_progress_when_idle` see progress advance on etcd 3.4.23 (see
    // the module docs on progress).
    crate::storage_suite!(fixture_with(test_options()).await);

    async fn raw_client(server: &EtcdTestServer) -> etcd_client::Client {
        etcd_client::Client::connect([server.client_url()], None)
            .await
            .expect("raw etcd client")
    }

    fn object(name: &str) -> Vec<u8> {
        format!(r#"{{"metadata":{{"name":"{name}","uid":"uid-{name}"}}}}"#).into_bytes()
    }

    async fn next_item(stream: &mut EventStream) -> Option<Result<Event, StorageError>> {
        tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("timed out waiting for a watch item")
    }

    /// Polls `cond` until it holds or `WAIT` passes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_live_under_the_configured_prefix() {
        let f = fixture_with(EtcdOptions {
            prefix: "/tenant-a/registry/".into(),
            ..test_options()
        })
        .await;
        let a = f
            .store
            .create("/registry/pods/ns/a", object("a"))
            .await
            .unwrap();
        f.store
            .create("/registry/pods/ns/b", object("b"))
            .await
            .unwrap();
        assert_eq!(
            f.store.etcd_key("/registry/pods/ns/a").unwrap(),
            b"/tenant-a/registry/pods/ns/a".to_vec()
        );

        let mut raw = raw_client(&f.server).await;
        let resp = raw
            .get("/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        let keys: Vec<&[u8]> = resp.kvs().iter().map(|kv| kv.key()).collect();
        assert_eq!(
            keys,
            [
                &b"/tenant-a/registry/pods/ns/a"[..],
                b"/tenant-a/registry/pods/ns/b"
            ],
            "nothing may be written outside the prefix"
        );
        let stored = &resp.kvs()[0];
        assert_eq!(stored.value(), object("a").as_slice());
        assert_eq!(revision(stored.mod_revision()), a.mod_revision);
        assert_eq!(revision(stored.create_revision()), a.create_revision);

        // A key written by someone else under the prefix reads back mapped.
        raw.put("/tenant-a/registry/pods/ns/c", object("c"), None)
            .await
            .unwrap();
        let list = f
            .store
            .list("/registry/pods/", ListOptions::default())
            .await
            .unwrap();
        let keys: Vec<&str> = list.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/registry/pods/ns/a",
                "/registry/pods/ns/b",
                "/registry/pods/ns/c"
            ]
        );

        // The default prefix is kube-apiserver's layout, and separate
        // prefixes on one etcd do not see each other.
        let default = EtcdStore::connect(&[f.server.client_url()], test_options())
            .await
            .unwrap();
        let kv = default
            .create("/registry/pods/ns/a", object("x"))
            .await
            .unwrap();
        let raw_kv = raw.get("/registry/pods/ns/a", None).await.unwrap();
        assert_eq!(raw_kv.kvs()[0].value(), object("x").as_slice());
        assert_eq!(revision(raw_kv.kvs()[0].mod_revision()), kv.mod_revision);
        let own = default
            .list("/registry/", ListOptions::default())
            .await
            .unwrap();
        assert_eq!(own.items, vec![kv]);

        assert!(matches!(
            f.store.create("/elsewhere/a", object("a")).await,
            Err(StorageError::Internal(_))
        ));
        for bad in ["", "/", "registry"] {
            let opts = EtcdOptions {
                prefix: bad.into(),
                ..test_options()
            };
            assert!(
                matches!(
                    EtcdStore::connect(&[f.server.client_url()], opts).await,
                    Err(StorageError::Internal(_))
                ),
                "prefix {bad:?} accepted"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_by_another_client_is_learned() {
        let f = fixture_with(test_options()).await;
        let b = "/registry/learned/";
        let r1 = f.store.create(&format!("{b}a"), object("a")).await.unwrap();
        let r2 = f
            .store
            .compare_and_swap(&r1.key, r1.mod_revision, object("a2"))
            .await
            .unwrap();
        let r3 = f
            .store
            .compare_and_swap(&r1.key, r2.mod_revision, object("a3"))
            .await
            .unwrap();
        let mut raw = raw_client(&f.server).await;
        raw.compact(etcd_revision(r2.mod_revision).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(
            f.store.compacted_revision().await.unwrap(),
            0,
            "not yet known"
        );

        // A second store, so the watch below reaches etcd without the
        // first store's learned floor answering first.
        let other = EtcdStore::connect(&[f.server.client_url()], test_options())
            .await
            .unwrap();

        let err = f
            .store
            .list(
                b,
                ListOptions {
                    revision: Some(r1.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StorageError::Expired {
                requested: r1.mod_revision,
                compacted: r2.mod_revision
            }
        );
        assert_eq!(f.store.compacted_revision().await.unwrap(), r2.mod_revision);

        let mut watch = other
            .watch(
                b,
                WatchOptions {
                    after_revision: Some(r1.mod_revision - 1),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            next_item(&mut watch).await,
            Some(Err(StorageError::Expired {
                requested: r1.mod_revision - 1,
                compacted: r2.mod_revision
            }))
        );
        assert_eq!(next_item(&mut watch).await, None, "an expired watch ends");
        assert_eq!(other.compacted_revision().await.unwrap(), r2.mod_revision);

        // Above the compaction everything still works.
        let ok = f
            .store
            .list(
                b,
                ListOptions {
                    revision: Some(r3.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ok.items, vec![r3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn periodic_compaction_runs_and_stops_with_the_store() {
        let interval = Duration::from_millis(200);
        let f = fixture_with(EtcdOptions {
            compaction_interval: interval,
            ..test_options()
        })
        .await;
        let first = f
            .store
            .create("/registry/periodic/a", object("a"))
            .await
            .unwrap();
        let store = f.store.clone();
        crate::storage::suite::eventually(WAIT, "the compactor to pass the first write", || {
            let store = store.clone();
            async move { store.compacted_revision().await.unwrap() >= first.mod_revision }
        })
        .await;
        drop(store);
        let floor = f.store.compacted_revision().await.unwrap();
        let err = f
            .store
            .list(
                "/registry/periodic/",
                ListOptions {
                    revision: Some(first.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Expired { .. }), "{err:?}");

        // etcd itself compacted, and the turn key names the compaction.
        let mut raw = raw_client(&f.server).await;
        let old = raw
            .get(
                "/registry/periodic/a",
                Some(GetOptions::new().with_revision(etcd_revision(floor - 1).unwrap())),
            )
            .await;
        assert!(
            old.as_ref().is_err_and(is_compacted),
            "etcd still serves revision {}: {old:?}",
            floor - 1
        );
        let turn = raw.get(COMPACT_REV_KEY, None).await.unwrap();
        let (version, named) = Shared::parse_compact_key(turn.kvs().first());
        assert!(version >= 2, "version {version}");
        assert!(
            named >= floor,
            "compact_rev_key names {named}, floor {floor}"
        );

        // Dropping the store stops the compactor: the turn key stays put.
        let Fixture { store, server } = f;
        drop(store);
        tokio::time::sleep(interval / 2).await;
        let before = raw.get(COMPACT_REV_KEY, None).await.unwrap();
        tokio::time::sleep(interval * 4).await;
        let after = raw.get(COMPACT_REV_KEY, None).await.unwrap();
        assert_eq!(
            before.kvs()[0].version(),
            after.kvs()[0].version(),
            "the compactor outlived its store"
        );
        drop(server);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compactors_sharing_an_etcd_take_turns() {
        let interval = Duration::from_millis(200);
        let opts = EtcdOptions {
            compaction_interval: interval,
            ..test_options()
        };
        let f = fixture_with(opts.clone()).await;
        let started = Instant::now();
        let second = EtcdStore::connect(&[f.server.client_url()], opts)
            .await
            .unwrap();
        for i in 0..5 {
            f.store
                .create(&format!("/registry/turns/k{i}"), object("k"))
                .await
                .unwrap();
        }
        let (a, b) = (f.store.clone(), second.clone());
        crate::storage::suite::eventually(WAIT, "both stores to know a compaction", || {
            let (a, b) = (a.clone(), b.clone());
            async move {
                a.compacted_revision().await.unwrap() > 0
                    && b.compacted_revision().await.unwrap() > 0
            }
        })
        .await;
        drop((a, b));
        let mut raw = raw_client(&f.server).await;
        let turn = raw.get(COMPACT_REV_KEY, None).await.unwrap();
        let version = turn.kvs()[0].version();
        // Each store ticks at most once per interval; taking turns means the
        // key advanced about once per interval, not once per store tick.
        let ticks = (started.elapsed().as_millis() / interval.as_millis()) as i64;
        assert!(
            version <= ticks + 1,
            "{version} turns in {ticks} intervals: both compactors won"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connecting_to_nothing_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let err = EtcdStore::connect(
            &[format!("http://127.0.0.1:{port}")],
            EtcdOptions {
                request_timeout: Duration::from_secs(1),
                ..test_options()
            },
        )
        .await
        .err()
        .expect("connected to nothing");
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_etcd_is_unavailable_then_recovers() {
        let timeout = Duration::from_secs(2);
        let mut f = fixture_with(EtcdOptions {
            request_timeout: timeout,
            ..test_options()
        })
        .await;
        let b = "/registry/outage/";
        let a = f.store.create(&format!("{b}a"), object("a")).await.unwrap();
        let mut watch = f.store.watch(b, WatchOptions::default()).await.unwrap();

        f.server.stop();
        let started = Instant::now();
        let err = f.store.get(&a.key).await.unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        let err = f
            .store
            .create(&format!("{b}b"), object("b"))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        let err = f.store.current_revision().await.unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < timeout * 3 + Duration::from_secs(1),
            "three requests took {:?} with a {timeout:?} deadline each",
            started.elapsed()
        );
        match next_item(&mut watch).await {
            Some(Err(StorageError::Unavailable(_))) => {}
            other => panic!("expected the watch to fail, got {other:?}"),
        }
        assert_eq!(next_item(&mut watch).await, None);

        f.server.restart().await;
        let store = f.store.clone();
        let key = a.key.clone();
        crate::storage::suite::eventually(WAIT, "reads to work again", || {
            let (store, key) = (store.clone(), key.clone());
            async move { store.get(&key).await.is_ok() }
        })
        .await;
        assert_eq!(f.store.get(&a.key).await.unwrap(), a, "data survived");
        let mut watch = f.store.watch(b, WatchOptions::default()).await.unwrap();
        let c = f.store.create(&format!("{b}c"), object("c")).await.unwrap();
        let e = next_item(&mut watch).await.unwrap().unwrap();
        assert_eq!((e.kind, e.kv), (EventType::Added, c));
    }

    /// Progress must never claim a revision whose events are still to come,
    /// also while etcd catches a watcher up from history in batches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_never_runs_ahead_of_events() {
        const WRITERS: usize = 8;
        const PER_WRITER: usize = 150;
        let f = fixture_with(test_options()).await;
        let b = "/registry/ordering/";
        let start = f.store.current_revision().await.unwrap();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = f.store.clone();
                tokio::spawn(async move {
                    for i in 0..PER_WRITER {
                        store
                            .create(&format!("{b}w{w}-{i}"), object("x"))
                            .await
                            .unwrap();
                        // Writes elsewhere advance etcd's revision between
                        // this prefix's events.
                        store
                            .create(&format!("/registry/noise/w{w}-{i}"), object("n"))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        let mut watch = f
            .store
            .watch(
                b,
                WatchOptions {
                    after_revision: Some(start),
                    progress_interval: Some(Duration::from_millis(2)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut seen = 0;
        let mut last_event = start;
        let mut promised = start;
        let mut progress_events = 0;
        while seen < WRITERS * PER_WRITER {
            let e = next_item(&mut watch).await.unwrap().unwrap();
            if e.kind == EventType::Progress {
                assert!(e.revision >= promised, "progress went backwards");
                promised = e.revision;
                progress_events += 1;
                continue;
            }
            assert!(
                e.revision > promised,
                "event at {} after progress promised {promised}",
                e.revision
            );
            assert!(e.revision > last_event);
            last_event = e.revision;
            seen += 1;
            if seen % 100 == 0 {
                // A slow consumer lets etcd's queue for this watcher fill.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for w in writers {
            w.await.unwrap();
        }
        assert!(progress_events > 0, "no progress while consuming slowly");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_member_cluster_survives_losing_a_member() {
        let mut server = EtcdTestServer::start_cluster(3).await;
        let store = EtcdStore::connect(&server.client_urls(), test_options())
            .await
            .unwrap();
        let b = "/registry/cluster/";
        let a = store.create(&format!("{b}a"), object("a")).await.unwrap();
        let mut watch = store
            .watch(
                b,
                WatchOptions {
                    after_revision: Some(a.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        server.stop_member(0);
        // Requests routed to the dead member may fail until the client
        // notices; after that the remaining quorum serves everything.
        let mut last = a.clone();
        let deadline = Instant::now() + WAIT;
        let mut consecutive = 0;
        while consecutive < 20 {
            assert!(
                Instant::now() < deadline,
                "the cluster never served steadily"
            );
            match store
                .compare_and_swap(&last.key, last.mod_revision, object("again"))
                .await
            {
                Ok(kv) => {
                    last = kv;
                    consecutive += 1;
                }
                Err(StorageError::Unavailable(_)) => consecutive = 0,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(store.get(&a.key).await.unwrap(), last);
        // The watch either was on a surviving member and sees the first
        // swap, or was on the killed one and says so.
        match next_item(&mut watch).await {
            Some(Ok(e)) => assert_eq!(
                (e.kind, e.kv.value),
                (EventType::Modified, Arc::from(object("again")))
            ),
            Some(Err(StorageError::Unavailable(_))) => {}
            other => panic!("unexpected watch item {other:?}"),
        }
        server.restart_member(0).await;
        let again = store
            .compare_and_swap(&last.key, last.mod_revision, object("back"))
            .await
            .unwrap();
        assert!(again.mod_revision > last.mod_revision);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_with_client_certificates() {
        let pki_dir = tempfile::tempdir().unwrap();
        crate::tls::ensure_pki(pki_dir.path(), &[]).expect("test PKI");
        let file = |name: &str| pki_dir.path().join(name);
        let server = EtcdTestServer::start_with(EtcdTestOptions {
            tls: Some(EtcdTestTls {
                ca_file: file("ca.crt"),
                server_cert_file: file("apiserver.crt"),
                server_key_file: file("apiserver.key"),
                client_cert_file: file("admin.crt"),
                client_key_file: file("admin.key"),
            }),
            ..Default::default()
        })
        .await;
        assert!(server.client_url().starts_with("https://"));
        let tls = EtcdTls {
            ca_file: file("ca.crt"),
            cert_file: Some(file("admin.crt")),
            key_file: Some(file("admin.key")),
        };
        let store = EtcdStore::connect(
            &[server.client_url()],
            EtcdOptions {
                tls: Some(tls.clone()),
                ..test_options()
            },
        )
        .await
        .expect("connect over TLS");
        let kv = store.create("/registry/tls/a", object("a")).await.unwrap();
        assert_eq!(store.get(&kv.key).await.unwrap(), kv);
        let mut watch = store
            .watch("/registry/tls/", WatchOptions::default())
            .await
            .unwrap();
        let b = store.create("/registry/tls/b", object("b")).await.unwrap();
        let e = next_item(&mut watch).await.unwrap().unwrap();
        assert_eq!((e.kind, e.kv), (EventType::Added, b));

        // etcd requires a client certificate: without one, nothing works.
        let err = EtcdStore::connect(
            &[server.client_url()],
            EtcdOptions {
                tls: Some(EtcdTls {
                    cert_file: None,
                    key_file: None,
                    ..tls.clone()
                }),
                request_timeout: Duration::from_secs(2),
                ..test_options()
            },
        )
        .await
        .err()
        .expect("connected without a client certificate");
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
        // Half a key pair is a configuration error.
        let err = EtcdStore::connect(
            &[server.client_url()],
            EtcdOptions {
                tls: Some(EtcdTls {
                    key_file: None,
                    ..tls
                }),
                ..test_options()
            },
        )
        .await
        .err()
        .expect("connected with half a key pair");
        assert!(matches!(err, StorageError::Internal(_)), "{err:?}");
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/"), b"/registry0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn progress_request_fix_versions() {
        for (v, fixed) in [
            ("3.4.23", false),
            ("3.4.25", true),
            ("3.5.7", false),
            ("3.5.8", true),
            ("3.6.0", true),
            ("v3.5.13", true),
            ("4.0.0", true),
            ("garbage", false),
        ] {
            assert_eq!(progress_requests_are_ordered(v), fixed, "{v}");
        }
    }
}
