//! The `rkube` binary: parses flags and wires the crates together. No logic
//! of its own.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rkube",
    version,
    about = "A Kubernetes-API-compatible control plane and node agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the API server on the embedded store.
    Server(ServerArgs),
    /// Run a node (kubelet) that joins a remote server with a token.
    Agent(AgentArgs),
    /// Run the controller-manager against an API server.
    ControllerManager(ControllerManagerArgs),
    /// Run the scheduler against an API server.
    Scheduler(ComponentArgs),
    /// Measure parts of rkube on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage the node's images (for machines without registry access).
    Images(ImagesArgs),
}

#[derive(clap::Args)]
struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
    /// The server's data directory.
    #[arg(long, default_value = apiserver::server::DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
    #[arg(long, value_enum, default_value = "youki", global = true)]
    container_runtime: Backend,
    #[arg(long, default_value = "/run/containerd/containerd.sock", global = true)]
    containerd_address: PathBuf,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import an OCI image-layout or `docker save` tar.
    Import { file: PathBuf },
    /// List the node's images.
    Ls,
    /// Write busybox and pause images built from this machine's static
    /// busybox (Debian's busybox-static) as tars into DIR.
    BuildTest { dir: PathBuf },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Pod start latency of a container runtime backend (needs root).
    Runtime(RuntimeBenchArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Youki,
    Containerd,
    /// Runs nothing: a simulated node whose pods go Running without
    /// processes (many such nodes fit on one machine).
    Fake,
}

#[derive(clap::Args)]
struct RuntimeBenchArgs {
    #[arg(long, value_enum, default_value = "youki")]
    backend: Backend,
    /// Pods to start, one after another.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Run host-network sandboxes (no CNI), to separate the network's share.
    #[arg(long)]
    no_network: bool,
    /// containerd's socket (the containerd backend).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_address: PathBuf,
    /// Scratch directory (removed afterwards).
    #[arg(long, default_value = "/var/tmp/rkube-bench")]
    dir: PathBuf,
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Where the store, the PKI and the admin kubeconfig live.
    #[arg(long, default_value = apiserver::server::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Address and port to serve HTTPS on.
    #[arg(long, default_value = apiserver::server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Also write the admin kubeconfig here (default: <data-dir>/admin.kubeconfig).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// The range cluster IPs of services are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// Extra host names or IPs for the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// The IP the `kubernetes` service's Endpoints advertise (default: the
    /// listen address, or the host's first non-loopback IPv4 address).
    #[arg(long)]
    advertise_address: Option<std::net::IpAddr>,
    /// Seconds of history the store keeps for watches and continue tokens;
    /// older revisions answer 410 Expired.
    #[arg(long, default_value_t = 300)]
    history_window_seconds: u64,
    /// Store objects in etcd at these endpoints (comma-separated URLs)
    /// instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    /// CA that signed the etcd servers' certificates (enables TLS).
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
    /// Seconds between compactions of etcd history (0 disables).
    #[arg(long, default_value_t = 300)]
    etcd_compaction_interval_seconds: u64,
    /// Run only the control plane: no kubelet on this machine.
    #[arg(long)]
    disable_agent: bool,
    /// Do not run the controller-manager in this process.
    #[arg(long)]
    disable_controller_manager: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    disable_scheduler: bool,
    /// Pods tolerate a `not-ready` node for this long by default.
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// Pods tolerate an `unreachable` node for this long by default.
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
    #[command(flatten)]
    controllers: ControllerArgs,
    #[command(flatten)]
    node: NodeArgs,
}

/// The controller-manager's settings (upstream's flag names).
#[derive(clap::Args, Clone)]
struct ControllerArgs {
    /// How long a node may go without renewing its Lease before it is
    /// marked `Ready=Unknown` (e.g. `40s`, `1m`).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// Terminated pods kept before the oldest are deleted.
    #[arg(long, default_value_t = 12_500)]
    terminated_pod_gc_threshold: usize,
}

impl ControllerArgs {
    fn options(&self) -> controllers::ControllerOptions {
        controllers::ControllerOptions {
            node_monitor_grace_period: self.node_monitor_grace_period,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
        }
    }
}

