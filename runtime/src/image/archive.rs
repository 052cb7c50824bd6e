//! [`ImageStore::import`]: loads the images of a `docker save` tar
//! (`manifest.json` with Config/RepoTags/Layers) or an OCI image-layout tar
//! (`oci-layout`, `index.json`, `blobs/`), either maybe gzipped.
//!
//! The archive is first staged into `tmp/` and every blob checked against
//! its digest; only then do blobs move into the store and layers get
//! unpacked. A corrupt or truncated archive is `InvalidImage` and leaves
//! nothing behind (what was moved in is collected again on failure).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Deserialize;

use super::config::{
    build_manifest, Descriptor, ManifestDoc, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_MANIFEST,
};
use super::digest::{sha256_file, sha256_hex, sha256_of};
use super::reference::ImageRef;
use super::store::{blocking, remove_any, ImageStore, NewImage};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::types::ImageInfo;

/// Largest JSON document read from an archive.
const MAX_JSON_BYTES: u64 = 64 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

impl ImageStore {
    /// Imports every image in the archive at `archive`; returns them in
    /// archive order.
    pub async fn import(&self, archive: &Path) -> Result<Vec<ImageInfo>> {
        let store = self.clone();
        let path = archive.to_path_buf();
        let result = blocking(move || {
            let staging = store.inner.temp_path("import");
            let result = import_blocking(&store, &path, &staging);
            remove_any(&staging);
            if result.is_err() {
                store.inner.cleanup_after_failure();
            }
            result
        })
        .await;
        result.map_err(|e| match e.kind {
            ErrorKind::InvalidImage if !e.message.contains(&*archive.to_string_lossy()) => {
                RuntimeError::new(
                    ErrorKind::InvalidImage,
                    format!("archive {}: {}", archive.display(), e.message),
                )
            }
            _ => e,
        })
    }
}

fn import_blocking(store: &ImageStore, archive: &Path, staging: &Path) -> Result<Vec<ImageInfo>> {
    std::fs::create_dir(staging)
        .map_err(|e| RuntimeError::io(format!("create {}", staging.display()), e))?;
    let staged = Staged::read(archive, staging)?;
    let images = if staged.get("manifest.json").is_some() {
        docker_images(&staged)?
    } else if staged.get("index.json").is_some() {
        oci_images(&staged)?
    } else {
        return Err(invalid(
            "neither a docker save (manifest.json) nor an OCI layout (index.json)",
        ));
    };
    if images.is_empty() {
        return Err(invalid("no images in archive"));
    }

    // Everything is verified; now move it in, leased against collection.
    let inner = &store.inner;
    let mut lease = store.lease();
    for image in &images {
        lease.add_blobs(image.blobs.keys().map(String::as_str));
        lease.add_blobs(image.small.iter().map(|(d, _)| d.as_str()));
    }
    for image in &images {
        for (digest, bytes) in &image.small {
            inner.put_blob(bytes, digest)?;
        }
        for (digest, file) in &image.blobs {
            if file.exists() {
                inner.adopt_blob(file, digest)?;
            }
        }
    }
    let mut records = Vec::new();
    for image in images {
        records.push(inner.prepare(image.new, &mut lease)?);
    }
    let infos = inner.record(records)?;
    drop(lease);
    Ok(infos)
}

/// One image found in the archive, verified and ready to commit.
struct Found {
    new: NewImage,
    /// Staged blob files by digest.
    blobs: HashMap<String, PathBuf>,
    /// Small blobs (manifest, config) already in memory.
    small: Vec<(String, Vec<u8>)>,
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::new(ErrorKind::InvalidImage, msg)
}

/// The archive's files, written to a staging directory, by name.
struct Staged {
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
}

