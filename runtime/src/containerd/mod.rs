//! The containerd backend: containers run by containerd (1.6 or later)
//! through its gRPC API, with the runc v2 shim and the `overlayfs`
//! snapshotter. Pod sandboxes are the same pinned namespaces plus CNI as
//! the youki backend's ([`crate::pod_sandbox`]): there is no pause
//! container, containers join the sandbox through namespace paths in the
//! OCI spec ([`crate::spec::build`], the one spec builder).
//!
//! Images are pulled and imported by rkube's own [`ImageStore`] (auth,
//! insecure-registry rules and digest checks live there) and then handed
//! to containerd: content, image record and unpacked snapshots
//! ([`images`]).
//!
//! containerd is the source of truth for task state (running, exit
//! status, exit time); rkube keeps what containerd does not know in files
//! in each container's directory (the CRI config, log path, when it was
//! started, and the exit once seen), so a restarted rkube finds its
//! containers. The container's output reaches its CRI log file through
//! fifos that this process reads ([`io`]); on restart, the copy resumes.
//!
//! What it must not do: run OCI runtimes itself, fetch images itself, or
//! touch containerd objects outside its namespace.

mod client;
mod images;
mod io;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    container, CloseIoRequest, Container, CreateContainerRequest, CreateTaskRequest,
    DeleteContainerRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest,
    GetRequest, KillRequest, ResizePtyRequest, StartRequest, WaitRequest,
};
use containerd_client::types::v1::Status as TaskStatus;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::api::{BoxRead, BoxWrite, Runtime, StreamSession};
use crate::cgroups::{self, CgroupSetup};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::image::ImageStore;
use crate::pod_sandbox::{new_id, SandboxRecord, Sandboxes};
use crate::record;
use crate::spec::{self, SandboxPaths, SpecInput};
use crate::types::*;
use client::{is_not_found, Client};
use io::Fifos;

/// The containerd namespace rkube uses unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "rkube";

/// The shim every container runs under.
const RUNC_SHIM: &str = "io.containerd.runc.v2";

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// The runc shim's options message (`containerd.runc.v1.Options`).
const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

/// Exit code and reason of a container whose start failed, as containerd's
/// CRI plugin reports them.
const START_ERROR_CODE: i32 = 128;

pub struct ContainerdOptions {
    /// containerd's gRPC socket (`/run/containerd/containerd.sock`).
    pub socket: PathBuf,
    /// The containerd namespace for rkube's images and containers.
    pub namespace: String,
    /// Where sandboxes and per-container files (records, fifos) live.
    pub root: PathBuf,
    /// A runc-compatible OCI runtime binary (e.g. youki) for the runc shim
    /// to run instead of `runc`.
    pub runtime_binary: Option<PathBuf>,
    pub images: Arc<ImageStore>,
    pub cni: Option<Arc<crate::cni::Cni>>,
    /// Parent of every pod cgroup (`/rkube`).
    pub cgroup_root: String,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
}

/// The subset of the runc shim's options rkube sets; field numbers are
/// those of containerd's `runtime/v2/runc/options/oci.proto`.
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    /// The runc-compatible binary to run.
    #[prost(string, tag = "6")]
    binary_name: String,
}

/// What is kept of a container on disk (`container.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ContainerRecord {
    id: String,
    sandbox_id: String,
    config: ContainerConfig,
    image_id: String,
    created_at: SystemTime,
    log_path: PathBuf,
    cgroups_path: String,
    /// The spec's process, the template of exec processes.
    process: serde_json::Value,
}

/// Written once the task has started (`started.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Started {
    pid: u32,
    started_at: SystemTime,
}

/// Written once the exit has been seen (`exit.json`): it survives the
/// task's deletion, and the OOM verdict needs the cgroup, which goes with
/// the task.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Exited {
    exit_code: i32,
    finished_at: SystemTime,
    reason: String,
    message: String,
}

const RECORD_FILE: &str = "container.json";
const STARTED_FILE: &str = "started.json";
const EXIT_FILE: &str = "exit.json";

pub struct ContainerdRuntime {
    opts: ContainerdOptions,
    client: Client,
    sandboxes: Sandboxes,
    containers_dir: PathBuf,
    cgroups: CgroupSetup,
    /// Image uploads one at a time: two creates of the same image would
    /// otherwise write the same blobs and snapshots concurrently.
    image_lock: tokio::sync::Mutex<()>,
    /// Read-write handles on containers' stdin fifos: while held, a
    /// container's stdin stays open between attaches.
    stdin_holders: Arc<Mutex<HashMap<String, std::fs::File>>>,
    /// Dropped with the runtime, which ends its log copies: a new runtime
    /// on the same root resumes them (see [`ContainerdRuntime::new`]).
    shutdown: tokio::sync::watch::Sender<()>,
}