/// A remote control-plane component's connection.
#[derive(clap::Args)]
struct ComponentArgs {
    /// Kubeconfig of the API server to work against.
    #[arg(long)]
    kubeconfig: PathBuf,
}

#[derive(clap::Args)]
struct ControllerManagerArgs {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    controllers: ControllerArgs,
}

/// Go-style durations as upstream flags take them: `40s`, `1m30s`,
/// `500ms`, `2h` (humantime reads these; a bare number is refused, as Go
/// refuses it).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?} ({e}): use e.g. 40s, 1m30s, 500ms"))
}

#[derive(clap::Args)]
struct AgentArgs {
    /// The API server to join, as `https://host:port`.
    #[arg(long)]
    server: String,
    /// The server's join token (the contents of `<data-dir>/token` there).
    #[arg(long, env = "RKUBE_TOKEN", hide_env_values = true)]
    token: String,
    /// Where this node's credentials, images and pod state live.
    #[arg(long, default_value = "/var/lib/rkube-agent")]
    data_dir: PathBuf,
    #[command(flatten)]
    node: NodeArgs,
}

/// The node agent: what `rkube server` runs beside the API server and
/// `rkube agent` runs on its own.
#[derive(clap::Args)]
struct NodeArgs {
    /// The Node's name (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// Container runtime backend.
    #[arg(long, value_enum, default_value = "youki")]
    container_runtime: Backend,
    /// containerd's socket, with `--container-runtime containerd`.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_address: PathBuf,
    /// This node's pod CIDR: pods get their IPs from it.
    #[arg(long, default_value = "10.88.0.0/16")]
    cluster_cidr: String,
    /// The Linux bridge pods are attached to.
    #[arg(long, default_value = "rkube0")]
    cni_bridge: String,
    /// DNS servers pods with dnsPolicy ClusterFirst use (none by default:
    /// pods then use the node's resolv.conf).
    #[arg(long, value_delimiter = ',')]
    cluster_dns: Vec<String>,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Where pods' CRI log files go.
    #[arg(long, default_value = "/var/log/pods")]
    pod_log_dir: PathBuf,
    /// The kubelet's HTTPS port (logs); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
}

fn main() -> anyhow::Result<()> {
    // The youki backend's helper processes are this binary too; they must
    // run before any thread or async runtime exists (they fork).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = ::runtime::youki::helper_main(&args) {
        std::process::exit(code);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(server(args)),
        Command::Agent(args) => runtime.block_on(agent(args)),
        Command::Scheduler(args) => runtime.block_on(async move {
            let client = kube_client(&args.kubeconfig, "kube-scheduler").await?;
            tokio::select! {
                _ = lead("kube-scheduler", client, |c| scheduler::run(c, Default::default())) => Ok(()),
                _ = shutdown_signal() => Ok(()),
            }
        }),
        Command::ControllerManager(args) => runtime.block_on(async move {
            let client = kube_client(&args.component.kubeconfig, "kube-controller-manager").await?;
            let opts = args.controllers.options();
            tokio::select! {
                _ = lead("kube-controller-manager", client, move |c| controllers::run(c, opts.clone())) => Ok(()),
                _ = shutdown_signal() => Ok(()),
            }
        }),
        Command::Bench(BenchCommand::Runtime(args)) => runtime.block_on(bench_runtime(args)),
        Command::Images(args) => runtime.block_on(images_command(args)),
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    use apiserver::storage::etcd::{EtcdOptions, EtcdTls};
    let etcd = (!args.etcd_servers.is_empty()).then(|| apiserver::server::EtcdConfig {
        endpoints: args.etcd_servers.clone(),
        options: EtcdOptions {
            prefix: args.etcd_prefix.clone(),
            tls: args.etcd_cafile.clone().map(|ca_file| EtcdTls {
                ca_file,
                cert_file: args.etcd_certfile.clone(),
                key_file: args.etcd_keyfile.clone(),
            }),
            compaction_interval: std::time::Duration::from_secs(
                args.etcd_compaction_interval_seconds,
            ),
            ..Default::default()
        },
    });
    let config = apiserver::Config {
        data_dir: args.data_dir,
        listen: args.listen,
        write_kubeconfig: args.write_kubeconfig,
        service_cidr: args.service_cluster_ip_range,
        tls_san: args.tls_san,
        advertise_address: args.advertise_address,
        default_not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        history_window: std::time::Duration::from_secs(args.history_window_seconds),
        etcd,
    };
    let kubeconfig = config
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| config.data_dir.join("admin.kubeconfig"));
    let mut control_plane = Vec::new();
    if !args.disable_controller_manager {
        let opts = args.controllers.options();
        let kubeconfig = kubeconfig.clone();
        control_plane.push(tokio::spawn(async move {
            let client = wait_for_api(&kubeconfig, "kube-controller-manager").await;
            lead("kube-controller-manager", client, move |c| {
                controllers::run(c, opts.clone())
            })
            .await
        }));
    }
    if !args.disable_scheduler {
        let kubeconfig = kubeconfig.clone();
        control_plane.push(tokio::spawn(async move {
            let client = wait_for_api(&kubeconfig, "kube-scheduler").await;
            lead("kube-scheduler", client, |c| {
                scheduler::run(c, Default::default())
            })
            .await
        }));
    }
    let kubelet = (!args.disable_agent).then(|| {
        let identity = NodeIdentity {
            kubeconfig,
            pki_dir: config.data_dir.join("pki"),
            serving: None,
        };
        tokio::spawn(run_kubelet(args.node, config.data_dir.clone(), identity))
    });
    let result = apiserver::run(config, shutdown_signal())
        .await
        .context("rkube server failed");
    // Containers keep running: their shims outlive this process.
    if let Some(k) = kubelet {
        k.abort();
    }
    for c in control_plane {
        c.abort();
    }
    result
}

