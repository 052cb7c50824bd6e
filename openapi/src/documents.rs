//! Every OpenAPI document of one server, built once and kept as bytes with
//! their hashes: the v3 index and per-group/version documents, the v2
//! document in JSON and protobuf.
//!
//! The documents are built with `serde_json` rather than `utoipa`'s model:
//! utoipa models OpenAPI 3.1 only (its version field serializes as `3.1.0`,
//! its schemas are JSON Schema 2020-12), while kube-apiserver serves 3.0.0
//! documents that kubectl and the generated clients parse, and utoipa has
//! no Swagger 2.0 model for `/openapi/v2`. The schemas arrive as JSON from
//! `k8s-openapi` anyway, and the paths are generated from descriptors, not
//! from annotated handlers, which is what utoipa's derive is for.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha512};

use crate::discovery::ResourceDescriptor;
use crate::paths::{self, Paths};
use crate::schemas::{self, Flavor};

/// One serialized document and its hash (upstream's form: SHA-512 in
/// upper-case hex, also the ETag).
#[derive(Clone, Debug)]
pub struct Document {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Document {
    fn new(bytes: Vec<u8>) -> Document {
        let hash = hash(&bytes);
        Document { bytes, hash }
    }
}

/// SHA-512 of `bytes` in upper-case hex.
pub fn hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Every document of one server.
#[derive(Clone, Debug)]
pub struct Documents {
    pub v2: Document,
    /// The v2 document in protobuf; its ETag is the JSON's hash, as upstream.
    pub v2_protobuf: Vec<u8>,
    pub v3_index: Document,
    /// By path under `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
    pub v3: BTreeMap<String, Document>,
}

fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Documents {
    /// Builds every document for the served `resources`. Each schema is
    /// rendered and serialized once and the documents are assembled from
    /// the serialized pieces, so the peak memory stays near the size of
    /// the schemas (figures in the module doc of the API server's
    /// `http::openapi_docs`).
    pub fn build(resources: &[ResourceDescriptor], kube_version: &str) -> Documents {
        let mut gvs: Vec<(&str, &str)> = Vec::new();
        for r in resources {
            if !gvs.contains(&(r.group, r.version)) {
                gvs.push((r.group, r.version));
            }
        }
        let per_gv: Vec<(String, Paths)> = gvs
            .iter()
            .map(|(g, v)| (gv_key(g, v), paths::group_version(resources, g, v)))
            .collect();
        let mut all_roots = BTreeSet::new();
        for (_, p) in &per_gv {
            all_roots.extend(paths::roots(p));
        }
        let defs = schemas::definitions(&all_roots);

        // Every definition, serialized once per form (the v2 one also in
        // protobuf).
        let names = schemas::reachable(&defs, &all_roots);
        let mut v3_json = BTreeMap::new();
        let mut v2_json = Vec::with_capacity(names.len());
        let mut v2_pb = Vec::with_capacity(names.len());
        for n in &names {
            let v3 = schemas::render(&defs, n, Flavor::V3).expect("reachable");
            v3_json.insert(n.as_str(), v3.to_string());
            let v2 = schemas::render(&defs, n, Flavor::V2).expect("reachable");
            v2_json.push((n.as_str(), v2.to_string()));
            v2_pb.push(crate::v2_proto::named_schema(n, &v2));
        }

        let per_gv_names: Vec<BTreeSet<String>> = per_gv
            .iter()
            .map(|(_, p)| schemas::reachable(&defs, &paths::roots(p)))
            .collect();
        // The schemas' values are the largest part of the build: gone before
        // the documents are assembled, whose bytes can reuse their memory.
        drop(defs);

        let mut v3 = BTreeMap::new();
        for ((key, p), names) in per_gv.iter().zip(&per_gv_names) {
            let schemas = names
                .iter()
                .map(|n| (n.as_str(), v3_json[n.as_str()].as_str()));
            let bytes = crate::v3::document(&crate::v3::paths(p), schemas, kube_version);
            v3.insert(key.clone(), Document::new(bytes));
        }
        let hashes = v3
            .iter()
            .map(|(k, d)| (k.clone(), d.hash.clone()))
            .collect();
        let v3_index = Document::new(serde_json::to_vec(&crate::v3::index(&hashes)).expect("json"));

        let all_paths: Paths = per_gv.into_iter().flat_map(|(_, p)| p).collect();
        let v2_paths = crate::v2::paths(&all_paths);
        let definitions = v2_json.iter().map(|(n, j)| (*n, j.as_str()));
        let v2 = Document::new(crate::v2::document(&v2_paths, definitions, kube_version));
        let pb = v2_pb.iter().map(Vec::as_slice);
        let v2_protobuf = crate::v2_proto::encode(kube_version, &v2_paths, pb);
        Documents {
            v2,
            v2_protobuf,
            v3_index,
            v3,
        }
    }
}