impl ContainerdRuntime {
    /// Sets the backend up; containerd need not be running yet (calls
    /// fail with `Unavailable` until it is). Called inside a tokio
    /// runtime, it resumes copying the output of containers that a
    /// previous rkube started.
    pub fn new(opts: ContainerdOptions) -> Result<Self> {
        let client = Client::new(&opts.socket, &opts.namespace)?;
        let sandboxes = Sandboxes::new(
            opts.root.join("sandboxes"),
            opts.cni.clone(),
            &opts.cgroup_root,
        )?;
        let containers_dir = opts.root.join("containers");
        std::fs::create_dir_all(&containers_dir)
            .map_err(|e| RuntimeError::io(containers_dir.display(), e))?;
        let rt = ContainerdRuntime {
            opts,
            client,
            sandboxes,
            containers_dir,
            cgroups: CgroupSetup::detect()?,
            image_lock: tokio::sync::Mutex::new(()),
            stdin_holders: Arc::new(Mutex::new(HashMap::new())),
            shutdown: tokio::sync::watch::channel(()).0,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            rt.resume_io()?;
        }
        Ok(rt)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir.join(id)
    }

    fn record(&self, id: &str) -> Result<ContainerRecord> {
        record::read(&self.dir(id).join(RECORD_FILE))?
            .ok_or_else(|| RuntimeError::not_found(format!("container {id}")))
    }

