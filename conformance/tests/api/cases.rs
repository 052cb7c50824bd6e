//! API semantics through kube-rs against a real `rkube server` (watch,
//! chunked lists, errors, events, shutdown), included by `api.rs` (embedded
//! store) and `api_etcd.rs` (etcd). Names mirror the upstream conformance
//! tests.

use std::time::Duration;

use conformance::{Backend, Cluster};

use crate::BACKEND;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Client;

/// A cluster whose datastore forgets history after about a second.
fn start_with_short_history() -> Cluster {
    let flag = match BACKEND {
        Backend::Embedded => "--history-window-seconds",
        Backend::Etcd => "--etcd-compaction-interval-seconds",
    };
    Cluster::start_on_with(BACKEND, &[flag, "1"])
}

async fn client(c: &Cluster) -> Client {
    c.client().await
}

fn cm(name: &str, labels: &[(&str, &str)], value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>()},
        "data": {"mutation": value},
    }))
    .unwrap()
}

/// Collects `n` non-bookmark events from a watch, with a deadline.
async fn next_events(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
    n: usize,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("watch event in time")
            .expect("watch ok")
            .expect("stream open");
        let (t, o) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let value = o
            .data
            .as_ref()
            .and_then(|d| d.get("mutation"))
            .cloned()
            .unwrap_or_default();
        out.push((t.to_string(), o.metadata.name.unwrap(), value));
    }
    out
}

#[tokio::test]
async fn sig_api_machinery_watchers_should_observe_add_update_and_delete_watch_notifications_on_configmaps(
) {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let wp = WatchParams::default().labels("watch-this-configmap=multiple-watchers-A");
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut a = api.watch(&wp, &start).await.unwrap().boxed();
    let pp = PostParams::default();
    api.create(
        &pp,
        &cm(
            "e2e-watch-test-configmap-a",
            &[("watch-this-configmap", "multiple-watchers-A")],
            "0",
        ),
    )
    .await
    .unwrap();
    let mut obj = api.get("e2e-watch-test-configmap-a").await.unwrap();
    obj.data
        .as_mut()
        .unwrap()
        .insert("mutation".into(), "1".into());
    api.replace("e2e-watch-test-configmap-a", &pp, &obj)
        .await
        .unwrap();
    api.delete("e2e-watch-test-configmap-a", &Default::default())
        .await
        .unwrap();
    // An object the selector does not match is never seen.
    api.create(&pp, &cm("other", &[("watch-this-configmap", "B")], "x"))
        .await
        .unwrap();
    let evs = next_events(&mut a, 3).await;
    assert_eq!(
        evs,
        [
            (
                "ADDED".into(),
                "e2e-watch-test-configmap-a".into(),
                "0".into()
            ),
            (
                "MODIFIED".into(),
                "e2e-watch-test-configmap-a".into(),
                "1".into()
            ),
            (
                "DELETED".into(),
                "e2e-watch-test-configmap-a".into(),
                "1".into()
            ),
        ]
    );
}

#[tokio::test]
async fn sig_api_machinery_watchers_should_be_able_to_start_watching_from_a_specific_resource_version(
) {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let pp = PostParams::default();
    api.create(&pp, &cm("rv", &[], "0")).await.unwrap();
    let mut versions = Vec::new();
    for i in 1..=3 {
        let mut o = api.get("rv").await.unwrap();
        o.data
            .as_mut()
            .unwrap()
            .insert("mutation".into(), i.to_string());
        versions.push(
            api.replace("rv", &pp, &o)
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap(),
        );
    }
    api.delete("rv", &Default::default()).await.unwrap();
    let mut w = api
        .watch(&WatchParams::default(), &versions[0])
        .await
        .unwrap()
        .boxed();
    let evs = next_events(&mut w, 3).await;
    assert_eq!(
        evs,
        [
            ("MODIFIED".into(), "rv".into(), "2".into()),
            ("MODIFIED".into(), "rv".into(), "3".into()),
            ("DELETED".into(), "rv".into(), "3".into()),
        ]
    );
}

