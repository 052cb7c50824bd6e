//! The embedded storage backend: a single-node `Storage` on a redb file.
//!
//! This module owns the on-disk layout, the single writer thread that commits
//! writes in groups, the event log behind watches and snapshot lists, and
//! history compaction. It must not know about kinds, HTTP or JSON (values are
//! opaque bytes), must not block async workers on disk syncs, and must never
//! let a slow watcher block the writer or hold unbounded memory.
//!
//! # Layout
//!
//! One redb file `rkube.redb` in the data directory with three tables:
//! - `kv`: key -> `[create_revision u64][mod_revision u64][value]`, the
//!   current state only, so that current reads (the hot path) are plain range
//!   scans with no version filtering;
//! - `log`: revision -> one encoded event (kind, commit time, key, the state
//!   before the write and the new value). Every successful write takes exactly
//!   one revision and writes exactly one entry, so the log is dense over
//!   `(compacted, revision]`;
//! - `meta`: `revision` (the last assigned revision) and `compacted` (the
//!   floor: log entries at or below it are gone).
//!
//! A snapshot list at an older revision `r` reads current state and undoes
//! the log entries after `r` (the first entry per key after `r` carries the
//! key's state at `r`). An MVCC layout was not chosen because it would make
//! every current read skip old versions and every compaction rewrite the
//! main table, while snapshot reads are rare (continue tokens, watch-cache
//! priming) and bounded by the history window.
//!
//! # Writes
//!
//! Callers enqueue requests on an unbounded channel (bounded in practice by
//! the number of waiting callers) to one dedicated OS thread. The thread
//! takes everything queued (up to `max_batch_ops`), applies each operation in
//! order inside one write transaction — each gets its own revision and its
//! own result; a rejected operation changes nothing — commits once with
//! `Durability::Immediate`, then publishes the batch's events and answers
//! every caller through its oneshot. While one commit waits on fsync the next
//! batch accumulates, which is the group commit. A batch whose operations all
//! failed is aborted rather than committed.
//!
//! # Watches
//!
//! After each commit the writer sends the batch to a bounded
//! `tokio::sync::broadcast` channel. A watch reads history from the log in
//! pages; before reading each page it takes a fresh subscription, so the
//! subscription it keeps after the last page was taken before that page's
//! read transaction began: every batch committed after that snapshot arrives
//! on the channel, and batches at or below the snapshot's revision are
//! skipped (no gap, no duplicate). A watcher whose subscription overflows gets
//! `Unavailable` and its stream ends; the history is usually still in the log,
//! so re-watching from its last revision is cheap.
//!
//! # Compaction
//!
//! `compact(r)` deletes log entries up to `r` and raises the floor. The writer
//! also compacts on its own, in the same transaction as each batch and on an
//! idle tick, to keep at most `max_history_events` entries and none older than
//! `history_window`; it never removes the newest entry so that a watch from
//! the current revision stays valid on an idle store. Auto-compaction removes
//! at most `AUTO_COMPACT_CHUNK` entries per transaction to bound commit time.
//! redb reuses freed pages, so under churn the file stays bounded.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock, Weak};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, Table, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use super::{
    Event, EventStream, EventType, KeyValue, ListOptions, ListResult, Revision, Storage,
    StorageError, WatchOptions,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "rkube.redb";

/// Log entries (or keys) a watch reads per read transaction; bounds both the
/// time a read transaction pins old pages and a watcher's buffered memory.
const READ_PAGE: usize = 512;

/// Largest value accepted. A log entry holds a value and its predecessor, and
/// an oversized value would otherwise fail the whole batch inside redb rather
/// than just its own request.
pub const MAX_VALUE_BYTES: usize = 512 << 20;

/// Most log entries one automatic compaction removes in a transaction.
const AUTO_COMPACT_CHUNK: u64 = 4096;

/// Tuning for [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Log entries older than this are compacted automatically.
    pub history_window: Duration,
    /// At most this many log entries are kept; older ones are compacted.
    pub max_history_events: usize,
    /// Most write operations committed in one transaction.
    pub max_batch_ops: usize,
    /// Committed batches a live watcher may fall behind before its stream is
    /// ended with `Unavailable`.
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history_window: Duration::from_secs(5 * 60),
            max_history_events: 100_000,
            max_batch_ops: 256,
            watch_buffer: 1024,
        }
    }
}

/// Counters describing what the writer has done since `open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Write transactions committed (batches plus maintenance).
    pub commits: u64,
    /// Write requests processed, successful or not.
    pub write_requests: u64,
    /// The most requests taken into a single transaction.
    pub largest_batch: u64,
    /// Log entries removed by automatic compaction.
    pub auto_compacted_events: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    write_requests: AtomicU64,
    largest_batch: AtomicU64,
    auto_compacted_events: AtomicU64,
}

/// The redb-backed store. See the module documentation for the design.
pub struct EmbeddedStore {
    path: PathBuf,
    // Each handle is an Option behind a lock so that `close` can take it
    // (stopping the writer, releasing the file) while references remain.
    db: RwLock<Option<Arc<Database>>>,
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    events: Mutex<Option<broadcast::Sender<Arc<Batch>>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Swap {
        key: String,
        expected: Revision,
        value: Vec<u8>,
    },
    Delete {
        key: String,
        expected: Revision,
    },
    Compact {
        revision: Revision,
    },
}

enum Outcome {
    Kv(KeyValue),
    Compacted,
}

/// One operation's own outcome; a rejection here wrote nothing.
type OpResult = Result<Outcome, StorageError>;

struct Request {
    op: Op,
    reply: oneshot::Sender<OpResult>,
}

/// The events of one committed transaction, in revision order.
struct Batch {
    events: Vec<Event>,
    /// The store's revision after the commit.
    revision: Revision,
}

fn db_err(e: impl Into<redb::Error>) -> StorageError {
    StorageError::Internal(format!("redb: {}", e.into()))
}

fn closed() -> StorageError {
    StorageError::Unavailable("embedded store is closed".into())
}