    fn all_records(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for id in record::list_dirs(&self.containers_dir)? {
            if let Some(r) = record::read::<ContainerRecord>(&self.dir(&id).join(RECORD_FILE))? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn started(&self, id: &str) -> Result<Option<Started>> {
        record::read(&self.dir(id).join(STARTED_FILE))
    }

    fn exited(&self, id: &str) -> Result<Option<Exited>> {
        record::read(&self.dir(id).join(EXIT_FILE))
    }

    fn tasks(&self) -> TasksClient<containerd_client::tonic::transport::Channel> {
        TasksClient::new(self.client.channel())
    }

    /// Restarts the log copies (and stdin holders) of containers that
    /// were running when a previous rkube process ended.
    fn resume_io(&self) -> Result<()> {
        for rec in self.all_records()? {
            // One container's broken files must not keep rkube from
            // starting: its output is lost, the others' is not.
            if let Err(e) = self.resume_one(&rec) {
                tracing::warn!(container = %rec.id, "resuming the log copy: {e}");
            }
        }
        Ok(())
    }

    fn resume_one(&self, rec: &ContainerRecord) -> Result<()> {
        if self.started(&rec.id)?.is_none() || self.exited(&rec.id)?.is_some() {
            return Ok(());
        }
        let fifos = self.main_fifos(rec);
        if fifos.paths().any(|p| !p.exists()) {
            return Ok(());
        }
        let out = io::open_reader(&fifos.stdout)?;
        let err = fifos.stderr.as_deref().map(io::open_reader).transpose()?;
        if let Some(stdin) = &fifos.stdin {
            let holder = io::open_holder(stdin)?;
            self.holders().insert(rec.id.clone(), holder);
        }
        self.spawn_log_copy(rec, out, err)
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, HashMap<String, std::fs::File>> {
        self.stdin_holders.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn main_fifos(&self, rec: &ContainerRecord) -> Fifos {
        let dir = self.dir(&rec.id);
        Fifos {
            stdin: rec.config.stdin.then(|| dir.join("stdin")),
            stdout: dir.join("stdout"),
            stderr: (!rec.config.tty).then(|| dir.join("stderr")),
        }
    }

    fn spawn_log_copy(
        &self,
        rec: &ContainerRecord,
        out: std::fs::File,
        err: Option<std::fs::File>,
    ) -> Result<()> {
        let out = io::async_reader(out)?;
        let err = err.map(io::async_reader).transpose()?;
        let copy = io::copy_to_log(
            Some(out),
            err,
            rec.log_path.clone(),
            self.opts.log_max_bytes,
            self.opts.log_max_files,
        );
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                () = copy => {}
                _ = shutdown.changed() => {}
            }
        });
        Ok(())
    }

    fn base_status(&self, rec: &ContainerRecord) -> ContainerStatus {
        ContainerStatus {
            id: rec.id.clone(),
            sandbox_id: rec.sandbox_id.clone(),
            name: rec.config.name.clone(),
            attempt: rec.config.attempt,
            image: rec.config.image.clone(),
            image_id: rec.image_id.clone(),
            state: ContainerState::Created,
            pid: None,
            created_at: rec.created_at,
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: String::new(),
            message: String::new(),
            log_path: rec.log_path.clone(),
            labels: rec.config.labels.clone(),
            annotations: rec.config.annotations.clone(),
        }
    }

    async fn status_of(&self, rec: &ContainerRecord) -> Result<ContainerStatus> {
        let mut status = self.base_status(rec);
        let started = self.started(&rec.id)?;
        status.started_at = started.as_ref().map(|s| s.started_at);
        let exited = match (self.exited(&rec.id)?, &started) {
            (Some(e), _) => Some(e),
            (None, None) => None,
            (None, Some(_)) => {
                let request = GetRequest {
                    container_id: rec.id.clone(),
                    exec_id: String::new(),
                };
                let mut tasks = self.tasks();
                match self
                    .client
                    .call("getting the task", tasks.get(self.client.req(request)))
                    .await
                {
                    Ok(resp) => {
                        let process = resp.process.unwrap_or_default();
                        match TaskStatus::try_from(process.status).unwrap_or(TaskStatus::Unknown) {
                            TaskStatus::Stopped => {
                                let finished_at = process
                                    .exited_at
                                    .and_then(|t| SystemTime::try_from(t).ok())
                                    .unwrap_or_else(SystemTime::now);
                                Some(self.record_exit(
                                    rec,
                                    process.exit_status as i32,
                                    finished_at,
                                )?)
                            }
                            TaskStatus::Unknown => {
                                status.state = ContainerState::Unknown;
                                None
                            }
                            _ => {
                                status.state = ContainerState::Running;
                                status.pid = Some(process.pid);
                                None
                            }
                        }
                    }
                    Err(e) if is_not_found(&e) => {
                        let gone = Exited {
                            exit_code: 255,
                            finished_at: SystemTime::now(),
                            reason: "Error".into(),
                            message: "containerd has no task for the container any more".into(),
                        };
                        record::write(&self.dir(&rec.id).join(EXIT_FILE), &gone)?;
                        Some(gone)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(e) = exited {
            status.state = ContainerState::Exited;
            status.exit_code = Some(e.exit_code);
            status.finished_at = Some(e.finished_at);
            status.reason = e.reason;
            status.message = e.message;
        }
        Ok(status)
    }

    /// Records a stopped task's exit, with the OOM verdict read from its
    /// cgroup (which exists until the task is deleted).
    fn record_exit(
        &self,
        rec: &ContainerRecord,
        code: i32,
        finished_at: SystemTime,
    ) -> Result<Exited> {
        let oom = cgroups::oom_kill_count(&self.cgroups, &rec.cgroups_path).unwrap_or(0) > 0;
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let exited = Exited {
            exit_code: code,
            finished_at,
            reason: reason.into(),
            message: String::new(),
        };
        record::write(&self.dir(&rec.id).join(EXIT_FILE), &exited)?;
        Ok(exited)
    }

    async fn create(&self, sandbox: &SandboxRecord, config: &ContainerConfig) -> Result<String> {
        if sandbox.state != SandboxState::Ready {
            return Err(RuntimeError::precondition(format!(
                "sandbox {} is not ready",
                sandbox.id
            )));
        }
        let image = self.opts.images.status(&config.image).ok_or_else(|| {
            RuntimeError::not_found(format!("image {:?} (pull it first)", config.image))
        })?;
        let layers = self.opts.images.layer_dirs(&config.image)?;
        let passwd = read_from_layers(&layers, "etc/passwd");
        let group = read_from_layers(&layers, "etc/group");
        let id = new_id();
        let cgroups_path = format!("{}/{id}", sandbox.cgroup_parent);
        let ns = &sandbox.namespaces;
        let input = SpecInput {
            sandbox: &sandbox.config,
            paths: SandboxPaths {
                network_ns: ns.net.as_deref(),
                ipc_ns: ns.ipc.as_deref(),
                uts_ns: ns.uts.as_deref(),
                resolv_conf: Some(&sandbox.resolv_conf),
                hostname_file: Some(&sandbox.hostname_file),
            },
            container: config,
            image: &image.config,
            // The runc shim mounts the snapshot at `rootfs` in the bundle
            // it makes; the spec names it relative to the bundle.
            rootfs: Path::new("rootfs"),
            cgroups_path: &cgroups_path,
            passwd: passwd.as_deref(),
            group: group.as_deref(),
        };
        let spec = spec::build(&input)?;
        let top = {
            let _one_at_a_time = self.image_lock.lock().await;
            images::ensure(&self.client, &self.opts.images, &config.image).await?
        };
        let dir = self.dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io(dir.display(), e))?;
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            config: config.clone(),
            image_id: image.id.clone(),
            created_at: SystemTime::now(),
            log_path: sandbox.config.log_directory.join(&config.log_path),
            cgroups_path,
            process: spec["process"].clone(),
        };
        let result = async {
            self.create_in_containerd(&rec, &spec, &top).await?;
            record::write(&dir.join(RECORD_FILE), &rec)
        }
        .await;
        if let Err(e) = result {
            self.delete_in_containerd(&id).await;
            let _ = record::remove_dir(&dir);
            return Err(e);
        }
        Ok(id)
    }

    /// The container's writable snapshot and its containerd record, made
    /// under a lease so the snapshot cannot be collected before the record
    /// references it.
    async fn create_in_containerd(
        &self,
        rec: &ContainerRecord,
        spec: &serde_json::Value,
        parent: &str,
    ) -> Result<()> {
        let lease = self.client.lease().await?;
        let result = async {
            let mut snapshots = SnapshotsClient::new(self.client.channel());
            let prepare = PrepareSnapshotRequest {
                snapshotter: images::SNAPSHOTTER.into(),
                key: rec.id.clone(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            };
            self.client
                .call(
                    "preparing the container's snapshot",
                    snapshots.prepare(self.client.leased(prepare, &lease)),
                )
                .await?;
            let options = self.opts.runtime_binary.as_ref().map(|b| prost_types::Any {
                type_url: RUNC_OPTIONS_TYPE_URL.into(),
                value: prost::Message::encode_to_vec(&RuncOptions {
                    binary_name: b.display().to_string(),
                }),
            });
            let spec_bytes = serde_json::to_vec(spec)
                .map_err(|e| RuntimeError::internal(format!("encoding the spec: {e}")))?;
            let container = Container {
                id: rec.id.clone(),
                labels: HashMap::from([
                    ("io.rkube.sandbox".to_string(), rec.sandbox_id.clone()),
                    (
                        "io.rkube.container-name".to_string(),
                        rec.config.name.clone(),
                    ),
                ]),
                image: rec.config.image.clone(),
                runtime: Some(container::Runtime {
                    name: RUNC_SHIM.into(),
                    options,
                }),
                spec: Some(prost_types::Any {
                    type_url: SPEC_TYPE_URL.into(),
                    value: spec_bytes,
                }),
                snapshotter: images::SNAPSHOTTER.into(),
                snapshot_key: rec.id.clone(),
                ..Default::default()
            };
            let mut containers = ContainersClient::new(self.client.channel());
            let request = CreateContainerRequest {
                container: Some(container),
            };
            self.client
                .call(
                    "creating the container",
                    containers.create(self.client.leased(request, &lease)),
                )
                .await
                .map(|_| ())
        }
        .await;
        self.client.release(lease).await;
        result
    }

    /// Removes the task, container record and snapshot of `id` from
    /// containerd, whichever exist; best effort (for cleanup paths).
    async fn delete_in_containerd(&self, id: &str) {
        let _ = self.remove_task(id).await;
        let mut containers = ContainersClient::new(self.client.channel());
        let request = DeleteContainerRequest { id: id.to_string() };
        let _ = self
            .client
            .call(
                "deleting the container",
                containers.delete(self.client.req(request)),
            )
            .await;
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let request = RemoveSnapshotRequest {
            snapshotter: images::SNAPSHOTTER.into(),
            key: id.to_string(),
        };
        let _ = self
            .client
            .call(
                "removing the snapshot",
                snapshots.remove(self.client.req(request)),
            )
            .await;
    }

    /// Deletes the task (runc deletes the container, the shim unmounts
    /// the rootfs and exits). A missing task is fine.
    async fn remove_task(&self, id: &str) -> Result<()> {
        let request = DeleteTaskRequest {
            container_id: id.to_string(),
        };
        let mut tasks = self.tasks();
        match self
            .client
            .call("deleting the task", tasks.delete(self.client.req(request)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn start(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.dir(&rec.id);
        if let Some(parent) = rec.log_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RuntimeError::io(parent.display(), e))?;
        }
        let fifos = Fifos::create(&dir, "", rec.config.stdin, rec.config.tty)?;
        // Read ends first: the shim blocks opening the write ends until
        // a reader exists.
        let out = io::open_reader(&fifos.stdout)?;
        let err = fifos.stderr.as_deref().map(io::open_reader).transpose()?;
        if let Some(stdin) = &fifos.stdin {
            self.holders()
                .insert(rec.id.clone(), io::open_holder(stdin)?);
        }
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let request = MountsRequest {
            snapshotter: images::SNAPSHOTTER.into(),
            key: rec.id.clone(),
        };
        let mounts = self
            .client
            .call(
                "the container's rootfs mounts",
                snapshots.mounts(self.client.req(request)),
            )
            .await?
            .mounts;
        let create = CreateTaskRequest {
            container_id: rec.id.clone(),
            rootfs: mounts,
            stdin: fifos.stdin_str(),
            stdout: fifos.stdout_str(),
            stderr: fifos.stderr_str(),
            terminal: rec.config.tty,
            ..Default::default()
        };
        let mut tasks = self.tasks();
        let created = self
            .client
            .call("creating the task", tasks.create(self.client.req(create)))
            .await;
        if let Err(e) = created {
            return Err(self.start_failed(rec, e).await);
        }
        // Taken before the start: the process may end before the call
        // returns, and its exit time must not precede its start time.
        let started_at = SystemTime::now();
        let request = StartRequest {
            container_id: rec.id.clone(),
            exec_id: String::new(),
        };
        let pid = match self
            .client
            .call("starting the task", tasks.start(self.client.req(request)))
            .await
        {
            Ok(resp) => resp.pid,
            Err(e) => {
                let _ = self.remove_task(&rec.id).await;
                return Err(self.start_failed(rec, e).await);
            }
        };
        record::write(&dir.join(STARTED_FILE), &Started { pid, started_at })?;
        self.spawn_log_copy(rec, out, err)
    }

    /// Marks a container whose start failed as exited (code 128, reason
    /// `StartError`, as containerd's CRI plugin reports it) and passes the
    /// error on.
    async fn start_failed(&self, rec: &ContainerRecord, e: RuntimeError) -> RuntimeError {
        self.holders().remove(&rec.id);
        let now = SystemTime::now();
        let _ = record::write(
            &self.dir(&rec.id).join(STARTED_FILE),
            &Started {
                pid: 0,
                started_at: now,
            },
        );
        let exited = Exited {
            exit_code: START_ERROR_CODE,
            finished_at: now,
            reason: "StartError".into(),
            message: e.message.clone(),
        };
        let _ = record::write(&self.dir(&rec.id).join(EXIT_FILE), &exited);
        e
    }

    async fn kill(&self, id: &str, exec_id: &str, signal: u32) -> Result<()> {
        let request = KillRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            signal,
            all: signal == 9 && exec_id.is_empty(),
        };
        let mut tasks = self.tasks();
        match self
            .client
            .call("signalling the task", tasks.kill(self.client.req(request)))
            .await
        {
            Ok(_) => Ok(()),
            // The process has ended already.
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::FailedPrecondition) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Waits for the task's main process (or exec `exec_id`) to end:
    /// `Some(exit status)`, or `None` once `timeout` has passed.
    async fn wait(&self, id: &str, exec_id: &str, timeout: Duration) -> Result<Option<u32>> {
        let request = WaitRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let mut tasks = self.tasks();
        let wait = self
            .client
            .call_unbounded("waiting for the task", tasks.wait(self.client.req(request)));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(resp)) => Ok(Some(resp.exit_status)),
            Ok(Err(e)) if is_not_found(&e) => Ok(Some(255)),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    async fn kill_and_wait(&self, id: &str, timeout: Duration) -> Result<()> {
        if !timeout.is_zero() {
            self.kill(id, "", 15).await?;
            if self.wait(id, "", timeout).await?.is_some() {
                return Ok(());
            }
        }
        self.kill(id, "", 9).await?;
        match self.wait(id, "", Duration::from_secs(30)).await? {
            Some(_) => Ok(()),
            None => Err(RuntimeError::new(
                ErrorKind::Timeout,
                format!("container {id} did not exit within 30s of SIGKILL"),
            )),
        }
    }

    /// Whether the container has a task that has not ended yet.
    fn may_run(&self, id: &str) -> Result<bool> {
        Ok(self.started(id)?.is_some() && self.exited(id)?.is_none())
    }

    async fn delete(&self, rec: &ContainerRecord) -> Result<()> {
        if self.may_run(&rec.id)? {
            self.kill_and_wait(&rec.id, Duration::ZERO).await?;
            // Settle the exit (and its OOM verdict) before the task and
            // its cgroup go.
            let _ = self.status_of(rec).await;
        }
        self.holders().remove(&rec.id);
        self.remove_task(&rec.id).await?;
        let mut containers = ContainersClient::new(self.client.channel());
        let request = DeleteContainerRequest { id: rec.id.clone() };
        match self
            .client
            .call(
                "deleting the container",
                containers.delete(self.client.req(request)),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let request = RemoveSnapshotRequest {
            snapshotter: images::SNAPSHOTTER.into(),
            key: rec.id.clone(),
        };
        match self
            .client
            .call(
                "removing the snapshot",
                snapshots.remove(self.client.req(request)),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        cgroups::remove(&self.cgroups, &rec.cgroups_path)?;
        record::remove_dir(&self.dir(&rec.id))
    }

    /// The record of a container whose task is running, else
    /// `FailedPrecondition`.
    async fn running(&self, id: &str) -> Result<ContainerRecord> {
        let rec = self.record(id)?;
        match self.status_of(&rec).await?.state {
            ContainerState::Running => Ok(rec),
            _ => Err(RuntimeError::precondition(format!(
                "container {id} is not running"
            ))),
        }
    }

    async fn exec_session(
        &self,
        rec: &ContainerRecord,
        request: &ExecRequest,
    ) -> Result<StreamSession> {
        let exec_id = new_id();
        let fifos = Fifos::create(
            &self.dir(&rec.id),
            &format!("exec-{exec_id}-"),
            request.stdin,
            request.tty,
        )?;
        let opened = (|| {
            let out = io::open_reader(&fifos.stdout)?;
            let err = fifos.stderr.as_deref().map(io::open_reader).transpose()?;
            let stdin = fifos.stdin.as_deref().map(io::open_holder).transpose()?;
            Ok::<_, RuntimeError>((out, err, stdin))
        })();
        let (out, err, stdin) = match opened {
            Ok(v) => v,
            Err(e) => {
                fifos.remove();
                return Err(e);
            }
        };
        let mut process = rec.process.clone();
        process["args"] = serde_json::json!(request.cmd);
        process["terminal"] = serde_json::json!(request.tty);
        let spec = prost_types::Any {
            type_url: PROCESS_TYPE_URL.into(),
            value: serde_json::to_vec(&process)
                .map_err(|e| RuntimeError::internal(format!("encoding the process: {e}")))?,
        };
        let exec = ExecProcessRequest {
            container_id: rec.id.clone(),
            stdin: fifos.stdin_str(),
            stdout: fifos.stdout_str(),
            stderr: fifos.stderr_str(),
            terminal: request.tty,
            spec: Some(spec),
            exec_id: exec_id.clone(),
        };
        let mut tasks = self.tasks();
        if let Err(e) = self
            .client
            .call("exec", tasks.exec(self.client.req(exec)))
            .await
        {
            fifos.remove();
            return Err(e);
        }
        let start = StartRequest {
            container_id: rec.id.clone(),
            exec_id: exec_id.clone(),
        };
        if let Err(e) = self
            .client
            .call("starting the exec", tasks.start(self.client.req(start)))
            .await
        {
            let delete = DeleteProcessRequest {
                container_id: rec.id.clone(),
                exec_id: exec_id.clone(),
            };
            let _ = self
                .client
                .call(
                    "deleting the exec",
                    tasks.delete_process(self.client.req(delete)),
                )
                .await;
            fifos.remove();
            return Err(e);
        }
        // The shim has the write ends open now, so reads see output, not
        // an early end of file.
        let stdout = io::async_reader(out)?;
        let stderr = err.map(io::async_reader).transpose()?;
        let stdin = stdin.map(io::async_writer).transpose()?;
        let (code_tx, code_rx) = tokio::sync::oneshot::channel();
        {
            let client = self.client.clone();
            let id = rec.id.clone();
            let exec_id = exec_id.clone();
            tokio::spawn(async move {
                let mut tasks = TasksClient::new(client.channel());
                let wait = WaitRequest {
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                };
                let code = client
                    .call_unbounded("waiting for the exec", tasks.wait(client.req(wait)))
                    .await
                    .map(|r| r.exit_status as i32);
                // Deleting the process waits for the shim to finish
                // copying its output.
                let delete = DeleteProcessRequest {
                    container_id: id,
                    exec_id,
                };
                let _ = client
                    .call(
                        "deleting the exec",
                        tasks.delete_process(client.req(delete)),
                    )
                    .await;
                fifos.remove();
                let _ = code_tx.send(code);
            });
        }
        let resize = request.tty.then(|| self.resizer(&rec.id, &exec_id));
        let stdin = stdin.map(|s| {
            let close = self.close_stdin(&rec.id, &exec_id);
            Box::pin(io::ClosingWriter::new(s, close)) as BoxWrite
        });
        Ok(StreamSession {
            stdin,
            stdout: if request.stdout || request.tty {
                Some(Box::pin(stdout) as BoxRead)
            } else {
                drain(stdout);
                None
            },
            stderr: match stderr {
                Some(s) if request.stderr => Some(Box::pin(s) as BoxRead),
                Some(s) => {
                    drain(s);
                    None
                }
                None => None,
            },
            resize,
            exit: Box::pin(async move {
                code_rx
                    .await
                    .unwrap_or_else(|_| Err(RuntimeError::internal("the exec waiter ended")))
            }),
        })
    }

    /// What to do once a caller lets go of a process's stdin: the shim
    /// holds a write end of the stdin fifo itself (so the process never
    /// sees end of file on its own); CloseIO drops it, and the process's
    /// stdin closes once the shim has copied what is still buffered.
    fn close_stdin(&self, id: &str, exec_id: &str) -> Box<dyn FnOnce() + Send> {
        let client = self.client.clone();
        let request = CloseIoRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            stdin: true,
        };
        let handle = tokio::runtime::Handle::try_current().ok();
        Box::new(move || {
            if let Some(handle) = handle {
                handle.spawn(async move {
                    let mut tasks = TasksClient::new(client.channel());
                    if let Err(e) = client
                        .call("closing stdin", tasks.close_io(client.req(request)))
                        .await
                    {
                        tracing::debug!("{e}");
                    }
                });
            }
        })
    }

    /// Resizes an exec's terminal. The trait's resizer is synchronous;
    /// resizes go through a channel to a task that applies them in order.
    fn resizer(&self, id: &str, exec_id: &str) -> crate::api::Resizer {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TerminalSize>();
        let client = self.client.clone();
        let id = id.to_string();
        let exec_id = exec_id.to_string();
        tokio::spawn(async move {
            let mut tasks = TasksClient::new(client.channel());
            while let Some(size) = rx.recv().await {
                let request = ResizePtyRequest {
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                    width: u32::from(size.width),
                    height: u32::from(size.height),
                };
                if let Err(e) = client
                    .call(
                        "resizing the terminal",
                        tasks.resize_pty(client.req(request)),
                    )
                    .await
                {
                    tracing::debug!("{e}");
                }
            }
        });
        Box::new(move |size| {
            tx.send(size)
                .map_err(|_| RuntimeError::precondition("the exec session has ended"))
        })
    }
}

/// Reads and discards an output nobody asked for, so the process never
/// blocks on a full pipe.
fn drain(mut rx: tokio::net::unix::pipe::Receiver) {
    tokio::spawn(async move {
        let mut sink = tokio::io::sink();
        let _ = tokio::io::copy(&mut rx, &mut sink).await;
    });
}

/// A file of the image as the container will see it: the topmost layer
/// that has it wins (a whiteout or anything but a regular file hides it).
fn read_from_layers(layers: &[PathBuf], path: &str) -> Option<String> {
    for layer in layers.iter().rev() {
        let p = layer.join(path);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => return std::fs::read_to_string(&p).ok(),
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

#[async_trait]
impl Runtime for ContainerdRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let mut version = VersionClient::new(self.client.channel());
        let resp = self
            .client
            .call("version", version.version(self.client.req(())))
            .await?;
        Ok(RuntimeVersion {
            runtime_name: "containerd".into(),
            runtime_version: resp.version,
        })
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        Ok(self.sandboxes.run(config).await?.id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.sandboxes.get(id)?;
        for rec in self
            .all_records()?
            .into_iter()
            .filter(|r| r.sandbox_id == id)
        {
            if self.may_run(&rec.id)? {
                self.kill_and_wait(&rec.id, Duration::ZERO).await?;
            }
        }
        self.sandboxes.stop(id).await.map(|_| ())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        for rec in self
            .all_records()?
            .into_iter()
            .filter(|r| r.sandbox_id == id)
        {
            self.delete(&rec).await?;
        }
        self.sandboxes.remove(id).await
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus> {
        Ok(self.sandboxes.get(id)?.status())
    }

    async fn list_pod_sandboxes(&self, filter: &SandboxFilter) -> Result<Vec<SandboxStatus>> {
        self.sandboxes.statuses(filter)
    }

    async fn pull_image(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<ImageInfo> {
        let info = self.opts.images.pull(image, auth).await?;
        let _one_at_a_time = self.image_lock.lock().await;
        images::ensure(&self.client, &self.opts.images, image).await?;
        Ok(info)
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>> {
        Ok(self.opts.images.status(image))
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        Ok(self.opts.images.list())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let info = self
            .opts
            .images
            .status(image)
            .ok_or_else(|| RuntimeError::not_found(format!("image {image}")))?;
        let names = images::record_names(&info.repo_tags, &info.repo_digests, &info.id);
        images::delete_records(&self.client, &names).await?;
        self.opts.images.remove(image).await
    }

    async fn import_image(&self, archive: &Path) -> Result<Vec<ImageInfo>> {
        let imported = self.opts.images.import(archive).await?;
        let _one_at_a_time = self.image_lock.lock().await;
        for info in &imported {
            images::ensure(&self.client, &self.opts.images, &info.id).await?;
        }
        Ok(imported)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox: &SandboxConfig,
    ) -> Result<String> {
        let sandbox = self.sandboxes.get(sandbox_id)?;
        self.create(&sandbox, config).await
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let rec = self.record(id)?;
        if self.started(id)?.is_some() {
            return Err(RuntimeError::precondition(format!(
                "container {id} was started already"
            )));
        }
        self.start(&rec).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.record(id)?;
        if self.may_run(id)? {
            self.kill_and_wait(id, timeout).await?;
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        match self.record(id) {
            Ok(rec) => self.delete(&rec).await,
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        self.status_of(&self.record(id)?).await
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        let mut out = Vec::new();
        for rec in self.all_records()? {
            if !filter.may_match(&rec.id, &rec.sandbox_id) {
                continue;
            }
            let status = self.status_of(&rec).await?;
            if filter.matches(&status) {
                out.push(status);
            }
        }
        Ok(out)
    }

    async fn exec(&self, container_id: &str, request: ExecRequest) -> Result<StreamSession> {
        let rec = self.running(container_id).await?;
        if request.cmd.is_empty() {
            return Err(RuntimeError::invalid("exec needs a command"));
        }
        self.exec_session(&rec, &request).await
    }

    async fn attach(&self, container_id: &str, stdin: bool) -> Result<StreamSession> {
        let rec = self.running(container_id).await?;
        let stdin = if stdin && rec.config.stdin {
            let writer = io::open_writer(&self.dir(container_id).join("stdin"))?;
            if rec.config.stdin_once {
                // Once this attach lets go of stdin, the container's stdin
                // closes: drop rkube's own handle along with it.
                let holders = self.stdin_holders.clone();
                let id = rec.id.clone();
                let close = self.close_stdin(&rec.id, "");
                let on_close = Box::new(move || {
                    holders
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    close();
                });
                Some(Box::pin(io::ClosingWriter::new(writer, on_close)) as BoxWrite)
            } else {
                Some(Box::pin(writer) as BoxWrite)
            }
        } else {
            None
        };
        let client = self.client.clone();
        let id = rec.id.clone();
        let exit = Box::pin(async move {
            let mut tasks = TasksClient::new(client.channel());
            let request = WaitRequest {
                container_id: id,
                exec_id: String::new(),
            };
            client
                .call_unbounded("waiting for the container", tasks.wait(client.req(request)))
                .await
                .map(|r| r.exit_status as i32)
        });
        crate::streams::attach_log(&rec.log_path, stdin, exit).await
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<TcpStream> {
        let sandbox = self.sandboxes.get(sandbox_id)?;
        let net = sandbox.namespaces.net.as_ref().ok_or_else(|| {
            RuntimeError::precondition(format!("sandbox {sandbox_id} has no network namespace"))
        })?;
        crate::portforward::connect_in_netns(net, port).await
    }

    async fn container_stats(&self, id: &str) -> Result<ResourceStats> {
        let rec = self.record(id)?;
        cgroups::read_stats(&self.cgroups, &rec.cgroups_path)
    }

    async fn pod_sandbox_stats(&self, id: &str) -> Result<ResourceStats> {
        let sandbox = self.sandboxes.get(id)?;
        cgroups::read_stats(&self.cgroups, &sandbox.cgroup_parent)
    }
}
