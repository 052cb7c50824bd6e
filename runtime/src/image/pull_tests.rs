use std::time::Instant;

use super::*;
use crate::testing::images::{busybox, pause, push, push_with_auth};
use crate::testing::registry::{free_port, TestRegistry};

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    (dir, store)
}

fn blob_count(store: &ImageStore) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn plain_http_only_for_loopback_and_listed_registries() {
    let options = StoreOptions {
        insecure_registries: vec!["my.reg:5000".into(), "lan-host".into()],
        ..StoreOptions::default()
    };
    for (registry, insecure) in [
        ("localhost", true),
        ("localhost:5000", true),
        ("127.0.0.1:5000", true),
        ("127.1.2.3", true),
        ("[::1]:5000", true),
        ("my.reg:5000", true),
        ("lan-host:443", true),
        ("my.reg", false),
        ("docker.io", false),
        ("10.0.0.1:5000", false),
        ("localhost.example.com", false),
    ] {
        assert_eq!(is_insecure(registry, &options), insecure, "{registry}");
    }
}

#[tokio::test]
async fn pulls_anonymously_and_skips_present_layers() {
    let registry = TestRegistry::start();
    let host = registry.host_port();
    let digest = push(host, &busybox(), "library/busybox", "1.0").await;
    push(host, &pause(), "pause", "3.9").await;
    let (_dir, store) = store();

    let reference = format!("{host}/library/busybox:1.0");
    let (info, stats) = store.pull_with_stats(&reference, None).await.unwrap();
    assert_eq!(stats.blobs_downloaded, 2);
    assert_eq!(info.id, busybox().id());
    assert_eq!(info.repo_tags, vec![reference.clone()]);
    assert_eq!(
        info.repo_digests,
        vec![format!("{host}/library/busybox@{digest}")]
    );
    assert_eq!(info.config.cmd, vec!["sh"]);
    let dirs = store.layer_dirs(&reference).unwrap();
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(
        store
            .status(&format!("{host}/library/busybox@{digest}"))
            .unwrap()
            .id,
        info.id
    );

    // Again: nothing to download.
    let (again, stats) = store.pull_with_stats(&reference, None).await.unwrap();
    assert_eq!(stats.blobs_downloaded, 0);
    assert_eq!(again, info);

    // pause shares busybox's layer: only its config and top layer come.
    let (pause_info, stats) = store
        .pull_with_stats(&format!("{host}/pause:3.9"), None)
        .await
        .unwrap();
    assert_eq!(stats.blobs_downloaded, 2);
    assert_eq!(pause_info.config.entrypoint, vec!["/pause"]);

    // By digest.
    let by_digest = format!("{host}/library/busybox@{digest}");
    assert_eq!(store.pull(&by_digest, None).await.unwrap().id, info.id);
    let blobs = store.blobs(&reference).await.unwrap();
    assert_eq!(blobs.manifest, busybox().manifest);
}

#[tokio::test]
async fn pulls_with_basic_auth() {
    let registry = TestRegistry::start_with_basic_auth("alice", "s3cret");
    let host = registry.host_port();
    let good = RegistryAuth::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    push_with_auth(host, &busybox(), "busybox", "latest", Some(&good)).await;
    let (_dir, store) = store();
    let reference = format!("{host}/busybox");

    let err = store.pull(&reference, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImagePullFailed, "{err}");
    assert!(err.message.contains(&reference), "{err}");

    let bad = RegistryAuth::Basic {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let err = store.pull(&reference, Some(&bad)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImagePullFailed, "{err}");
    assert_eq!(blob_count(&store), 0);

    let info = store.pull(&reference, Some(&good)).await.unwrap();
    assert_eq!(info.id, busybox().id());
}

#[tokio::test]
async fn missing_images_and_bad_references_fail_clearly() {
    let registry = TestRegistry::start();
    let host = registry.host_port();
    let (_dir, store) = store();
    let reference = format!("{host}/nothing/here:v1");
    let err = store.pull(&reference, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImagePullFailed, "{err}");
    assert!(err.message.contains("not found"), "{err}");
    assert!(err.message.contains("nothing/here"), "{err}");

    let err = store.pull("Not A Reference", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert!(store.list().is_empty());
    assert_eq!(blob_count(&store), 0);
}

#[tokio::test]
async fn unreachable_registry_fails_fast() {
    let (_dir, store) = store();
    let reference = format!("127.0.0.1:{}/busybox:latest", free_port());
    let started = Instant::now();
    let err = store.pull(&reference, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImagePullFailed, "{err}");
    assert!(err.message.contains(&reference), "{err}");
    assert!(err.message.contains("cannot reach"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_agree() {
    let registry = TestRegistry::start();
    let host = registry.host_port();
    push(host, &pause(), "pause", "latest").await;
    let (_dir, store) = store();
    let reference = format!("{host}/pause");
    let (a, b) = tokio::join!(store.pull(&reference, None), store.pull(&reference, None));
    assert_eq!(a.unwrap().id, b.unwrap().id);
    assert_eq!(store.list().len(), 1);
    let layers = std::fs::read_dir(store.root().join("layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 2);
    let tmp = std::fs::read_dir(store.root().join("tmp")).unwrap().count();
    assert_eq!(tmp, 0);
    // Removing while pulling again: the pull's leased blobs survive.
    let (pulled, removed) = tokio::join!(store.pull(&reference, None), store.remove(&reference));
    removed.unwrap();
    let pulled = pulled.unwrap();
    if store.status(&pulled.id).is_some() {
        for dir in store.layer_dirs(&pulled.id).unwrap() {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        store.blobs(&pulled.id).await.unwrap();
    }
}