/// How a kubelet authenticates: its kubeconfig, and its serving
/// certificate (issued from the local CA in `pki_dir` when `None`).
struct NodeIdentity {
    kubeconfig: PathBuf,
    pki_dir: PathBuf,
    serving: Option<(String, String)>,
}

fn node_name(asked: Option<String>) -> anyhow::Result<String> {
    Ok(match asked {
        Some(n) => n,
        None => nix::unistd::gethostname()?
            .into_string()
            .unwrap_or_else(|_| "localhost".into()),
    })
}

/// `rkube agent`: joins the server (once; the credentials are kept in the
/// data dir) and runs the kubelet until SIGTERM.
async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let token: apiserver::join::JoinToken =
        args.token.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let name = node_name(args.node.node_name.clone())?;
    let pki_dir = args.data_dir.join("pki");
    let kubeconfig = args.data_dir.join("kubelet.kubeconfig");
    let (serving_cert, serving_key) = (pki_dir.join("kubelet.crt"), pki_dir.join("kubelet.key"));
    if !kubeconfig.exists() || !serving_cert.exists() {
        let node_ip = kubelet::node_info::node_ip();
        let creds = apiserver::join::client::join(
            &args.server,
            &token,
            &name,
            vec![node_ip.to_string(), "127.0.0.1".into()],
        )
        .await
        .with_context(|| format!("joining {}", args.server))?;
        std::fs::create_dir_all(&pki_dir)?;
        std::fs::write(pki_dir.join("ca.crt"), &creds.ca_cert)?;
        apiserver::tls::write_private(&serving_key, &creds.serving_key)?;
        std::fs::write(&serving_cert, &creds.serving_cert)?;
        apiserver::tls::write_client_kubeconfig(
            &kubeconfig,
            &apiserver::tls::ClientCredentials {
                ca_cert: &creds.ca_cert,
                cert: &creds.client_cert,
                key: &creds.client_key,
                user: &format!("system:node:{name}"),
            },
            &args.server,
        )?;
        tracing::info!(node = %name, server = %args.server, "joined");
    }
    let identity = NodeIdentity {
        kubeconfig,
        pki_dir,
        serving: Some((
            std::fs::read_to_string(&serving_cert)?,
            std::fs::read_to_string(&serving_key)?,
        )),
    };
    let mut node = args.node;
    node.node_name = Some(name);
    tokio::select! {
        r = run_kubelet(node, args.data_dir, identity) => r,
        _ = shutdown_signal() => Ok(()),
    }
}

