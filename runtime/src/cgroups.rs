//! Facts about the node's cgroup file systems and figures read from a
//! container's cgroup: CPU and memory use, OOM kills, whether its
//! directories still exist, and removing them.
//!
//! The OCI runtime (youki, runc) creates a container's cgroups from the
//! spec's `linux.cgroupsPath` and applies its limits; this module only
//! looks at them afterwards and cleans up what a runtime left behind. It
//! must not set limits, move or kill processes: that is the OCI runtime's
//! and the caller's business.
//!
//! Paths given here are cgroupfs-style, as put in `linux.cgroupsPath`
//! (`/rkube/pod123/ctr456`): relative to the root of each hierarchy, i.e.
//! joined to each controller's mount point, which is how runc and youki
//! resolve them. systemd-style `slice:prefix:name` paths are not
//! understood. Mount points come from `/proc/self/mountinfo`, since
//! layouts differ: `cpu,cpuacct` may be one mount or two, and cgroup v2
//! may sit at `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Result, RuntimeError};
use crate::types::ResourceStats;

/// Which cgroup versions the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    /// cgroup v1 hierarchies only.
    Legacy,
    /// v1 hierarchies hold the controllers; a cgroup2 file system is
    /// mounted too (usually `/sys/fs/cgroup/unified`) but only for process
    /// tracking. Figures come from v1.
    Hybrid,
    /// cgroup v2 alone holds the controllers.
    Unified,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct V1Hierarchy {
    /// Controllers bound to it (`cpu`, `cpuacct`, …) and `name=…` for
    /// named hierarchies without controllers.
    controllers: Vec<String>,
    mount_point: PathBuf,
}

/// The node's cgroup layout: its mode and where each hierarchy is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSetup {
    mode: CgroupMode,
    v1: Vec<V1Hierarchy>,
    v2: Option<PathBuf>,
}

/// v1 controller names; a `name=` option marks a named hierarchy.
/// Everything else in a cgroup mount's options is a mount flag.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

impl CgroupSetup {
    /// Reads the layout from `/proc/self/mountinfo`.
    pub fn detect() -> Result<CgroupSetup> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("read /proc/self/mountinfo", e))?;
        CgroupSetup::from_mountinfo(&text)
    }

    /// Works the layout out from the text of a `mountinfo` file.
    pub fn from_mountinfo(text: &str) -> Result<CgroupSetup> {
        // (root, hierarchy) so a mount of a hierarchy's root wins over a
        // bind mount of a subtree of it.
        let mut v1: Vec<(bool, V1Hierarchy)> = Vec::new();
        let mut v2: Vec<PathBuf> = Vec::new();
        for line in text.lines() {
            let Some(mount) = parse_mountinfo_line(line) else {
                continue;
            };
            match mount.fs_type {
                "cgroup" => {
                    let mut controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    controllers.sort();
                    let is_root = mount.root == "/";
                    let hierarchy = V1Hierarchy {
                        controllers,
                        mount_point: mount.mount_point,
                    };
                    match v1
                        .iter_mut()
                        .find(|(_, h)| h.controllers == hierarchy.controllers)
                    {
                        Some(existing) if !existing.0 && is_root => *existing = (true, hierarchy),
                        Some(_) => {}
                        None => v1.push((is_root, hierarchy)),
                    }
                }
                "cgroup2" => v2.push(mount.mount_point),
                _ => {}
            }
        }
        let v1: Vec<V1Hierarchy> = v1.into_iter().map(|(_, h)| h).collect();
        // The conventional place first, should cgroup2 be mounted twice.
        let v2 = v2
            .iter()
            .find(|p| p.as_path() == Path::new("/sys/fs/cgroup"))
            .or_else(|| v2.first())
            .cloned();
        let has_v1_controllers = v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let mode = match (has_v1_controllers, &v2) {
            (true, Some(_)) => CgroupMode::Hybrid,
            (true, None) => CgroupMode::Legacy,
            (false, Some(_)) => CgroupMode::Unified,
            (false, None) => {
                return Err(RuntimeError::internal("no cgroup file system is mounted"))
            }
        };
        Ok(CgroupSetup { mode, v1, v2 })
    }

    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// Where the v1 hierarchy holding `controller` is mounted.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount_point.as_path())
    }

    /// Where cgroup v2 is mounted, in any mode.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.v2.as_deref()
    }

    /// The directory of cgroup `relative` in the hierarchy that provides
    /// `controller`: the v1 one, or the v2 tree in unified mode.
    pub fn controller_dir(&self, controller: &str, relative: &str) -> Result<PathBuf> {
        let mount = match self.mode {
            CgroupMode::Unified => self.v2.as_deref(),
            CgroupMode::Legacy | CgroupMode::Hybrid => self.v1_mount(controller),
        };
        let mount = mount.ok_or_else(|| {
            RuntimeError::internal(format!("cgroup controller {controller} is not mounted"))
        })?;
        Ok(mount.join(relative_components(relative)?))
    }

    /// The directories cgroup `relative` would have in every mounted
    /// hierarchy (v1 and v2 alike, since a runtime may create it in any of
    /// them), whether they exist or not.
    pub fn dirs(&self, relative: &str) -> Result<Vec<PathBuf>> {
        let rel = relative_components(relative)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mounts = self
            .v1
            .iter()
            .map(|h| h.mount_point.as_path())
            .chain(self.v2.as_deref());
        for mount in mounts {
            let dir = mount.join(&rel);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }
}

