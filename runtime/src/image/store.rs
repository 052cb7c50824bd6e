//! [`ImageStore`]: the on-disk layout, the in-memory index behind a mutex,
//! lookups, removal and garbage collection, and the commit step shared by
//! pulls and imports (blobs in place → layers unpacked → record saved).
//!
//! Concurrency: the mutex guards only the in-memory records and leases and
//! is never held across an await. Pulls and imports lease the blobs and
//! layers they are about to use, so a concurrent `remove` never
//! garbage-collects them halfway.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::config::{ConfigDoc, Descriptor};
use super::digest::{sha256_hex, sha256_of};
use super::index::{self, ImageRecord, LayerRecord};
use super::reference::ImageRef;
use super::unpack::unpack_layer;
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::types::ImageInfo;

/// How [`ImageStore::open`] sets the store up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Registries (`host` or `host:port`) spoken to over plain HTTP. Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// Limit on establishing a registry connection.
    pub connect_timeout: Duration,
    /// Limit on a registry going silent mid-response.
    pub read_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            insecure_registries: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// What a containerd-like backend needs to upload an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlobs {
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_media_type: String,
    pub config_digest: String,
    /// Lowest first.
    pub layers: Vec<LayerBlob>,
}

/// One layer's blob as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The compressed (or plain tar) blob on disk.
    pub path: PathBuf,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
}

/// The node's image store; cheap to clone (all clones share one store).
#[derive(Clone)]
pub struct ImageStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) root: PathBuf,
    pub(super) options: StoreOptions,
    state: Mutex<State>,
    counter: AtomicU64,
}

#[derive(Default)]
struct State {
    images: Vec<ImageRecord>,
    /// Blob digest → number of operations using it.
    blob_leases: HashMap<String, usize>,
    /// Diff id → number of operations using it.
    layer_leases: HashMap<String, usize>,
}

