//! Pod sandboxes without a pause process: a sandbox is a set of pinned
//! namespaces (network, IPC, UTS), the pod's network from CNI, and the
//! files its containers share (`resolv.conf`, `hostname`), recorded in
//! `<root>/<id>/sandbox.json`. Both real backends use this; containers
//! join the sandbox through namespace paths in their OCI spec.
//!
//! Stopping the sandbox's containers is the backend's job, done before it
//! calls [`Sandboxes::stop`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cgroups::{self, CgroupSetup};
use crate::cni::Cni;
use crate::error::{Result, RuntimeError};
use crate::netns::{remove_namespaces_in, NamespaceKind, NamespaceSet};
use crate::record;
use crate::types::*;

/// The sandbox's pinned namespace files; `None` for a kind shared with
/// the node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SandboxNamespaces {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// What is kept of a sandbox on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub config: SandboxConfig,
    pub created_at: SystemTime,
    pub state: SandboxState,
    pub ips: Vec<String>,
    pub namespaces: SandboxNamespaces,
    pub resolv_conf: PathBuf,
    pub hostname_file: PathBuf,
    /// The pod's cgroup, parent of its containers' cgroups.
    pub cgroup_parent: String,
}

impl SandboxRecord {
    pub fn status(&self) -> SandboxStatus {
        SandboxStatus {
            id: self.id.clone(),
            metadata: self.config.metadata.clone(),
            state: self.state,
            created_at: self.created_at,
            ips: self.ips.clone(),
            netns_path: self.namespaces.net.clone().unwrap_or_default(),
            labels: self.config.labels.clone(),
            annotations: self.config.annotations.clone(),
        }
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.id)
    }
}

/// The sandboxes of one node, kept under one directory.
pub struct Sandboxes {
    root: PathBuf,
    cni: Option<Arc<Cni>>,
    cgroup_root: String,
    cgroups: CgroupSetup,
}

/// A fresh random id, 32 lowercase hex digits like CRI runtimes use.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn resolv_conf(dns: &DnsConfig) -> String {
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for s in &dns.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

