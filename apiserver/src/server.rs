//! Wiring of one API server: opens storage, prepares the PKI, creates the
//! bootstrap objects (system namespaces, the `kubernetes` service), starts
//! the background tasks and serves HTTPS until told to stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{ApiError, Reason};
use crate::http::ApiServer;
use crate::registry::options::{ListOptions, WriteOptions};
use crate::registry::Registry;
use crate::storage::cacher::{Cacher, CacherOptions};
use crate::storage::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::storage::etcd::{EtcdOptions, EtcdStore};
use crate::storage::Storage;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/rkube";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6443";
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub write_kubeconfig: Option<PathBuf>,
    pub service_cidr: String,
    /// Extra names or IPs for the serving certificate.
    pub tls_san: Vec<String>,
    /// The address the `kubernetes` service's Endpoints point at.
    pub advertise_address: Option<std::net::IpAddr>,
    /// How long the embedded store keeps history for watches and
    /// continue tokens before compacting it.
    pub history_window: std::time::Duration,
    /// Use these etcd endpoints instead of the embedded store.
    pub etcd: Option<EtcdConfig>,
    /// Pods get NoExecute tolerations of the `not-ready` and `unreachable`
    /// taints for this long unless they set their own
    /// (`--default-not-ready-toleration-seconds`,
    /// `--default-unreachable-toleration-seconds`).
    pub default_not_ready_toleration_seconds: i64,
    pub default_unreachable_toleration_seconds: i64,
}

/// Where an etcd-backed server keeps its objects.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    pub options: EtcdOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The address clients use to reach this server (kubeconfig, discovery).
fn client_ip(listen: &SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        "127.0.0.1".into()
    } else {
        listen.ip().to_string()
    }
}

/// The address the `kubernetes` Endpoints advertise. Endpoints may not hold
/// loopback addresses, so a server listening on loopback advertises the
/// host's first non-loopback IPv4 address, as kube-apiserver defaults its
/// `--advertise-address` to a host interface.
fn advertise_ip(listen: &SocketAddr, configured: Option<std::net::IpAddr>) -> Option<String> {
    if let Some(ip) = configured {
        return Some(ip.to_string());
    }
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        return Some(listen.ip().to_string());
    }
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    addrs
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
        .find(|ip| !ip.is_loopback() && !ip.is_link_local())
        .map(|ip| ip.to_string())
}

/// Runs the API server until `shutdown` resolves. Calls `on_ready` once
/// `/readyz` would pass.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| ServerError::Config(format!("{}: {e}", config.data_dir.display())))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let listen = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let advertise = client_ip(&listen);
    let endpoint_ip = advertise_ip(&listen, config.advertise_address);
    let mut hosts = vec![advertise.clone()];
    hosts.extend(endpoint_ip.clone());
    hosts.extend(config.tls_san.iter().cloned());
    let pki = crate::tls::ensure_pki(&config.data_dir.join("pki"), &hosts)?;
    let url = format!(
        "https://{}",
        if listen.is_ipv6() {
            format!("[{advertise}]:{}", listen.port())
        } else {
            format!("{advertise}:{}", listen.port())
        }
    );
    let kubeconfig_path = config
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| config.data_dir.join("admin.kubeconfig"));
    crate::tls::write_kubeconfig(&kubeconfig_path, &pki, &url)?;
    let tls = crate::tls::server_config(&pki)?;

    let mut cacher_options = CacherOptions::default();
    let store: Arc<dyn Storage> = match &config.etcd {
        Some(etcd) => {
            let store = EtcdStore::connect(&etcd.endpoints, etcd.options.clone()).await?;
            if !store.progress_requests_supported() {
                tracing::warn!(
                    version = store.server_version(),
                    "this etcd reports watch progress out of order; consistent lists are read from etcd, not the watch cache"
                );
                cacher_options.consistent_reads_from_cache = false;
            }
            store
        }
        None => EmbeddedStore::open(
            &config.data_dir.join("store"),
            EmbeddedOptions {
                history_window: config.history_window,
                ..Default::default()
            },
        )?,
    };
    // LIST and WATCH are served from the watch cache: one storage watch per
    // resource, whatever the number of clients.
    let prefixes = crate::registry::kinds::all()
        .iter()
        .map(|k| Registry::prefix(k.as_ref(), None))
        .collect();
    let storage: Arc<dyn Storage> = Cacher::new(store, prefixes, cacher_options);
    let mut registry = Registry::new(storage, &config.service_cidr).map_err(ServerError::Config)?;
    registry.pod_admission = crate::registry::PodAdmission {
        not_ready_toleration_seconds: config.default_not_ready_toleration_seconds,
        unreachable_toleration_seconds: config.default_unreachable_toleration_seconds,
    };
    let registry = Arc::new(registry);
    let server = Arc::new(ApiServer {
        registry: registry.clone(),
        ready: false.into(),
        started: std::time::Instant::now(),
        server_address: format!("{advertise}:{}", listen.port()),
        config_watch_timeout_secs: 1800,
        kubelet_tls: crate::tls::kubelet_client_config(&pki).ok(),
        node_join: Some(crate::http::NodeJoin {
            token: crate::join::ensure_token(&config.data_dir, &pki.ca_cert)?,
            ca_cert: pki.ca_cert.clone(),
            pki_dir: config.data_dir.join("pki"),
        }),
    });
    let serving = tokio::spawn(crate::http::serve(server.clone(), listener, tls, async {
        // Stopped by aborting the task below.
        std::future::pending::<()>().await
    }));
    bootstrap(&registry, endpoint_ip.as_deref(), listen.port()).await?;
    server.ready.store(true, Ordering::Release);
    let lifecycle = tokio::spawn(crate::namespace_lifecycle::run(registry.clone()));
    tracing::info!(
        "rkube API server ready on {url} (kubeconfig: {}, data: {})",
        kubeconfig_path.display(),
        config.data_dir.display()
    );
    shutdown.await;
    tracing::info!("shutting down");
    serving.abort();
    lifecycle.abort();
    let _ = serving.await;
    let _ = lifecycle.await;
    Ok(())
}

