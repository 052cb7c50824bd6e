//! Builds small, real OCI images from the node's statically linked
//! `/bin/busybox` (Debian's busybox-static), and writes them as an OCI
//! image-layout tar, as a `docker save` tar, or pushes them to a registry.
//!
//! Output is deterministic (fixed mtimes, owners, order, gzip header), so
//! digests are stable from run to run on one machine.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

use crate::image::config::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::image::digest::sha256_of;
use crate::types::{ImageConfig, RegistryAuth};

/// Every entry's mtime (2023-11-14).
pub const FIXED_MTIME: u64 = 1_700_000_000;
/// Where the busybox binary comes from.
pub const BUSYBOX: &str = "/bin/busybox";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `/pause`: exits 0 on TERM or INT, otherwise sleeps forever. `wait` is
/// interruptible by the trap, unlike a foreground `sleep`; the trap also
/// ends the sleep so none outlives the script.
pub const PAUSE_SCRIPT: &str = "#!/bin/sh\n\
    trap 'kill $child 2>/dev/null; exit 0' TERM INT\n\
    while true; do sleep 3600 & child=$!; wait $child; done\n";

/// Writes layer tars entry by entry, deterministically.
pub struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        LayerBuilder { builder }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(FIXED_MTIME);
        h.set_size(size);
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0, 0, 0);
        self.builder
            .append_data(&mut h, path, &[][..])
            .expect("tar dir");
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.file_owned(path, mode, 0, 0, data)
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
        self.builder
            .append_data(&mut h, path, data)
            .expect("tar file");
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("tar symlink");
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0, 0, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("tar hardlink");
        self
    }

    /// An entry whose name and link are written verbatim, unchecked (for
    /// malicious layers: `../x`, links out of the layer).
    pub fn raw(
        &mut self,
        kind: tar::EntryType,
        path: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(kind, 0o644, 0, 0, data.len() as u64);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            h.set_link_name_literal(link).expect("tar link name");
        }
        h.set_cksum();
        self.builder.append(&h, data).expect("tar raw entry");
        self
    }

    /// The uncompressed tar.
    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().expect("tar finish")
    }
}

/// Gzips deterministically (no name, mtime 0).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// One layer, in both forms.
#[derive(Debug, Clone)]
pub struct TestLayer {
    /// Uncompressed tar (`docker save` stores this).
    pub tar: Vec<u8>,
    /// Gzipped tar (registries and OCI layouts store this).
    pub gz: Vec<u8>,
    /// Digest of `tar`.
    pub diff_id: String,
    /// Digest of `gz`.
    pub digest: String,
}

impl TestLayer {
    pub fn new(tar: Vec<u8>) -> TestLayer {
        let gz = gzip(&tar);
        TestLayer {
            diff_id: sha256_of(&tar),
            digest: sha256_of(&gz),
            tar,
            gz,
        }
    }
}

/// An image: config, layers and OCI manifest, plus the name it is written
/// under (`busybox:latest`, as a user would type it).
#[derive(Debug, Clone)]
pub struct TestImage {
    pub name: String,
    pub config: Vec<u8>,
    pub layers: Vec<TestLayer>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An amd64 image of `layers` (uncompressed tars, lowest first).
    pub fn new(name: &str, layers: Vec<Vec<u8>>, config: &ImageConfig) -> TestImage {
        let layers: Vec<TestLayer> = layers.into_iter().map(TestLayer::new).collect();
        let mut exec = serde_json::Map::new();
        if !config.entrypoint.is_empty() {
            exec.insert("Entrypoint".into(), json!(config.entrypoint));
        }
        if !config.cmd.is_empty() {
            exec.insert("Cmd".into(), json!(config.cmd));
        }
        if !config.env.is_empty() {
            exec.insert("Env".into(), json!(config.env));
        }
        if !config.working_dir.is_empty() {
            exec.insert("WorkingDir".into(), json!(config.working_dir));
        }
        if !config.user.is_empty() {
            exec.insert("User".into(), json!(config.user));
        }
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": exec,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }))
        .expect("config json");
        let layer_descs: Vec<_> = layers
            .iter()
            .map(|l| json!({"mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.gz.len()}))
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_of(&config), "size": config.len()},
            "layers": layer_descs,
        }))
        .expect("manifest json");
        TestImage {
            name: name.to_string(),
            config,
            layers,
            manifest,
        }
    }

    /// The image id (config digest).
    pub fn id(&self) -> String {
        sha256_of(&self.config)
    }

    pub fn manifest_digest(&self) -> String {
        sha256_of(&self.manifest)
    }

    /// The same image under another name.
    pub fn named(&self, name: &str) -> TestImage {
        TestImage {
            name: name.to_string(),
            ..self.clone()
        }
    }
}

/// The applets the busybox binary provides (`busybox --list`).
fn applets() -> Vec<String> {
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("run {BUSYBOX} --list: {e} (install busybox-static)"));
    assert!(out.status.success(), "{BUSYBOX} --list failed");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "busybox" && !n.contains('/'))
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The busybox root file system layer (uncompressed).
pub fn busybox_layer() -> Vec<u8> {
    let binary = std::fs::read(BUSYBOX).unwrap_or_else(|e| panic!("read {BUSYBOX}: {e}"));
    let mut l = LayerBuilder::new();
    l.dir("bin", 0o755).file("bin/busybox", 0o755, &binary);
    for applet in applets() {
        l.symlink(&format!("bin/{applet}"), "busybox");
    }
    l.dir("etc", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .file("etc/group", 0o644, b"root:x:0:\nnobody:x:65534:\n")
        .dir("root", 0o700)
        .dir("tmp", 0o1777);
    l.finish()
}

/// `busybox:latest`: one layer, `Cmd ["sh"]`.
pub fn busybox() -> TestImage {
    static IMAGE: OnceLock<TestImage> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let config = ImageConfig {
                cmd: vec!["sh".into()],
                env: vec![PATH_ENV.into()],
                ..ImageConfig::default()
            };
            TestImage::new("busybox:latest", vec![busybox_layer()], &config)
        })
        .clone()
}

