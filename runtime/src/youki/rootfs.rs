//! A container's root filesystem: the image's unpacked layers as overlayfs
//! lower directories, with a writable upper directory of the container's
//! own (thrown away with the container).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Result, RuntimeError};

/// Mounts the overlay at `dir/rootfs`; `layers` are lowest first.
pub fn mount_overlay(dir: &Path, layers: &[PathBuf]) -> Result<PathBuf> {
    if layers.is_empty() {
        return Err(RuntimeError::new(
            crate::ErrorKind::InvalidImage,
            "the image has no layers",
        ));
    }
    let rootfs = dir.join("rootfs");
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(d).map_err(|e| RuntimeError::io(d.display(), e))?;
    }
    // overlayfs lists the topmost lower layer first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| RuntimeError::internal(format!("mounting the rootfs overlay: {e}")))?;
    Ok(rootfs)
}

/// Unmounts `dir/rootfs` if mounted; idempotent.
pub fn unmount(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    match umount2(&rootfs, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(RuntimeError::internal(format!(
            "unmounting {}: {e}",
            rootfs.display()
        ))),
    }
}