/// An image whose blobs are in the store, waiting to be unpacked and
/// recorded.
pub(super) struct NewImage {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

/// Keeps blobs and layers from being garbage-collected while an operation
/// uses them; released on drop.
pub(super) struct Lease {
    inner: Arc<Inner>,
    blobs: Vec<String>,
    layers: Vec<String>,
}

impl Lease {
    pub(super) fn add_blobs<'a>(&mut self, digests: impl IntoIterator<Item = &'a str>) {
        let mut state = self.inner.lock();
        for d in digests {
            *state.blob_leases.entry(d.to_string()).or_default() += 1;
            self.blobs.push(d.to_string());
        }
    }
    fn add_layers<'a>(&mut self, diff_ids: impl IntoIterator<Item = &'a str>) {
        let mut state = self.inner.lock();
        for d in diff_ids {
            *state.layer_leases.entry(d.to_string()).or_default() += 1;
            self.layers.push(d.to_string());
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        let state = &mut *state;
        for (keys, map) in [
            (&self.blobs, &mut state.blob_leases),
            (&self.layers, &mut state.layer_leases),
        ] {
            for k in keys {
                if let Some(n) = map.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(k);
                    }
                }
            }
        }
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`. Blocking: call it at
    /// start-up or from `spawn_blocking`. Leftovers of an interrupted run
    /// (temp files, unreferenced blobs and layers) are removed.
    pub fn open(root: &Path, options: StoreOptions) -> Result<ImageStore> {
        for dir in [
            root.join("blobs/sha256"),
            root.join("layers"),
            root.join("tmp"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| RuntimeError::io(format!("create {}", dir.display()), e))?;
        }
        let tmp = root.join("tmp");
        let entries = std::fs::read_dir(&tmp)
            .map_err(|e| RuntimeError::io(format!("read {}", tmp.display()), e))?;
        for entry in entries.flatten() {
            remove_any(&entry.path());
        }
        let images = index::load(&root.join("index.json"))?;
        let inner = Inner {
            root: root.to_path_buf(),
            options,
            state: Mutex::new(State {
                images,
                ..State::default()
            }),
            counter: AtomicU64::new(0),
        };
        let store = ImageStore {
            inner: Arc::new(inner),
        };
        store.inner.gc()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The image `reference` names: a tag (`busybox`, `host:5000/a:b`), a
    /// digest (`name@sha256:…`), an id (`sha256:…`, its hex, or an
    /// unambiguous hex prefix).
    pub fn status(&self, reference: &str) -> Option<ImageInfo> {
        let state = self.inner.lock();
        find(&state.images, reference).map(|i| state.images[i].info())
    }

    /// Every image, in the order they were first stored.
    pub fn list(&self) -> Vec<ImageInfo> {
        self.inner
            .lock()
            .images
            .iter()
            .map(ImageRecord::info)
            .collect()
    }

    /// Removes the image `reference` names, then deletes the blobs and
    /// layers no remaining image uses. The caller makes sure no container
    /// still runs on its layers.
    pub async fn remove(&self, reference: &str) -> Result<()> {
        let inner = self.inner.clone();
        let reference = reference.to_string();
        blocking(move || {
            {
                let mut state = inner.lock();
                let i = find(&state.images, &reference)
                    .ok_or_else(|| RuntimeError::not_found(format!("image {reference}")))?;
                let mut images = state.images.clone();
                images.remove(i);
                index::save(&inner.index_path(), &images)?;
                state.images = images;
            }
            inner.gc()
        })
        .await
    }

    /// The image's unpacked layer directories, lowest first (overlayfs
    /// `lowerdir` wants them the other way round).
    pub fn layer_dirs(&self, reference: &str) -> Result<Vec<PathBuf>> {
        let state = self.inner.lock();
        let i = find(&state.images, reference)
            .ok_or_else(|| RuntimeError::not_found(format!("image {reference}")))?;
        Ok(state.images[i]
            .layers
            .iter()
            .map(|l| self.inner.layer_path(&l.diff_id))
            .collect())
    }

    /// The image's manifest, config and layer blobs.
    pub async fn blobs(&self, reference: &str) -> Result<ImageBlobs> {
        let record = {
            let state = self.inner.lock();
            let i = find(&state.images, reference)
                .ok_or_else(|| RuntimeError::not_found(format!("image {reference}")))?;
            state.images[i].clone()
        };
        let inner = self.inner.clone();
        blocking(move || {
            let read = |digest: &str| {
                let path = inner.blob_path(digest)?;
                std::fs::read(&path)
                    .map_err(|e| RuntimeError::io(format!("read {}", path.display()), e))
            };
            let layers = record
                .layers
                .iter()
                .map(|l| {
                    Ok(LayerBlob {
                        path: inner.blob_path(&l.digest)?,
                        digest: l.digest.clone(),
                        media_type: l.media_type.clone(),
                        size: l.size,
                        diff_id: l.diff_id.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ImageBlobs {
                manifest: read(&record.manifest_digest)?,
                manifest_media_type: record.manifest_media_type.clone(),
                manifest_digest: record.manifest_digest.clone(),
                config: read(&record.id)?,
                config_media_type: record.config_media_type.clone(),
                config_digest: record.id.clone(),
                layers,
            })
        })
        .await
    }

    pub(super) fn lease(&self) -> Lease {
        Lease {
            inner: self.inner.clone(),
            blobs: Vec::new(),
            layers: Vec::new(),
        }
    }
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RuntimeError::internal(format!("image store task failed: {e}")))?
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data:
        // every mutation replaces whole vectors or counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where the blob `digest` lives; a malformed digest is `InvalidImage`
    /// (digests come from manifests, and become file names).
    pub(super) fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = sha256_hex(digest).ok_or_else(|| bad_digest(digest))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub(super) fn layer_path(&self, diff_id: &str) -> PathBuf {
        let hex = sha256_hex(diff_id).unwrap_or("invalid");
        self.root.join("layers").join(hex)
    }

    /// A fresh path under `tmp/` (same file system as blobs and layers, so
    /// renames are atomic).
    pub(super) fn temp_path(&self, prefix: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.root
            .join("tmp")
            .join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()))
    }

    pub(super) fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Stores `bytes` as a blob, checking them against `expected`.
    pub(super) fn put_blob(&self, bytes: &[u8], expected: &str) -> Result<()> {
        let actual = sha256_of(bytes);
        if actual != expected {
            return Err(RuntimeError::new(
                ErrorKind::InvalidImage,
                format!("content has digest {actual}, expected {expected}"),
            ));
        }
        let path = self.blob_path(expected)?;
        if path.is_file() {
            return Ok(());
        }
        let tmp = self.temp_path("blob");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RuntimeError::io(format!("store blob {expected}"), e)
        })
    }

    /// Moves a verified file (under `tmp/`) into place as blob `digest`.
    pub(super) fn adopt_blob(&self, file: &Path, digest: &str) -> Result<()> {
        let path = self.blob_path(digest)?;
        let result = if path.is_file() {
            std::fs::remove_file(file)
        } else {
            std::fs::rename(file, &path)
        };
        result.map_err(|e| RuntimeError::io(format!("store blob {digest}"), e))
    }

    /// Unpacks the image's missing layers and records it. Blocking.
    pub(super) fn commit(&self, new: NewImage, lease: &mut Lease) -> Result<ImageInfo> {
        let record = self.prepare(new, lease)?;
        Ok(self.record(vec![record])?.remove(0))
    }

    /// Unpacks the image's missing layers; returns the record to save.
    pub(super) fn prepare(&self, new: NewImage, lease: &mut Lease) -> Result<ImageRecord> {
        let config_path = self.blob_path(&new.config.digest)?;
        let config_bytes = std::fs::read(&config_path)
            .map_err(|e| RuntimeError::io(format!("read {}", config_path.display()), e))?;
        let config = ConfigDoc::parse(&config_bytes)
            .map_err(|e| RuntimeError::new(ErrorKind::InvalidImage, e))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != new.layers.len() {
            return Err(RuntimeError::new(
                ErrorKind::InvalidImage,
                format!(
                    "manifest has {} layers but the config lists {} diff ids",
                    new.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        if let Some(bad) = diff_ids.iter().find(|d| sha256_hex(d).is_none()) {
            return Err(bad_digest(bad));
        }
        lease.add_layers(diff_ids.iter().map(String::as_str));
        let mut layers = Vec::new();
        for (desc, diff_id) in new.layers.iter().zip(diff_ids) {
            let unpacked_size = self.ensure_layer(&desc.digest, diff_id)?;
            layers.push(LayerRecord {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: u64::try_from(desc.size).unwrap_or(0),
                diff_id: diff_id.clone(),
                unpacked_size,
            });
        }
        let record = ImageRecord {
            id: new.config.digest.clone(),
            repo_tags: new.repo_tags,
            repo_digests: new.repo_digests,
            manifest_digest: new.manifest_digest,
            manifest_media_type: new.manifest_media_type,
            config_media_type: new.config.media_type.clone(),
            size: layers.iter().map(|l| l.unpacked_size).sum(),
            layers,
            config: config.image_config(),
        };
        Ok(record)
    }

    /// Makes sure layer `diff_id` is unpacked from blob `digest`; returns its
    /// unpacked size.
    fn ensure_layer(&self, digest: &str, diff_id: &str) -> Result<u64> {
        let dir = self.layer_path(diff_id);
        if dir.is_dir() {
            let known = self
                .lock()
                .images
                .iter()
                .flat_map(|i| &i.layers)
                .find_map(|l| (l.diff_id == diff_id).then_some(l.unpacked_size));
            return Ok(known.unwrap_or_else(|| tree_size(&dir)));
        }
        let tmp = self.temp_path("layer");
        let unpacked = match unpack_layer(&self.blob_path(digest)?, &tmp) {
            Ok(u) => u,
            Err(mut e) => {
                remove_any(&tmp);
                e.message = format!("layer {digest}: {}", e.message);
                return Err(e);
            }
        };
        if unpacked.diff_id != diff_id {
            remove_any(&tmp);
            return Err(RuntimeError::new(
                ErrorKind::InvalidImage,
                format!(
                    "layer {digest} unpacks to {}, config says {diff_id}",
                    unpacked.diff_id
                ),
            ));
        }
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            remove_any(&tmp);
            // Another pull of the same layer got there first.
            if !dir.is_dir() {
                return Err(RuntimeError::io(format!("store layer {diff_id}"), e));
            }
        }
        Ok(unpacked.size)
    }

    /// Adds or merges `records` and saves the index once. A tag names one
    /// image: it moves to the newest record carrying it.
    pub(super) fn record(&self, records: Vec<ImageRecord>) -> Result<Vec<ImageInfo>> {
        let mut state = self.lock();
        let mut images = state.images.clone();
        let mut ids = Vec::new();
        for record in records {
            let id = record.id.clone();
            for other in images.iter_mut().filter(|i| i.id != record.id) {
                other.repo_tags.retain(|t| !record.repo_tags.contains(t));
            }
            match images.iter_mut().find(|i| i.id == record.id) {
                Some(existing) => {
                    let mut tags = existing.repo_tags.clone();
                    let mut digests = existing.repo_digests.clone();
                    union(&mut tags, &record.repo_tags);
                    union(&mut digests, &record.repo_digests);
                    *existing = ImageRecord {
                        repo_tags: tags,
                        repo_digests: digests,
                        ..record
                    };
                }
                None => images.push(record),
            }
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        index::save(&self.index_path(), &images)?;
        state.images = images;
        let infos = ids
            .iter()
            .filter_map(|id| state.images.iter().find(|i| i.id == *id))
            .map(ImageRecord::info)
            .collect();
        Ok(infos)
    }

    /// Deletes blobs and layers that no image references and no operation
    /// leases. Victims are renamed into `tmp/` under the lock (so a
    /// concurrent pull never sees half a layer) and deleted after.
    pub(super) fn gc(&self) -> Result<()> {
        let mut victims = Vec::new();
        {
            let state = self.lock();
            let mut blobs: HashSet<&str> = state.blob_leases.keys().map(String::as_str).collect();
            let mut layers: HashSet<&str> = state.layer_leases.keys().map(String::as_str).collect();
            for image in &state.images {
                blobs.extend(image.blob_digests());
                layers.extend(image.layers.iter().map(|l| l.diff_id.as_str()));
            }
            for (dir, keep) in [("blobs/sha256", &blobs), ("layers", &layers)] {
                let dir = self.root.join(dir);
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| RuntimeError::io(format!("read {}", dir.display()), e))?;
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let digest = format!("sha256:{name}");
                    if sha256_hex(&digest).is_none() || keep.contains(digest.as_str()) {
                        continue;
                    }
                    let victim = self.temp_path("gc");
                    match std::fs::rename(entry.path(), &victim) {
                        Ok(()) => victims.push(victim),
                        Err(e) => tracing::warn!(path = %entry.path().display(), error = %e,
                            "cannot garbage-collect"),
                    }
                }
            }
        }
        for victim in victims {
            remove_any(&victim);
        }
        Ok(())
    }

    /// After a failed pull or import: drop what it brought in that no
    /// image uses. Errors are logged, the original error matters more.
    pub(super) fn cleanup_after_failure(&self) {
        if let Err(e) = self.gc() {
            tracing::warn!(error = %e, "cleanup after failed image operation");
        }
    }
}

/// Finds the record `reference` names (see [`ImageStore::status`]).
fn find(images: &[ImageRecord], reference: &str) -> Option<usize> {
    if let Some(i) = images.iter().position(|i| i.id == reference) {
        return Some(i);
    }
    let bare_hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = !bare_hex.is_empty() && bare_hex.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && bare_hex.len() == 64 {
        let id = format!("sha256:{bare_hex}");
        return images.iter().position(|i| i.id == id);
    }
    if let Ok(r) = ImageRef::parse(reference) {
        let found = match (&r.digest, r.tagged()) {
            (Some(d), _) => {
                let by_digest = r.with_digest(d);
                images.iter().position(|i| {
                    i.repo_digests.contains(&by_digest)
                        || (i.manifest_digest == *d && names(i).any(|n| n == r.name()))
                })
            }
            (None, Some(tagged)) => images.iter().position(|i| i.repo_tags.contains(&tagged)),
            (None, None) => None,
        };
        if found.is_some() {
            return found;
        }
    }
    // A short id, as `crictl images` prints them.
    if is_hex && bare_hex.len() >= 4 {
        let mut matches = images.iter().enumerate().filter(|(_, i)| {
            i.id.strip_prefix("sha256:")
                .is_some_and(|h| h.starts_with(bare_hex))
        });
        if let (Some((i, _)), None) = (matches.next(), matches.next()) {
            return Some(i);
        }
    }
    None
}

/// The repository names an image is known under.
fn names(image: &ImageRecord) -> impl Iterator<Item = &str> {
    let tags = image.repo_tags.iter().filter_map(|t| {
        let slash = t.rfind('/').unwrap_or(0);
        t[slash..].rfind(':').map(|c| &t[..slash + c])
    });
    let digests = image
        .repo_digests
        .iter()
        .filter_map(|d| d.split_once('@').map(|(n, _)| n));
    tags.chain(digests)
}

fn union(into: &mut Vec<String>, from: &[String]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

fn bad_digest(digest: &str) -> RuntimeError {
    RuntimeError::new(
        ErrorKind::InvalidImage,
        format!("malformed digest {digest:?} (want sha256:<64 lowercase hex>)"),
    )
}

/// Removes a file or directory tree, logging failures.
pub(super) fn remove_any(path: &Path) {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return,
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove");
    }
}

/// Bytes of regular files under `dir` (for layers unpacked by an earlier,
/// interrupted run).
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