/// Creates what every cluster has from its first start; idempotent.
async fn bootstrap(
    registry: &Registry,
    advertise: Option<&str>,
    port: u16,
) -> Result<(), ServerError> {
    let services = registry.find("", "v1", "services").expect("served");
    let existing = registry
        .list(&services, None, &ListOptions::default())
        .await
        .map_err(|e| ServerError::Bootstrap(e.message))?;
    registry
        .services
        .rebuild(existing["items"].as_array().into_iter().flatten());

    let opts = WriteOptions::default();
    let ns_kind = registry.find("", "v1", "namespaces").expect("served");
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ignore_exists(registry.create(ns_kind.as_ref(), None, obj, &opts).await)?;
    }
    let kubernetes = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "clusterIP": registry.services.first_ip().to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None", "type": "ClusterIP",
        },
    });
    match registry
        .get(services.as_ref(), Some("default"), "kubernetes")
        .await
    {
        Ok(_) => {}
        Err(e) if e.reason == Reason::NotFound => {
            let created = registry
                .create(services.as_ref(), Some("default"), kubernetes, &opts)
                .await;
            ignore_exists(created)?;
        }
        Err(e) => return Err(ServerError::Bootstrap(e.message)),
    }
    let endpoints_kind = registry.find("", "v1", "endpoints").expect("served");
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
    });
    let mut endpoints = endpoints;
    match advertise {
        Some(ip) => {
            endpoints["subsets"] = json!([{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]);
        }
        None => tracing::warn!("no non-loopback address to advertise; the kubernetes Endpoints stay empty (set --advertise-address)"),
    }
    match registry
        .get(endpoints_kind.as_ref(), Some("default"), "kubernetes")
        .await
    {
        Ok(current) if current["subsets"] == endpoints["subsets"] => {}
        Ok(current) => {
            let mut updated = endpoints.clone();
            updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
            registry
                .update(
                    endpoints_kind.as_ref(),
                    Some("default"),
                    "kubernetes",
                    crate::registry::store::Part::Main,
                    updated,
                    &opts,
                )
                .await
                .map_err(|e| ServerError::Bootstrap(e.message))?;
        }
        Err(e) if e.reason == Reason::NotFound => {
            ignore_exists(
                registry
                    .create(endpoints_kind.as_ref(), Some("default"), endpoints, &opts)
                    .await,
            )?;
        }
        Err(e) => return Err(ServerError::Bootstrap(e.message)),
    }
    Ok(())
}

fn ignore_exists(r: Result<(Value, Vec<String>), ApiError>) -> Result<(), ServerError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.reason == Reason::AlreadyExists => Ok(()),
        Err(e) => Err(ServerError::Bootstrap(e.message)),
    }
}
