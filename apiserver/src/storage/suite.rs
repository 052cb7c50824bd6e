//! The one storage test suite: behaviour every `Storage` backend (embedded,
//! etcd, a watch cache) must show, written only against the trait.
//!
//! This module owns the cases and the `storage_suite!` macro that turns them
//! into one `#[tokio::test]` per case for a backend. It must not use anything
//! backend-specific, and must not assume an empty keyspace or a starting
//! revision: every case works under its own key prefix and compares
//! revisions relative to what it observed, so a backend on a shared server
//! can run it too. Cases wait for conditions with timeouts, never sleeps.
//!
//! Usage, in a backend's test module:
//!
//! ```ignore
//! crate::storage_suite!(my_fixture().await);
//! ```
//!
//! where the expression yields a fresh store per case as any
//! [`StoreFixture`] (an `Arc` of the backend, or a guard that also owns,
//! say, a temporary directory, dropped when the case ends).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::{
    delete, guaranteed_update, Event, EventStream, EventType, KeyValue, ListOptions, Preconditions,
    Predicate, Revision, Storage, StorageError, Update, WatchOptions,
};

/// Longest a case waits for any single condition before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What `storage_suite!` needs from its setup expression: the store to test.
/// Whatever else the fixture owns lives until the case ends.
pub trait StoreFixture {
    fn store(&self) -> Arc<dyn Storage>;
}

impl<S: Storage> StoreFixture for Arc<S> {
    fn store(&self) -> Arc<dyn Storage> {
        self.clone()
    }
}

