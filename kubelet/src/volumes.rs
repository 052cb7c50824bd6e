//! Pod volumes on this node, under `<root>/pods/<uid>/volumes/<name>`:
//! emptyDir, hostPath, configMap, secret and downwardAPI (files written
//! from objects the caller fetched), plus the pod's `/etc/hosts`. Turns a
//! container's `volumeMounts` into runtime bind mounts, resolving
//! `subPath` without ever leaving the volume.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod};
use runtime::types::Mount;

/// What the worker fetched for the pod's configMap and secret volumes; a
/// name missing here does not exist.
#[derive(Default)]
pub struct VolumeSources {
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

pub fn pod_dir(root: &Path, pod: &Pod) -> PathBuf {
    root.join("pods")
        .join(pod.metadata.uid.as_deref().unwrap_or("unknown"))
}

/// (configMap names, secret names) the pod's volumes refer to.
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        if let Some(cm) = &v.config_map {
            cms.push(cm.name.clone());
        }
        if let Some(s) = &v.secret {
            secrets.extend(s.secret_name.clone());
        }
        for p in v
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(cm) = &p.config_map {
                cms.push(cm.name.clone());
            }
            if let Some(s) = &p.secret {
                secrets.push(s.name.clone());
            }
        }
    }
    (cms, secrets)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A relative path that stays inside its base: no `..`, not absolute.
fn safe_relative(p: &str) -> Result<PathBuf, String> {
    let path = Path::new(p);
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "path {p:?} must be relative and may not contain '..'"
        ))
    }
}

/// Files of a projected volume: relative path → (contents, mode).
type Payload = BTreeMap<PathBuf, (Vec<u8>, u32)>;

/// Adds `data`'s keys (all, or just `items`) to `payload`.
fn add_keys(
    payload: &mut Payload,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: i32,
    what: &str,
) -> Result<(), String> {
    match items {
        Some(items) => {
            for item in items {
                let value = data.get(&item.key).ok_or_else(|| {
                    format!("configmap/secret key {:?} not found in {what}", item.key)
                })?;
                let mode = item.mode.unwrap_or(default_mode) as u32;
                payload.insert(safe_relative(&item.path)?, (value.clone(), mode));
            }
        }
        None => {
            for (k, v) in data {
                payload.insert(safe_relative(k)?, (v.clone(), default_mode as u32));
            }
        }
    }
    Ok(())
}

/// The symlink inside a volume written by [`write_payload`] that points
/// at the current generation of its files.
const DATA_LINK: &str = "..data";

/// Writes `payload` into `dir` the way upstream's atomic writer does: the
/// files go to a fresh hidden directory, the `..data` symlink is switched
/// to it in one rename, and each top-level name is a symlink through
/// `..data`. A reader sees the old set or the new one, never a mix, and
/// keys that were removed disappear.
fn write_payload(dir: &Path, payload: &Payload) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let link = dir.join(DATA_LINK);
    let old_target = std::fs::read_link(&link).ok();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let fresh = PathBuf::from(format!("..{stamp}"));
    std::fs::create_dir_all(dir.join(&fresh)).map_err(|e| err(dir, e))?;
    for (rel, (data, mode)) in payload {
        write_file(&dir.join(&fresh).join(rel), data, *mode)?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&fresh, &tmp).map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, &link).map_err(|e| err(&link, e))?;
    let top: std::collections::BTreeSet<std::ffi::OsString> = payload
        .keys()
        .filter_map(|p| p.components().next())
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    for name in &top {
        let visible = dir.join(name);
        if std::fs::symlink_metadata(&visible).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(name), &visible)
                .map_err(|e| err(&visible, e))?;
        }
    }
    // Names of the old payload that the new one no longer has.
    for entry in std::fs::read_dir(dir).map_err(|e| err(dir, e))?.flatten() {
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with("..");
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if !hidden && is_link && !top.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old_target.filter(|o| *o != fresh) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn downward_value(pod: &Pod, field: &str) -> String {
    let m = &pod.metadata;
    let render = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}\n"))
            .collect::<String>()
    };
    match field {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => render(&m.labels),
        "metadata.annotations" => render(&m.annotations),
        _ => String::new(),
    }
}

