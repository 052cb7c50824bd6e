//! Makes an image of rkube's [`ImageStore`] usable by containerd, the way
//! containerd 1.6's own client does after a pull: the manifest, config and
//! layer blobs go into containerd's content store, an image record points
//! at the manifest, and every layer is unpacked into a committed
//! `overlayfs` snapshot named by its chain id.
//!
//! Garbage collection: containerd keeps content and snapshots only while
//! something references them, so the manifest is labelled with its config
//! and layers, the config with the top snapshot, and all the work happens
//! under a lease until the image record exists.
//!
//! This module must not fetch from registries (the [`ImageStore`] does,
//! with its auth and digest checks) nor decide which images a node keeps.

use std::collections::HashMap;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, Info,
    InfoRequest, UpdateImageRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor;
use tokio::io::AsyncReadExt;

use super::client::{is_not_found, Client, Lease};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::image::{ImageBlobs, ImageStore};

/// The snapshotter every image and container uses.
pub const SNAPSHOTTER: &str = "overlayfs";

/// Bytes per content-write message; well under gRPC's 4 MiB default.
const CHUNK: usize = 1 << 20;

/// The OCI chain ids of layers with these diff ids, lowest first:
/// chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => crate::image::digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Where a blob's bytes come from.
enum Source {
    Memory(Vec<u8>),
    File(std::path::PathBuf),
}

/// Uploads and unpacks the image `reference` names; returns the chain id
/// of its top layer (the parent of its containers' snapshots). Cheap when
/// containerd has everything already.
pub async fn ensure(client: &Client, store: &ImageStore, reference: &str) -> Result<String> {
    let info = store
        .status(reference)
        .ok_or_else(|| RuntimeError::not_found(format!("image {reference:?} (pull it first)")))?;
    let blobs = store.blobs(reference).await?;
    let diff_ids: Vec<String> = blobs.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let top = chains.last().cloned().ok_or_else(|| {
        RuntimeError::new(
            ErrorKind::InvalidImage,
            format!("image {reference} has no layers"),
        )
    })?;
    let names = record_names(&info.repo_tags, &info.repo_digests, &info.id);
    if snapshot_exists(client, &top).await? && images_exist(client, &names, &blobs).await? {
        return Ok(top);
    }
    let lease = client.lease().await?;
    let result = upload_and_unpack(client, &lease, &blobs, &chains, &names).await;
    client.release(lease).await;
    result.map(|()| top)
}

/// The names containerd knows the image by: its tags, else its digests,
/// else its id (an image imported without a name).
pub fn record_names(tags: &[String], digests: &[String], id: &str) -> Vec<String> {
    if !tags.is_empty() {
        tags.to_vec()
    } else if !digests.is_empty() {
        digests.to_vec()
    } else {
        vec![id.to_string()]
    }
}

