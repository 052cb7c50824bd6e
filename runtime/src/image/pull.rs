//! [`ImageStore::pull`]: fetches an image from a registry with
//! `oci-client`, picking linux/amd64 from an index, downloading only the
//! blobs the store lacks (verified by digest and size as they stream to
//! disk), then committing like an import.
//!
//! Plain HTTP is used only for loopback registries and those listed in
//! [`StoreOptions::insecure_registries`]; every network step has a time
//! limit, so a dead registry fails the pull instead of hanging it.

use std::net::IpAddr;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference};
use tokio::io::AsyncWriteExt;

use super::config::{Descriptor, ManifestDoc, MANIFEST_TYPES};
use super::digest::{sha256_hex, sha256_of, Hasher};
use super::reference::ImageRef;
use super::store::{blocking, remove_any, ImageStore, Inner, NewImage, StoreOptions};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::types::{ImageInfo, RegistryAuth};

/// Limit on fetching one manifest (auth round trips included).
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest manifest or index accepted.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Layers downloaded at once.
const PARALLEL_DOWNLOADS: usize = 3;

/// What a pull did, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PullStats {
    /// Blobs fetched from the registry (config and layers).
    pub blobs_downloaded: usize,
}

impl ImageStore {
    /// Pulls `reference` (normalized as in [`ImageRef`]) and returns the
    /// stored image. A bad reference is `InvalidSpec`; an unreachable
    /// registry, a refused login, a missing image or bad content is
    /// `ImagePullFailed`, with the reference in the message.
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<ImageInfo> {
        self.pull_with_stats(reference, auth)
            .await
            .map(|(info, _)| info)
    }

