//! The JSON documents of an image (manifest, index, config), parsed
//! leniently: only the fields the store needs, Docker and OCI spellings
//! alike. Parse failures are reported by the caller with its own context
//! (a registry's bad content, an archive's corruption).

use serde::{Deserialize, Serialize};

use crate::types::ImageConfig;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest kind a registry may answer with.
pub(crate) const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A content descriptor (the part of one the store uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// A manifest or an index: which one it is shows in `media_type` or in
/// which of `layers` / `manifests` is present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestDoc {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

impl ManifestDoc {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ManifestDoc, String> {
        let doc: ManifestDoc = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if doc.schema_version != 2 {
            return Err(format!("unsupported schemaVersion {}", doc.schema_version));
        }
        Ok(doc)
    }

    pub(crate) fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
            Some(_) => false,
            None => self.manifests.is_some() && self.layers.is_none(),
        }
    }

    /// The media type to report for these bytes.
    pub(crate) fn kind(&self) -> &str {
        match self.media_type.as_deref() {
            Some(t) => t,
            None if self.is_index() => OCI_INDEX,
            None => OCI_MANIFEST,
        }
    }

    /// The linux/amd64 entry of an index.
    pub(crate) fn pick_linux_amd64(&self) -> Option<&Descriptor> {
        self.manifests.as_deref()?.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
    }
}

/// The image config: runtime defaults and the layers' diff ids.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ConfigDoc {
    #[serde(default)]
    pub config: Option<ExecConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ConfigDoc {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ConfigDoc, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("bad image config: {e}"))
    }

    pub(crate) fn image_config(&self) -> ImageConfig {
        let c = self.config.clone().unwrap_or_default();
        ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
        }
    }
}

/// An OCI image manifest for a config and layers, as the store writes
/// one for archives that carry none (`docker save`).
pub(crate) fn build_manifest(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest<'a> {
        schema_version: i64,
        media_type: &'a str,
        config: &'a Descriptor,
        layers: &'a [Descriptor],
    }
    let m = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config,
        layers,
    };
    serde_json::to_vec(&m).expect("serializing a manifest cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config_and_index() {
        let cfg = br#"{"architecture":"amd64","config":{"Entrypoint":["/pause"],
            "Env":["PATH=/bin"],"WorkingDir":"/w","User":"65534"},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let c = ConfigDoc::parse(cfg).unwrap();
        let ic = c.image_config();
        assert_eq!(ic.entrypoint, vec!["/pause"]);
        assert!(ic.cmd.is_empty());
        assert_eq!(ic.working_dir, "/w");
        assert_eq!(ic.user, "65534");
        assert_eq!(c.rootfs.diff_ids, vec!["sha256:aa"]);

        let idx = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:1","platform":{"os":"linux","architecture":"arm64"}},
            {"digest":"sha256:2","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let d = ManifestDoc::parse(idx).unwrap();
        assert!(d.is_index());
        assert_eq!(d.kind(), OCI_INDEX);
        assert_eq!(d.pick_linux_amd64().unwrap().digest, "sha256:2");
        assert!(ManifestDoc::parse(br#"{"schemaVersion":1}"#).is_err());
    }
}
