//! Fault tests: the datastore going away under a running API server, and
//! `kill -9` of the server in the middle of a write load, on both backends.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::{Backend, Cluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent};
use kube::Client;

async fn client(c: &Cluster) -> Client {
    c.client().await
}

/// Names of the config maps in the namespace.
async fn names(api: &Api<ConfigMap>) -> BTreeSet<String> {
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .map(|i| i.metadata.name.unwrap())
        .collect()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"k": name}}))
        .unwrap()
}

/// Writes from 8 tasks until stopped; records what was acknowledged.
async fn write_load(
    api: Api<ConfigMap>,
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let api = api.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("load-{t}-{i}");
                i += 1;
                if api.create(&PostParams::default(), &cm(&name)).await.is_ok() {
                    acked.lock().unwrap().insert(name);
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn kill9_under_load(backend: Backend) {
    let mut c = Cluster::start_on(backend);
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(write_load(api.clone(), acked.clone(), stop.clone()));
    // Kill once a good number of writes were acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "write load too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = acked.lock().unwrap().clone();
    let max_rv_before = {
        let list = api.list(&ListParams::default()).await.unwrap();
        list.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    tokio::task::block_in_place(|| c.kill9_and_restart());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.await;
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let present = names(&api).await;
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(acked.len() >= before.len());
    let after = api
        .create(&PostParams::default(), &cm("after-restart"))
        .await
        .unwrap();
    let rv: u64 = after.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        rv > max_rv_before,
        "resourceVersion went backwards: {rv} <= {max_rv_before}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write_embedded() {
    kill9_under_load(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write_etcd() {
    kill9_under_load(Backend::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_fails_requests_cleanly_then_recovers() {
    let mut c = Cluster::start_on(Backend::Etcd);
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before = api
        .create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let rv = before.metadata.resource_version.unwrap();
    let mut watch = api
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    tokio::task::block_in_place(|| c.etcd().stop());
    // Writes fail with a clear 5xx Status within the request timeout: no
    // hang, no crash. (kubectl, not kube-rs: kube-rs retries 503s itself.)
    let started = Instant::now();
    let out = c.kubectl(&["create", "configmap", "during", "-v=6"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(started.elapsed() < Duration::from_secs(30), "request hung");
    assert!(log.contains("503") && log.contains("etcd"), "{log}");
    let ready = c.kubectl(&["get", "--raw", "/readyz"]);
    assert!(
        !ready.status.success(),
        "readyz must fail while etcd is down"
    );
    tokio::task::block_in_place(|| c.etcd().restart());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if api
            .create(&PostParams::default(), &cm("after"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not recover after etcd came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let names = names(&api).await;
    assert!(
        names.contains("before") && names.contains("after") && !names.contains("during"),
        "{names:?}"
    );
    // The watch opened before the outage either continues without a gap
    // (its next event is "after") or ends so the client re-lists; it never
    // repeats "before" or invents "during".
    loop {
        match tokio::time::timeout(Duration::from_secs(30), watch.next()).await {
            Ok(Some(Ok(WatchEvent::Added(o)))) => {
                assert_eq!(
                    o.metadata.name.as_deref(),
                    Some("after"),
                    "gap or duplicate"
                );
                break;
            }
            Ok(Some(Ok(WatchEvent::Bookmark(_)))) => continue,
            Ok(Some(Ok(WatchEvent::Error(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
            Ok(Some(Ok(other))) => panic!("unexpected event {other:?}"),
            Err(_) => panic!("the watch neither continued nor ended"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_etcd_survives_one_member_and_recovers_from_losing_quorum() {
    let etcd = tokio::task::block_in_place(|| conformance::Etcd::start_cluster(3));
    let mut c = tokio::task::block_in_place(|| Cluster::start_on_etcd(etcd));
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    api.create(&PostParams::default(), &cm("three"))
        .await
        .unwrap();
    // One member down: nothing changes for clients.
    tokio::task::block_in_place(|| c.etcd().stop_member(0));
    api.create(&PostParams::default(), &cm("two-left"))
        .await
        .unwrap();
    assert!(c.kubectl(&["get", "--raw", "/readyz"]).status.success());
    // Two down: no quorum; readyz fails and writes fail cleanly.
    tokio::task::block_in_place(|| c.etcd().stop_member(1));
    let out = c.kubectl(&["create", "configmap", "no-quorum"]);
    assert!(!out.status.success());
    let ready = c.kubectl(&["get", "--raw", "/readyz"]);
    assert!(!ready.status.success(), "readyz must fail without quorum");
    // Members back: recovers without restarting rkube.
    tokio::task::block_in_place(|| {
        c.etcd().restart_member(0);
        c.etcd().restart_member(1);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c.kubectl(&["get", "--raw", "/readyz"]).status.success() {
        assert!(Instant::now() < deadline, "readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while api
        .create(&PostParams::default(), &cm("recovered"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "writes did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let names = names(&api).await;
    assert!(
        names.contains("three") && names.contains("two-left") && names.contains("recovered"),
        "{names:?}"
    );
}
