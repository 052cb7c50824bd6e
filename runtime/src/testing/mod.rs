//! Test support shared by the runtime's tests and, behind the `testing`
//! feature, by other crates' tests: OCI images built from the machine's
//! static busybox, archive writers, a throwaway local registry and a
//! private containerd.
//! Helpers panic on failure: they set tests up, they are not under test.

pub mod containerd;
pub mod images;
pub mod registry;

/// Lazily unmounts everything mounted at or below `dir`, deepest first
/// (what a killed test left behind).
pub fn unmount_under(dir: &std::path::Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    // Mount points are escaped in mountinfo: spaces as \040.
    let mut points: Vec<std::path::PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| std::path::PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}