    pub(crate) async fn pull_with_stats(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(ImageInfo, PullStats)> {
        let image = ImageRef::parse(reference)?;
        // The lease taken inside is released when this returns, so the
        // cleanup below can collect what a failed pull brought in.
        match self.pull_inner(&image, auth).await {
            Ok(ok) => Ok(ok),
            Err(e) => {
                let inner = self.inner.clone();
                let _ = blocking(move || {
                    inner.cleanup_after_failure();
                    Ok(())
                })
                .await;
                let kind = match e.kind {
                    ErrorKind::InvalidImage => ErrorKind::ImagePullFailed,
                    k => k,
                };
                let message = if e.message.contains(&image.to_string()) {
                    e.message
                } else {
                    format!("pull {image}: {}", e.message)
                };
                Err(RuntimeError::new(kind, message))
            }
        }
    }

    async fn pull_inner(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
    ) -> Result<(ImageInfo, PullStats)> {
        let mut lease = self.lease();
        let client = client_for(&image.registry, &self.inner.options)?;
        let auth = match auth {
            None => OciAuth::Anonymous,
            Some(RegistryAuth::Basic { username, password }) => {
                OciAuth::Basic(username.clone(), password.clone())
            }
            Some(RegistryAuth::Bearer(token)) => OciAuth::Bearer(token.clone()),
        };
        let top_ref = match (&image.digest, &image.tag) {
            (Some(d), _) => {
                Reference::with_digest(image.registry.clone(), image.repository.clone(), d.clone())
            }
            (None, tag) => Reference::with_tag(
                image.registry.clone(),
                image.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        };

        let top = fetch_manifest(&client, &top_ref, &auth, image.digest.as_deref()).await?;
        let top_digest = sha256_of(&top);
        let top_doc = ManifestDoc::parse(&top).map_err(bad_content)?;
        let (manifest, manifest_digest, doc) = if top_doc.is_index() {
            let entry = top_doc.pick_linux_amd64().ok_or_else(|| {
                RuntimeError::pull(format!("pull {image}: the index has no linux/amd64 image"))
            })?;
            let child_ref = top_ref.clone_with_digest(entry.digest.clone());
            let bytes = fetch_manifest(&client, &child_ref, &auth, Some(&entry.digest)).await?;
            let doc = ManifestDoc::parse(&bytes).map_err(bad_content)?;
            if doc.is_index() {
                return Err(bad_content("nested image index".into()));
            }
            (bytes, entry.digest.clone(), doc)
        } else {
            (top, top_digest.clone(), top_doc)
        };
        let config = doc
            .config
            .clone()
            .ok_or_else(|| bad_content("manifest has no config".into()))?;
        let layers = doc.layers.clone().unwrap_or_default();
        for d in std::iter::once(&config).chain(&layers) {
            if sha256_hex(&d.digest).is_none() {
                return Err(bad_content(format!("malformed digest {:?}", d.digest)));
            }
        }
        lease.add_blobs(
            [manifest_digest.as_str(), config.digest.as_str()]
                .into_iter()
                .chain(layers.iter().map(|l| l.digest.as_str())),
        );

        let inner = self.inner.clone();
        let (m, md) = (manifest.clone(), manifest_digest.clone());
        blocking(move || inner.put_blob(&m, &md)).await?;

        // Layers already in the store are not fetched again.
        let missing: Vec<Descriptor> = std::iter::once(&config)
            .chain(&layers)
            .filter(|d| !self.inner.has_blob(&d.digest))
            .cloned()
            .collect();
        let stats = PullStats {
            blobs_downloaded: missing.len(),
        };
        // Owned descriptors and a boxed future per download: a closure
        // over borrowed items is not provably `Send` for every lifetime,
        // which the async `Runtime` trait requires of `pull`.
        let (inner, client_ref, reference) = (&self.inner, &client, &top_ref);
        let downloads: Vec<futures::future::BoxFuture<'_, Result<()>>> = missing
            .into_iter()
            .map(|d| {
                Box::pin(async move { download_blob(inner, client_ref, reference, &d).await }) as _
            })
            .collect();
        futures::stream::iter(downloads)
            .buffer_unordered(PARALLEL_DOWNLOADS)
            .try_collect::<Vec<()>>()
            .await?;

        let new = NewImage {
            manifest_media_type: doc.kind().to_string(),
            manifest_digest,
            config,
            layers,
            repo_tags: image.tagged().into_iter().collect(),
            repo_digests: vec![image.with_digest(&top_digest)],
        };
        let inner = self.inner.clone();
        let info = blocking(move || inner.commit(new, &mut lease)).await?;
        Ok((info, stats))
    }
}

/// A client that speaks HTTPS, or HTTP to loopback and insecure registries.
fn client_for(registry: &str, options: &StoreOptions) -> Result<Client> {
    let protocol = if is_insecure(registry, options) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    super::ensure_crypto_provider();
    let config = ClientConfig {
        protocol,
        connect_timeout: Some(options.connect_timeout),
        read_timeout: Some(options.read_timeout),
        platform_resolver: Some(Box::new(oci_client::client::linux_amd64_resolver)),
        ..ClientConfig::default()
    };
    Client::try_from(config)
        .map_err(|e| RuntimeError::internal(format!("registry client: {}", describe(&e))))
}

/// Whether `registry` (`host[:port]`) may be spoken to over plain HTTP.
pub(crate) fn is_insecure(registry: &str, options: &StoreOptions) -> bool {
    if options.insecure_registries.iter().any(|r| r == registry) {
        return true;
    }
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    if options.insecure_registries.iter().any(|r| r == host) {
        return true;
    }
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Fetches a manifest, checking its digest when one is expected.
async fn fetch_manifest(
    client: &Client,
    reference: &Reference,
    auth: &OciAuth,
    expected: Option<&str>,
) -> Result<Vec<u8>> {
    let fetch = client.pull_manifest_raw(reference, auth, MANIFEST_TYPES);
    let (bytes, _) = tokio::time::timeout(MANIFEST_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            RuntimeError::pull(format!(
                "registry did not answer within {MANIFEST_TIMEOUT:?}"
            ))
        })?
        .map_err(registry_error)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(bad_content(format!(
            "manifest of {} bytes is too large",
            bytes.len()
        )));
    }
    if let Some(expected) = expected {
        let actual = sha256_of(&bytes);
        if actual != expected {
            return Err(bad_content(format!(
                "manifest has digest {actual}, expected {expected}"
            )));
        }
    }
    Ok(bytes.to_vec())
}

/// Streams blob `desc` into `tmp/`, verifying size and digest, then moves
/// it into place.
async fn download_blob(
    inner: &Inner,
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
) -> Result<()> {
    let tmp = inner.temp_path("download");
    let result = download_to(client, reference, desc, &tmp).await;
    if let Err(e) = result {
        remove_any(&tmp);
        return Err(e);
    }
    let path = inner.blob_path(&desc.digest)?;
    tokio::fs::rename(&tmp, &path).await.map_err(|e| {
        remove_any(&tmp);
        RuntimeError::io(format!("store blob {}", desc.digest), e)
    })
}

async fn download_to(
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
    tmp: &std::path::Path,
) -> Result<()> {
    let start = client.pull_blob_stream(reference, desc.digest.as_str());
    let mut stream = tokio::time::timeout(MANIFEST_TIMEOUT, start)
        .await
        .map_err(|_| RuntimeError::pull(format!("blob {}: registry did not answer", desc.digest)))?
        .map_err(registry_error)?;
    let io = |e| RuntimeError::io(format!("write {}", tmp.display()), e);
    let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut hasher = Hasher::default();
    let expected_size = u64::try_from(desc.size).ok().filter(|s| *s > 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            RuntimeError::pull(format!("blob {}: download failed: {e}", desc.digest))
        })?;
        hasher.update(&chunk);
        if expected_size.is_some_and(|s| hasher.count() > s) {
            return Err(bad_content(format!(
                "blob {} is larger than announced",
                desc.digest
            )));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    let size = hasher.count();
    if expected_size.is_some_and(|s| s != size) {
        return Err(bad_content(format!(
            "blob {} is truncated ({size} bytes)",
            desc.digest
        )));
    }
    let actual = hasher.finish();
    if actual != desc.digest {
        return Err(bad_content(format!(
            "blob has digest {actual}, expected {}",
            desc.digest
        )));
    }
    Ok(())
}

fn bad_content(why: String) -> RuntimeError {
    RuntimeError::pull(format!("registry served bad content: {why}"))
}

/// Turns a registry client error into a message a person can act on.
fn registry_error(e: OciDistributionError) -> RuntimeError {
    let hint = match &e {
        OciDistributionError::UnauthorizedError { .. } => "authentication required or refused",
        OciDistributionError::AuthenticationFailure(_) => "the registry refused the credentials",
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                        | oci_client::errors::OciErrorCode::BlobUnknown
                )
            }) =>
        {
            "not found"
        }
        OciDistributionError::ServerError { code: 404, .. } => "not found",
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => "access denied",
        OciDistributionError::RequestError(r) if r.is_connect() => "cannot reach the registry",
        OciDistributionError::RequestError(r) if r.is_timeout() => "the registry timed out",
        _ => "registry error",
    };
    RuntimeError::pull(format!("{hint}: {}", describe(&e)))
}

/// An error and its sources, one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