async fn upload_and_unpack(
    client: &Client,
    lease: &Lease,
    blobs: &ImageBlobs,
    chains: &[String],
    names: &[String],
) -> Result<()> {
    let mut manifest_labels = HashMap::new();
    manifest_labels.insert(
        "containerd.io/gc.ref.content.config".to_string(),
        blobs.config_digest.clone(),
    );
    for (i, l) in blobs.layers.iter().enumerate() {
        manifest_labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            l.digest.clone(),
        );
    }
    let top = chains.last().cloned().unwrap_or_default();
    let config_labels =
        HashMap::from([(format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"), top)]);
    for layer in &blobs.layers {
        let labels = HashMap::from([(
            "containerd.io/uncompressed".to_string(),
            layer.diff_id.clone(),
        )]);
        let source = Source::File(layer.path.clone());
        upload(client, lease, &layer.digest, layer.size, source, labels).await?;
    }
    let config = Source::Memory(blobs.config.clone());
    let config_size = blobs.config.len() as u64;
    upload(
        client,
        lease,
        &blobs.config_digest,
        config_size,
        config,
        config_labels,
    )
    .await?;
    let manifest = Source::Memory(blobs.manifest.clone());
    let manifest_size = blobs.manifest.len() as u64;
    upload(
        client,
        lease,
        &blobs.manifest_digest,
        manifest_size,
        manifest,
        manifest_labels,
    )
    .await?;
    unpack(client, lease, blobs, chains).await?;
    let target = Descriptor {
        media_type: blobs.manifest_media_type.clone(),
        digest: blobs.manifest_digest.clone(),
        size: manifest_size as i64,
        annotations: HashMap::new(),
    };
    for name in names {
        put_image(client, lease, name, &target).await?;
    }
    Ok(())
}

/// Writes one blob unless containerd has it, then makes sure it carries
/// `labels` (which point the garbage collector at what it references).
async fn upload(
    client: &Client,
    lease: &Lease,
    digest: &str,
    size: u64,
    source: Source,
    labels: HashMap<String, String>,
) -> Result<()> {
    let mut content = ContentClient::new(client.channel());
    let what = format!("content info {digest}");
    let exists = match client
        .call(
            &what,
            content.info(client.req(InfoRequest {
                digest: digest.into(),
            })),
        )
        .await
    {
        Ok(_) => true,
        Err(e) if is_not_found(&e) => false,
        Err(e) => return Err(e),
    };
    if !exists {
        write_blob(client, lease, digest, size, source).await?;
    }
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    let request = UpdateRequest {
        info: Some(Info {
            digest: digest.into(),
            labels,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let what = format!("labelling content {digest}");
    client
        .call(&what, content.update(client.leased(request, lease)))
        .await
        .map(|_| ())
}

/// Streams a blob into containerd's content store: write messages at
/// increasing offsets, then a commit that makes containerd check the
/// expected size and digest.
async fn write_blob(
    client: &Client,
    lease: &Lease,
    digest: &str,
    size: u64,
    source: Source,
) -> Result<()> {
    let mut reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match source {
        Source::Memory(bytes) => Box::new(std::io::Cursor::new(bytes)),
        Source::File(path) => Box::new(
            tokio::fs::File::open(&path)
                .await
                .map_err(|e| RuntimeError::io(path.display(), e))?,
        ),
    };
    let reference = format!("rkube-upload-{digest}");
    let total = size as i64;
    let expected = digest.to_string();
    // A producer reads chunks into a small channel the request stream
    // drains, so memory stays bounded to a few chunks whatever the size.
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    let producer = {
        let reference = reference.clone();
        let expected = expected.clone();
        async move {
            let mut offset = 0i64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = reader
                    .read(&mut buf)
                    .await
                    .map_err(|e| RuntimeError::io(format!("reading blob {expected}"), e))?;
                if n == 0 {
                    break;
                }
                let msg = WriteContentRequest {
                    action: WriteAction::Write as i32,
                    r#ref: reference.clone(),
                    total,
                    offset,
                    data: buf[..n].to_vec(),
                    ..Default::default()
                };
                offset += n as i64;
                if tx.send(msg).await.is_err() {
                    return Ok(());
                }
            }
            let commit = WriteContentRequest {
                action: WriteAction::Commit as i32,
                r#ref: reference.clone(),
                total,
                expected: expected.clone(),
                offset,
                ..Default::default()
            };
            let _ = tx.send(commit).await;
            Ok::<(), RuntimeError>(())
        }
    };
    let mut content = ContentClient::new(client.channel());
    let stream = tokio_stream_from(rx);
    let what = format!("writing content {digest}");
    let consumer = async {
        let mut responses = client
            .call(&what, content.write(client.leased(stream, lease)))
            .await?;
        loop {
            match responses.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(client.error(&what, &status)),
            }
        }
    };
    let (produced, consumed) = tokio::join!(producer, consumer);
    match consumed {
        // Someone else wrote the same blob meanwhile: what we want is there.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {}
        other => other?,
    }
    produced
}

/// A receiver as a stream of requests for a client-streaming call.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}

async fn snapshot_exists(client: &Client, key: &str) -> Result<bool> {
    let mut snapshots = SnapshotsClient::new(client.channel());
    let request = StatSnapshotRequest {
        snapshotter: SNAPSHOTTER.into(),
        key: key.into(),
    };
    match client
        .call("stat snapshot", snapshots.stat(client.req(request)))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn images_exist(client: &Client, names: &[String], blobs: &ImageBlobs) -> Result<bool> {
    let mut images = ImagesClient::new(client.channel());
    for name in names {
        let request = GetImageRequest { name: name.clone() };
        match client
            .call("get image", images.get(client.req(request)))
            .await
        {
            Ok(resp) => {
                let target = resp.image.and_then(|i| i.target).map(|t| t.digest);
                if target.as_deref() != Some(blobs.manifest_digest.as_str()) {
                    return Ok(false);
                }
            }
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Applies each layer onto its parent's snapshot and commits the result
/// under its chain id; layers already committed are skipped.
async fn unpack(
    client: &Client,
    lease: &Lease,
    blobs: &ImageBlobs,
    chains: &[String],
) -> Result<()> {
    let mut snapshots = SnapshotsClient::new(client.channel());
    let mut diff = DiffClient::new(client.channel());
    for (i, layer) in blobs.layers.iter().enumerate() {
        let chain = &chains[i];
        if snapshot_exists(client, chain).await? {
            continue;
        }
        let parent = if i == 0 {
            String::new()
        } else {
            chains[i - 1].clone()
        };
        let key = format!("rkube-extract-{}-{chain}", crate::pod_sandbox::new_id());
        let prepare = PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: key.clone(),
            parent,
            labels: HashMap::new(),
        };
        let mounts = client
            .call(
                "preparing a layer snapshot",
                snapshots.prepare(client.leased(prepare, lease)),
            )
            .await?
            .mounts;
        let apply = ApplyRequest {
            diff: Some(Descriptor {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size as i64,
                annotations: HashMap::new(),
            }),
            mounts,
            payloads: HashMap::new(),
            sync_fs: false,
        };
        let applied = client
            .call(
                &format!("applying layer {}", layer.digest),
                diff.apply(client.leased(apply, lease)),
            )
            .await
            .and_then(|resp| {
                let got = resp.applied.map(|d| d.digest).unwrap_or_default();
                if got == layer.diff_id {
                    Ok(())
                } else {
                    Err(RuntimeError::new(
                        ErrorKind::InvalidImage,
                        format!(
                            "layer {} unpacks to {got}, but the image config says {}",
                            layer.digest, layer.diff_id
                        ),
                    ))
                }
            });
        let committed = match applied {
            Ok(()) => {
                let commit = CommitSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    name: chain.clone(),
                    key: key.clone(),
                    labels: HashMap::new(),
                };
                match client
                    .call(
                        "committing a layer snapshot",
                        snapshots.commit(client.leased(commit, lease)),
                    )
                    .await
                {
                    // Committed meanwhile by another unpack of a shared layer.
                    Err(e) if e.kind == ErrorKind::AlreadyExists => Err(None),
                    Err(e) => Err(Some(e)),
                    Ok(_) => Ok(()),
                }
            }
            Err(e) => Err(Some(e)),
        };
        if let Err(e) = committed {
            let remove = RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key,
            };
            let _ = client
                .call(
                    "removing a layer snapshot",
                    snapshots.remove(client.req(remove)),
                )
                .await;
            if let Some(e) = e {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Creates the image record `name` → `target`, or points an existing one
/// at `target`.
async fn put_image(client: &Client, lease: &Lease, name: &str, target: &Descriptor) -> Result<()> {
    let mut images = ImagesClient::new(client.channel());
    let image = Image {
        name: name.to_string(),
        labels: HashMap::new(),
        target: Some(target.clone()),
        created_at: None,
        updated_at: None,
    };
    let create = CreateImageRequest {
        image: Some(image.clone()),
        source_date_epoch: None,
    };
    match client
        .call(
            "creating an image record",
            images.create(client.leased(create, lease)),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            let update = UpdateImageRequest {
                image: Some(image),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["target".into()],
                }),
                source_date_epoch: None,
            };
            client
                .call(
                    "updating an image record",
                    images.update(client.req(update)),
                )
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Deletes image records; content and snapshots nothing else uses are
/// then collected by containerd.
pub async fn delete_records(client: &Client, names: &[String]) -> Result<()> {
    let mut images = ImagesClient::new(client.channel());
    for name in names {
        let request = DeleteImageRequest {
            name: name.clone(),
            sync: false,
            target: None,
        };
        match client
            .call(
                "deleting an image record",
                images.delete(client.req(request)),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        assert_eq!(
            chains[1],
            crate::image::digest::sha256_of(format!("{a} {b}").as_bytes())
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn record_names_prefer_tags_then_digests_then_the_id() {
        let tags = vec!["r/a:1".to_string()];
        let digests = vec!["r/a@sha256:x".to_string()];
        assert_eq!(record_names(&tags, &digests, "sha256:id"), tags);
        assert_eq!(record_names(&[], &digests, "sha256:id"), digests);
        assert_eq!(record_names(&[], &[], "sha256:id"), ["sha256:id"]);
    }
}
