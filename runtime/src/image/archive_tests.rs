use std::os::unix::fs::MetadataExt;

use super::*;
use crate::image::StoreOptions;
use crate::testing::images::{busybox, pause, write_docker_save_tar, write_oci_layout_tar};

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    (dir, store)
}

/// Names of the entries of a store directory.
fn entries(store: &ImageStore, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_busybox_rootfs(store: &ImageStore, reference: &str) {
    let dirs = store.layer_dirs(reference).unwrap();
    let root = &dirs[0];
    let bin = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(bin.mode() & 0o7777, 0o755);
    assert_eq!(bin.len(), std::fs::metadata("/bin/busybox").unwrap().len());
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("nobody:x:65534"));
    assert_eq!(
        std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
}

#[tokio::test]
async fn imports_oci_layout() {
    let (dir, store) = store();
    let archive = dir.path().join("images.tar");
    write_oci_layout_tar(&archive, &[busybox(), pause()]);
    let infos = store.import(&archive).await.unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].id, busybox().id());
    assert_eq!(infos[0].repo_tags, vec!["docker.io/library/busybox:latest"]);
    assert_eq!(infos[0].config.cmd, vec!["sh"]);
    assert!(infos[0].config.env[0].starts_with("PATH="));
    assert_eq!(infos[1].repo_tags, vec!["docker.io/library/pause:latest"]);
    assert_eq!(infos[1].config.entrypoint, vec!["/pause"]);
    assert!(infos[0].size > 1_000_000);

    assert_busybox_rootfs(&store, "busybox");
    let pause_dirs = store.layer_dirs("pause:latest").unwrap();
    assert_eq!(pause_dirs.len(), 2);
    // The shared layer is unpacked once.
    assert_eq!(pause_dirs[0], store.layer_dirs("busybox").unwrap()[0]);
    assert!(pause_dirs[1].join("pause").is_file());
    assert_eq!(entries(&store, "layers").len(), 2);
    assert!(entries(&store, "tmp").is_empty());

    let blobs = store.blobs("pause").await.unwrap();
    assert_eq!(blobs.manifest, pause().manifest);
    assert_eq!(blobs.manifest_digest, pause().manifest_digest());
    assert_eq!(blobs.config, pause().config);
    assert_eq!(blobs.layers.len(), 2);
    for (blob, layer) in blobs.layers.iter().zip(&pause().layers) {
        assert_eq!(blob.digest, layer.digest);
        assert_eq!(blob.diff_id, layer.diff_id);
        assert_eq!(std::fs::read(&blob.path).unwrap(), layer.gz);
        assert_eq!(blob.size, layer.gz.len() as u64);
    }
}

#[tokio::test]
async fn imports_docker_save() {
    let (dir, store) = store();
    let archive = dir.path().join("images.tar");
    write_docker_save_tar(&archive, &[busybox(), pause()]);
    let infos = store.import(&archive).await.unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].id, busybox().id());
    assert_eq!(infos[0].repo_tags, vec!["docker.io/library/busybox:latest"]);
    assert_eq!(infos[1].id, pause().id());
    assert_busybox_rootfs(&store, "docker.io/library/busybox:latest");
    // Uncompressed layers: the blob is the tar itself.
    let blobs = store.blobs("busybox").await.unwrap();
    assert_eq!(blobs.layers[0].digest, busybox().layers[0].diff_id);
    assert_eq!(blobs.layers[0].media_type, OCI_LAYER_TAR);
    assert_eq!(blobs.manifest_media_type, OCI_MANIFEST);
    assert_eq!(
        crate::image::digest::sha256_of(&blobs.manifest),
        blobs.manifest_digest
    );
    // A gzipped archive works too.
    let gz = dir.path().join("images.tar.gz");
    std::fs::write(
        &gz,
        crate::testing::images::gzip(&std::fs::read(&archive).unwrap()),
    )
    .unwrap();
    let again = store.import(&gz).await.unwrap();
    assert_eq!(again[0].id, busybox().id());
    assert_eq!(store.list().len(), 2);
}

async fn assert_rejected_cleanly(store: &ImageStore, archive: &Path) {
    let err = store
        .import(archive)
        .await
        .expect_err("corrupt archive imported");
    assert_eq!(err.kind(), ErrorKind::InvalidImage, "{err}");
    assert!(store.list().is_empty());
    assert!(
        entries(store, "blobs/sha256").is_empty(),
        "blobs left behind"
    );
    assert!(entries(store, "layers").is_empty(), "layers left behind");
    assert!(entries(store, "tmp").is_empty(), "temp files left behind");
}

#[tokio::test]
async fn corrupt_archives_leave_nothing_behind() {
    let (dir, store) = store();
    let good = dir.path().join("good.tar");
    write_oci_layout_tar(&good, &[busybox()]);
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_rejected_cleanly(&store, &truncated).await;

    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 10_000]).unwrap();
    assert_rejected_cleanly(&store, &garbage).await;

    // A layer whose bytes do not match its digest.
    let mut tampered = busybox();
    let last = tampered.layers[0].gz.len() - 100;
    tampered.layers[0].gz[last] ^= 0xff;
    let path = dir.path().join("tampered.tar");
    write_oci_layout_tar(&path, &[tampered]);
    assert_rejected_cleanly(&store, &path).await;

    // A layer that matches its digest but is not a tar: found only while
    // unpacking, after blobs moved in; they must go again.
    let mut broken = busybox();
    broken.layers[0].tar = vec![0x42; 4096];
    let path = dir.path().join("broken.tar");
    write_docker_save_tar(&path, &[broken]);
    assert_rejected_cleanly(&store, &path).await;

    let missing = dir.path().join("missing.tar");
    assert_eq!(
        store.import(&missing).await.unwrap_err().kind(),
        ErrorKind::Internal
    );
}