/// Builds the runtime and starts the kubelet once the API server answers.
async fn run_kubelet(
    args: NodeArgs,
    data_dir: PathBuf,
    identity: NodeIdentity,
) -> anyhow::Result<()> {
    use ::runtime::cni;
    let result: anyhow::Result<()> = async {
        let client = wait_for_api(&identity.kubeconfig, "kubelet").await;
        let node_name = node_name(args.node_name)?;
        let runtime_dir = data_dir.join("runtime");
        // A simulated node has no pod network to set up.
        let cni = (args.container_runtime != Backend::Fake)
            .then(|| {
                cni::Cni::new(cni::CniConfig {
                    state_dir: runtime_dir.join("cni"),
                    bridge: args.cni_bridge.clone(),
                    subnet: args.cluster_cidr.clone(),
                    ..Default::default()
                })
            })
            .transpose()?;
        let (rt, name) = node_runtime(
            args.container_runtime,
            &args.containerd_address,
            &runtime_dir,
            cni,
            "/rkube",
        )?;
        import_image_dir(rt.as_ref(), &data_dir.join("images")).await;
        let version = rt.version().await?;
        let node_ip = kubelet::node_info::node_ip();
        let pki = &identity.pki_dir;
        let (cert, key) = match identity.serving {
            Some(issued) => issued,
            None => apiserver::tls::issue_kubelet_serving_cert(
                pki,
                &node_name,
                &[node_ip.to_string(), "127.0.0.1".into(), node_name.clone()],
            )?,
        };
        let tls = apiserver::tls::kubelet_server_config(pki, &cert, &key)?;
        let cfg = kubelet::KubeletConfig {
            node_name,
            client,
            runtime: rt,
            runtime_name: name.into(),
            runtime_version: format!("{}://{}", name, version.runtime_version),
            root_dir: data_dir.join("kubelet"),
            log_root: args.pod_log_dir,
            cluster_dns: args.cluster_dns,
            cluster_domain: args.cluster_domain,
            pod_cidr: args.cluster_cidr,
            node_ip,
            kubelet_port: args.kubelet_port,
            tls: Some(tls),
            pods: Default::default(),
        };
        let handle = kubelet::start(cfg).await?;
        tracing::info!("kubelet running ({name})");
        let _ = handle.await;
        Ok(())
    }
    .await;
    if let Err(e) = &result {
        tracing::error!("kubelet: {e:#}");
    }
    result
}