/// Creates or refreshes every volume of `pod`; returns each volume's
/// directory (or host path) by name.
pub fn prepare(
    root: &Path,
    pod: &Pod,
    sources: &VolumeSources,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let base = pod_dir(root, pod).join("volumes");
    let mut out = BTreeMap::new();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let dir = base.join(&v.name);
        if let Some(hp) = &v.host_path {
            let path = PathBuf::from(&hp.path);
            match hp.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
                "FileOrCreate" if !path.exists() => write_file(&path, b"", 0o644)?,
                "Directory" if !path.is_dir() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a directory",
                        hp.path
                    ))
                }
                "File" if !path.is_file() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a file",
                        hp.path
                    ))
                }
                _ => {}
            }
            out.insert(v.name.clone(), path);
            continue;
        }
        let mut payload = Payload::new();
        if let Some(cm) = &v.config_map {
            let optional = cm.optional.unwrap_or(false);
            match sources.config_maps.get(&cm.name) {
                Some(data) => add_keys(
                    &mut payload,
                    data,
                    cm.items.as_ref(),
                    cm.default_mode.unwrap_or(0o644),
                    &cm.name,
                )?,
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", cm.name)),
            }
            write_payload(&dir, &payload)?;
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            match sources.secrets.get(&name) {
                Some(data) => add_keys(
                    &mut payload,
                    data,
                    s.items.as_ref(),
                    s.default_mode.unwrap_or(0o644),
                    &name,
                )?,
                None if optional => {}
                None => return Err(format!("secret \"{name}\" not found in namespace \"{ns}\"")),
            }
            write_payload(&dir, &payload)?;
        } else if let Some(d) = &v.downward_api {
            for item in d.items.iter().flatten() {
                let value = item
                    .field_ref
                    .as_ref()
                    .map(|f| downward_value(pod, &f.field_path))
                    .unwrap_or_default();
                let mode = item.mode.or(d.default_mode).unwrap_or(0o644) as u32;
                payload.insert(safe_relative(&item.path)?, (value.into_bytes(), mode));
            }
            write_payload(&dir, &payload)?;
        } else if let Some(p) = &v.projected {
            let mode = p.default_mode.unwrap_or(0o644);
            for src in p.sources.iter().flatten() {
                if let Some(cm) = &src.config_map {
                    if let Some(data) = sources.config_maps.get(&cm.name) {
                        add_keys(&mut payload, data, cm.items.as_ref(), mode, &cm.name)?;
                    } else if !cm.optional.unwrap_or(false) {
                        return Err(format!("configmap \"{}\" not found", cm.name));
                    }
                }
                if let Some(s) = &src.secret {
                    if let Some(data) = sources.secrets.get(&s.name) {
                        add_keys(&mut payload, data, s.items.as_ref(), mode, &s.name)?;
                    } else if !s.optional.unwrap_or(false) {
                        return Err(format!("secret \"{}\" not found", s.name));
                    }
                }
            }
            write_payload(&dir, &payload)?;
        } else {
            // emptyDir (and kinds not supported yet, which get an empty
            // directory rather than failing the pod).
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let memory = v.empty_dir.as_ref().and_then(|e| e.medium.as_deref()) == Some("Memory");
            if memory && !is_mount_point(&dir) {
                // `medium: Memory`: a tmpfs, sized by the volume's limit
                // when it has one.
                let size = v
                    .empty_dir
                    .as_ref()
                    .and_then(|e| e.size_limit.as_ref())
                    .and_then(|q| crate::pod::quantity::bytes(q).ok())
                    .map(|b| format!(",size={b}"))
                    .unwrap_or_default();
                let opts = format!("mode=0777{size}");
                nix::mount::mount(
                    Some("tmpfs"),
                    &dir,
                    Some("tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    Some(opts.as_str()),
                )
                .map_err(|e| format!("mounting a tmpfs for emptyDir {:?}: {e}", v.name))?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| e.to_string())?;
        }
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// The pod's `/etc/hosts`: localhost lines and the pod's own name.
pub fn write_hosts(
    root: &Path,
    pod: &Pod,
    pod_ip: Option<&str>,
    hostname: &str,
    domain: &str,
) -> Result<PathBuf, String> {
    let path = pod_dir(root, pod).join("etc-hosts");
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = pod_ip {
        if domain.is_empty() {
            text.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            text.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    for alias in pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.as_ref())
        .into_iter()
        .flatten()
    {
        text.push_str(&format!(
            "# Entries added by HostAliases.\n{}\t{}\n",
            alias.ip,
            alias.hostnames.clone().unwrap_or_default().join("\t")
        ));
    }
    write_file(&path, text.as_bytes(), 0o644)?;
    Ok(path)
}

/// Bind mounts for `container`'s `volumeMounts`.
pub fn container_mounts(
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let base = volumes
            .get(&vm.name)
            .ok_or_else(|| format!("volume {:?} is not defined in the pod", vm.name))?;
        let host_path = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let p = base.join(safe_relative(sub)?);
                // The resolved path must stay in the volume even through
                // symlinks the container may have planted there.
                if p.exists() {
                    let real = std::fs::canonicalize(&p).map_err(|e| e.to_string())?;
                    let real_base = std::fs::canonicalize(base).map_err(|e| e.to_string())?;
                    if !real.starts_with(&real_base) {
                        return Err(format!("subPath {sub:?} leaves volume {:?}", vm.name));
                    }
                } else {
                    std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
                }
                p
            }
            None => base.clone(),
        };
        out.push(Mount {
            container_path: vm.mount_path.clone(),
            host_path,
            readonly: vm.read_only.unwrap_or(false),
        });
    }
    Ok(out)
}