#[tokio::test]
async fn sig_api_machinery_watchers_should_observe_an_object_deletion_if_it_stops_meeting_the_requirements_of_the_selector(
) {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let pp = PostParams::default();
    let mut w = api
        .watch(
            &WatchParams::default().labels("watch-this-configmap=label-changed-and-restored"),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    api.create(
        &pp,
        &cm(
            "sel",
            &[("watch-this-configmap", "label-changed-and-restored")],
            "0",
        ),
    )
    .await
    .unwrap();
    let mut o = api.get("sel").await.unwrap();
    o.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("watch-this-configmap".into(), "wrong-value".into());
    api.replace("sel", &pp, &o).await.unwrap();
    let mut o = api.get("sel").await.unwrap();
    o.metadata.labels.as_mut().unwrap().insert(
        "watch-this-configmap".into(),
        "label-changed-and-restored".into(),
    );
    o.data
        .as_mut()
        .unwrap()
        .insert("mutation".into(), "2".into());
    api.replace("sel", &pp, &o).await.unwrap();
    let evs: Vec<String> = next_events(&mut w, 3)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(evs, ["ADDED", "DELETED", "ADDED"]);
}

#[tokio::test]
async fn sig_api_machinery_watchers_should_receive_events_on_concurrent_watches_in_same_order() {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watches = Vec::new();
    for _ in 0..3 {
        watches.push(
            api.watch(&WatchParams::default(), &start)
                .await
                .unwrap()
                .boxed(),
        );
    }
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                api.create(
                    &PostParams::default(),
                    &cm(&format!("c{i}"), &[], &i.to_string()),
                )
                .await
                .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    for w in watches.iter_mut() {
        seen.push(next_events(w, 30).await);
    }
    writer.await.unwrap();
    assert!(
        seen.iter().all(|s| *s == seen[0]),
        "watchers disagree on order"
    );
    let names: std::collections::HashSet<&String> = seen[0].iter().map(|e| &e.1).collect();
    assert_eq!(names.len(), 30, "no duplicates, no gaps");
}

#[tokio::test]
async fn sig_api_machinery_servers_with_support_for_api_chunking_should_return_chunks_of_results_for_list_calls(
) {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    for i in 0..25 {
        api.create(
            &PostParams::default(),
            &cm(&format!("chunk-{i:02}"), &[("chunk", "yes")], ""),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().labels("chunk=yes").limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        names.extend(page.items.into_iter().map(|i| i.metadata.name.unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("chunk-{i:02}")).collect();
    assert_eq!(names, expected);
    let bad = api
        .list(&ListParams::default().continue_token("garbage"))
        .await
        .unwrap_err();
    assert!(
        matches!(bad, kube::Error::Api(ref s) if s.code == 400),
        "{bad:?}"
    );
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_the_end_bookmark() {
    let c = Cluster::start_on(BACKEND);
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("init-{i}"), &[], ""))
            .await
            .unwrap();
    }
    let wp = WatchParams::streaming_lists();
    let mut w = api.watch(&wp, "").await.unwrap().boxed();
    let mut added = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), w.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(_) => added += 1,
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 3);
}

#[tokio::test]
async fn stale_update_is_a_409_conflict_and_bad_names_are_422() {
    let c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let pp = PostParams::default();
    let first = api.create(&pp, &cm("conflict", &[], "0")).await.unwrap();
    let mut second = first.clone();
    second
        .data
        .as_mut()
        .unwrap()
        .insert("mutation".into(), "1".into());
    api.replace("conflict", &pp, &second).await.unwrap();
    let err = api.replace("conflict", &pp, &second).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    let err = api
        .create(&pp, &cm("Not_Valid", &[], ""))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            let causes = s.details.unwrap().causes;
            assert!(
                causes.iter().any(|c| c.field == "metadata.name"),
                "{causes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let err = api.get("missing").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    let err = api.create(&pp, &cm("conflict", &[], "")).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
}

#[tokio::test]
async fn watch_and_continue_from_a_compacted_revision_are_410_expired() {
    let c = start_with_short_history();
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let pp = PostParams::default();
    for i in 0..4 {
        api.create(&pp, &cm(&format!("old-{i}"), &[], ""))
            .await
            .unwrap();
    }
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = page.metadata.continue_.clone().expect("a continue token");
    let old_rv = page.metadata.resource_version.clone().unwrap();
    // Keep writing until the store has compacted the old revision away.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    loop {
        i += 1;
        api.create(&pp, &cm(&format!("new-{i}"), &[], ""))
            .await
            .unwrap();
        match api
            .watch(&WatchParams::default(), &old_rv)
            .await
            .unwrap()
            .boxed()
            .try_next()
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 410 => break,
            Ok(Some(WatchEvent::Error(s))) if s.code == 410 => break,
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revision {old_rv} never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 410 && s.reason == "Expired"),
        "{err:?}"
    );
    // A fresh list still works.
    assert!(api.list(&ListParams::default()).await.unwrap().items.len() >= 4);
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_keeps_its_data() {
    let mut c = Cluster::start_on(BACKEND);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    api.create(&PostParams::default(), &cm("kept", &[], "1"))
        .await
        .unwrap();
    let status = c.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(
        c.server_log().contains("shutting down"),
        "{}",
        c.server_log()
    );
    c.restart();
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    assert_eq!(
        api.get("kept").await.unwrap().data.unwrap()["mutation"],
        "1"
    );
}

/// Method, URI, content type, body, expected code and expected reason.
type BadInput<'a> = (&'a str, String, &'a str, Vec<u8>, u16, &'a str);

/// Sends a raw request and returns (status code, Status reason).
async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("Content-Type", content_type)
        .body(body)
        .unwrap();
    match client.request_text(req).await {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.reason),
        Err(other) => panic!("{method} {uri}: {other:?}"),
    }
}