/// `pause:latest`: busybox plus `/pause`, `Entrypoint ["/pause"]`.
pub fn pause() -> TestImage {
    static IMAGE: OnceLock<TestImage> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let mut top = LayerBuilder::new();
            top.file("pause", 0o755, PAUSE_SCRIPT.as_bytes());
            let config = ImageConfig {
                entrypoint: vec!["/pause".into()],
                env: vec![PATH_ENV.into()],
                ..ImageConfig::default()
            };
            TestImage::new("pause:latest", vec![busybox_layer(), top.finish()], &config)
        })
        .clone()
}

/// Appends an in-memory file to an archive being written.
fn append(b: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(FIXED_MTIME);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data)
        .unwrap_or_else(|e| panic!("archive {path}: {e}"));
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// Writes an OCI image-layout tar holding `images`, each named in
/// `org.opencontainers.image.ref.name`.
pub fn write_oci_layout_tar(path: &Path, images: &[TestImage]) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut b = tar::Builder::new(file);
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut written = std::collections::BTreeSet::new();
    let mut manifests = Vec::new();
    for image in images {
        let mut blobs = vec![
            (image.manifest_digest(), &image.manifest),
            (image.id(), &image.config),
        ];
        blobs.extend(image.layers.iter().map(|l| (l.digest.clone(), &l.gz)));
        for (digest, data) in blobs {
            if written.insert(digest.clone()) {
                append(&mut b, &blob_name(&digest), data);
            }
        }
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest_digest(),
            "size": image.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": image.name},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    append(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("index json"),
    );
    b.into_inner()
        .and_then(|f| f.sync_all())
        .expect("finish OCI layout tar");
}

/// Writes a `docker save` tar (classic layout: `<id>.json` configs,
/// uncompressed `<diff id>/layer.tar`s, `manifest.json`).
pub fn write_docker_save_tar(path: &Path, images: &[TestImage]) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut b = tar::Builder::new(file);
    let mut written = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for image in images {
        let config_name = format!("{}.json", image.id().trim_start_matches("sha256:"));
        if written.insert(config_name.clone()) {
            append(&mut b, &config_name, &image.config);
        }
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let name = format!("{}/layer.tar", layer.diff_id.trim_start_matches("sha256:"));
            if written.insert(name.clone()) {
                append(&mut b, &name, &layer.tar);
            }
            layer_names.push(name);
        }
        entries
            .push(json!({"Config": config_name, "RepoTags": [image.name], "Layers": layer_names}));
    }
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&entries).expect("manifest json"),
    );
    b.into_inner()
        .and_then(|f| f.sync_all())
        .expect("finish docker save tar");
}

/// Pushes `image` to `registry` (`host:port`, plain HTTP) as `repo:tag`;
/// returns the manifest digest.
pub async fn push(registry: &str, image: &TestImage, repo: &str, tag: &str) -> String {
    push_with_auth(registry, image, repo, tag, None).await
}

/// Like [`push`], logging in first.
pub async fn push_with_auth(
    registry: &str,
    image: &TestImage,
    repo: &str,
    tag: &str,
    auth: Option<&RegistryAuth>,
) -> String {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::secrets::RegistryAuth as OciAuth;
    use oci_client::{Client, Reference, RegistryOperation};

    crate::image::ensure_crypto_provider();
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(30)),
        ..ClientConfig::default()
    };
    let client = Client::try_from(config).expect("registry client");
    let reference = Reference::with_tag(registry.into(), repo.into(), tag.into());
    let auth = match auth {
        None => OciAuth::Anonymous,
        Some(RegistryAuth::Basic { username, password }) => {
            OciAuth::Basic(username.clone(), password.clone())
        }
        Some(RegistryAuth::Bearer(t)) => OciAuth::Bearer(t.clone()),
    };
    client
        .auth(&reference, &auth, RegistryOperation::Push)
        .await
        .expect("registry login");
    for layer in &image.layers {
        client
            .push_blob(&reference, layer.gz.clone(), &layer.digest)
            .await
            .expect("push layer");
    }
    client
        .push_blob(&reference, image.config.clone(), &image.id())
        .await
        .expect("push config");
    let content_type = http::HeaderValue::from_static(OCI_MANIFEST);
    client
        .push_manifest_raw(&reference, image.manifest.clone(), content_type)
        .await
        .expect("push manifest");
    image.manifest_digest()
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn images_are_deterministic() {
        assert_eq!(busybox_layer(), busybox_layer());
        let config = ImageConfig {
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        };
        let a = TestImage::new("x:1", vec![busybox_layer()], &config);
        let b = TestImage::new("x:1", vec![busybox_layer()], &config);
        assert_eq!(a.manifest_digest(), b.manifest_digest());
        assert_eq!(a.id(), b.id());
    }

    /// The pause image really runs (static busybox in a chroot) and exits 0
    /// on TERM.
    #[test]
    fn pause_runs_and_exits_on_term() {
        let root = tempfile::tempdir().unwrap();
        for layer in &pause().layers {
            tar::Archive::new(&layer.tar[..])
                .unpack(root.path())
                .unwrap();
        }
        let mut child = Command::new("chroot")
            .arg(root.path())
            .arg("/pause")
            .spawn()
            .unwrap();
        let pid = child.id();
        // The trap is set once the script has started its first sleep.
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&children)
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "pause did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("pause ignored TERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(0));
    }
}