/// Removes the pod's directory (volumes, hosts file).
/// Whether `dir` is a mount point (its device differs from its parent's).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) {
        (Ok(d), Some(Ok(p))) => d.dev() != p.dev(),
        _ => false,
    }
}

/// Removes the pod's directory (volumes, hosts file), unmounting memory
/// volumes first so nothing is left mounted.
pub fn remove(root: &Path, pod: &Pod) {
    let volumes = pod_dir(root, pod).join("volumes");
    if let Ok(entries) = std::fs::read_dir(&volumes) {
        for e in entries.flatten() {
            if is_mount_point(&e.path()) {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    let _ = std::fs::remove_dir_all(pod_dir(root, pod));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_must_stay_inside() {
        assert!(safe_relative("a/b").is_ok());
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/etc").is_err());
    }

    #[test]
    fn config_map_items_and_modes_are_written() {
        let dir = std::env::temp_dir().join(format!("rkube-vol-test-{}", std::process::id()));
        let data = BTreeMap::from([
            ("k".to_string(), b"v".to_vec()),
            ("other".to_string(), b"o".to_vec()),
        ]);
        let items = vec![KeyToPath {
            key: "k".into(),
            path: "sub/file".into(),
            mode: Some(0o600),
        }];
        let mut payload = Payload::new();
        add_keys(&mut payload, &data, Some(&items), 0o644, "cm").unwrap();
        write_payload(&dir, &payload).unwrap();
        let p = dir.join("sub/file");
        assert_eq!(std::fs::read(&p).unwrap(), b"v");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!dir.join("other").exists());
        let missing = vec![KeyToPath {
            key: "nope".into(),
            path: "x".into(),
            mode: None,
        }];
        assert!(add_keys(&mut Payload::new(), &data, Some(&missing), 0o644, "cm").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn updates_swap_the_whole_set_and_removed_keys_disappear() {
        let dir = std::env::temp_dir().join(format!("rkube-vol-swap-{}", std::process::id()));
        let files = |pairs: &[(&str, &str)]| -> Payload {
            pairs
                .iter()
                .map(|(k, v)| (PathBuf::from(k), (v.as_bytes().to_vec(), 0o644)))
                .collect()
        };
        write_payload(&dir, &files(&[("a", "1"), ("b", "2")])).unwrap();
        let first_target = std::fs::read_link(dir.join(DATA_LINK)).unwrap();
        write_payload(&dir, &files(&[("a", "3"), ("c", "4")])).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert_eq!(std::fs::read_to_string(dir.join("c")).unwrap(), "4");
        assert!(
            std::fs::symlink_metadata(dir.join("b")).is_err(),
            "removed key gone"
        );
        assert!(!dir.join(&first_target).exists(), "old generation removed");
        let generations = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .count();
        assert_eq!(generations, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
