//! `index.json`: the store's image records. Rewritten whole through a
//! temp file and a rename, so a crash leaves the old or the new index,
//! never a torn one.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::types::{ImageConfig, ImageInfo};

const VERSION: u32 = 1;

/// One image the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    /// The config's digest.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_media_type: String,
    /// Lowest first.
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
    /// Sum of the layers' unpacked sizes.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    /// Digest of the blob as stored (compressed or not).
    pub digest: String,
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar; names the unpacked directory.
    pub diff_id: String,
    /// Bytes of regular-file content in the unpacked layer.
    pub unpacked_size: u64,
}

impl ImageRecord {
    pub(crate) fn info(&self) -> ImageInfo {
        ImageInfo {
            id: self.id.clone(),
            repo_tags: self.repo_tags.clone(),
            repo_digests: self.repo_digests.clone(),
            size: self.size,
            config: self.config.clone(),
        }
    }

    /// Every blob this image needs.
    pub(crate) fn blob_digests(&self) -> impl Iterator<Item = &str> {
        [self.manifest_digest.as_str(), self.id.as_str()]
            .into_iter()
            .chain(self.layers.iter().map(|l| l.digest.as_str()))
    }
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    images: Vec<ImageRecord>,
}

/// Reads the index; a missing file is an empty store.
pub(crate) fn load(path: &Path) -> Result<Vec<ImageRecord>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(format!("read {}", path.display()), e)),
    };
    let file: IndexFile = serde_json::from_slice(&bytes).map_err(|e| {
        RuntimeError::internal(format!("image index {} is corrupt: {e}", path.display()))
    })?;
    if file.version != VERSION {
        return Err(RuntimeError::internal(format!(
            "image index {} has version {}, this build reads {VERSION}",
            path.display(),
            file.version
        )));
    }
    Ok(file.images)
}

/// Replaces the index atomically (temp file in the same directory, fsync,
/// rename).
pub(crate) fn save(path: &Path, images: &[ImageRecord]) -> Result<()> {
    let file = IndexFile {
        version: VERSION,
        images: images.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| RuntimeError::internal(format!("encode image index: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    let io = |what: &str, e| RuntimeError::io(format!("{what} {}", tmp.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(&bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
    Ok(())
}