// The guarded data (an Option of a handle) stays valid if a holder panicked,
// so a poisoned lock is recovered rather than propagated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The public rule for a requested revision: it must exist and must be
/// above the floor. Floor 0 means nothing was ever compacted, so revision 0
/// ("from the beginning") is still valid then.
fn check_requested(
    requested: Revision,
    current: Revision,
    floor: Revision,
) -> Result<(), StorageError> {
    if requested > current {
        return Err(StorageError::TooLargeRevision { requested, current });
    }
    if floor > 0 && requested <= floor {
        return Err(StorageError::Expired {
            requested,
            compacted: floor,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Encoding

struct Record<'a> {
    create_revision: Revision,
    mod_revision: Revision,
    value: &'a [u8],
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Internal(format!("corrupt {what} in embedded store"))
}

fn encode_record(create: Revision, modified: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
}

fn decode_record(buf: &[u8]) -> Result<Record<'_>, StorageError> {
    let parse = || {
        Some(Record {
            create_revision: read_u64(buf, 0)?,
            mod_revision: read_u64(buf, 8)?,
            value: buf.get(16..)?,
        })
    };
    parse().ok_or_else(|| corrupt("record"))
}

impl Record<'_> {
    fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Arc::from(self.value),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

const KIND_ADDED: u8 = 0;
const KIND_MODIFIED: u8 = 1;
const KIND_DELETED: u8 = 2;

/// One log entry: `[kind u8][time_ms u64][key_len u32][key][has_prev u8]`
/// then, if `has_prev`, `[create u64][mod u64][prev_len u32][prev value]`,
/// then the new value (empty for deletions) up to the end.
struct LogEntry<'a> {
    kind: u8,
    key: &'a str,
    prev: Option<Record<'a>>,
    new_value: &'a [u8],
}

fn encode_log(
    kind: u8,
    time_ms: u64,
    key: &str,
    prev: Option<&Record<'_>>,
    new_value: &[u8],
) -> Vec<u8> {
    let prev_len = prev.map_or(0, |p| 20 + p.value.len());
    let mut out = Vec::with_capacity(14 + key.len() + prev_len + new_value.len());
    out.push(kind);
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    match prev {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.create_revision.to_le_bytes());
            out.extend_from_slice(&p.mod_revision.to_le_bytes());
            out.extend_from_slice(&(p.value.len() as u32).to_le_bytes());
            out.extend_from_slice(p.value);
        }
        None => out.push(0),
    }
    out.extend_from_slice(new_value);
    out
}

/// Reads only the commit time, for time-based compaction.
fn log_time(buf: &[u8]) -> Result<u64, StorageError> {
    read_u64(buf, 1).ok_or_else(|| corrupt("log entry"))
}

fn decode_log(buf: &[u8]) -> Result<LogEntry<'_>, StorageError> {
    let parse = || {
        let kind = *buf.first()?;
        let key_len = read_u32(buf, 9)?;
        let key = std::str::from_utf8(buf.get(13..13 + key_len)?).ok()?;
        let mut at = 13 + key_len;
        let prev = match *buf.get(at)? {
            0 => {
                at += 1;
                None
            }
            _ => {
                let create_revision = read_u64(buf, at + 1)?;
                let mod_revision = read_u64(buf, at + 9)?;
                let len = read_u32(buf, at + 17)?;
                let start = at + 21;
                at = start + len;
                Some(Record {
                    create_revision,
                    mod_revision,
                    value: buf.get(start..at)?,
                })
            }
        };
        Some(LogEntry {
            kind,
            key,
            prev,
            new_value: buf.get(at..)?,
        })
    };
    let entry = parse().ok_or_else(|| corrupt("log entry"))?;
    let consistent = match entry.kind {
        KIND_ADDED => entry.prev.is_none(),
        KIND_MODIFIED | KIND_DELETED => entry.prev.is_some(),
        _ => false,
    };
    if consistent {
        Ok(entry)
    } else {
        Err(corrupt("log entry"))
    }
}

impl LogEntry<'_> {
    fn to_event(&self, revision: Revision) -> Event {
        let (kind, kv) = match (self.kind, &self.prev) {
            (KIND_ADDED, _) => (
                EventType::Added,
                KeyValue {
                    key: self.key.to_owned(),
                    value: Arc::from(self.new_value),
                    create_revision: revision,
                    mod_revision: revision,
                },
            ),
            (KIND_MODIFIED, Some(prev)) => (
                EventType::Modified,
                KeyValue {
                    key: self.key.to_owned(),
                    value: Arc::from(self.new_value),
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                },
            ),
            (_, prev) => {
                // decode_log guarantees deletions carry their previous state.
                let mut kv = prev
                    .as_ref()
                    .map(|p| p.to_kv(self.key))
                    .unwrap_or_else(|| KeyValue {
                        key: self.key.to_owned(),
                        value: Arc::from(&[][..]),
                        create_revision: 0,
                        mod_revision: 0,
                    });
                kv.mod_revision = revision;
                (EventType::Deleted, kv)
            }
        };
        Event { kind, kv, revision }
    }
}

// ---------------------------------------------------------------------------
// Reads (run on blocking threads; each uses one read transaction)

fn read_meta(txn: &redb::ReadTransaction) -> Result<(Revision, Revision), StorageError> {
    let meta = txn.open_table(META).map_err(db_err)?;
    let get = |name| -> Result<Revision, StorageError> {
        Ok(meta
            .get(name)
            .map_err(db_err)?
            .map(|g| g.value())
            .unwrap_or(0))
    };
    Ok((get(META_REVISION)?, get(META_COMPACTED)?))
}

fn read_revisions(db: &Database) -> Result<(Revision, Revision), StorageError> {
    let txn = db.begin_read().map_err(db_err)?;
    read_meta(&txn)
}

fn read_get(db: &Database, key: &str) -> Result<KeyValue, StorageError> {
    let txn = db.begin_read().map_err(db_err)?;
    let kv = txn.open_table(KV).map_err(db_err)?;
    let guard = kv.get(key).map_err(db_err)?;
    match guard {
        Some(g) => Ok(decode_record(g.value())?.to_kv(key)),
        None => Err(StorageError::NotFound {
            key: key.to_owned(),
        }),
    }
}

/// How a list's revision is checked: `Public` applies the contract to a
/// caller's revision; `Internal` only needs the history to still exist, for
/// a watch paging through a snapshot it chose itself.
#[derive(Clone, Copy)]
enum RevisionCheck {
    Public,
    Internal,
}

