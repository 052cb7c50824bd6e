use super::*;
use crate::testing::images::{busybox, pause, write_oci_layout_tar, LayerBuilder, TestImage};
use crate::types::ImageConfig;

fn open(dir: &Path) -> ImageStore {
    ImageStore::open(&dir.join("store"), StoreOptions::default()).unwrap()
}

fn count(store: &ImageStore, dir: &str) -> usize {
    std::fs::read_dir(store.root().join(dir)).unwrap().count()
}

async fn import(store: &ImageStore, dir: &Path, images: &[TestImage]) -> Vec<ImageInfo> {
    static N: AtomicU64 = AtomicU64::new(0);
    let archive = dir.join(format!("a{}.tar", N.fetch_add(1, Ordering::Relaxed)));
    let _ = store;
    write_oci_layout_tar(&archive, images);
    store.import(&archive).await.unwrap()
}

#[tokio::test]
async fn remove_collects_unused_blobs_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    import(&store, dir.path(), &[busybox(), pause()]).await;
    // 2 manifests + 2 configs + 2 layers; 2 unpacked layers.
    assert_eq!(count(&store, "blobs/sha256"), 6);
    assert_eq!(count(&store, "layers"), 2);

    store.remove("pause").await.unwrap();
    assert!(store.status("pause").is_none());
    assert_eq!(count(&store, "blobs/sha256"), 3);
    assert_eq!(count(&store, "layers"), 1);
    assert!(store.layer_dirs("busybox").unwrap()[0]
        .join("bin/busybox")
        .is_file());

    let err = store.remove("pause").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    store.remove(&busybox().id()).await.unwrap();
    assert_eq!(count(&store, "blobs/sha256"), 0);
    assert_eq!(count(&store, "layers"), 0);
    assert!(store.list().is_empty());
}

#[tokio::test]
async fn finds_images_by_tag_id_and_short_id_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    import(&store, dir.path(), &[busybox()]).await;
    let id = busybox().id();
    let hex = id.trim_start_matches("sha256:");
    for reference in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        id.as_str(),
        hex,
        &hex[..12],
    ] {
        assert_eq!(
            store.status(reference).map(|i| i.id),
            Some(id.clone()),
            "{reference}"
        );
    }
    for reference in ["busybox:other", "pause", "sha256:00", "deadbeef0000"] {
        assert!(store.status(reference).is_none(), "{reference}");
    }
    drop(store);
    let reopened = open(dir.path());
    assert_eq!(reopened.status("busybox").unwrap().id, id);
    assert_eq!(reopened.layer_dirs("busybox").unwrap().len(), 1);
    assert_eq!(count(&reopened, "blobs/sha256"), 3);
}

#[tokio::test]
async fn a_tag_moves_to_the_newest_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    import(&store, dir.path(), &[busybox().named("app:v1")]).await;
    let mut layer = LayerBuilder::new();
    layer.file("hello", 0o644, b"hi");
    let other = TestImage::new("app:v1", vec![layer.finish()], &ImageConfig::default());
    import(&store, dir.path(), std::slice::from_ref(&other)).await;
    assert_eq!(store.status("app:v1").unwrap().id, other.id());
    let old = store.status(&busybox().id()).unwrap();
    assert!(old.repo_tags.is_empty());
    assert_eq!(store.list().len(), 2);
}

#[tokio::test]
async fn open_cleans_leftovers_of_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    import(&store, dir.path(), &[busybox()]).await;
    let root = store.root().to_path_buf();
    drop(store);
    let orphan_blob = root.join("blobs/sha256").join("a".repeat(64));
    let orphan_layer = root.join("layers").join("b".repeat(64));
    std::fs::write(&orphan_blob, b"x").unwrap();
    std::fs::create_dir(&orphan_layer).unwrap();
    std::fs::create_dir(root.join("tmp/layer-half")).unwrap();
    let store = open(dir.path());
    assert!(!orphan_blob.exists());
    assert!(!orphan_layer.exists());
    assert_eq!(count(&store, "tmp"), 0);
    assert!(store.status("busybox").is_some());
}
