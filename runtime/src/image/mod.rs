//! The node's image store: a pure-Rust, on-disk, content-addressed store of
//! OCI images, used directly by the youki backend (its layer directories
//! become overlayfs `lowerdir`s) and as a blob source by the containerd
//! backend (which uploads manifests, configs and layers from it).
//!
//! It owns everything under its root directory:
//! - `blobs/sha256/<hex>`: manifests, configs and compressed layers, each
//!   verified against its digest before it is moved into place;
//! - `layers/<diff-id hex>/`: each layer unpacked once (with overlayfs
//!   whiteouts), shared by every image that has it;
//! - `index.json`: the image records, rewritten atomically;
//! - `tmp/`: work in progress, emptied on open.
//!
//! It gets images by pulling from registries ([`ImageStore::pull`]) or by
//! importing `docker save` / OCI-layout archives ([`ImageStore::import`]).
//!
//! What it must not do: run containers, mount anything, or know about pods.
//! It never follows a symlink out of a layer while unpacking, never writes
//! outside its root, and never talks plain HTTP to a registry that is not
//! loopback or explicitly listed as insecure.

mod archive;
pub(crate) mod config;
pub(crate) mod digest;
mod index;
mod pull;
pub mod reference;
mod store;
mod unpack;

pub use reference::ImageRef;
pub use store::{ImageBlobs, ImageStore, LayerBlob, StoreOptions};

/// Registry clients use rustls without a provider of their own (two
/// providers in one build make rustls refuse to choose); this makes ring,
/// the workspace's provider, the process default. Idempotent.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing it is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