impl Sandboxes {
    /// `cni` is `None` on nodes that run only host-network pods (and in
    /// tests that need no network).
    pub fn new(root: PathBuf, cni: Option<Arc<Cni>>, cgroup_root: &str) -> Result<Self> {
        std::fs::create_dir_all(&root).map_err(|e| RuntimeError::io(root.display(), e))?;
        Ok(Sandboxes {
            root,
            cni,
            cgroup_root: cgroup_root.trim_end_matches('/').to_string(),
            cgroups: CgroupSetup::detect()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.root.join(id).join("sandbox.json")
    }

    pub fn get(&self, id: &str) -> Result<SandboxRecord> {
        record::read(&self.record_path(id))?
            .ok_or_else(|| RuntimeError::not_found(format!("sandbox {id}")))
    }

    pub fn list(&self) -> Result<Vec<SandboxRecord>> {
        let mut out = Vec::new();
        for id in record::list_dirs(&self.root)? {
            // A directory without a record is a run that failed half way
            // and is being cleaned up; it is not a sandbox.
            if let Some(r) = record::read(&self.record_path(&id))? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Creates namespaces, network and shared files. On failure nothing is
    /// left behind.
    pub async fn run(&self, config: &SandboxConfig) -> Result<SandboxRecord> {
        let id = new_id();
        let dir = self.root.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io(dir.display(), e))?;
        match self.setup(&id, &dir, config).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let _ = self.teardown_network(&id, &dir.join("ns")).await;
                let _ = remove_namespaces_in(&dir.join("ns"));
                let _ = record::remove_dir(&dir);
                Err(e)
            }
        }
    }

    async fn setup(&self, id: &str, dir: &Path, config: &SandboxConfig) -> Result<SandboxRecord> {
        let ns = &config.namespaces;
        let own_net = ns.network != NamespaceMode::Node;
        let mut kinds = Vec::new();
        if own_net {
            // hostNetwork pods also share the node's UTS namespace.
            kinds.extend([NamespaceKind::Net, NamespaceKind::Uts]);
        }
        if ns.ipc != NamespaceMode::Node {
            kinds.push(NamespaceKind::Ipc);
        }
        let hostname = (!config.hostname.is_empty()).then_some(config.hostname.as_str());
        let ns_dir = dir.join("ns");
        let namespaces = {
            let ns_dir = ns_dir.clone();
            let hostname = hostname.map(str::to_string);
            let set = tokio::task::spawn_blocking(move || {
                NamespaceSet::create(&ns_dir, &kinds, hostname.as_deref())
            })
            .await
            .map_err(|e| RuntimeError::internal(format!("namespace setup: {e}")))??;
            let path = |k| set.path(k).map(Path::to_path_buf);
            SandboxNamespaces {
                net: path(NamespaceKind::Net),
                ipc: path(NamespaceKind::Ipc),
                uts: path(NamespaceKind::Uts),
            }
        };
        let mut ips = Vec::new();
        if let Some(net) = &namespaces.net {
            if !config.sysctls.is_empty() {
                crate::netns::apply_sysctls(net, &config.sysctls)?;
            }
            if let Some(cni) = &self.cni {
                let result = cni.add(id, net, "eth0", &config.port_mappings).await?;
                ips = result.ips.iter().map(|ip| ip.to_string()).collect();
            }
        }
        let resolv = dir.join("resolv.conf");
        let contents = if config.dns.servers.is_empty() {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            resolv_conf(&config.dns)
        };
        std::fs::write(&resolv, contents).map_err(|e| RuntimeError::io(resolv.display(), e))?;
        let hostname_file = dir.join("hostname");
        let host = if own_net {
            config.hostname.clone()
        } else {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default()
        };
        std::fs::write(&hostname_file, format!("{host}\n"))
            .map_err(|e| RuntimeError::io(hostname_file.display(), e))?;
        let cgroup_parent = if config.cgroup_parent.is_empty() {
            format!("{}/pods/{id}", self.cgroup_root)
        } else {
            format!(
                "{}/{}",
                self.cgroup_root,
                config.cgroup_parent.trim_start_matches('/')
            )
        };
        let rec = SandboxRecord {
            id: id.to_string(),
            config: config.clone(),
            created_at: SystemTime::now(),
            state: SandboxState::Ready,
            ips,
            namespaces,
            resolv_conf: resolv,
            hostname_file,
            cgroup_parent,
        };
        record::write(&self.record_path(id), &rec)?;
        Ok(rec)
    }

    async fn teardown_network(&self, id: &str, ns_dir: &Path) -> Result<()> {
        if let Some(cni) = &self.cni {
            let net = ns_dir.join("net");
            let net = net.exists().then_some(net.as_path());
            cni.del(id, net, "eth0").await?;
        }
        Ok(())
    }

    /// Releases the network (CNI DEL frees the IP) and the namespaces;
    /// the record stays, NotReady, until [`Sandboxes::remove`].
    pub async fn stop(&self, id: &str) -> Result<SandboxRecord> {
        let mut rec = self.get(id)?;
        if rec.namespaces.net.is_some() {
            self.teardown_network(id, &rec.dir(&self.root).join("ns"))
                .await?;
        }
        let ns_dir = rec.dir(&self.root).join("ns");
        tokio::task::spawn_blocking(move || remove_namespaces_in(&ns_dir))
            .await
            .map_err(|e| RuntimeError::internal(format!("namespace teardown: {e}")))??;
        if rec.state != SandboxState::NotReady || !rec.ips.is_empty() {
            rec.state = SandboxState::NotReady;
            rec.ips.clear();
            record::write(&self.record_path(id), &rec)?;
        }
        Ok(rec)
    }

    /// Stops (if needed) and deletes the sandbox's directory. A sandbox
    /// that does not exist is removed already.
    /// Also removes the pod's cgroup (its containers' cgroups must be gone).
    pub async fn remove(&self, id: &str) -> Result<()> {
        let cgroup_parent = self.get(id).ok().map(|s| s.cgroup_parent);
        match self.stop(id).await {
            Ok(_) => {}
            Err(e) if e.kind == crate::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        record::remove_dir(&self.root.join(id))?;
        if let Some(parent) = cgroup_parent {
            cgroups::remove(&self.cgroups, &parent)?;
        }
        Ok(())
    }

    /// The statuses of the sandboxes `filter` selects.
    pub fn statuses(&self, filter: &SandboxFilter) -> Result<Vec<SandboxStatus>> {
        Ok(self
            .list()?
            .iter()
            .map(SandboxRecord::status)
            .filter(|s| filter.matches(s))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_lists_search_servers_and_options() {
        let dns = DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["ns.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn ids_are_32_hex_digits_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }
}