/// A client for the API server of `kubeconfig`, once it answers.
async fn wait_for_api(kubeconfig: &std::path::Path, component: &str) -> kube::Client {
    loop {
        if let Ok(c) = kube_client(kubeconfig, component).await {
            if c.apiserver_version().await.is_ok() {
                return c;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs `work` whenever this process holds the `lease` leader lease.
async fn lead<F, Fut>(lease: &str, client: kube::Client, work: F)
where
    F: Fn(kube::Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "rkube".into());
    let identity = format!("{host}_{}", std::process::id());
    let election = controllers::leader::LeaderElection::new(client.clone(), lease, &identity);
    election.run(|| work(client.clone())).await
}

/// A client identifying itself as `component` (the User-Agent product the
/// API server records its writes under in `managedFields`, like upstream's
/// `kubelet`, `kube-controller-manager`, `kube-scheduler`).
async fn kube_client(path: &std::path::Path, component: &str) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let agent = format!("{component}/v{}", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent)?,
    ));
    Ok(kube::Client::try_from(config)?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn bench_runtime(args: RuntimeBenchArgs) -> anyhow::Result<()> {
    use ::runtime::{cni, testing::images};
    let dir = args.dir.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir)?;
    let bridge = "rkbench0";
    let cni = cni::Cni::new(cni::CniConfig {
        state_dir: dir.join("cni"),
        network_name: "rkube-bench".into(),
        bridge: bridge.into(),
        subnet: "10.250.0.0/16".into(),
        ..Default::default()
    })?;
    let (rt, _) = node_runtime(
        args.backend,
        &args.containerd_address,
        &dir,
        Some(cni),
        "/rkube-bench",
    )?;
    let archive = dir.join("busybox.tar");
    images::write_oci_layout_tar(&archive, &[images::busybox()]);
    let image = rt.import_image(&archive).await?[0].repo_tags[0].clone();
    let result = ::runtime::bench::start_latency(
        rt.as_ref(),
        &image,
        args.pods,
        !args.no_network,
        &dir.join("logs"),
    )
    .await;
    drop(rt);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", bridge])
        .status();
    std::fs::remove_dir_all(&dir).context("removing the scratch directory")?;
    print!("{}", result?.report());
    Ok(())
}

/// The container runtime of a node: its state under `dir`, containers'
/// cgroups under `cgroup_root`.
fn node_runtime(
    backend: Backend,
    containerd_address: &std::path::Path,
    dir: &std::path::Path,
    cni: Option<::runtime::cni::Cni>,
    cgroup_root: &str,
) -> anyhow::Result<(std::sync::Arc<dyn ::runtime::Runtime>, &'static str)> {
    use ::runtime::{containerd, image, youki};
    use std::sync::Arc;
    let images = Arc::new(image::ImageStore::open(
        &dir.join("images"),
        Default::default(),
    )?);
    let cni = cni.map(Arc::new);
    Ok(match backend {
        Backend::Youki => (
            Arc::new(youki::YoukiRuntime::new(youki::YoukiOptions {
                root: dir.join("youki"),
                state_root: dir.join("youki-state"),
                helper: youki::HelperCommand::current_exe()?,
                images,
                cni,
                cgroup_root: cgroup_root.into(),
                log_max_bytes: 10 << 20,
                log_max_files: 5,
            })?),
            "youki",
        ),
        Backend::Fake => (Arc::new(::runtime::fake::FakeRuntime::new()), "fake"),
        Backend::Containerd => (
            Arc::new(containerd::ContainerdRuntime::new(
                containerd::ContainerdOptions {
                    socket: containerd_address.to_path_buf(),
                    namespace: containerd::DEFAULT_NAMESPACE.into(),
                    root: dir.join("containerd"),
                    runtime_binary: None,
                    images,
                    cni,
                    cgroup_root: cgroup_root.into(),
                    log_max_bytes: 10 << 20,
                    log_max_files: 5,
                },
            )?),
            "containerd",
        ),
    })
}

/// Imports every `*.tar` in `dir` (images for machines without registry
/// access); failures are logged, not fatal.
async fn import_image_dir(rt: &dyn ::runtime::Runtime, dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "tar") {
            match rt.import_image(&path).await {
                Ok(imported) => {
                    for i in imported {
                        tracing::info!(image = %i.repo_tags.join(","), "imported {}", path.display());
                    }
                }
                Err(e) => tracing::warn!("importing {}: {e}", path.display()),
            }
        }
    }
}

async fn images_command(args: ImagesArgs) -> anyhow::Result<()> {
    if let ImagesCommand::BuildTest { dir } = &args.command {
        use ::runtime::testing::images;
        std::fs::create_dir_all(dir)?;
        let busybox = images::busybox().named("docker.io/library/busybox:latest");
        images::write_oci_layout_tar(&dir.join("busybox.tar"), &[busybox]);
        let pause = images::pause().named("registry.k8s.io/pause:3.10");
        images::write_oci_layout_tar(&dir.join("pause.tar"), &[pause]);
        println!("wrote busybox.tar and pause.tar to {}", dir.display());
        return Ok(());
    }
    let dir = args.data_dir.join("runtime");
    let (rt, _) = node_runtime(
        args.container_runtime,
        &args.containerd_address,
        &dir,
        None,
        "/rkube",
    )?;
    match args.command {
        ImagesCommand::Import { file } => {
            for i in rt.import_image(&file).await? {
                println!("{}\t{}", i.repo_tags.join(","), i.id);
            }
        }
        ImagesCommand::Ls => {
            println!("IMAGE\tID\tSIZE");
            for i in rt.list_images().await? {
                let name = i
                    .repo_tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "<none>".into());
                println!("{name}\t{}\t{}", i.id, i.size);
            }
        }
        ImagesCommand::BuildTest { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_like_upstream_flags() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "40", "s", "4x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
