//! rkube's node agent (kubelet): registers the node, keeps its Lease, and
//! runs the pods bound to it (`spec.nodeName`) through a container
//! [`runtime::Runtime`], reporting their status the way the upstream
//! kubelet does.
//!
//! Layout: [`pod`] is the pure logic (configs, env, QoS, status, back-off);
//! [`node`] and [`node_info`] the node object and heartbeat; [`manager`]
//! watches the node's pods and gives each a [`worker`]; [`volumes`]
//! prepares pod volumes on disk. The runtime's own records are the truth
//! about what runs: nothing here is remembered only in memory, so a
//! restarted kubelet adopts what it finds.

pub mod manager;
pub mod node;
pub mod node_info;
pub mod pod;
pub mod probe;
pub mod server;
pub mod stats;
pub mod stream;
pub mod volumes;
pub mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use runtime::Runtime;

/// The version the node reports, matching the API server's.
pub const KUBELET_VERSION: &str = "v1.33.0-rkube";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the kubelet needs; cheap to clone.
#[derive(Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    /// The `containerID` scheme and `containerRuntimeVersion` prefix.
    pub runtime_name: String,
    pub runtime_version: String,
    /// Pod volumes live under `<root_dir>/pods/<uid>/volumes`.
    pub root_dir: PathBuf,
    /// CRI log files: `<log_root>/<ns>_<name>_<uid>/<container>/<n>.log`.
    pub log_root: PathBuf,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub pod_cidr: String,
    pub node_ip: IpAddr,
    /// The port of the kubelet's HTTPS endpoint (0: any free port; the
    /// Node reports the one bound).
    pub kubelet_port: u16,
    /// TLS of that endpoint: its certificate, client certificates required.
    /// `None` serves no endpoint (logs are then unavailable).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The pods given to this kubelet, by uid, as last seen (`/pods`).
    pub pods: manager::KnownPods,
}

/// Registers the node and runs the heartbeat and the pod manager until
/// the returned task is aborted.
pub async fn start(mut cfg: KubeletConfig) -> Result<tokio::task::JoinHandle<()>> {
    std::fs::create_dir_all(&cfg.root_dir)
        .map_err(|e| Error::Other(format!("{}: {e}", cfg.root_dir.display())))?;
    let server = match cfg.tls.clone() {
        Some(tls) => {
            let listener =
                tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, cfg.kubelet_port))
                    .await
                    .map_err(|e| Error::Other(format!("kubelet port {}: {e}", cfg.kubelet_port)))?;
            cfg.kubelet_port = listener
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(cfg.kubelet_port);
            Some(tokio::spawn(server::serve(cfg.clone(), listener, tls)))
        }
        None => None,
    };
    node::register(&cfg).await?;
    let heartbeat = tokio::spawn(node::heartbeat(cfg.clone()));
    let manager = tokio::spawn(manager::run(cfg));
    Ok(tokio::spawn(async move {
        let _ = manager.await;
        heartbeat.abort();
        if let Some(s) = server {
            s.abort();
        }
    }))
}