#[tokio::test]
async fn bad_input_gets_the_matching_status_and_loses_nothing() {
    let c = Cluster::start_on(BACKEND);
    let client = client(&c).await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let json = "application/json";
    let ok = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ok"}}"#.to_vec();
    assert_eq!(raw(&client, "POST", cms, json, ok).await.0, 200);
    let cases: Vec<BadInput> = vec![
        (
            "POST",
            cms.into(),
            json,
            b"{not json".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":"oops"}"#
                .to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            format!("{cms}?fieldValidation=Strict"),
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"bogus":1}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}"}}}}"#,
                "a".repeat(300)
            )
            .into_bytes(),
            422,
            "Invalid",
        ),
        (
            "POST",
            cms.into(),
            "text/plain",
            b"hello".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ok"}}"#.to_vec(),
            409,
            "AlreadyExists",
        ),
        (
            "GET",
            format!("{cms}?labelSelector=a%20in%20(b"),
            json,
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{cms}?resourceVersion=abc"),
            json,
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{cms}?fieldSelector=spec.nope%3D1"),
            json,
            vec![],
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{cms}/ok"),
            "application/apply-patch+cbor",
            b"{}".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "PUT",
            format!("{cms}/ok"),
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/nothings".into(),
            json,
            vec![],
            404,
            "NotFound",
        ),
        (
            "POST",
            "/api/v1/componentstatuses".into(),
            json,
            b"{}".to_vec(),
            405,
            "MethodNotAllowed",
        ),
    ];
    for (method, uri, ct, body, code, reason) in cases {
        let (got, got_reason) = raw(&client, method, &uri, ct, body).await;
        assert_eq!((got, got_reason.as_str()), (code, reason), "{method} {uri}");
    }
    // Nothing was lost or half-written.
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.metadata.name.unwrap())
        .collect();
    assert!(
        names.contains(&"ok".to_string()) && !names.contains(&"x".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn sig_instrumentation_events_api_should_ensure_that_an_event_can_be_fetched_patched_deleted_and_listed(
) {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let c = Cluster::start_on(BACKEND);
    let client = client(&c).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let ev: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "test-event", "labels": {"testevent-set": "true"}},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p"},
        "note": "This is a test event",
        "reason": "Test", "type": "Normal", "action": "Testing",
        "reportingController": "test-controller", "reportingInstance": "test-node",
    }))
    .unwrap();
    events.create(&PostParams::default(), &ev).await.unwrap();
    // The same object is visible through core/v1, converted.
    let as_core = core.get("test-event").await.unwrap();
    assert_eq!(as_core.message.as_deref(), Some("This is a test event"));
    assert_eq!(as_core.involved_object.name.as_deref(), Some("p"));
    // In events.k8s.io/v1 the note is immutable; a series update is the patch
    // the upstream test makes.
    let patch = serde_json::json!({"series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:05.000000Z"}});
    events
        .patch(
            "test-event",
            &Default::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    assert_eq!(
        events
            .get("test-event")
            .await
            .unwrap()
            .series
            .map(|s| s.count),
        Some(2)
    );
    let immutable = serde_json::json!({"note": "changed"});
    let err = events
        .patch(
            "test-event",
            &Default::default(),
            &kube::api::Patch::Merge(&immutable),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    let listed = events
        .list(&ListParams::default().labels("testevent-set=true"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    events
        .delete("test-event", &Default::default())
        .await
        .unwrap();
    assert!(core.get("test-event").await.is_err());
}

/// A schemathesis finding: every DELETE answered with the object. Like
/// upstream, a kind without ReturnDeletedObject (ConfigMap) answers a
/// `Status` naming the resource once the object is gone; a kind with it
/// (ServiceAccount) answers the object; and a deletion left pending by a
/// finalizer answers the object whatever the kind. A deletecollection
/// answers the list of what it deleted.
#[tokio::test]
async fn delete_answers_a_status_or_the_object_as_upstream_does() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{DeleteParams, Patch, PatchParams};
    let c = Cluster::start_on(BACKEND);
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let created = cms.create(&pp, &cm("gone", &[], "x")).await.unwrap();
    let answer = cms.delete("gone", &DeleteParams::default()).await.unwrap();
    let status = answer.right().expect("a Status for a configmap");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let details = status.details.expect("details");
    assert_eq!(details.name, "gone");
    assert_eq!(details.kind, "configmaps");
    assert_eq!(Some(details.uid), created.metadata.uid);

    let mut held = cm("held", &[], "x");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&pp, &held).await.unwrap();
    let pending = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let obj = pending
        .left()
        .expect("the object while the finalizer holds it");
    assert!(obj.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "sa"}})).unwrap();
    sas.create(&pp, &sa).await.unwrap();
    let answer = sas.delete("sa", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        answer
            .left()
            .expect("the service account")
            .metadata
            .name
            .as_deref(),
        Some("sa")
    );

    for name in ["a", "b"] {
        cms.create(&pp, &cm(name, &[("batch", "1")], "x"))
            .await
            .unwrap();
    }
    let answer = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("batch=1"),
        )
        .await
        .unwrap();
    let list = answer.left().expect("the list of deleted configmaps");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(cms
        .list(&ListParams::default().labels("batch=1"))
        .await
        .unwrap()
        .items
        .is_empty());
}