fn read_list(
    db: &Database,
    prefix: &str,
    opts: &ListOptions,
    check: RevisionCheck,
) -> Result<ListResult, StorageError> {
    let txn = db.begin_read().map_err(db_err)?;
    let (current, floor) = read_meta(&txn)?;
    let at = match opts.revision {
        None => current,
        Some(r) => {
            match check {
                RevisionCheck::Public => check_requested(r, current, floor)?,
                RevisionCheck::Internal if r < floor => {
                    return Err(StorageError::Expired {
                        requested: r,
                        compacted: floor,
                    })
                }
                RevisionCheck::Internal if r > current => {
                    return Err(StorageError::TooLargeRevision {
                        requested: r,
                        current,
                    })
                }
                RevisionCheck::Internal => {}
            }
            r
        }
    };
    let after = opts.start_after.as_deref().filter(|s| *s >= prefix);
    let in_range = |key: &str| key.starts_with(prefix) && after.is_none_or(|a| key > a);

    // The state at `at` of every key written after `at`: the first later log
    // entry for a key holds the key's state before that write (None: absent).
    let mut undo: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if at < current {
        let log = txn.open_table(LOG).map_err(db_err)?;
        for entry in log.range(at + 1..=current).map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            let e = decode_log(v.value())?;
            if in_range(e.key) && !undo.contains_key(e.key) {
                undo.insert(e.key.to_owned(), e.prev.as_ref().map(|p| p.to_kv(e.key)));
            }
        }
    }

    let table = txn.open_table(KV).map_err(db_err)?;
    let lower = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Included(prefix),
    };
    let mut scan = table
        .range::<&str>((lower, Bound::Unbounded))
        .map_err(db_err)?;
    let mut scan_done = false;
    let mut next_current = || -> Result<Option<KeyValue>, StorageError> {
        if scan_done {
            return Ok(None);
        }
        if let Some(entry) = scan.next() {
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value();
            if key.starts_with(prefix) {
                return Ok(Some(decode_record(v.value())?.to_kv(key)));
            }
        }
        // Keys are sorted, so the first key outside the prefix ends it.
        scan_done = true;
        Ok(None)
    };
    let mut undo = undo.into_iter().peekable();

    let limit = opts.limit.filter(|l| *l > 0);
    let mut items = Vec::new();
    let mut more = false;
    let mut pending_current = next_current()?;
    loop {
        // Merge the two key-ordered sources; an undo entry replaces the
        // current state of the same key.
        let take_undo = match (&pending_current, undo.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(c), Some((k, _))) => k.as_str() <= c.key.as_str(),
        };
        let candidate = if take_undo {
            let (key, state) = undo.next().expect("peeked");
            if pending_current.as_ref().is_some_and(|c| c.key == key) {
                pending_current = next_current()?;
            }
            state
        } else {
            let c = pending_current.take();
            pending_current = next_current()?;
            c
        };
        let Some(kv) = candidate else { continue };
        if opts.predicate.as_ref().is_some_and(|p| !p(&kv)) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            break;
        }
        items.push(kv);
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
    })
}

struct LogPage {
    events: Vec<Event>,
    /// The last revision examined (matching the prefix or not).
    scanned_to: Revision,
    /// The store's revision in the page's read transaction.
    current: Revision,
}

fn read_log_page(
    db: &Database,
    prefix: &str,
    after: Revision,
    max_entries: usize,
) -> Result<LogPage, StorageError> {
    let txn = db.begin_read().map_err(db_err)?;
    let (current, floor) = read_meta(&txn)?;
    if after < floor {
        return Err(StorageError::Expired {
            requested: after,
            compacted: floor,
        });
    }
    if after > current {
        return Err(StorageError::TooLargeRevision {
            requested: after,
            current,
        });
    }
    let log = txn.open_table(LOG).map_err(db_err)?;
    let mut events = Vec::new();
    let mut scanned_to = after;
    for entry in log
        .range(after + 1..=current)
        .map_err(db_err)?
        .take(max_entries)
    {
        let (k, v) = entry.map_err(db_err)?;
        let revision = k.value();
        if revision != scanned_to + 1 {
            return Err(corrupt("log (gap in revisions)"));
        }
        scanned_to = revision;
        let e = decode_log(v.value())?;
        if e.key.starts_with(prefix) {
            events.push(e.to_event(revision));
        }
    }
    if scanned_to < current && scanned_to - after < max_entries as u64 {
        return Err(corrupt("log (missing entries)"));
    }
    Ok(LogPage {
        events,
        scanned_to,
        current,
    })
}

// ---------------------------------------------------------------------------
// The writer thread

struct Writer {
    db: Arc<Database>,
    rx: mpsc::Receiver<Request>,
    events: broadcast::Sender<Arc<Batch>>,
    opts: EmbeddedOptions,
    counters: Arc<Counters>,
}

/// Mutable state of one write transaction.
struct TxnState {
    revision: Revision,
    floor: Revision,
    events: Vec<Event>,
    dirty: bool,
    now_ms: u64,
}

type KvTable<'t> = Table<'t, &'static str, &'static [u8]>;
type LogTable<'t> = Table<'t, u64, &'static [u8]>;

