//! Unpacks one layer blob (gzip or plain tar) into a fresh directory laid
//! out for overlayfs, computing the layer's diff id on the way.
//!
//! OCI whiteouts become overlayfs ones: `.wh.<name>` a 0/0 character
//! device `<name>`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on
//! its directory. Owners, modes, mtimes, symlinks, hard links (within the
//! layer), devices, fifos and PAX xattrs are kept.
//!
//! Nothing is ever written outside the layer: entries with `..`, entries
//! below a symlink and hard links pointing out are rejected as
//! `InvalidImage`; paths are made relative (a leading `/` is dropped), and
//! the final component is created without following symlinks.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use nix::sys::stat::{lutimes, makedev, mknod, Mode, SFlag};
use nix::sys::time::TimeVal;
use tar::EntryType;

use super::digest::HashingReader;
use crate::error::{ErrorKind, Result, RuntimeError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// `sha256:` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of regular-file content.
    pub size: u64,
}

/// Unpacks the layer blob at `blob` into `dest`, which must not exist yet.
/// On error `dest` may hold a partial tree; the caller unpacks into a
/// temporary directory and removes it.
pub(crate) fn unpack_layer(blob: &Path, dest: &Path) -> Result<Unpacked> {
    let file = fs::File::open(blob)
        .map_err(|e| RuntimeError::io(format!("open layer {}", blob.display()), e))?;
    unpack_reader(BufReader::new(file), dest)
}

/// Like [`unpack_layer`], from any buffered reader of a (maybe gzipped)
/// tar stream.
pub(crate) fn unpack_reader<R: BufRead>(mut reader: R, dest: &Path) -> Result<Unpacked> {
    let magic = reader.fill_buf().map_err(corrupt)?;
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(invalid("zstd-compressed layers are not supported".into()));
    }
    let stream: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    fs::create_dir(dest).map_err(|e| RuntimeError::io(format!("create {}", dest.display()), e))?;
    let mut archive = tar::Archive::new(HashingReader::new(stream));
    let mut unpacker = Unpacker {
        root: dest,
        size: 0,
        dirs: Vec::new(),
    };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()?;
    let (diff_id, _) = archive.into_inner().finish().map_err(corrupt)?;
    Ok(Unpacked {
        diff_id,
        size: unpacker.size,
    })
}

fn invalid(msg: String) -> RuntimeError {
    RuntimeError::new(ErrorKind::InvalidImage, msg)
}

/// Reading the stream failed: the layer is truncated or not a tar.
fn corrupt(e: io::Error) -> RuntimeError {
    invalid(format!("corrupt layer: {e}"))
}

fn fs_err<'a>(what: &str, path: &'a Path) -> impl FnOnce(io::Error) -> RuntimeError + 'a {
    let what = what.to_string();
    move |e| RuntimeError::io(format!("{what} {}", path.display()), e)
}

struct Unpacker<'a> {
    root: &'a Path,
    size: u64,
    /// Directories whose mode and mtime are set last, since creating
    /// their children changes the mtime.
    dirs: Vec<(PathBuf, Meta)>,
}

