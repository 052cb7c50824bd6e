//! Pinned Linux namespaces (network, IPC, UTS) for a pod sandbox.
//!
//! A sandbox's namespaces must exist before any of its containers run and
//! outlive every container restart, so they are not tied to a process: each
//! one is created by a short-lived thread that `unshare`s it and bind-mounts
//! its `/proc/thread-self/ns/<kind>` handle onto a file in the sandbox's
//! directory. The mount keeps the namespace alive after the thread exits;
//! runtimes and CNI plugins then join it through that file.
//!
//! This module owns those files and mounts, entering a pinned namespace
//! from a throw-away thread, and writing namespaced sysctls. It does not
//! configure interfaces (that is [`crate::cni`]) and never changes the
//! namespaces of a long-lived thread: a thread whose namespace changed is
//! always left to exit, never returned to a pool (tokio's or anyone's).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::error::{ErrorKind, Result, RuntimeError};

/// A namespace kind a sandbox can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceKind {
    Net,
    Ipc,
    Uts,
}

impl NamespaceKind {
    pub const ALL: [NamespaceKind; 3] =
        [NamespaceKind::Net, NamespaceKind::Ipc, NamespaceKind::Uts];

    /// The name used under `/proc/<pid>/ns/` and for the pinned file.
    pub fn name(self) -> &'static str {
        match self {
            NamespaceKind::Net => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
        }
    }

    fn clone_flag(self) -> CloneFlags {
        match self {
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

impl fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The namespaces pinned for one sandbox, as files under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSet {
    dir: PathBuf,
    paths: BTreeMap<NamespaceKind, PathBuf>,
}

impl NamespaceSet {
    /// Creates and pins a new namespace of each of `kinds` as `dir/<kind>`.
    /// `hostname` is set inside the new UTS namespace (ignored without
    /// one). `dir` is created if missing; it belongs to the caller and is
    /// never deleted here. On failure, whatever was made is undone.
    pub fn create(dir: &Path, kinds: &[NamespaceKind], hostname: Option<&str>) -> Result<Self> {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        if let Some(name) = hostname {
            validate_hostname(name)?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| RuntimeError::io(format!("create {}", dir.display()), e))?;
        // Refuse before touching anything, so the failure cleanup below
        // can never remove files that were there before this call.
        for kind in &kinds {
            let path = dir.join(kind.name());
            if path.symlink_metadata().is_ok() {
                return Err(RuntimeError::already_exists(format!(
                    "pinned {kind} namespace {}",
                    path.display()
                )));
            }
        }
        let mut paths = BTreeMap::new();
        for kind in &kinds {
            let path = dir.join(kind.name());
            let host = if *kind == NamespaceKind::Uts {
                hostname
            } else {
                None
            };
            if let Err(err) = pin_new_namespace(*kind, &path, host) {
                remove_pinned(&kinds, dir);
                return Err(err);
            }
            paths.insert(*kind, path);
        }
        Ok(NamespaceSet {
            dir: dir.to_path_buf(),
            paths,
        })
    }

    /// Finds the namespaces pinned under `dir` earlier (e.g. before a
    /// restart of this process). Files that are not live namespace mounts
    /// (left over from an interrupted create) are not included.
    pub fn open(dir: &Path) -> Self {
        let paths = NamespaceKind::ALL
            .iter()
            .map(|k| (*k, dir.join(k.name())))
            .filter(|(_, p)| is_namespace_file(p))
            .collect();
        NamespaceSet {
            dir: dir.to_path_buf(),
            paths,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pinned file for `kind`, if this set has one.
    pub fn path(&self, kind: NamespaceKind) -> Option<&Path> {
        self.paths.get(&kind).map(PathBuf::as_path)
    }

    pub fn net_path(&self) -> Option<&Path> {
        self.path(NamespaceKind::Net)
    }

    /// Unmounts and deletes every pinned namespace file under the set's
    /// directory, including ones an interrupted `create` left half-made.
    /// Idempotent. A namespace stays alive while a process still uses it;
    /// it is gone from this directory either way.
    pub fn remove(&self) -> Result<()> {
        remove_namespaces_in(&self.dir)
    }
}

/// Unmounts and deletes `dir/{net,ipc,uts}`, whatever state they are in.
/// Missing files are fine; the directory itself is left alone.
pub fn remove_namespaces_in(dir: &Path) -> Result<()> {
    let mut first_err = None;
    for kind in NamespaceKind::ALL {
        if let Err(e) = unpin(&dir.join(kind.name())) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Best effort cleanup after a failed create.
fn remove_pinned(kinds: &[NamespaceKind], dir: &Path) {
    for kind in kinds {
        if let Err(e) = unpin(&dir.join(kind.name())) {
            tracing::warn!("cleaning up {kind} namespace in {}: {e}", dir.display());
        }
    }
}

fn unpin(path: &Path) -> Result<()> {
    // A file can carry stacked mounts if something went wrong before;
    // peel them all. EINVAL means "not a mount point", ENOENT "no file".
    for _ in 0..16 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(e) => return Err(errno_err(format!("unmount {}", path.display()), e)),
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io(format!("remove {}", path.display()), e)),
    }
}

/// Whether `path` is a bind-mounted namespace handle (nsfs).
pub fn is_namespace_file(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

fn pin_new_namespace(kind: NamespaceKind, path: &Path, hostname: Option<&str>) -> Result<()> {
    // The mount target must exist; an empty regular file works for nsfs.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| RuntimeError::io(format!("create {}", path.display()), e))?;
    let target = path.to_path_buf();
    let hostname = hostname.map(str::to_owned);
    // A fresh OS thread: after `unshare` it lives in the new namespace, and
    // it must exit afterwards rather than run anything else.
    let handle = std::thread::Builder::new()
        .name(format!("rkube-pin-{kind}"))
        .spawn(move || -> Result<()> {
            unshare(kind.clone_flag()).map_err(|e| errno_err(format!("unshare {kind}"), e))?;
            if let Some(name) = hostname {
                nix::unistd::sethostname(&name)
                    .map_err(|e| errno_err(format!("set hostname {name:?}"), e))?;
            }
            let source = format!("/proc/thread-self/ns/{}", kind.name());
            mount(
                Some(source.as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| errno_err(format!("bind {source} onto {}", target.display()), e))
        })
        .map_err(|e| RuntimeError::io("spawn namespace thread", e))?;
    handle
        .join()
        .map_err(|_| RuntimeError::internal(format!("thread pinning {kind} namespace panicked")))?
}

fn validate_hostname(name: &str) -> Result<()> {
    // The kernel's limit is 64 bytes (HOST_NAME_MAX); anything printable
    // is accepted by it, but a hostname with spaces or slashes is a bug.
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::invalid(format!("invalid hostname {name:?}")))
    }
}

fn errno_err(what: impl fmt::Display, e: Errno) -> RuntimeError {
    RuntimeError::io(what, io::Error::from(e))
}

/// Opens a pinned namespace file, checking that it is one.
pub fn open_namespace(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            RuntimeError::not_found(format!("namespace {}", path.display()))
        } else {
            RuntimeError::io(format!("open {}", path.display()), e)
        }
    })?;
    if !is_namespace_file(path) {
        return Err(RuntimeError::not_found(format!(
            "namespace {} (the file is not a namespace mount)",
            path.display()
        )));
    }
    Ok(file)
}

/// Runs `f` on a fresh OS thread that has first joined the namespace
/// pinned at `path`, and waits for it. Blocking: from async code use
/// [`run_in_namespace_async`].
pub fn run_in_namespace<T, F>(path: &Path, kind: NamespaceKind, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = open_namespace(path)?;
    let shown = path.display().to_string();
    let handle = std::thread::Builder::new()
        .name(format!("rkube-in-{kind}"))
        .spawn(move || -> Result<T> {
            setns(&file, kind.clone_flag())
                .map_err(|e| errno_err(format!("enter {kind} namespace {shown}"), e))?;
            drop(file);
            Ok(f())
        })
        .map_err(|e| RuntimeError::io("spawn namespace thread", e))?;
    handle
        .join()
        .map_err(|_| RuntimeError::internal(format!("thread in {kind} namespace panicked")))?
}

/// Like [`run_in_namespace`], but awaits the thread instead of blocking
/// the caller's (possibly runtime worker) thread.
pub async fn run_in_namespace_async<T, F>(path: &Path, kind: NamespaceKind, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = open_namespace(path)?;
    let shown = path.display().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("rkube-in-{kind}"))
        .spawn(move || {
            let result = setns(&file, kind.clone_flag())
                .map_err(|e| errno_err(format!("enter {kind} namespace {shown}"), e))
                .map(|()| {
                    drop(file);
                    f()
                });
            // The receiver may be gone (caller cancelled); nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(|e| RuntimeError::io("spawn namespace thread", e))?;
    rx.await
        .map_err(|_| RuntimeError::internal(format!("thread in {kind} namespace panicked")))?
}

/// Which namespace a sysctl belongs to, for the ones a pod may set:
/// `net.*` is per network namespace; `kernel.shm*`, `kernel.msg*`,
/// `kernel.sem` and `fs.mqueue.*` are per IPC namespace. `None` means the
/// sysctl is node-wide and must not be set for a pod.
pub fn sysctl_namespace(key: &str) -> Option<NamespaceKind> {
    let dotted = key.replace('/', ".");
    if dotted.starts_with("net.") {
        Some(NamespaceKind::Net)
    } else if dotted.starts_with("kernel.shm")
        || dotted.starts_with("kernel.msg")
        || dotted == "kernel.sem"
        || dotted.starts_with("fs.mqueue.")
    {
        Some(NamespaceKind::Ipc)
    } else {
        None
    }
}

/// Maps a sysctl name to its file under /proc/sys. Kubernetes accepts
/// both `net.ipv4.ip_forward` and `net/ipv4/ip_forward`; with slashes,
/// dots are part of a component (`net/ipv4/conf/eth0.100/forwarding`).
fn sysctl_path(key: &str) -> Result<PathBuf> {
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let valid_chars = rel
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    let valid_parts = rel
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..");
    if !valid_chars || !valid_parts {
        return Err(RuntimeError::invalid(format!(
            "invalid sysctl name {key:?}"
        )));
    }
    Ok(Path::new("/proc/sys").join(rel))
}

/// Writes `net.*` sysctls inside the network namespace pinned at
/// `net_ns_path`. /proc/sys/net shows the network namespace of the thread
/// that opens the file, so a thread that joined the namespace writes them.
/// A name outside `net.*`, unknown, or not namespaced is `InvalidSpec`.
pub fn apply_sysctls(net_ns_path: &Path, sysctls: &BTreeMap<String, String>) -> Result<()> {
    apply_in(net_ns_path, NamespaceKind::Net, sysctls)
}

/// Writes IPC sysctls (`kernel.shm*`, `kernel.msg*`, `kernel.sem`,
/// `fs.mqueue.*`) inside the IPC namespace pinned at `ipc_ns_path`.
pub fn apply_ipc_sysctls(ipc_ns_path: &Path, sysctls: &BTreeMap<String, String>) -> Result<()> {
    apply_in(ipc_ns_path, NamespaceKind::Ipc, sysctls)
}

fn apply_in(ns_path: &Path, kind: NamespaceKind, sysctls: &BTreeMap<String, String>) -> Result<()> {
    let mut writes = Vec::new();
    for (key, value) in sysctls {
        if sysctl_namespace(key) != Some(kind) {
            return Err(RuntimeError::invalid(format!(
                "sysctl {key:?} is not in the {kind} namespace"
            )));
        }
        writes.push((key.clone(), sysctl_path(key)?, value.clone()));
    }
    if writes.is_empty() {
        return Ok(());
    }
    run_in_namespace(ns_path, kind, move || -> Result<()> {
        for (key, path, value) in writes {
            std::fs::write(&path, value.as_bytes()).map_err(|e| {
                let kind = match e.kind() {
                    // No such file: unknown, or not namespaced (the kernel
                    // shows node-wide net sysctls only in the initial netns).
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => ErrorKind::InvalidSpec,
                    _ => ErrorKind::Internal,
                };
                RuntimeError::new(kind, format!("set sysctl {key}={value:?}: {e}"))
            })?;
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted(path: &Path) -> bool {
        let wanted = path.to_str().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(wanted))
    }

    #[test]
    fn create_and_remove_leave_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ns");
        let set = NamespaceSet::create(&dir, &NamespaceKind::ALL, Some("pod-a")).unwrap();
        for kind in NamespaceKind::ALL {
            let p = set.path(kind).unwrap();
            assert!(is_namespace_file(p), "{kind} pinned");
            assert!(mounted(p), "{kind} in mountinfo");
        }
        // A new namespace, not the host's.
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        let inner = run_in_namespace(set.net_path().unwrap(), NamespaceKind::Net, || {
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        })
        .unwrap();
        assert_ne!(host, inner);
        assert_eq!(NamespaceSet::open(&dir), set);

        set.remove().unwrap();
        for kind in NamespaceKind::ALL {
            let p = dir.join(kind.name());
            assert!(!mounted(&p));
            assert!(!p.exists());
        }
        set.remove().unwrap();
        assert!(NamespaceSet::open(&dir).path(NamespaceKind::Net).is_none());
    }

    #[test]
    fn hostname_is_set_in_uts_namespace_only() {
        let tmp = tempfile::tempdir().unwrap();
        let set =
            NamespaceSet::create(tmp.path(), &[NamespaceKind::Uts], Some("sandbox-host")).unwrap();
        assert!(set.net_path().is_none());
        let name = run_in_namespace(
            set.path(NamespaceKind::Uts).unwrap(),
            NamespaceKind::Uts,
            || nix::unistd::gethostname().unwrap(),
        )
        .unwrap();
        assert_eq!(name, "sandbox-host");
        assert_ne!(nix::unistd::gethostname().unwrap(), "sandbox-host");
        set.remove().unwrap();
    }

    #[test]
    fn half_created_state_is_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        // A stray empty file (as after a crash between create and mount)
        // makes create refuse, and remove clears it.
        std::fs::write(tmp.path().join("net"), b"").unwrap();
        let err = NamespaceSet::create(tmp.path(), &[NamespaceKind::Net], None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(
            tmp.path().join("net").exists(),
            "pre-existing file untouched"
        );
        assert!(NamespaceSet::open(tmp.path()).net_path().is_none());
        remove_namespaces_in(tmp.path()).unwrap();
        assert!(!tmp.path().join("net").exists());

        let err =
            NamespaceSet::create(tmp.path(), &NamespaceKind::ALL, Some("bad name")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSpec);
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    }

    #[test]
    fn entering_a_non_namespace_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        std::fs::write(&file, b"").unwrap();
        let err = run_in_namespace(&file, NamespaceKind::Net, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err =
            run_in_namespace(&tmp.path().join("missing"), NamespaceKind::Net, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn net_sysctls_apply_inside_the_namespace_only() {
        let tmp = tempfile::tempdir().unwrap();
        let set = NamespaceSet::create(tmp.path(), &[NamespaceKind::Net], None).unwrap();
        let ns = set.net_path().unwrap().to_path_buf();
        let file = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
        let host_before = std::fs::read_to_string(file).unwrap();
        let mut sysctls = BTreeMap::new();
        sysctls.insert(
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "123".to_owned(),
        );
        sysctls.insert(
            "net/ipv4/ping_group_range".to_owned(),
            "0 2147483647".to_owned(),
        );
        apply_sysctls(&ns, &sysctls).unwrap();
        let (port, range) = run_in_namespace(&ns, NamespaceKind::Net, move || {
            (
                std::fs::read_to_string(file).unwrap(),
                std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(),
            )
        })
        .unwrap();
        assert_eq!(port.trim(), "123");
        assert_eq!(
            range.split_whitespace().collect::<Vec<_>>(),
            ["0", "2147483647"]
        );
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            host_before,
            "host untouched"
        );

        let bad = |k: &str| {
            let mut m = BTreeMap::new();
            m.insert(k.to_owned(), "1".to_owned());
            apply_sysctls(&ns, &m).unwrap_err().kind()
        };
        assert_eq!(bad("kernel.shmmax"), ErrorKind::InvalidSpec);
        assert_eq!(bad("net.ipv4.no_such_thing"), ErrorKind::InvalidSpec);
        assert_eq!(bad("net/../kernel/hostname"), ErrorKind::InvalidSpec);
        set.remove().unwrap();
    }

    #[test]
    fn ipc_sysctls_apply_inside_the_namespace_only() {
        let tmp = tempfile::tempdir().unwrap();
        let set = NamespaceSet::create(tmp.path(), &[NamespaceKind::Ipc], None).unwrap();
        let ns = set.path(NamespaceKind::Ipc).unwrap().to_path_buf();
        let host_before = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
        let mut sysctls = BTreeMap::new();
        sysctls.insert("kernel.shmmni".to_owned(), "1234".to_owned());
        apply_ipc_sysctls(&ns, &sysctls).unwrap();
        let inside = run_in_namespace(&ns, NamespaceKind::Ipc, || {
            std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap()
        })
        .unwrap();
        assert_eq!(inside.trim(), "1234");
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
            host_before
        );
        set.remove().unwrap();
    }
}