impl Staged {
    fn read(archive: &Path, staging: &Path) -> Result<Staged> {
        let file = std::fs::File::open(archive)
            .map_err(|e| RuntimeError::io(format!("open {}", archive.display()), e))?;
        let mut reader = BufReader::new(file);
        let corrupt = |e: std::io::Error| invalid(format!("corrupt archive: {e}"));
        let gzipped = reader
            .fill_buf()
            .map_err(corrupt)?
            .starts_with(&[0x1f, 0x8b]);
        let stream: Box<dyn Read> = if gzipped {
            Box::new(MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        let mut tar = tar::Archive::new(stream);
        let mut staged = Staged {
            files: HashMap::new(),
            links: HashMap::new(),
        };
        for (n, entry) in tar.entries().map_err(corrupt)?.enumerate() {
            let mut entry = entry.map_err(corrupt)?;
            let name = normalize(&entry.path().map_err(corrupt)?)
                .ok_or_else(|| invalid("archive entry escapes the archive"))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = staging.join(format!("f{n}"));
                    copy_out(&mut entry, &path)?;
                    staged.files.insert(name, path);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(corrupt)?
                        .ok_or_else(|| invalid(format!("link {name} without target")))?;
                    // Symlinks are relative to their directory, hard links
                    // to the archive root.
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(&target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(t) = normalize(&base) {
                        staged.links.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        Ok(staged)
    }

    /// The staged file for `name`, following the archive's links.
    fn get(&self, name: &str) -> Option<&Path> {
        let mut name = normalize(Path::new(name))?;
        for _ in 0..16 {
            if let Some(p) = self.files.get(&name) {
                return Some(p);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn need(&self, name: &str) -> Result<&Path> {
        self.get(name)
            .ok_or_else(|| invalid(format!("archive lacks {name} (truncated?)")))
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.need(name)?;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_JSON_BYTES).read_to_end(&mut bytes))
            .map_err(|e| RuntimeError::io(format!("read staged {name}"), e))?;
        Ok(bytes)
    }

    fn blob_name(digest: &str) -> Result<String> {
        let hex = sha256_hex(digest)
            .ok_or_else(|| invalid(format!("malformed digest {digest:?} in archive")))?;
        Ok(format!("blobs/sha256/{hex}"))
    }

    /// A blob's bytes, checked against `digest`.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let bytes = self.read_small(&Self::blob_name(digest)?)?;
        let actual = sha256_of(&bytes);
        if actual != digest {
            return Err(invalid(format!(
                "blob {digest} has digest {actual} (corrupt archive)"
            )));
        }
        Ok(bytes)
    }

    /// A large blob's staged file, checked against the descriptor.
    fn check_blob(&self, desc: &Descriptor) -> Result<PathBuf> {
        let path = self.need(&Self::blob_name(&desc.digest)?)?.to_path_buf();
        let (actual, size) = sha256_file(&path)
            .map_err(|e| RuntimeError::io(format!("read staged blob {}", desc.digest), e))?;
        if actual != desc.digest || (desc.size > 0 && size != desc.size as u64) {
            return Err(invalid(format!(
                "blob {} has digest {actual} and {size} bytes (corrupt archive)",
                desc.digest
            )));
        }
        Ok(path)
    }
}

/// `path` relative to the archive root, `/`-joined; `None` if it climbs
/// out.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

fn copy_out<R: Read>(entry: &mut R, path: &Path) -> Result<()> {
    let mut out = std::fs::File::create(path)
        .map_err(|e| RuntimeError::io(format!("create {}", path.display()), e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| invalid(format!("corrupt archive: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])
            .map_err(|e| RuntimeError::io(format!("write {}", path.display()), e))?;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// `docker save`: configs and layer tars by file name; the store writes
/// an OCI manifest for each image.
fn docker_images(staged: &Staged) -> Result<Vec<Found>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&staged.read_small("manifest.json")?)
        .map_err(|e| invalid(format!("bad manifest.json: {e}")))?;
    let mut found = Vec::new();
    for entry in entries {
        let config = staged.read_small(&entry.config)?;
        let config_desc = Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: sha256_of(&config),
            size: config.len() as i64,
            ..Descriptor::default()
        };
        let mut blobs = HashMap::new();
        let mut layers = Vec::new();
        for name in &entry.layers {
            let path = staged.need(name)?;
            let (digest, size) = sha256_file(path)
                .map_err(|e| RuntimeError::io(format!("read staged {name}"), e))?;
            let mut magic = [0u8; 2];
            let gz = std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut magic))
                .map(|()| magic == [0x1f, 0x8b])
                .unwrap_or(false);
            let media_type = if gz { OCI_LAYER_GZIP } else { OCI_LAYER_TAR };
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest: digest.clone(),
                size: size as i64,
                ..Descriptor::default()
            });
            blobs.insert(digest, path.to_path_buf());
        }
        let manifest = build_manifest(&config_desc, &layers);
        let manifest_digest = sha256_of(&manifest);
        let repo_tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| full_tag(t))
            .collect::<Result<Vec<_>>>()?;
        found.push(Found {
            small: vec![
                (manifest_digest.clone(), manifest),
                (config_desc.digest.clone(), config),
            ],
            new: NewImage {
                manifest_digest,
                manifest_media_type: OCI_MANIFEST.into(),
                config: config_desc,
                layers,
                repo_tags,
                repo_digests: Vec::new(),
            },
            blobs,
        });
    }
    Ok(found)
}

/// An OCI layout: `index.json` names manifests (or indexes, from which
/// linux/amd64 is taken) stored under `blobs/`.
fn oci_images(staged: &Staged) -> Result<Vec<Found>> {
    let index = ManifestDoc::parse(&staged.read_small("index.json")?)
        .map_err(|e| invalid(format!("bad index.json: {e}")))?;
    let mut found = Vec::new();
    for entry in index.manifests.unwrap_or_default() {
        let name = entry
            .annotations
            .get(CONTAINERD_NAME)
            .or_else(|| entry.annotations.get(REF_NAME))
            .filter(|n| n.contains([':', '/', '@']));
        let mut repo_tags = Vec::new();
        if let Some(name) = name {
            repo_tags.push(full_tag(name)?);
        }
        let mut digest = entry.digest.clone();
        let mut bytes = staged.read_blob(&digest)?;
        let mut doc =
            ManifestDoc::parse(&bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        if doc.is_index() {
            let child = doc
                .pick_linux_amd64()
                .ok_or_else(|| invalid("an index in the archive has no linux/amd64 image"))?;
            digest = child.digest.clone();
            bytes = staged.read_blob(&digest)?;
            doc = ManifestDoc::parse(&bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        }
        let config = doc
            .config
            .clone()
            .ok_or_else(|| invalid("manifest without config"))?;
        let config_bytes = staged.read_blob(&config.digest)?;
        let layers = doc.layers.clone().unwrap_or_default();
        let mut blobs = HashMap::new();
        for layer in &layers {
            blobs.insert(layer.digest.clone(), staged.check_blob(layer)?);
        }
        found.push(Found {
            small: vec![
                (digest.clone(), bytes),
                (config.digest.clone(), config_bytes),
            ],
            new: NewImage {
                manifest_media_type: doc.kind().to_string(),
                manifest_digest: digest,
                config,
                layers,
                repo_tags,
                repo_digests: Vec::new(),
            },
            blobs,
        });
    }
    Ok(found)
}

/// `busybox:latest` → `docker.io/library/busybox:latest`.
fn full_tag(name: &str) -> Result<String> {
    let r = ImageRef::parse(name).map_err(|e| invalid(format!("bad image name: {}", e.message)))?;
    r.tagged()
        .ok_or_else(|| invalid(format!("image name {name:?} has no tag")))
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