/// Expands to one `#[tokio::test]` per suite case, in a module named
/// `storage_suite`. The argument is evaluated afresh (inside the async test,
/// so it may `.await`) for every case and must yield a [`StoreFixture`].
#[macro_export]
macro_rules! storage_suite {
    ($make:expr) => {
        $crate::storage_suite!(@cases $make;
            create_and_get,
            create_existing_is_already_exists,
            get_missing_is_not_found,
            revisions_strictly_increase,
            compare_and_swap_semantics,
            compare_and_delete_semantics,
            guaranteed_update_concurrent_increments,
            guaranteed_update_noop_writes_nothing,
            guaranteed_update_preconditions,
            list_prefix_in_key_order,
            list_limit_and_continue,
            list_predicate_counts_matching,
            list_at_old_revision,
            list_expired_and_too_large,
            compact_rejects_future_revision,
            large_value_round_trip,
            watch_from_now_sees_changes,
            watch_replays_from_revision,
            watch_send_initial_current_state,
            watch_send_initial_at_revision,
            watch_compacted_revision_is_expired,
            watch_prefix_isolation,
            watch_concurrent_writers_in_order,
            watch_progress_when_idle,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        mod storage_suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = $make;
                    let store = $crate::storage::suite::StoreFixture::store(&fixture);
                    $crate::storage::suite::$case(store).await;
                    drop(fixture);
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------
// Helpers

fn object(name: &str) -> Vec<u8> {
    object_with(name, json!({}))
}

fn object_with(name: &str, spec: Value) -> Vec<u8> {
    let v = json!({"metadata": {"name": name, "uid": format!("uid-{name}")}, "spec": spec});
    serde_json::to_vec(&v).expect("json")
}

fn decode(kv: &KeyValue) -> Value {
    serde_json::from_slice(&kv.value).expect("stored value is the JSON the case wrote")
}

/// Each case's keys live under their own prefix.
fn base(case: &str) -> String {
    format!("/registry/suite-{case}/")
}

async fn next_item(stream: &mut EventStream) -> Option<Result<Event, StorageError>> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("timed out waiting for a watch item")
}

/// The next non-Progress event; fails on errors and on the stream ending.
async fn next_change(stream: &mut EventStream) -> Event {
    loop {
        match next_item(stream).await {
            Some(Ok(e)) if e.kind == EventType::Progress => continue,
            Some(Ok(e)) => return e,
            Some(Err(e)) => panic!("watch failed: {e}"),
            None => panic!("watch ended unexpectedly"),
        }
    }
}

/// The error a watch reports, whether `watch` itself returns it or the stream
/// yields it as its first item.
async fn watch_error(store: &dyn Storage, prefix: &str, opts: WatchOptions) -> StorageError {
    let mut stream = match store.watch(prefix, opts).await {
        Err(e) => return e,
        Ok(s) => s,
    };
    loop {
        match next_item(&mut stream).await {
            Some(Err(e)) => return e,
            Some(Ok(e)) if e.kind == EventType::Progress => continue,
            Some(Ok(e)) => panic!("expected the watch to fail, got {e:?}"),
            None => panic!("watch ended without an error"),
        }
    }
}

/// A comparable summary of an event.
fn shape(e: &Event) -> (EventType, String, Vec<u8>, Revision, Revision, Revision) {
    (
        e.kind,
        e.kv.key.clone(),
        e.kv.value.to_vec(),
        e.kv.create_revision,
        e.kv.mod_revision,
        e.revision,
    )
}

fn expected(
    kind: EventType,
    kv: &KeyValue,
) -> (EventType, String, Vec<u8>, Revision, Revision, Revision) {
    (
        kind,
        kv.key.clone(),
        kv.value.to_vec(),
        kv.create_revision,
        kv.mod_revision,
        kv.mod_revision,
    )
}

fn keys(items: &[KeyValue]) -> Vec<String> {
    items.iter().map(|kv| kv.key.clone()).collect()
}

fn at_revision(revision: Revision) -> ListOptions {
    ListOptions {
        revision: Some(revision),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Basic operations

pub async fn create_and_get(store: Arc<dyn Storage>) {
    let key = format!("{}a", base("create_and_get"));
    let before = store.current_revision().await.unwrap();
    let kv = store.create(&key, object("a")).await.unwrap();
    assert_eq!(kv.key, key);
    assert_eq!(&*kv.value, object("a").as_slice());
    assert!(
        kv.mod_revision > before,
        "revision {} not above {before}",
        kv.mod_revision
    );
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(store.get(&key).await.unwrap(), kv);
    assert!(store.current_revision().await.unwrap() >= kv.mod_revision);
}

pub async fn create_existing_is_already_exists(store: Arc<dyn Storage>) {
    let key = format!("{}a", base("create_existing"));
    let first = store.create(&key, object("a")).await.unwrap();
    let err = store
        .create(&key, object_with("a", json!({"v": 2})))
        .await
        .unwrap_err();
    assert_eq!(err, StorageError::AlreadyExists { key: key.clone() });
    assert_eq!(
        store.get(&key).await.unwrap(),
        first,
        "a failed create changed the key"
    );
}

pub async fn get_missing_is_not_found(store: Arc<dyn Storage>) {
    let key = format!("{}missing", base("get_missing"));
    assert_eq!(
        store.get(&key).await.unwrap_err(),
        StorageError::NotFound { key }
    );
}

pub async fn revisions_strictly_increase(store: Arc<dyn Storage>) {
    let b = base("revisions");
    let mut last = store.current_revision().await.unwrap();
    let mut bump = |r: Revision| {
        assert!(r > last, "revision {r} is not above {last}");
        last = r;
    };
    let mut created = Vec::new();
    for i in 0..10 {
        let kv = store
            .create(&format!("{b}k{i}"), object(&format!("k{i}")))
            .await
            .unwrap();
        bump(kv.mod_revision);
        created.push(kv);
    }
    let first = &created[0];
    let updated = store
        .compare_and_swap(
            &first.key,
            first.mod_revision,
            object_with("k0", json!({"v": 1})),
        )
        .await
        .unwrap();
    bump(updated.mod_revision);
    assert_eq!(
        updated.create_revision, first.create_revision,
        "update changed create_revision"
    );

    let deleted = store
        .compare_and_delete(&first.key, updated.mod_revision)
        .await
        .unwrap();
    bump(deleted.mod_revision);
    let recreated = store.create(&first.key, object("k0")).await.unwrap();
    bump(recreated.mod_revision);
    assert_eq!(recreated.create_revision, recreated.mod_revision);
    assert!(
        recreated.create_revision > first.create_revision,
        "re-created key kept old create_revision"
    );
    assert!(store.current_revision().await.unwrap() >= last);
}

pub async fn compare_and_swap_semantics(store: Arc<dyn Storage>) {
    let key = format!("{}a", base("cas"));
    let v1 = store.create(&key, object("a")).await.unwrap();
    let v2 = store
        .compare_and_swap(&key, v1.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);
    assert_eq!(decode(&v2)["spec"]["v"], 2);
    assert_eq!(store.get(&key).await.unwrap(), v2);

    let err = store
        .compare_and_swap(&key, v1.mod_revision, object_with("a", json!({"v": 3})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::Conflict {
            key: key.clone(),
            expected: v1.mod_revision,
            actual: v2.mod_revision
        }
    );
    assert_eq!(
        store.get(&key).await.unwrap(),
        v2,
        "a lost swap changed the key"
    );

    let missing = format!("{}missing", base("cas"));
    let err = store
        .compare_and_swap(&missing, v2.mod_revision, object("m"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::NotFound {
            key: missing.clone()
        }
    );
    assert_eq!(
        store.get(&missing).await.unwrap_err(),
        StorageError::NotFound { key: missing }
    );
}

pub async fn compare_and_delete_semantics(store: Arc<dyn Storage>) {
    let key = format!("{}a", base("cad"));
    let v1 = store.create(&key, object("a")).await.unwrap();
    let v2 = store
        .compare_and_swap(&key, v1.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();

    let err = store
        .compare_and_delete(&key, v1.mod_revision)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::Conflict {
            key: key.clone(),
            expected: v1.mod_revision,
            actual: v2.mod_revision
        }
    );
    assert_eq!(
        store.get(&key).await.unwrap(),
        v2,
        "a lost delete changed the key"
    );

    let gone = store
        .compare_and_delete(&key, v2.mod_revision)
        .await
        .unwrap();
    assert_eq!(gone.key, key);
    assert_eq!(gone.value, v2.value, "delete must return the last state");
    assert_eq!(gone.create_revision, v1.create_revision);
    assert!(
        gone.mod_revision > v2.mod_revision,
        "mod_revision must be the deletion's revision"
    );
    assert!(store.current_revision().await.unwrap() >= gone.mod_revision);
    assert_eq!(
        store.get(&key).await.unwrap_err(),
        StorageError::NotFound { key: key.clone() }
    );
    assert_eq!(
        store
            .compare_and_delete(&key, gone.mod_revision)
            .await
            .unwrap_err(),
        StorageError::NotFound { key }
    );
}

pub async fn large_value_round_trip(store: Arc<dyn Storage>) {
    let key = format!("{}big", base("large_value"));
    let value: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    let kv = store.create(&key, value.clone()).await.unwrap();
    assert_eq!(&*store.get(&key).await.unwrap().value, value.as_slice());
    let list = store
        .list(&base("large_value"), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(list.items, vec![kv]);
}

// ---------------------------------------------------------------------------
// guaranteed_update

fn count_of(kv: &KeyValue) -> i64 {
    decode(kv)["spec"]["count"].as_i64().unwrap_or(0)
}

pub async fn guaranteed_update_concurrent_increments(store: Arc<dyn Storage>) {
    let key = format!("{}counter", base("gu_concurrent"));
    let start = store
        .create(&key, object_with("counter", json!({"count": 0})))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let (kv, deleted) =
                    guaranteed_update(&*store, &key, &Preconditions::default(), |cur| {
                        let mut v = decode(cur);
                        v["spec"]["count"] = json!(count_of(cur) + 1);
                        Ok(Update::Write(serde_json::to_vec(&v).expect("json")))
                    })
                    .await
                    .unwrap();
                assert!(!deleted);
                kv
            })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for t in tasks {
        let kv = tokio::time::timeout(WAIT, t)
            .await
            .expect("update timed out")
            .unwrap();
        revisions.insert(kv.mod_revision);
    }
    assert_eq!(revisions.len(), 20, "every increment must be its own write");
    let last = store.get(&key).await.unwrap();
    assert_eq!(count_of(&last), 20);
    assert_eq!(last.create_revision, start.create_revision);
    assert_eq!(Some(&last.mod_revision), revisions.last());
}

pub async fn guaranteed_update_noop_writes_nothing(store: Arc<dyn Storage>) {
    let b = base("gu_noop");
    let key = format!("{b}a");
    let kv = store.create(&key, object("a")).await.unwrap();
    let (same, deleted) = guaranteed_update(&*store, &key, &Preconditions::default(), |cur| {
        Ok(Update::Write(cur.value.to_vec()))
    })
    .await
    .unwrap();
    assert!(!deleted);
    assert_eq!(same, kv);
    assert_eq!(store.get(&key).await.unwrap(), kv);

    // Anything written under the prefix since `kv` would show up before the
    // sentinel.
    let mut watch = store
        .watch(
            &b,
            WatchOptions {
                after_revision: Some(kv.mod_revision),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let sentinel = store
        .create(&format!("{b}sentinel"), object("sentinel"))
        .await
        .unwrap();
    let first = next_change(&mut watch).await;
    assert_eq!(
        shape(&first),
        expected(EventType::Added, &sentinel),
        "the no-op update wrote"
    );
}

pub async fn guaranteed_update_preconditions(store: Arc<dyn Storage>) {
    let b = base("gu_pre");
    let key = format!("{b}a");
    let kv = store.create(&key, object("a")).await.unwrap();
    let bump = |cur: &KeyValue| {
        let mut v = decode(cur);
        v["spec"]["count"] = json!(count_of(cur) + 1);
        Ok(Update::Write(serde_json::to_vec(&v).expect("json")))
    };

    let wrong_uid = Preconditions {
        uid: Some("other".into()),
        resource_version: None,
    };
    let err = guaranteed_update(&*store, &key, &wrong_uid, bump)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::PreconditionFailed { ref key, .. } if *key == kv.key),
        "{err:?}"
    );

    let wrong_rv = Preconditions {
        uid: None,
        resource_version: Some(kv.mod_revision + 1000),
    };
    let err = guaranteed_update(&*store, &key, &wrong_rv, bump)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert_eq!(
        store.get(&key).await.unwrap(),
        kv,
        "a failed precondition wrote"
    );

    let right = Preconditions {
        uid: Some("uid-a".into()),
        resource_version: Some(kv.mod_revision),
    };
    let (updated, deleted) = guaranteed_update(&*store, &key, &right, bump)
        .await
        .unwrap();
    assert!(!deleted);
    assert_eq!(count_of(&updated), 1);

    let err = guaranteed_update(&*store, &key, &Preconditions::default(), |_| {
        Err(StorageError::Aborted("no thanks".into()))
    })
    .await
    .unwrap_err();
    assert_eq!(err, StorageError::Aborted("no thanks".into()));
    assert_eq!(
        store.get(&key).await.unwrap(),
        updated,
        "an aborted update wrote"
    );

    let err = delete(&*store, &key, &wrong_uid).await.unwrap_err();
    assert!(
        matches!(err, StorageError::PreconditionFailed { .. }),
        "{err:?}"
    );
    let gone = delete(
        &*store,
        &key,
        &Preconditions {
            uid: Some("uid-a".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(gone.value, updated.value);
    assert!(gone.mod_revision > updated.mod_revision);
    assert_eq!(
        store.get(&key).await.unwrap_err(),
        StorageError::NotFound { key: key.clone() }
    );

    let other = format!("{b}b");
    store.create(&other, object("b")).await.unwrap();
    let (last, deleted) = guaranteed_update(&*store, &other, &Preconditions::default(), |_| {
        Ok(Update::Delete)
    })
    .await
    .unwrap();
    assert!(deleted);
    assert_eq!(last.key, other);
    let err = guaranteed_update(&*store, &other, &Preconditions::default(), bump)
        .await
        .unwrap_err();
    assert_eq!(err, StorageError::NotFound { key: other });
}

// ---------------------------------------------------------------------------
// list

pub async fn list_prefix_in_key_order(store: Arc<dyn Storage>) {
    let b = base("list_prefix");
    let pods = format!("{b}pods/a/");
    let sibling = format!("{b}pods/ab/");
    for name in ["c", "a", "b"] {
        store
            .create(&format!("{pods}{name}"), object(name))
            .await
            .unwrap();
    }
    store
        .create(&format!("{sibling}x"), object("x"))
        .await
        .unwrap();
    let last = store
        .create(&format!("{b}pods/a"), object("bare"))
        .await
        .unwrap();

    let list = store.list(&pods, ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&list.items),
        ["a", "b", "c"].map(|n| format!("{pods}{n}"))
    );
    assert!(!list.more);
    assert!(list.revision >= last.mod_revision);
    for kv in &list.items {
        assert_eq!(kv, &store.get(&kv.key).await.unwrap());
    }

    let all = store
        .list(&format!("{b}pods/"), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5, "{:?}", keys(&all.items));
    let empty = store
        .list(&format!("{b}nothing/"), ListOptions::default())
        .await
        .unwrap();
    assert!(empty.items.is_empty() && !empty.more);
    assert!(empty.revision >= last.mod_revision);
}

pub async fn list_limit_and_continue(store: Arc<dyn Storage>) {
    let b = base("list_limit");
    let names: Vec<String> = (0..7).map(|i| format!("{b}k{i}")).collect();
    for n in &names {
        store.create(n, object(n)).await.unwrap();
    }
    let page = |start_after: Option<String>, limit| ListOptions {
        limit: Some(limit),
        start_after,
        ..Default::default()
    };
    let p1 = store.list(&b, page(None, 3)).await.unwrap();
    assert_eq!(keys(&p1.items), names[0..3]);
    assert!(p1.more);
    let p2 = store
        .list(&b, page(p1.items.last().map(|kv| kv.key.clone()), 3))
        .await
        .unwrap();
    assert_eq!(keys(&p2.items), names[3..6]);
    assert!(p2.more);
    let p3 = store
        .list(&b, page(p2.items.last().map(|kv| kv.key.clone()), 3))
        .await
        .unwrap();
    assert_eq!(keys(&p3.items), names[6..7]);
    assert!(!p3.more);

    // A start key that is not stored itself, and limits that fit exactly.
    let mid = store
        .list(&b, page(Some(format!("{b}k3a")), 0))
        .await
        .unwrap();
    assert_eq!(keys(&mid.items), names[4..7]);
    let exact = store.list(&b, page(None, 7)).await.unwrap();
    assert_eq!(keys(&exact.items), names);
    assert!(!exact.more);
    let all = store.list(&b, ListOptions::default()).await.unwrap();
    assert_eq!(keys(&all.items), names);
}

pub async fn list_predicate_counts_matching(store: Arc<dyn Storage>) {
    let b = base("list_predicate");
    for i in 0..10 {
        let name = format!("k{i}");
        store
            .create(
                &format!("{b}{name}"),
                object_with(&name, json!({"even": i % 2 == 0})),
            )
            .await
            .unwrap();
    }
    let even: Predicate = Arc::new(|kv: &KeyValue| decode(kv)["spec"]["even"] == json!(true));
    let opts = |start_after| ListOptions {
        limit: Some(2),
        start_after,
        predicate: Some(even.clone()),
        ..Default::default()
    };
    let first = store.list(&b, opts(None)).await.unwrap();
    assert_eq!(keys(&first.items), [format!("{b}k0"), format!("{b}k2")]);
    assert!(first.more);

    let mut seen = keys(&first.items);
    let mut start = first.items.last().map(|kv| kv.key.clone());
    let mut more = first.more;
    let mut pages = 1;
    while more {
        pages += 1;
        assert!(pages <= 10, "paging did not terminate");
        let p = store.list(&b, opts(start.clone())).await.unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(keys(&p.items));
        start = p.items.last().map(|kv| kv.key.clone()).or(start);
        more = p.more;
    }
    let want: Vec<String> = (0..10).step_by(2).map(|i| format!("{b}k{i}")).collect();
    assert_eq!(seen, want);

    let all_even = store
        .list(
            &b,
            ListOptions {
                predicate: Some(even.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&all_even.items), want);
    assert!(!all_even.more);
}

pub async fn list_at_old_revision(store: Arc<dyn Storage>) {
    let b = base("list_snapshot");
    let a = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let bb = store.create(&format!("{b}b"), object("b")).await.unwrap();
    let c = store.create(&format!("{b}c"), object("c")).await.unwrap();
    let snapshot = c.mod_revision;

    let a2 = store
        .compare_and_swap(&a.key, a.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    store
        .compare_and_delete(&bb.key, bb.mod_revision)
        .await
        .unwrap();
    let d = store.create(&format!("{b}d"), object("d")).await.unwrap();
    let c_gone = store
        .compare_and_delete(&c.key, c.mod_revision)
        .await
        .unwrap();
    let c2 = store
        .create(&c.key, object_with("c", json!({"v": 2})))
        .await
        .unwrap();

    let old = store.list(&b, at_revision(snapshot)).await.unwrap();
    assert_eq!(old.revision, snapshot);
    assert_eq!(old.items, vec![a.clone(), bb.clone(), c.clone()]);
    assert!(!old.more);

    let paged = store
        .list(
            &b,
            ListOptions {
                revision: Some(snapshot),
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paged.items, vec![a.clone(), bb.clone()]);
    assert!(paged.more);
    let rest = store
        .list(
            &b,
            ListOptions {
                revision: Some(snapshot),
                start_after: Some(bb.key.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![c.clone()]);

    // Between the deletion of c and its re-creation.
    let between = store
        .list(&b, at_revision(c_gone.mod_revision))
        .await
        .unwrap();
    assert_eq!(between.items, vec![a2.clone(), d.clone()]);

    let now = store.list(&b, ListOptions::default()).await.unwrap();
    assert_eq!(now.items, vec![a2, c2.clone(), d]);
    assert!(now.revision >= c2.mod_revision);
    let at_now = store.list(&b, at_revision(now.revision)).await.unwrap();
    assert_eq!(at_now.items, now.items);
}

pub async fn list_expired_and_too_large(store: Arc<dyn Storage>) {
    let b = base("list_expired");
    let r1 = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let r2 = store
        .compare_and_swap(&r1.key, r1.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    let r3 = store
        .compare_and_swap(&r1.key, r2.mod_revision, object_with("a", json!({"v": 3})))
        .await
        .unwrap();
    store.compact(r2.mod_revision).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), r2.mod_revision);

    for requested in [r1.mod_revision, r2.mod_revision] {
        let err = store.list(&b, at_revision(requested)).await.unwrap_err();
        assert_eq!(
            err,
            StorageError::Expired {
                requested,
                compacted: r2.mod_revision
            }
        );
    }
    let ok = store.list(&b, at_revision(r3.mod_revision)).await.unwrap();
    assert_eq!(ok.items, vec![r3.clone()]);

    let requested = store.current_revision().await.unwrap() + 1000;
    match store.list(&b, at_revision(requested)).await.unwrap_err() {
        StorageError::TooLargeRevision {
            requested: r,
            current,
        } => {
            assert_eq!(r, requested);
            assert!(current >= r3.mod_revision && current < requested);
        }
        other => panic!("expected TooLargeRevision, got {other:?}"),
    }
    // Compacting again at or below the floor changes nothing.
    store.compact(r1.mod_revision).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), r2.mod_revision);
    assert_eq!(
        store.get(&r1.key).await.unwrap(),
        r3,
        "compaction touched current state"
    );
}

pub async fn compact_rejects_future_revision(store: Arc<dyn Storage>) {
    let kv = store
        .create(&format!("{}a", base("compact_future")), object("a"))
        .await
        .unwrap();
    let requested = store.current_revision().await.unwrap() + 1000;
    match store.compact(requested).await.unwrap_err() {
        StorageError::TooLargeRevision { requested: r, .. } => assert_eq!(r, requested),
        other => panic!("expected TooLargeRevision, got {other:?}"),
    }
    assert!(store.compacted_revision().await.unwrap() < kv.mod_revision);
}

// ---------------------------------------------------------------------------
// watch

pub async fn watch_from_now_sees_changes(store: Arc<dyn Storage>) {
    let b = base("watch_now");
    let before = store
        .create(&format!("{b}old"), object("old"))
        .await
        .unwrap();
    let mut watch = store.watch(&b, WatchOptions::default()).await.unwrap();
    let key = format!("{b}a");
    let created = store.create(&key, object("a")).await.unwrap();
    let modified = store
        .compare_and_swap(
            &key,
            created.mod_revision,
            object_with("a", json!({"v": 2})),
        )
        .await
        .unwrap();
    let deleted = store
        .compare_and_delete(&key, modified.mod_revision)
        .await
        .unwrap();

    assert_eq!(
        shape(&next_change(&mut watch).await),
        expected(EventType::Added, &created)
    );
    assert_eq!(
        shape(&next_change(&mut watch).await),
        expected(EventType::Modified, &modified)
    );
    let gone = next_change(&mut watch).await;
    assert_eq!(shape(&gone), expected(EventType::Deleted, &deleted));
    assert_eq!(
        gone.kv.value, modified.value,
        "Deleted carries the last state"
    );
    assert_eq!(gone.kv.create_revision, created.create_revision);
    assert!(gone.revision > before.mod_revision);
}

pub async fn watch_replays_from_revision(store: Arc<dyn Storage>) {
    let b = base("watch_replay");
    let start = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let mut want = Vec::new();
    let bkv = store.create(&format!("{b}b"), object("b")).await.unwrap();
    want.push(expected(EventType::Added, &bkv));
    let a2 = store
        .compare_and_swap(
            &start.key,
            start.mod_revision,
            object_with("a", json!({"v": 2})),
        )
        .await
        .unwrap();
    want.push(expected(EventType::Modified, &a2));
    let bgone = store
        .compare_and_delete(&bkv.key, bkv.mod_revision)
        .await
        .unwrap();
    want.push(expected(EventType::Deleted, &bgone));
    let ckv = store.create(&format!("{b}c"), object("c")).await.unwrap();
    want.push(expected(EventType::Added, &ckv));

    let mut watch = store
        .watch(
            &b,
            WatchOptions {
                after_revision: Some(start.mod_revision),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..want.len() {
        got.push(shape(&next_change(&mut watch).await));
    }
    assert_eq!(
        got, want,
        "replay must be every change after the revision, in order, once"
    );
    let deleted = got
        .iter()
        .find(|e| e.0 == EventType::Deleted)
        .expect("deleted");
    assert_eq!(
        deleted.2,
        object("b"),
        "replayed Deleted carries the last state"
    );

    // The switch from history to live loses and repeats nothing.
    let c2 = store
        .compare_and_swap(
            &ckv.key,
            ckv.mod_revision,
            object_with("c", json!({"v": 2})),
        )
        .await
        .unwrap();
    assert_eq!(
        shape(&next_change(&mut watch).await),
        expected(EventType::Modified, &c2)
    );
}

/// Reads the initial Added events up to the Progress event that ends them.
async fn initial_state(watch: &mut EventStream) -> (Vec<KeyValue>, Revision) {
    let mut items = Vec::new();
    loop {
        match next_item(watch).await {
            Some(Ok(e)) if e.kind == EventType::Progress => return (items, e.revision),
            Some(Ok(e)) => {
                assert_eq!(
                    e.kind,
                    EventType::Added,
                    "initial events must be Added: {e:?}"
                );
                items.push(e.kv);
            }
            Some(Err(e)) => panic!("watch failed: {e}"),
            None => panic!("watch ended during initial state"),
        }
    }
}

pub async fn watch_send_initial_current_state(store: Arc<dyn Storage>) {
    let b = base("watch_initial");
    let a = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let bkv = store.create(&format!("{b}b"), object("b")).await.unwrap();
    let c = store.create(&format!("{b}c"), object("c")).await.unwrap();
    let a2 = store
        .compare_and_swap(&a.key, a.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    let c_gone = store
        .compare_and_delete(&c.key, c.mod_revision)
        .await
        .unwrap();

    let mut watch = store
        .watch(
            &b,
            WatchOptions {
                send_initial: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (mut items, revision) = initial_state(&mut watch).await;
    items.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(items, vec![a2, bkv]);
    assert!(
        revision >= c_gone.mod_revision,
        "progress {revision} is before the last write"
    );

    let d = store.create(&format!("{b}d"), object("d")).await.unwrap();
    let e = next_change(&mut watch).await;
    assert_eq!(shape(&e), expected(EventType::Added, &d));
    assert!(e.revision > revision);
}

pub async fn watch_send_initial_at_revision(store: Arc<dyn Storage>) {
    let b = base("watch_initial_at");
    let a = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let bkv = store.create(&format!("{b}b"), object("b")).await.unwrap();
    let snapshot = bkv.mod_revision;
    let a2 = store
        .compare_and_swap(&a.key, a.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    let b_gone = store
        .compare_and_delete(&bkv.key, bkv.mod_revision)
        .await
        .unwrap();
    let c = store.create(&format!("{b}c"), object("c")).await.unwrap();

    let mut watch = store
        .watch(
            &b,
            WatchOptions {
                after_revision: Some(snapshot),
                send_initial: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (mut items, revision) = initial_state(&mut watch).await;
    items.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(items, vec![a, bkv]);
    assert_eq!(revision, snapshot);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(shape(&next_change(&mut watch).await));
    }
    assert_eq!(
        got,
        vec![
            expected(EventType::Modified, &a2),
            expected(EventType::Deleted, &b_gone),
            expected(EventType::Added, &c),
        ]
    );
}

pub async fn watch_compacted_revision_is_expired(store: Arc<dyn Storage>) {
    let b = base("watch_expired");
    let r1 = store.create(&format!("{b}a"), object("a")).await.unwrap();
    let r2 = store
        .compare_and_swap(&r1.key, r1.mod_revision, object_with("a", json!({"v": 2})))
        .await
        .unwrap();
    let r3 = store
        .compare_and_swap(&r1.key, r2.mod_revision, object_with("a", json!({"v": 3})))
        .await
        .unwrap();
    store.compact(r2.mod_revision).await.unwrap();

    for requested in [r1.mod_revision, r2.mod_revision] {
        let opts = WatchOptions {
            after_revision: Some(requested),
            ..Default::default()
        };
        let err = watch_error(&*store, &b, opts).await;
        assert_eq!(
            err,
            StorageError::Expired {
                requested,
                compacted: r2.mod_revision
            }
        );
        let opts = WatchOptions {
            after_revision: Some(requested),
            send_initial: true,
            ..Default::default()
        };
        let err = watch_error(&*store, &b, opts).await;
        assert_eq!(
            err,
            StorageError::Expired {
                requested,
                compacted: r2.mod_revision
            }
        );
    }

    let requested = store.current_revision().await.unwrap() + 1000;
    let opts = WatchOptions {
        after_revision: Some(requested),
        ..Default::default()
    };
    match watch_error(&*store, &b, opts).await {
        StorageError::TooLargeRevision { requested: r, .. } => assert_eq!(r, requested),
        other => panic!("expected TooLargeRevision, got {other:?}"),
    }

    // Above the floor still works.
    let mut watch = store
        .watch(
            &b,
            WatchOptions {
                after_revision: Some(r3.mod_revision),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r4 = store
        .compare_and_swap(&r1.key, r3.mod_revision, object("a"))
        .await
        .unwrap();
    assert_eq!(
        shape(&next_change(&mut watch).await),
        expected(EventType::Modified, &r4)
    );
}

pub async fn watch_prefix_isolation(store: Arc<dyn Storage>) {
    let b = base("watch_prefix");
    let a_prefix = format!("{b}pods/a/");
    let ab_prefix = format!("{b}pods/ab/");
    let mut wa = store
        .watch(&a_prefix, WatchOptions::default())
        .await
        .unwrap();
    let mut wab = store
        .watch(&ab_prefix, WatchOptions::default())
        .await
        .unwrap();

    store
        .create(&format!("{ab_prefix}x"), object("abx"))
        .await
        .unwrap();
    store
        .create(&format!("{b}pods/a"), object("bare"))
        .await
        .unwrap();
    let ax = store
        .create(&format!("{a_prefix}x"), object("ax"))
        .await
        .unwrap();
    let abx = store.get(&format!("{ab_prefix}x")).await.unwrap();
    let ay = store
        .create(&format!("{a_prefix}y"), object("ay"))
        .await
        .unwrap();
    let aby = store
        .create(&format!("{ab_prefix}y"), object("aby"))
        .await
        .unwrap();

    assert_eq!(
        shape(&next_change(&mut wa).await),
        expected(EventType::Added, &ax)
    );
    assert_eq!(
        shape(&next_change(&mut wa).await),
        expected(EventType::Added, &ay)
    );
    assert_eq!(
        shape(&next_change(&mut wab).await),
        expected(EventType::Added, &abx)
    );
    assert_eq!(
        shape(&next_change(&mut wab).await),
        expected(EventType::Added, &aby)
    );

    // Replays filter the same way.
    let mut replay = store
        .watch(
            &a_prefix,
            WatchOptions {
                after_revision: Some(abx.mod_revision - 1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        shape(&next_change(&mut replay).await),
        expected(EventType::Added, &ax)
    );
    assert_eq!(
        shape(&next_change(&mut replay).await),
        expected(EventType::Added, &ay)
    );
}

pub async fn watch_concurrent_writers_in_order(store: Arc<dyn Storage>) {
    const WRITERS: usize = 8;
    const UPDATES: usize = 4;
    let b = base("watch_concurrent");
    let start = store.current_revision().await.unwrap();
    let mut live = store.watch(&b, WatchOptions::default()).await.unwrap();

    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let key = format!("{b}w{w}");
            tokio::spawn(async move {
                let mut kv = store
                    .create(&key, object_with("w", json!({"count": 0})))
                    .await
                    .unwrap();
                for i in 1..=UPDATES {
                    kv = store
                        .compare_and_swap(
                            &key,
                            kv.mod_revision,
                            object_with("w", json!({"count": i})),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // A second watcher starts while the writers run: part replay, part live.
    let mut joined = store
        .watch(
            &b,
            WatchOptions {
                after_revision: Some(start),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for t in tasks {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("writer timed out")
            .unwrap();
    }

    let total = WRITERS * (UPDATES + 1);
    let mut streams = Vec::new();
    for watch in [&mut live, &mut joined] {
        let mut events = Vec::new();
        for _ in 0..total {
            events.push(next_change(watch).await);
        }
        streams.push(events);
    }
    for events in &streams {
        for pair in events.windows(2) {
            assert!(
                pair[0].revision < pair[1].revision,
                "out of order or repeated: {pair:?}"
            );
        }
        let mut per_key: BTreeMap<&str, Vec<(EventType, i64)>> = BTreeMap::new();
        for e in events {
            assert_eq!(e.revision, e.kv.mod_revision);
            per_key
                .entry(&e.kv.key)
                .or_default()
                .push((e.kind, count_of(&e.kv)));
        }
        assert_eq!(per_key.len(), WRITERS);
        for seq in per_key.values() {
            let want: Vec<_> = (0..=UPDATES as i64)
                .map(|i| {
                    (
                        if i == 0 {
                            EventType::Added
                        } else {
                            EventType::Modified
                        },
                        i,
                    )
                })
                .collect();
            assert_eq!(seq, &want);
        }
    }
    let shapes: Vec<Vec<_>> = streams
        .iter()
        .map(|s| s.iter().map(shape).collect())
        .collect();
    assert_eq!(shapes[0], shapes[1], "two watchers saw different histories");
}

pub async fn watch_progress_when_idle(store: Arc<dyn Storage>) {
    let b = base("watch_progress");
    let mut watch = store
        .watch(
            &format!("{b}quiet/"),
            WatchOptions {
                progress_interval: Some(Duration::from_millis(50)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let first = match next_item(&mut watch).await {
        Some(Ok(e)) => e,
        other => panic!("expected a progress event, got {other:?}"),
    };
    assert_eq!(first.kind, EventType::Progress);
    assert!(first.kv.key.is_empty());

    // Writes elsewhere advance the revision the watch reports.
    let other = store
        .create(&format!("{b}busy/x"), object("x"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(Ok(e))) => e,
            Ok(other) => panic!("watch failed: {other:?}"),
            Err(_) => panic!("progress never reached revision {}", other.mod_revision),
        };
        assert_eq!(e.kind, EventType::Progress, "the quiet prefix got {e:?}");
        if e.revision >= other.mod_revision {
            break;
        }
    }
}