struct MountInfo<'a> {
    root: String,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

/// Splits one `mountinfo` line:
/// `id parent major:minor root mount-point options [optional…] - type source super-options`.
fn parse_mountinfo_line(line: &str) -> Option<MountInfo<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let root = unescape_mount_field(left.nth(3)?);
    let mount_point = PathBuf::from(unescape_mount_field(left.next()?));
    let mut right = right.split(' ');
    let fs_type = right.next()?;
    let _source = right.next()?;
    let super_options = right.next().unwrap_or("");
    Some(MountInfo {
        root,
        mount_point,
        fs_type,
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space) in paths.
fn unescape_mount_field(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(value) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a cgroup path and makes it relative to a hierarchy's root.
/// `..` is refused: a path from a spec must not reach outside the tree.
fn relative_components(relative: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(relative).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(RuntimeError::invalid(format!(
                    "bad cgroup path {relative:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// Reads an interface file; a missing file means a missing cgroup, which
/// callers see as `NotFound` (the container is gone or never started).
fn read_file(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound && !dir.is_dir() {
            RuntimeError::not_found(format!("cgroup {}", dir.display()))
        } else {
            RuntimeError::io(format!("read {}", path.display()), e)
        }
    })
}

fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let text = read_file(dir, file)?;
    text.trim().parse().map_err(|_| {
        RuntimeError::internal(format!(
            "{}: not a number: {:?}",
            dir.join(file).display(),
            text.trim()
        ))
    })
}

/// Looks `key` up in a flat-keyed file (`key value` per line: memory.stat,
/// cpu.stat, memory.events, memory.oom_control).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// CPU and memory figures of cgroup `relative` (`linux.cgroupsPath`).
///
/// The working set is usage minus inactive file cache, floored at 0, as
/// the kubelet computes it for eviction and `kubectl top`. v1 figures are
/// the hierarchical `total_*` ones, so a pod-level cgroup counts its
/// containers. A cgroup that does not exist is `NotFound`.
pub fn read_stats(setup: &CgroupSetup, relative: &str) -> Result<ResourceStats> {
    let timestamp_nanos = now_nanos();
    let (cpu_usage_nanos, usage, inactive_file, rss) = match setup.mode {
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            let cpu = setup.controller_dir("cpuacct", relative)?;
            let mem = setup.controller_dir("memory", relative)?;
            let cpu_usage = read_u64(&cpu, "cpuacct.usage")?;
            let usage = read_u64(&mem, "memory.usage_in_bytes")?;
            let stat = read_file(&mem, "memory.stat")?;
            (
                cpu_usage,
                usage,
                keyed_value(&stat, "total_inactive_file").unwrap_or(0),
                keyed_value(&stat, "total_rss").unwrap_or(0),
            )
        }
        CgroupMode::Unified => {
            let dir = setup.controller_dir("", relative)?;
            let cpu_stat = read_file(&dir, "cpu.stat")?;
            let usage_usec = keyed_value(&cpu_stat, "usage_usec").unwrap_or(0);
            let usage = read_u64(&dir, "memory.current")?;
            let stat = read_file(&dir, "memory.stat")?;
            (
                usage_usec.saturating_mul(1000),
                usage,
                keyed_value(&stat, "inactive_file").unwrap_or(0),
                keyed_value(&stat, "anon").unwrap_or(0),
            )
        }
    };
    Ok(ResourceStats {
        timestamp_nanos,
        cpu_usage_nanos,
        memory_working_set_bytes: usage.saturating_sub(inactive_file),
        memory_usage_bytes: usage,
        memory_rss_bytes: rss,
    })
}

/// How many times the kernel's OOM killer killed a process of cgroup
/// `relative`; non-zero after a container's process died of SIGKILL means
/// the kubelet reports `OOMKilled`.
///
/// v2 reads `memory.events`; v1 reads `memory.oom_control`'s `oom_kill`
/// (Linux 4.13 and later). Older v1 kernels have no count: then 1 is
/// returned while the cgroup is `under_oom` and 0 otherwise, which is the
/// best that can be said there.
pub fn oom_kill_count(setup: &CgroupSetup, relative: &str) -> Result<u64> {
    let dir = setup.controller_dir("memory", relative)?;
    match setup.mode {
        CgroupMode::Unified => {
            let events = read_file(&dir, "memory.events")?;
            Ok(keyed_value(&events, "oom_kill").unwrap_or(0))
        }
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            let control = read_file(&dir, "memory.oom_control")?;
            Ok(keyed_value(&control, "oom_kill")
                .unwrap_or_else(|| keyed_value(&control, "under_oom").unwrap_or(0).min(1)))
        }
    }
}

/// Whether cgroup `relative` exists in any hierarchy.
pub fn exists(setup: &CgroupSetup, relative: &str) -> bool {
    setup
        .dirs(relative)
        .is_ok_and(|dirs| dirs.iter().any(|d| d.is_dir()))
}

/// Removes cgroup `relative` and every cgroup below it from all
/// hierarchies, deepest first; what is already gone is fine.
///
/// Fails if one still holds processes (after a short grace period, since
/// killed processes leave their cgroup only once fully exited), after
/// having tried every hierarchy. A hierarchy's root is never removed: the
/// path must name a cgroup below it.
pub fn remove(setup: &CgroupSetup, relative: &str) -> Result<()> {
    if relative_components(relative)?.as_os_str().is_empty() {
        return Err(RuntimeError::invalid(format!(
            "refusing to remove the cgroup root ({relative:?})"
        )));
    }
    let mut first_error = None;
    for dir in setup.dirs(relative)? {
        if let Err(e) = remove_tree(&dir) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::io(format!("list {}", dir.display()), e)),
    };
    // Interface files cannot be (and need not be) deleted; child cgroups
    // must go before their parent can.
    for entry in entries {
        let entry = entry.map_err(|e| RuntimeError::io(format!("list {}", dir.display()), e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 0.. {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // EBUSY: processes still in it; a killed one may still be on
            // its way out. Give it a little time, then report.
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy && attempt < 5 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => {
                return Err(RuntimeError::io(
                    format!("remove cgroup {}", dir.display()),
                    e,
                ))
            }
        }
    }
    unreachable!("the retry loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const LEGACY: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 /docker/abc /mnt/cg\\040mem rw - cgroup cgroup rw,memory
31 25 0:26 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
";

    const UNIFIED: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn layouts_from_mountinfo() {
        let s = CgroupSetup::from_mountinfo(HYBRID).unwrap();
        assert_eq!(s.mode(), CgroupMode::Hybrid);
        assert_eq!(s.v1_mount("cpu").unwrap(), Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(
            s.v1_mount("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            s.unified_mount().unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            s.controller_dir("cpuacct", "/rkube/pod1/c1").unwrap(),
            Path::new("/sys/fs/cgroup/cpuacct/rkube/pod1/c1")
        );
        assert_eq!(
            s.controller_dir("memory", "rkube/pod1").unwrap(),
            Path::new("/sys/fs/cgroup/memory/rkube/pod1")
        );
        assert_eq!(s.dirs("/x").unwrap().len(), 6);
        assert!(s.controller_dir("hugetlb", "/x").is_err());

        let s = CgroupSetup::from_mountinfo(LEGACY).unwrap();
        assert_eq!(s.mode(), CgroupMode::Legacy);
        assert_eq!(s.v1_mount("cpu"), s.v1_mount("cpuacct"));
        assert_eq!(
            s.v1_mount("cpu").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        // The hierarchy's root mount wins over a bind mount of a subtree.
        assert_eq!(
            s.v1_mount("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(s.unified_mount(), None);
        // cpu,cpuacct is one directory, not two.
        assert_eq!(s.dirs("/x").unwrap().len(), 3);

        let s = CgroupSetup::from_mountinfo(UNIFIED).unwrap();
        assert_eq!(s.mode(), CgroupMode::Unified);
        assert_eq!(
            s.controller_dir("memory", "/rkube/p").unwrap(),
            Path::new("/sys/fs/cgroup/rkube/p")
        );

        assert!(CgroupSetup::from_mountinfo("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n").is_err());
        // Junk lines are skipped, not fatal.
        let junk = format!("nonsense\n\n{UNIFIED}");
        assert_eq!(
            CgroupSetup::from_mountinfo(&junk).unwrap().mode(),
            CgroupMode::Unified
        );
    }

    #[test]
    fn escapes_and_paths() {
        assert_eq!(unescape_mount_field("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount_field("/mnt/a\\"), "/mnt/a\\");
        assert_eq!(unescape_mount_field("/mnt/a\\04"), "/mnt/a\\04");
        let s = CgroupSetup::from_mountinfo(HYBRID).unwrap();
        assert!(s.controller_dir("memory", "/rkube/../etc").is_err());
        let err = remove(&s, "/").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidSpec);
        assert!(remove(&s, "").is_err());
        assert!(remove(&s, "/./").is_err());
    }

    #[test]
    fn keyed_files() {
        let stat = "cache 10\nrss 6160384\ntotal_rss 11137024\ntotal_inactive_file 2779312128\n";
        assert_eq!(keyed_value(stat, "rss"), Some(6160384));
        assert_eq!(keyed_value(stat, "total_rss"), Some(11137024));
        assert_eq!(keyed_value(stat, "missing"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(oom, "oom_kill"), Some(3));
    }

    #[test]
    fn missing_cgroup_is_not_found() {
        let Ok(setup) = CgroupSetup::detect() else {
            return;
        };
        let err = read_stats(&setup, "/rkube-test-does-not-exist/x").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::NotFound);
        assert!(!exists(&setup, "/rkube-test-does-not-exist/x"));
        remove(&setup, "/rkube-test-does-not-exist/x").unwrap();
    }

    /// A cgroup made for one test, with the processes put in it; dropping
    /// it kills them and removes the cgroup even when the test failed.
    struct TestCgroup {
        setup: CgroupSetup,
        relative: String,
        dirs: Vec<PathBuf>,
        children: Vec<Child>,
    }

    impl TestCgroup {
        /// Makes the cgroup in the hierarchies a container's figures come
        /// from (plus `pids`, to have more than one to clean up). None,
        /// with a note, where the tests cannot run: not root, or cgroup v2
        /// without the memory controller delegated to the root's children.
        fn create(tag: &str) -> Option<TestCgroup> {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let setup = CgroupSetup::detect().ok()?;
            if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
                eprintln!("skipping: cgroup tests need root");
                return None;
            }
            let relative = format!(
                "/rkube-test-{tag}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let mounts: Vec<PathBuf> = match setup.mode() {
                CgroupMode::Unified => {
                    let root = setup.unified_mount()?;
                    let enabled =
                        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
                    if !enabled.split_whitespace().any(|c| c == "memory") {
                        eprintln!("skipping: memory controller not enabled at the v2 root");
                        return None;
                    }
                    vec![root.to_path_buf()]
                }
                CgroupMode::Legacy | CgroupMode::Hybrid => ["cpuacct", "memory", "pids"]
                    .iter()
                    .filter_map(|c| setup.v1_mount(c))
                    .map(Path::to_path_buf)
                    .collect(),
            };
            let mut cg = TestCgroup {
                setup,
                relative,
                dirs: Vec::new(),
                children: Vec::new(),
            };
            for mount in mounts {
                let dir = mount.join(cg.relative.trim_start_matches('/'));
                if cg.dirs.contains(&dir) {
                    continue;
                }
                fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                cg.dirs.push(dir);
            }
            Some(cg)
        }

        fn memory_dir(&self) -> PathBuf {
            self.setup.controller_dir("memory", &self.relative).unwrap()
        }

        /// Starts `script` under `sh` so that it only runs once the shell
        /// is in the cgroup: memory a process used before moving stays
        /// charged to its old cgroup.
        fn spawn(&mut self, script: &str) -> usize {
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("read _ ; {script}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id().to_string();
            let mut stdin = child.stdin.take().unwrap();
            self.children.push(child);
            for dir in &self.dirs {
                fs::write(dir.join("cgroup.procs"), &pid)
                    .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", dir.display()));
            }
            stdin.write_all(b"go\n").unwrap();
            self.children.len() - 1
        }

        fn wait(&mut self, child: usize, deadline: Duration) -> ExitStatus {
            let end = Instant::now() + deadline;
            loop {
                if let Some(status) = self.children[child].try_wait().unwrap() {
                    return status;
                }
                assert!(Instant::now() < end, "child did not exit in {deadline:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            for child in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Err(e) = remove(&self.setup, &self.relative) {
                eprintln!("cleanup of {}: {e}", self.relative);
            }
        }
    }

    /// Polls `f` until it returns Some, failing after `deadline`.
    fn poll<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + deadline;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn stats_of_a_busy_process() {
        let Some(mut cg) = TestCgroup::create("stats") else {
            return;
        };
        assert!(exists(&cg.setup, &cg.relative));
        let before = read_stats(&cg.setup, &cg.relative).unwrap();
        // Builds a megabyte string (memory charged here), then spins.
        cg.spawn("x=$(head -c 1000000 /dev/zero | tr '\\0' a); while :; do :; done");
        let busy = poll(Duration::from_secs(30), "CPU use and memory", || {
            let s = read_stats(&cg.setup, &cg.relative).unwrap();
            (s.cpu_usage_nanos > before.cpu_usage_nanos + 50_000_000
                && s.memory_usage_bytes > 0
                && s.memory_rss_bytes > 0)
                .then_some(s)
        });
        assert!(busy.timestamp_nanos > before.timestamp_nanos);
        assert!(busy.memory_working_set_bytes <= busy.memory_usage_bytes);
        assert!(busy.memory_working_set_bytes > 0);
        // Still spinning: CPU keeps going up.
        poll(Duration::from_secs(30), "more CPU use", || {
            let s = read_stats(&cg.setup, &cg.relative).unwrap();
            (s.cpu_usage_nanos > busy.cpu_usage_nanos).then_some(())
        });
        assert_eq!(oom_kill_count(&cg.setup, &cg.relative).unwrap(), 0);
    }

    #[test]
    fn oom_kill_is_counted() {
        let Some(mut cg) = TestCgroup::create("oom") else {
            return;
        };
        let mem = cg.memory_dir();
        let limit = (16u64 << 20).to_string();
        match cg.setup.mode() {
            CgroupMode::Unified => {
                fs::write(mem.join("memory.max"), &limit).unwrap();
                // No swap to escape into, where the kernel has any.
                let _ = fs::write(mem.join("memory.swap.max"), "0");
            }
            CgroupMode::Legacy | CgroupMode::Hybrid => {
                fs::write(mem.join("memory.limit_in_bytes"), &limit).unwrap();
                // Memory plus swap: only present with swap accounting.
                let _ = fs::write(mem.join("memory.memsw.limit_in_bytes"), &limit);
            }
        }
        assert_eq!(oom_kill_count(&cg.setup, &cg.relative).unwrap(), 0);
        // `tail` looks for the last newline of an endless file without
        // any, buffering all of it.
        let child = cg.spawn("exec tail /dev/zero");
        let status = cg.wait(child, Duration::from_secs(60));
        assert_eq!(status.signal(), Some(9), "{status:?}");
        assert!(oom_kill_count(&cg.setup, &cg.relative).unwrap() >= 1);
    }

    #[test]
    fn remove_takes_children_and_leaves_nothing() {
        let Some(mut cg) = TestCgroup::create("remove") else {
            return;
        };
        let nested = format!("{}/a/b", cg.relative);
        for dir in &cg.dirs {
            fs::create_dir_all(dir.join("a/b")).unwrap();
            fs::create_dir_all(dir.join("c")).unwrap();
        }
        assert!(exists(&cg.setup, &nested));

        // While a process is inside, removal fails (and says so).
        let child = cg.spawn("exec sleep 1000");
        assert!(remove(&cg.setup, &cg.relative).is_err());
        cg.children[child].kill().unwrap();
        cg.children[child].wait().unwrap();

        remove(&cg.setup, &cg.relative).unwrap();
        assert!(!exists(&cg.setup, &cg.relative));
        assert!(!exists(&cg.setup, &nested));
        for dir in &cg.dirs {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        // Again: nothing to do is fine.
        remove(&cg.setup, &cg.relative).unwrap();
    }
}