#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path().map_err(corrupt)?.into_owned();
        let rel = relative(&raw_path)?;
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            return Ok(()); // the layer's root itself ("./")
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let name_str = name.to_string_lossy();

        if name_str == OPAQUE_WHITEOUT {
            let dir = self.ensure_dirs(parent_rel)?;
            return xattr::set(&dir, OPAQUE_XATTR, b"y")
                .map_err(fs_err("set opaque xattr on", &dir));
        }
        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(invalid(format!("bad whiteout {}", raw_path.display())));
            }
            let parent = self.ensure_dirs(parent_rel)?;
            let target = parent.join(hidden);
            remove_existing(&target)?;
            return mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| {
                RuntimeError::internal(format!(
                    "create whiteout {} (needs CAP_MKNOD): {e}",
                    target.display()
                ))
            });
        }

        let parent = self.ensure_dirs(parent_rel)?;
        let path = parent.join(&name);
        let header = entry.header();
        let meta = Meta {
            mode: header.mode().map_err(corrupt)? & 0o7777,
            uid: u32::try_from(header.uid().map_err(corrupt)?)
                .map_err(|_| invalid(format!("uid out of range in {}", raw_path.display())))?,
            gid: u32::try_from(header.gid().map_err(corrupt)?)
                .map_err(|_| invalid(format!("gid out of range in {}", raw_path.display())))?,
            mtime: i64::try_from(header.mtime().map_err(corrupt)?).unwrap_or(0),
        };
        let kind = header.entry_type();

        if kind == EntryType::Directory {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_existing(&path)?;
                    fs::create_dir(&path).map_err(fs_err("create", &path))?;
                }
                Err(_) => fs::create_dir(&path).map_err(fs_err("create", &path))?,
            }
            chown(&path, meta)?;
            self.set_xattrs(entry, &path)?;
            self.dirs.push((path, meta));
            return Ok(());
        }

        remove_existing(&path)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(fs_err("create", &path))?;
                self.size += copy_entry(entry, &mut out, &path)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| invalid(format!("symlink {} has no target", rel.display())))?;
                symlink(&target, &path).map_err(fs_err("symlink", &path))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| invalid(format!("hard link {} has no target", rel.display())))?
                    .into_owned();
                let source = self.link_source(&target, &rel)?;
                fs::hard_link(&source, &path).map_err(fs_err("hard link", &path))?;
                // A hard link shares its inode's metadata: nothing to set.
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (flag, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = header.device_major().map_err(corrupt)?.unwrap_or(0);
                        let minor = header.device_minor().map_err(corrupt)?.unwrap_or(0);
                        let flag = if kind == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (flag, makedev(major.into(), minor.into()))
                    }
                };
                mknod(&path, flag, Mode::empty(), dev).map_err(|e| {
                    RuntimeError::internal(format!("mknod {}: {e}", path.display()))
                })?;
            }
            other => {
                tracing::debug!(path = %rel.display(), kind = ?other, "skipping layer entry");
                return Ok(());
            }
        }
        chown(&path, meta)?;
        if kind != EntryType::Symlink {
            // After chown, which clears setuid/setgid bits.
            set_mode(&path, meta.mode)?;
        }
        self.set_xattrs(entry, &path)?;
        set_mtime(&path, meta.mtime)
    }

    /// Sets directories' modes and mtimes, deepest first.
    fn finish(&mut self) -> Result<()> {
        for (path, meta) in self.dirs.iter().rev() {
            set_mode(path, meta.mode)?;
            set_mtime(path, meta.mtime)?;
        }
        Ok(())
    }

    /// Makes sure every directory of `rel` exists inside the root as a real
    /// directory (never a symlink, which could lead out), creating missing
    /// ones; returns the absolute path.
    fn ensure_dirs(&self, rel: &Path) -> Result<PathBuf> {
        let mut path = self.root.to_path_buf();
        for component in rel.components() {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(invalid(format!(
                        "layer entry below symlink {} would escape the layer",
                        rel.display()
                    )));
                }
                Ok(_) => {
                    return Err(invalid(format!(
                        "layer entry below non-directory {}",
                        rel.display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(fs_err("create", &path))?;
                    set_mode(&path, 0o755)?;
                }
                Err(e) => return Err(RuntimeError::io(format!("stat {}", path.display()), e)),
            }
        }
        Ok(path)
    }

    /// The existing file a hard link entry points at, inside the layer.
    fn link_source(&self, target: &Path, entry: &Path) -> Result<PathBuf> {
        let rel = relative(target)?;
        let name = rel
            .file_name()
            .ok_or_else(|| invalid(format!("hard link {} has no target", entry.display())))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        // Only look through existing real directories: never follow links.
        let mut dir = self.root.to_path_buf();
        for component in parent.components() {
            dir.push(component);
            let ok = fs::symlink_metadata(&dir)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if !ok {
                return Err(invalid(format!(
                    "hard link {} -> {} points outside the layer or at nothing",
                    entry.display(),
                    target.display()
                )));
            }
        }
        let source = dir.join(name);
        match fs::symlink_metadata(&source) {
            Ok(m) if !m.is_dir() => Ok(source),
            _ => Err(invalid(format!(
                "hard link {} -> {}: target is missing or a directory",
                entry.display(),
                target.display()
            ))),
        }
    }

    fn set_xattrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<()> {
        let Some(exts) = entry.pax_extensions().map_err(corrupt)? else {
            return Ok(());
        };
        for ext in exts {
            let ext = ext.map_err(corrupt)?;
            let Some(name) = ext.key_bytes().strip_prefix(PAX_XATTR_PREFIX.as_bytes()) else {
                continue;
            };
            let name = OsStr::from_bytes(name);
            // Some file systems or kernels refuse some namespaces; a missing
            // xattr is not worth failing the whole image for.
            if let Err(e) = xattr::set(path, name, ext.value_bytes()) {
                tracing::warn!(path = %path.display(), ?name, error = %e, "cannot set xattr");
            }
        }
        Ok(())
    }
}

/// `path` made relative to the layer root; `..` anywhere is rejected.
fn relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(format!(
                    "layer entry {} escapes the layer",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Removes whatever is at `path` (a later entry replaces an earlier one).
fn remove_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(fs_err("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(fs_err("remove", path)),
        Err(_) => Ok(()),
    }
}

/// Copies an entry's content; read errors mean a corrupt layer, write
/// errors a local problem.
fn copy_entry<R: Read>(entry: &mut R, out: &mut fs::File, path: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buf).map_err(corrupt)?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n]).map_err(fs_err("write", path))?;
        total += n as u64;
    }
}

fn chown(path: &Path, meta: Meta) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid)).map_err(fs_err("chown", path))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fs_err("chmod", path))
}

fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    let t = TimeVal::new(mtime, 0);
    lutimes(path, &t, &t)
        .map_err(|e| RuntimeError::internal(format!("set mtime of {}: {e}", path.display())))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