impl Writer {
    fn run(self) {
        // The idle tick only drives time-based compaction, so it can be coarse.
        let tick = (self.opts.history_window / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(10));
        loop {
            let first = match self.rx.recv_timeout(tick) {
                Ok(req) => req,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.maintain() {
                        tracing::warn!(error = %e, "embedded store: background compaction failed");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < self.opts.max_batch_ops {
                match self.rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        tracing::debug!("embedded store writer stopped");
    }

    fn commit_batch(&self, batch: Vec<Request>) {
        let n = batch.len() as u64;
        self.counters.write_requests.fetch_add(n, Ordering::Relaxed);
        self.counters.largest_batch.fetch_max(n, Ordering::Relaxed);
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        match self.apply(ops) {
            Ok((results, state)) => {
                if !state.events.is_empty() {
                    // Publish before answering so an acknowledged write is
                    // already queued for every live watcher. No receivers is
                    // not an error.
                    let batch = Batch {
                        events: state.events,
                        revision: state.revision,
                    };
                    let _ = self.events.send(Arc::new(batch));
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have given up; the write stands anyway.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "embedded store: write batch failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn begin(&self) -> Result<redb::WriteTransaction, StorageError> {
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_durability(Durability::Immediate);
        Ok(txn)
    }

    /// Applies the operations in one transaction. The outer error means the
    /// transaction failed and nothing was written; inner errors are per-op
    /// rejections that wrote nothing.
    fn apply(&self, ops: Vec<Op>) -> Result<(Vec<OpResult>, TxnState), StorageError> {
        let txn = self.begin()?;
        let mut results = Vec::with_capacity(ops.len());
        let mut state;
        {
            let mut kv = txn.open_table(KV).map_err(db_err)?;
            let mut log = txn.open_table(LOG).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let get = |name| -> Result<Revision, StorageError> {
                Ok(meta
                    .get(name)
                    .map_err(db_err)?
                    .map(|g| g.value())
                    .unwrap_or(0))
            };
            state = TxnState {
                revision: get(META_REVISION)?,
                floor: get(META_COMPACTED)?,
                events: Vec::new(),
                dirty: false,
                now_ms: now_ms(),
            };
            let (start_revision, start_floor) = (state.revision, state.floor);
            for op in ops {
                results.push(apply_op(op, &mut state, &mut kv, &mut log)?);
            }
            self.auto_compact(&mut state, &mut log)?;
            if state.revision != start_revision {
                meta.insert(META_REVISION, state.revision).map_err(db_err)?;
            }
            if state.floor != start_floor {
                meta.insert(META_COMPACTED, state.floor).map_err(db_err)?;
            }
        }
        if state.dirty {
            txn.commit().map_err(db_err)?;
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            txn.abort().map_err(db_err)?;
        }
        Ok((results, state))
    }

    /// Idle-time compaction: history ages out even when nothing is written.
    fn maintain(&self) -> Result<(), StorageError> {
        let txn = self.begin()?;
        let dirty;
        {
            let mut log = txn.open_table(LOG).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let get = |name| -> Result<Revision, StorageError> {
                Ok(meta
                    .get(name)
                    .map_err(db_err)?
                    .map(|g| g.value())
                    .unwrap_or(0))
            };
            let mut state = TxnState {
                revision: get(META_REVISION)?,
                floor: get(META_COMPACTED)?,
                events: Vec::new(),
                dirty: false,
                now_ms: now_ms(),
            };
            self.auto_compact(&mut state, &mut log)?;
            if state.dirty {
                meta.insert(META_COMPACTED, state.floor).map_err(db_err)?;
            }
            dirty = state.dirty;
        }
        if dirty {
            txn.commit().map_err(db_err)?;
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            txn.abort().map_err(db_err)?;
        }
        Ok(())
    }

    fn auto_compact(
        &self,
        state: &mut TxnState,
        log: &mut LogTable<'_>,
    ) -> Result<(), StorageError> {
        // Keep the newest entry: with the floor at the current revision even
        // a watch from "now" would be Expired on a store that went idle.
        let ceiling = state
            .revision
            .saturating_sub(1)
            .min(state.floor + AUTO_COMPACT_CHUNK);
        if ceiling <= state.floor {
            return Ok(());
        }
        let by_count = state
            .revision
            .saturating_sub(self.opts.max_history_events as u64);
        let mut target = by_count.max(state.floor).min(ceiling);
        let window_ms = u64::try_from(self.opts.history_window.as_millis()).unwrap_or(u64::MAX);
        let cutoff = state.now_ms.saturating_sub(window_ms);
        if target < ceiling {
            // Entries are in commit-time order, so stop at the first young one.
            for entry in log.range(target + 1..=ceiling).map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                if log_time(v.value())? >= cutoff {
                    break;
                }
                target = k.value();
            }
        }
        if target > state.floor {
            log.retain_in(state.floor + 1..=target, |_, _| false)
                .map_err(db_err)?;
            self.counters
                .auto_compacted_events
                .fetch_add(target - state.floor, Ordering::Relaxed);
            state.floor = target;
            state.dirty = true;
        }
        Ok(())
    }
}

fn apply_op(
    op: Op,
    state: &mut TxnState,
    kv: &mut KvTable<'_>,
    log: &mut LogTable<'_>,
) -> Result<OpResult, StorageError> {
    // Read the key's state inside the transaction so later ops in the batch
    // see earlier ones.
    let current = |key: &str| -> Result<Option<KeyValue>, StorageError> {
        match kv.get(key).map_err(db_err)? {
            Some(g) => Ok(Some(decode_record(g.value())?.to_kv(key))),
            None => Ok(None),
        }
    };
    let revision = state.revision + 1;
    let event = match op {
        Op::Create { key, value } => {
            if current(&key)?.is_some() {
                return Ok(Err(StorageError::AlreadyExists { key }));
            }
            let value: Arc<[u8]> = value.into();
            kv.insert(
                key.as_str(),
                encode_record(revision, revision, &value).as_slice(),
            )
            .map_err(db_err)?;
            let entry = encode_log(KIND_ADDED, state.now_ms, &key, None, &value);
            log.insert(revision, entry.as_slice()).map_err(db_err)?;
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            Event {
                kind: EventType::Added,
                kv,
                revision,
            }
        }
        Op::Swap {
            key,
            expected,
            value,
        } => {
            let Some(old) = current(&key)? else {
                return Ok(Err(StorageError::NotFound { key }));
            };
            if old.mod_revision != expected {
                return Ok(Err(StorageError::Conflict {
                    key,
                    expected,
                    actual: old.mod_revision,
                }));
            }
            let create = old.create_revision;
            let value: Arc<[u8]> = value.into();
            kv.insert(
                key.as_str(),
                encode_record(create, revision, &value).as_slice(),
            )
            .map_err(db_err)?;
            let prev = Record {
                create_revision: create,
                mod_revision: old.mod_revision,
                value: &old.value,
            };
            let entry = encode_log(KIND_MODIFIED, state.now_ms, &key, Some(&prev), &value);
            log.insert(revision, entry.as_slice()).map_err(db_err)?;
            let kv = KeyValue {
                key,
                value,
                create_revision: create,
                mod_revision: revision,
            };
            Event {
                kind: EventType::Modified,
                kv,
                revision,
            }
        }
        Op::Delete { key, expected } => {
            let Some(old) = current(&key)? else {
                return Ok(Err(StorageError::NotFound { key }));
            };
            if old.mod_revision != expected {
                return Ok(Err(StorageError::Conflict {
                    key,
                    expected,
                    actual: old.mod_revision,
                }));
            }
            kv.remove(key.as_str()).map_err(db_err)?;
            let prev = Record {
                create_revision: old.create_revision,
                mod_revision: old.mod_revision,
                value: &old.value,
            };
            let entry = encode_log(KIND_DELETED, state.now_ms, &key, Some(&prev), &[]);
            log.insert(revision, entry.as_slice()).map_err(db_err)?;
            let kv = KeyValue {
                mod_revision: revision,
                ..old
            };
            Event {
                kind: EventType::Deleted,
                kv,
                revision,
            }
        }
        Op::Compact {
            revision: requested,
        } => {
            if requested > state.revision {
                return Ok(Err(StorageError::TooLargeRevision {
                    requested,
                    current: state.revision,
                }));
            }
            if requested > state.floor {
                log.retain_in(state.floor + 1..=requested, |_, _| false)
                    .map_err(db_err)?;
                state.floor = requested;
                state.dirty = true;
            }
            return Ok(Ok(Outcome::Compacted));
        }
    };
    let result = event.kv.clone();
    state.events.push(event);
    state.revision = revision;
    state.dirty = true;
    Ok(Ok(Outcome::Kv(result)))
}

// ---------------------------------------------------------------------------
// The store

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, creating the directory if
    /// needed, and starts its writer thread.
    ///
    /// This is synchronous: opening may replay redb's recovery after a crash,
    /// which is blocking disk work that belongs at startup. From async code,
    /// call it at startup or wrap it in `spawn_blocking`. Fails with
    /// `Unavailable` if the file is already open (also by this process).
    pub fn open(dir: &Path, opts: EmbeddedOptions) -> Result<Arc<Self>, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join(DB_FILE_NAME);
        let db = Database::create(&path).map_err(|e| {
            StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
        })?;
        let mut txn = db.begin_write().map_err(db_err)?;
        txn.set_durability(Durability::Immediate);
        {
            // Creating the tables up front lets read transactions open them
            // unconditionally.
            txn.open_table(KV).map_err(db_err)?;
            txn.open_table(LOG).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            for name in [META_REVISION, META_COMPACTED] {
                if meta.get(name).map_err(db_err)?.is_none() {
                    meta.insert(name, 0).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)?;
        let db = Arc::new(db);
        let (current, floor) = read_revisions(&db)?;

        let opts = EmbeddedOptions {
            max_batch_ops: opts.max_batch_ops.max(1),
            watch_buffer: opts.watch_buffer.max(1),
            ..opts
        };
        let (queue, rx) = mpsc::channel();
        let (events, _) = broadcast::channel(opts.watch_buffer);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            db: db.clone(),
            rx,
            events: events.clone(),
            opts,
            counters: counters.clone(),
        };
        let handle = thread::Builder::new()
            .name("rkube-storage-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StorageError::Internal(format!("cannot start writer thread: {e}")))?;
        tracing::info!(path = %path.display(), revision = current, compacted = floor, "embedded store opened");
        Ok(Arc::new(Self {
            path,
            db: RwLock::new(Some(db)),
            queue: Mutex::new(Some(queue)),
            events: Mutex::new(Some(events)),
            writer: Mutex::new(Some(handle)),
            counters,
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> EmbeddedStats {
        let c = &self.counters;
        EmbeddedStats {
            commits: c.commits.load(Ordering::Relaxed),
            write_requests: c.write_requests.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
            auto_compacted_events: c.auto_compacted_events.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting requests, lets the writer commit everything already
    /// queued, waits for it to stop, ends live watches and releases the file
    /// (once in-flight reads finish). Every later operation returns
    /// `Unavailable`; closing again is a no-op.
    /// Dropping the last reference does the same, blocking the dropping
    /// thread for the final commit.
    pub async fn close(&self) -> Result<(), StorageError> {
        let handle = self.stop();
        match handle {
            Some(h) => tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| StorageError::Internal(format!("close: {e}")))?
                .map_err(|_| StorageError::Internal("embedded store writer panicked".into())),
            None => Ok(()),
        }
    }

    fn stop(&self) -> Option<thread::JoinHandle<()>> {
        // Dropping the only queue sender lets the writer drain and exit.
        lock(&self.queue).take();
        lock(&self.events).take();
        self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        lock(&self.writer).take()
    }

    fn db(&self) -> Result<Arc<Database>, StorageError> {
        self.db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(closed)
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    {
        let db = self.db()?;
        blocking(move || f(&db)).await
    }

    async fn submit(&self, op: Op) -> Result<Outcome, StorageError> {
        if let Op::Create { value, .. } | Op::Swap { value, .. } = &op {
            if value.len() > MAX_VALUE_BYTES {
                return Err(StorageError::Internal(format!(
                    "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                    value.len()
                )));
            }
        }
        let (reply, rx) = oneshot::channel();
        {
            let queue = lock(&self.queue);
            let queue = queue.as_ref().ok_or_else(closed)?;
            queue.send(Request { op, reply }).map_err(|_| closed())?;
        }
        rx.await
            .map_err(|_| StorageError::Unavailable("embedded store writer stopped".into()))?
    }

    async fn submit_kv(&self, op: Op) -> Result<KeyValue, StorageError> {
        match self.submit(op).await? {
            Outcome::Kv(kv) => Ok(kv),
            Outcome::Compacted => Err(StorageError::Internal("unexpected writer reply".into())),
        }
    }
}

async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Internal(format!("storage read task failed: {e}")))?
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Some(handle) = self.stop() {
            if handle.join().is_err() {
                tracing::error!("embedded store writer panicked");
            }
        }
    }
}

#[async_trait]
impl Storage for EmbeddedStore {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.read(|db| Ok(read_revisions(db)?.0)).await
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        self.read(|db| Ok(read_revisions(db)?.1)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StorageError> {
        self.submit_kv(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        let key = key.to_owned();
        self.read(move |db| read_get(db, &key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let prefix = prefix.to_owned();
        self.read(move |db| read_list(db, &prefix, &opts, RevisionCheck::Public))
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue, StorageError> {
        self.submit_kv(Op::Swap {
            key: key.to_owned(),
            expected,
            value,
        })
        .await
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        self.submit_kv(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, opts: WatchOptions) -> Result<EventStream, StorageError> {
        // Subscribe before reading anything so nothing committed from here on
        // can be missed; see the module documentation.
        let rx = lock(&self.events).as_ref().ok_or_else(closed)?.subscribe();
        let db = self.db()?;
        let weak = Arc::downgrade(&db);
        let (current, floor) = blocking(move || read_revisions(&db)).await?;
        let start = match opts.after_revision {
            Some(r) => {
                check_requested(r, current, floor)?;
                r
            }
            None => current,
        };
        let phase = if opts.send_initial {
            Phase::Initial {
                at: start,
                after_key: None,
            }
        } else {
            Phase::Replay { after: start }
        };
        let state = WatchState {
            db: weak,
            prefix: prefix.to_owned(),
            rx,
            phase,
            pending: VecDeque::new(),
            done: false,
            last_seen: start,
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
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }
}

// ---------------------------------------------------------------------------
// Watch streams

enum Phase {
    /// Sending the state at `at` as Added events, a page of keys at a time.
    Initial {
        at: Revision,
        after_key: Option<String>,
    },
    /// Replaying the log after `after`.
    Replay { after: Revision },
    /// Following the broadcast, skipping revisions at or below `skip_upto`.
    Live { skip_upto: Revision },
}

struct WatchState {
    // Weak, so an open watch does not keep the file open after close/drop.
    db: Weak<Database>,
    prefix: String,
    rx: broadcast::Receiver<Arc<Batch>>,
    phase: Phase,
    pending: VecDeque<Result<Event, StorageError>>,
    done: bool,
    /// Every change up to here has been delivered or did not match.
    last_seen: Revision,
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
                return Some(Err(e));
            }
        }
    }

    fn db(&self) -> Result<Arc<Database>, StorageError> {
        self.db.upgrade().ok_or_else(closed)
    }

    async fn fill(&mut self) -> Result<(), StorageError> {
        match &mut self.phase {
            Phase::Initial { at, after_key } => {
                let at = *at;
                let opts = ListOptions {
                    revision: Some(at),
                    limit: Some(READ_PAGE),
                    start_after: after_key.take(),
                    predicate: None,
                };
                let db = self.db()?;
                let prefix = self.prefix.clone();
                let page =
                    blocking(move || read_list(&db, &prefix, &opts, RevisionCheck::Internal))
                        .await?;
                self.phase = if page.more {
                    let after_key = page.items.last().map(|kv| kv.key.clone());
                    Phase::Initial { at, after_key }
                } else {
                    Phase::Replay { after: at }
                };
                for kv in page.items {
                    let revision = kv.mod_revision;
                    self.pending.push_back(Ok(Event {
                        kind: EventType::Added,
                        kv,
                        revision,
                    }));
                }
                if !page.more {
                    self.pending.push_back(Ok(Event::progress(at)));
                }
                Ok(())
            }
            Phase::Replay { after } => {
                let after = *after;
                // Only the subscription taken right before the final page
                // is kept; earlier ones could have overflowed meanwhile.
                self.rx = self.rx.resubscribe();
                let db = self.db()?;
                let prefix = self.prefix.clone();
                let page = blocking(move || read_log_page(&db, &prefix, after, READ_PAGE)).await?;
                self.pending.extend(page.events.into_iter().map(Ok));
                self.last_seen = page.scanned_to;
                self.phase = if page.scanned_to >= page.current {
                    Phase::Live {
                        skip_upto: page.current,
                    }
                } else {
                    Phase::Replay {
                        after: page.scanned_to,
                    }
                };
                Ok(())
            }
            Phase::Live { skip_upto } => {
                let skip_upto = *skip_upto;
                // The deadline moves only when something is delivered, so
                // batches for other prefixes do not postpone progress.
                let received = match self.progress_due {
                    Some(due) => match tokio::time::timeout_at(due, self.rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => {
                            self.pending.push_back(Ok(Event::progress(self.last_seen)));
                            return Ok(());
                        }
                    },
                    None => self.rx.recv().await,
                };
                match received {
                    Ok(batch) => {
                        if batch.revision <= skip_upto {
                            return Ok(());
                        }
                        self.last_seen = self.last_seen.max(batch.revision);
                        let matching = batch.events.iter().filter(|e| {
                            e.revision > skip_upto && e.kv.key.starts_with(&self.prefix)
                        });
                        self.pending.extend(matching.cloned().map(Ok));
                        Ok(())
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Err(StorageError::Unavailable(format!(
                            "watch fell {n} commits behind and was closed; re-watch from revision {}",
                            self.last_seen
                        )))
                    }
                    Err(broadcast::error::RecvError::Closed) => Err(closed()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use futures::StreamExt;

    use super::*;
    use crate::storage::suite::StoreFixture;

    const WAIT: Duration = Duration::from_secs(30);

    struct Fixture {
        store: Arc<EmbeddedStore>,
        // Declared after the store so the store closes before the directory
        // is removed.
        dir: tempfile::TempDir,
    }

    impl StoreFixture for Fixture {
        fn store(&self) -> Arc<dyn Storage> {
            self.store.clone()
        }
    }

    fn fixture_with(opts: EmbeddedOptions) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path(), opts).expect("open");
        Fixture { store, dir }
    }

    fn fixture() -> Fixture {
        fixture_with(EmbeddedOptions::default())
    }

    crate::storage_suite!(fixture());

    impl EmbeddedStore {
        /// `create` with owned arguments, for building many futures at once.
        async fn create_owned(
            &self,
            key: String,
            value: Vec<u8>,
        ) -> Result<KeyValue, StorageError> {
            self.create(&key, value).await
        }
    }

    fn value(name: &str, n: usize) -> Vec<u8> {
        format!(r#"{{"metadata":{{"name":"{name}","uid":"u-{name}"}},"spec":{{"n":{n}}}}}"#)
            .into_bytes()
    }

    async fn next(stream: &mut EventStream) -> Option<Result<Event, StorageError>> {
        tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("timed out waiting for watch")
    }

    /// Polls `cond` until it holds; the store changes on its own thread, so
    /// there is no event to await.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopen_keeps_data_and_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let a = store.create("/r/a", value("a", 0)).await.unwrap();
        let b = store.create("/r/b", value("b", 0)).await.unwrap();
        let a2 = store
            .compare_and_swap("/r/a", a.mod_revision, value("a", 1))
            .await
            .unwrap();
        let b_gone = store
            .compare_and_delete("/r/b", b.mod_revision)
            .await
            .unwrap();
        store.compact(a.mod_revision).await.unwrap();
        let revision = store.current_revision().await.unwrap();
        assert_eq!(revision, b_gone.mod_revision);
        drop(store);

        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        assert_eq!(store.current_revision().await.unwrap(), revision);
        assert_eq!(store.compacted_revision().await.unwrap(), a.mod_revision);
        assert_eq!(store.get("/r/a").await.unwrap(), a2);
        assert!(matches!(
            store.get("/r/b").await,
            Err(StorageError::NotFound { .. })
        ));
        // History survives too.
        let old = store
            .list(
                "/r/",
                ListOptions {
                    revision: Some(b.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(old.items.len(), 2);
        let mut watch = store
            .watch(
                "/r/",
                WatchOptions {
                    after_revision: Some(b.mod_revision),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            next(&mut watch).await.unwrap().unwrap().revision,
            a2.mod_revision
        );
        assert_eq!(
            next(&mut watch).await.unwrap().unwrap().revision,
            b_gone.mod_revision
        );

        let b2 = store.create("/r/b", value("b", 2)).await.unwrap();
        assert_eq!(b2.mod_revision, revision + 1);
        assert_eq!(b2.create_revision, revision + 1);
        assert_eq!(
            next(&mut watch).await.unwrap().unwrap().revision,
            b2.mod_revision
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn opening_an_open_store_is_unavailable() {
        let f = fixture();
        let err = EmbeddedStore::open(f.dir.path(), EmbeddedOptions::default()).err();
        assert!(matches!(err, Some(StorageError::Unavailable(_))), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_batches_concurrent_writes() {
        let f = fixture();
        let before = f.store.stats();
        let writes = (0..200).map(|i| f.store.create_owned(format!("/g/{i:03}"), value("g", i)));
        let results = tokio::time::timeout(WAIT, futures::future::join_all(writes))
            .await
            .unwrap();
        let mut revisions: Vec<_> = results
            .into_iter()
            .map(|r| r.unwrap().mod_revision)
            .collect();
        revisions.sort_unstable();
        revisions.dedup();
        assert_eq!(revisions.len(), 200, "every write gets its own revision");
        let after = f.store.stats();
        let commits = after.commits - before.commits;
        assert_eq!(after.write_requests - before.write_requests, 200);
        assert!(
            commits <= 50,
            "200 concurrent writes took {commits} commits"
        );
        assert!(after.largest_batch > 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_in_a_batch_do_not_fail_others() {
        let f = fixture();
        // Each key is created twice at once: one wins, one is rejected, and
        // neither outcome depends on what else shared the transaction.
        let writes = (0..100).map(|i| f.store.create_owned(format!("/f/{}", i / 2), value("f", i)));
        let results = tokio::time::timeout(WAIT, futures::future::join_all(writes))
            .await
            .unwrap();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let exists = results
            .iter()
            .filter(|r| matches!(r, Err(StorageError::AlreadyExists { .. })))
            .count();
        assert_eq!((ok, exists), (50, 50));
        let list = f.store.list("/f/", ListOptions::default()).await.unwrap();
        assert_eq!(list.items.len(), 50);
        assert_eq!(
            f.store.current_revision().await.unwrap(),
            50,
            "rejections took no revision"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_from_zero_replays_everything_before_compaction() {
        let f = fixture();
        for i in 0..5 {
            f.store
                .create(&format!("/z/{i}"), value("z", i))
                .await
                .unwrap();
        }
        let opts = WatchOptions {
            after_revision: Some(0),
            ..Default::default()
        };
        let mut watch = f.store.watch("/z/", opts).await.unwrap();
        for revision in 1..=5 {
            assert_eq!(next(&mut watch).await.unwrap().unwrap().revision, revision);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auto_compaction_keeps_at_most_max_history_events() {
        let f = fixture_with(EmbeddedOptions {
            max_history_events: 10,
            ..Default::default()
        });
        let mut kv = f.store.create("/c/a", value("a", 0)).await.unwrap();
        for i in 1..50 {
            kv = f
                .store
                .compare_and_swap("/c/a", kv.mod_revision, value("a", i))
                .await
                .unwrap();
        }
        assert_eq!(kv.mod_revision, 50);
        assert_eq!(f.store.compacted_revision().await.unwrap(), 40);
        let err = f
            .store
            .watch(
                "/c/",
                WatchOptions {
                    after_revision: Some(40),
                    ..Default::default()
                },
            )
            .await
            .err();
        assert_eq!(
            err,
            Some(StorageError::Expired {
                requested: 40,
                compacted: 40
            })
        );
        let mut watch = f
            .store
            .watch(
                "/c/",
                WatchOptions {
                    after_revision: Some(41),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for revision in 42..=50 {
            assert_eq!(next(&mut watch).await.unwrap().unwrap().revision, revision);
        }
        assert!(f.store.stats().auto_compacted_events >= 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auto_compaction_ages_out_history_but_keeps_newest() {
        let opts = EmbeddedOptions {
            history_window: Duration::from_millis(100),
            ..Default::default()
        };
        let f = fixture_with(opts);
        for i in 0..5 {
            f.store
                .create(&format!("/t/{i}"), value("t", i))
                .await
                .unwrap();
        }
        // Nothing is written from here on: the idle tick must do it.
        let store = f.store.clone();
        crate::storage::suite::eventually(WAIT, "history to age out", || {
            let store = store.clone();
            async move { store.compacted_revision().await.unwrap() == 4 }
        })
        .await;
        assert_eq!(f.store.current_revision().await.unwrap(), 5);
        // A watch from the current revision is still valid on an idle store.
        let mut watch = f
            .store
            .watch(
                "/t/",
                WatchOptions {
                    after_revision: Some(5),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let kv = f.store.create("/t/new", value("t", 9)).await.unwrap();
        assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, kv);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_watcher_is_cut_off_without_blocking_writes() {
        let f = fixture_with(EmbeddedOptions {
            watch_buffer: 4,
            ..Default::default()
        });
        let mut watch = f.store.watch("/s/", WatchOptions::default()).await.unwrap();
        let first = f.store.create("/s/first", value("s", 0)).await.unwrap();
        assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, first);
        // The watcher is live now and stops reading; each awaited write is
        // its own commit, overflowing its buffer of 4 batches.
        for i in 1..=20 {
            tokio::time::timeout(WAIT, f.store.create(&format!("/s/{i}"), value("s", i)))
                .await
                .expect("a slow watcher blocked the writer")
                .unwrap();
        }
        match next(&mut watch).await {
            Some(Err(StorageError::Unavailable(msg))) => assert!(msg.contains("re-watch"), "{msg}"),
            other => panic!("expected the watch to be cut off, got {other:?}"),
        }
        assert!(
            next(&mut watch).await.is_none(),
            "stream must end after the error"
        );
        // Re-watching from the last delivered revision loses nothing.
        let opts = WatchOptions {
            after_revision: Some(first.mod_revision),
            ..Default::default()
        };
        let mut again = f.store.watch("/s/", opts).await.unwrap();
        for revision in first.mod_revision + 1..=first.mod_revision + 20 {
            assert_eq!(next(&mut again).await.unwrap().unwrap().revision, revision);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_finishes_queued_writes_then_refuses() {
        let f = fixture();
        let mut watch = f.store.watch("/q/", WatchOptions::default()).await.unwrap();
        // Bring the watch to its live phase: a watch that is still reading
        // history when the store closes just fails.
        let first = f.store.create("/q/first", value("q", 0)).await.unwrap();
        assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, first);
        // Polling each write once enqueues it, so all 50 are queued before
        // close is requested.
        let mut results = Vec::new();
        let mut queued = Vec::new();
        for i in 0..50 {
            let mut write = Box::pin(f.store.create_owned(format!("/q/{i:02}"), value("q", i)));
            match futures::poll!(write.as_mut()) {
                std::task::Poll::Ready(r) => results.push(r),
                std::task::Poll::Pending => queued.push(write),
            }
        }
        tokio::time::timeout(WAIT, f.store.close())
            .await
            .unwrap()
            .unwrap();
        for write in queued {
            results.push(tokio::time::timeout(WAIT, write).await.unwrap());
        }
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

        assert!(matches!(
            f.store.create("/q/late", value("q", 0)).await,
            Err(StorageError::Unavailable(_))
        ));
        assert!(matches!(
            f.store.get("/q/00").await,
            Err(StorageError::Unavailable(_))
        ));
        let mut events = 0;
        loop {
            match next(&mut watch).await {
                Some(Ok(_)) => events += 1,
                Some(Err(StorageError::Unavailable(_))) => break,
                other => panic!("unexpected watch item after close: {other:?}"),
            }
        }
        assert_eq!(
            events, 50,
            "live watchers get everything committed before close"
        );
        assert!(next(&mut watch).await.is_none());

        // The file is released: it can be opened again, with everything in it.
        let reopened = EmbeddedStore::open(f.dir.path(), EmbeddedOptions::default()).unwrap();
        assert_eq!(
            reopened
                .list("/q/", ListOptions::default())
                .await
                .unwrap()
                .items
                .len(),
            51
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn churn_with_small_history_keeps_file_bounded() {
        const KEYS: usize = 16;
        const ROUNDS: usize = 600;
        let opts = EmbeddedOptions {
            max_history_events: 200,
            ..Default::default()
        };
        let f = fixture_with(opts);
        let payload = "x".repeat(2048);
        let churn = |rounds: std::ops::Range<usize>| {
            let store = f.store.clone();
            let payload = payload.clone();
            async move {
                let writers = (0..KEYS).map(|k| {
                    let store = store.clone();
                    let payload = payload.clone();
                    let rounds = rounds.clone();
                    async move {
                        let key = format!("/churn/{k:02}");
                        for round in rounds.clone() {
                            let v = format!(
                                r#"{{"metadata":{{"name":"{k}"}},"n":{round},"p":"{payload}"}}"#
                            );
                            match store.get(&key).await {
                                Ok(cur) => {
                                    store
                                        .compare_and_swap(&key, cur.mod_revision, v.into_bytes())
                                        .await
                                        .unwrap();
                                }
                                Err(StorageError::NotFound { .. }) => {
                                    store.create(&key, v.into_bytes()).await.unwrap();
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
                futures::future::join_all(writers).await;
            }
        };
        let file_size = || std::fs::metadata(f.store.path()).unwrap().len();
        tokio::time::timeout(Duration::from_secs(120), churn(0..ROUNDS / 6))
            .await
            .unwrap();
        let warm = file_size();
        tokio::time::timeout(Duration::from_secs(300), churn(ROUNDS / 6..ROUNDS))
            .await
            .unwrap();
        let end = file_size();
        let current = f.store.current_revision().await.unwrap();
        assert_eq!(current, (KEYS * ROUNDS) as u64);
        let floor = f.store.compacted_revision().await.unwrap();
        assert!(
            current - floor <= 200,
            "history not compacted: {floor}..{current}"
        );
        // Five times more writes than the warm-up must not mean a bigger
        // file: freed pages are reused.
        assert!(
            end <= warm + warm / 2,
            "file grew from {warm} to {end} bytes under churn"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paged_initial_state_and_replay_hand_off_without_gaps() {
        // More keys and history than one read page, with writes racing the
        // watchers' paging and their switch to live events.
        const KEYS: usize = 3 * READ_PAGE / 2;
        const RACING: usize = 300;
        let f = fixture();
        let writes = (0..KEYS).map(|i| f.store.create_owned(format!("/p/{i:04}"), value("p", i)));
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        let mut initial = f
            .store
            .watch(
                "/p/",
                WatchOptions {
                    send_initial: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut replay = f
            .store
            .watch(
                "/p/",
                WatchOptions {
                    after_revision: Some(0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let store = f.store.clone();
        let racer = tokio::spawn(async move {
            for i in 0..RACING {
                let key = format!("/p/{:04}", i % KEYS);
                let cur = store.get(&key).await.unwrap();
                store
                    .compare_and_swap(&key, cur.mod_revision, value("r", i))
                    .await
                    .unwrap();
            }
        });

        let mut added = Vec::new();
        let at = loop {
            let e = next(&mut initial).await.unwrap().unwrap();
            match e.kind {
                EventType::Added => added.push(e.kv.key),
                EventType::Progress => break e.revision,
                other => panic!("unexpected {other:?} before the initial progress"),
            }
        };
        let want: Vec<_> = (0..KEYS).map(|i| format!("/p/{i:04}")).collect();
        assert_eq!(added, want);
        let total = (KEYS + RACING) as u64;
        for revision in at + 1..=total {
            let e = next(&mut initial).await.unwrap().unwrap();
            assert_eq!((e.kind, e.revision), (EventType::Modified, revision));
        }
        for revision in 1..=total {
            assert_eq!(next(&mut replay).await.unwrap().unwrap().revision, revision);
        }
        tokio::time::timeout(WAIT, racer).await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshot_lists_match_a_model_of_history() {
        let f = fixture();
        // A fixed pseudo-random sequence over a few keys, so that keys are
        // created, changed, deleted and re-created between snapshots.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut model: BTreeMap<String, KeyValue> = BTreeMap::new();
        let mut history = vec![(0, model.clone())];
        for i in 0..300 {
            let key = format!("/m/{}", rand(8));
            let kv = match model.get(&key).cloned() {
                None => f.store.create(&key, value("m", i)).await.unwrap(),
                Some(cur) if rand(3) == 0 => {
                    let gone = f
                        .store
                        .compare_and_delete(&key, cur.mod_revision)
                        .await
                        .unwrap();
                    model.remove(&key);
                    history.push((gone.mod_revision, model.clone()));
                    continue;
                }
                Some(cur) => f
                    .store
                    .compare_and_swap(&key, cur.mod_revision, value("m", i))
                    .await
                    .unwrap(),
            };
            model.insert(key, kv.clone());
            history.push((kv.mod_revision, model.clone()));
        }
        for (revision, state) in history.iter().step_by(7) {
            let list = f
                .store
                .list(
                    "/m/",
                    ListOptions {
                        revision: Some(*revision),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(list.revision, *revision);
            let want: Vec<_> = state.values().cloned().collect();
            assert_eq!(list.items, want, "state at revision {revision}");
            // Paging through the same snapshot agrees.
            let mut paged = Vec::new();
            let mut start_after = None;
            loop {
                let opts = ListOptions {
                    revision: Some(*revision),
                    limit: Some(3),
                    start_after: start_after.clone(),
                    ..Default::default()
                };
                let page = f.store.list("/m/", opts).await.unwrap();
                start_after = page.items.last().map(|kv| kv.key.clone());
                paged.extend(page.items);
                if !page.more {
                    break;
                }
            }
            assert_eq!(paged, want, "paged state at revision {revision}");
        }
    }

    /// Not a test on its own: the child half of
    /// `acknowledged_writes_survive_abort`, which runs this binary again with
    /// the variable set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_child() {
        let Ok(dir) = std::env::var("RKUBE_STORAGE_CRASH_DIR") else {
            return;
        };
        let store = EmbeddedStore::open(Path::new(&dir), EmbeddedOptions::default()).unwrap();
        let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
        for w in 0..8 {
            let store = store.clone();
            let acks = acks.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{w}/{i}");
                    let kv = store.create(&key, value("c", i)).await.unwrap();
                    if acks.send(kv).is_err() {
                        return;
                    }
                }
            });
        }
        let mut out = std::io::stdout().lock();
        for _ in 0..300 {
            let kv = acked.recv().await.unwrap();
            writeln!(out, "acked {} {}", kv.key, kv.mod_revision).unwrap();
        }
        out.flush().unwrap();
        // Die mid-stream like kill -9: no destructors, writes in flight.
        std::process::abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_writes_survive_abort() {
        let dir = tempfile::tempdir().unwrap();
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{module}::crash_child"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RKUBE_STORAGE_CRASH_DIR", dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "the child was supposed to abort");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let acked: Vec<(String, u64)> = stdout
            .lines()
            // The harness may print its own text before the first line.
            .filter_map(|l| l.split_once("acked ").map(|(_, rest)| rest))
            .map(|l| {
                let (key, rev) = l.rsplit_once(' ').unwrap();
                (key.to_owned(), rev.parse().unwrap())
            })
            .collect();
        assert_eq!(acked.len(), 300, "child output: {stdout}");

        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let current = store.current_revision().await.unwrap();
        let highest = acked.iter().map(|(_, r)| *r).max().unwrap();
        assert!(
            current >= highest,
            "revision went back from {highest} to {current}"
        );
        for (key, revision) in &acked {
            assert_eq!(
                store.get(key).await.unwrap().mod_revision,
                *revision,
                "{key} lost"
            );
        }
        // Everything committed is consistent: one log entry per revision.
        let all = store.list("/crash/", ListOptions::default()).await.unwrap();
        assert_eq!(all.items.len() as u64, current);
        let next = store.create("/crash/after", value("c", 0)).await.unwrap();
        assert_eq!(next.mod_revision, current + 1);
    }
}
