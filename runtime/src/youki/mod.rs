//! The youki backend: containers run by libcontainer (youki's library),
//! no daemon. Pod sandboxes are pinned namespaces plus CNI
//! ([`crate::pod_sandbox`]); images come from rkube's own
//! [`ImageStore`] and are mounted with overlayfs.
//!
//! libcontainer's create and exec fork; they run in helper processes
//! (`youki-shim`, `youki-exec`; see [`shim`]) so no fork ever happens in
//! rkube's multi-threaded async process. Start, kill and delete do not
//! fork and run on the blocking pool. Every fact about a container lives in
//! files in its directory, so a restarted rkube finds its containers as
//! they are.

pub mod exec;
mod rootfs;
pub mod shim;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;

use crate::api::{Runtime, StreamSession};
use crate::cgroups::{self, CgroupSetup};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::image::ImageStore;
use crate::pod_sandbox::{new_id, SandboxRecord, Sandboxes};
use crate::process::{pidfd_signal, wait_pidfd, PidWait};
use crate::record;
use crate::spec::{self, SandboxPaths, SpecInput};
use crate::types::*;
use shim::{Exited, ShimConfig, Started};

/// How to start the helper processes: a program and the arguments that
/// select the shim or the exec helper (the `rkube` binary itself, with
/// `youki-shim` / `youki-exec`).
#[derive(Debug, Clone)]
pub struct HelperCommand {
    pub program: PathBuf,
    pub shim_args: Vec<String>,
    pub exec_args: Vec<String>,
}

impl HelperCommand {
    /// The running executable, which must dispatch to [`helper_main`].
    pub fn current_exe() -> Result<Self> {
        let program = std::env::current_exe()
            .map_err(|e| RuntimeError::internal(format!("finding the rkube executable: {e}")))?;
        Ok(HelperCommand {
            program,
            shim_args: vec!["youki-shim".into()],
            exec_args: vec!["youki-exec".into()],
        })
    }
}

/// Runs a helper if `args` (without the program name) ask for one:
/// `youki-shim <container-dir>` or `youki-exec <request>`. Returns the
/// process exit code, or `None` when `args` are not a helper's.
pub fn helper_main(args: &[String]) -> Option<i32> {
    match args {
        [cmd, dir] if cmd == "youki-shim" => Some(shim::main(Path::new(dir))),
        [cmd, req] if cmd == "youki-exec" => Some(exec::main(Path::new(req))),
        _ => None,
    }
}

pub struct YoukiOptions {
    /// Where sandboxes and containers keep their files.
    pub root: PathBuf,
    /// libcontainer's state directory (runtime state; `/run/...`).
    pub state_root: PathBuf,
    pub helper: HelperCommand,
    pub images: Arc<ImageStore>,
    pub cni: Option<Arc<crate::cni::Cni>>,
    /// Parent of every pod cgroup (`/rkube`).
    pub cgroup_root: String,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
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
}

pub struct YoukiRuntime {
    opts: YoukiOptions,
    sandboxes: Sandboxes,
    containers_dir: PathBuf,
    cgroups: CgroupSetup,
}

const RECORD_FILE: &str = "container.json";

impl YoukiRuntime {
    pub fn new(opts: YoukiOptions) -> Result<Self> {
        let sandboxes = Sandboxes::new(
            opts.root.join("sandboxes"),
            opts.cni.clone(),
            &opts.cgroup_root,
        )?;
        let containers_dir = opts.root.join("containers");
        for d in [&containers_dir, &opts.state_root] {
            std::fs::create_dir_all(d).map_err(|e| RuntimeError::io(d.display(), e))?;
        }
        Ok(YoukiRuntime {
            opts,
            sandboxes,
            containers_dir,
            cgroups: CgroupSetup::detect()?,
        })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir.join(id)
    }

    fn record(&self, id: &str) -> Result<ContainerRecord> {
        record::read(&self.dir(id).join(RECORD_FILE))?
            .ok_or_else(|| RuntimeError::not_found(format!("container {id}")))
    }

    fn status_of(&self, rec: &ContainerRecord) -> Result<ContainerStatus> {
        let dir = self.dir(&rec.id);
        let started: Option<Started> = record::read(&dir.join(shim::STARTED_FILE))?;
        let exited: Option<Exited> = record::read(&dir.join(shim::EXIT_FILE))?;
        let mut status = ContainerStatus {
            id: rec.id.clone(),
            sandbox_id: rec.sandbox_id.clone(),
            name: rec.config.name.clone(),
            attempt: rec.config.attempt,
            image: rec.config.image.clone(),
            image_id: rec.image_id.clone(),
            state: ContainerState::Created,
            pid: None,
            created_at: rec.created_at,
            started_at: started.as_ref().map(|s| s.started_at),
            finished_at: None,
            exit_code: None,
            reason: String::new(),
            message: String::new(),
            log_path: rec.log_path.clone(),
            labels: rec.config.labels.clone(),
            annotations: rec.config.annotations.clone(),
        };
        match (started, exited) {
            (_, Some(e)) => {
                status.state = ContainerState::Exited;
                status.exit_code = Some(e.exit_code);
                status.finished_at = Some(e.finished_at);
                status.reason = if e.oom_killed {
                    "OOMKilled"
                } else if e.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .into();
            }
            (Some(s), None) => {
                if crate::process::alive(s.shim_pid) {
                    status.state = ContainerState::Running;
                    status.pid = Some(s.pid);
                } else {
                    status.state = ContainerState::Exited;
                    status.exit_code = Some(255);
                    status.reason = "Error".into();
                    status.message = "the container's shim ended without recording an exit".into();
                }
            }
            (None, None) => {}
        }
        Ok(status)
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
        record::read(&self.dir(id).join(shim::STARTED_FILE))
    }

    fn has_exited(&self, id: &str) -> bool {
        self.dir(id).join(shim::EXIT_FILE).exists()
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
        let id = new_id();
        let dir = self.dir(&id);
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| RuntimeError::io(bundle.display(), e))?;
        let result = self.write_bundle(&id, &bundle, sandbox, config, &image, &layers);
        if let Err(e) = result {
            let _ = rootfs::unmount(&bundle);
            let _ = record::remove_dir(&dir);
            return Err(e);
        }
        Ok(id)
    }

    fn write_bundle(
        &self,
        id: &str,
        bundle: &Path,
        sandbox: &SandboxRecord,
        config: &ContainerConfig,
        image: &ImageInfo,
        layers: &[PathBuf],
    ) -> Result<()> {
        let rootfs = rootfs::mount_overlay(bundle, layers)?;
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok();
        let group = std::fs::read_to_string(rootfs.join("etc/group")).ok();
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
            rootfs: &rootfs,
            cgroups_path: &cgroups_path,
            passwd: passwd.as_deref(),
            group: group.as_deref(),
        };
        let spec = spec::build(&input)?;
        let spec_path = bundle.join("config.json");
        std::fs::write(
            &spec_path,
            serde_json::to_vec_pretty(&spec).unwrap_or_default(),
        )
        .map_err(|e| RuntimeError::io(spec_path.display(), e))?;
        let log_path = sandbox.config.log_directory.join(&config.log_path);
        let rec = ContainerRecord {
            id: id.to_string(),
            sandbox_id: sandbox.id.clone(),
            config: config.clone(),
            image_id: image.id.clone(),
            created_at: SystemTime::now(),
            log_path,
            cgroups_path,
        };
        record::write(&self.dir(id).join(RECORD_FILE), &rec)
    }

    async fn spawn_shim(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.dir(&rec.id);
        let config = ShimConfig {
            id: rec.id.clone(),
            state_root: self.opts.state_root.clone(),
            bundle: dir.join("bundle"),
            log_path: rec.log_path.clone(),
            log_max_bytes: self.opts.log_max_bytes,
            log_max_files: self.opts.log_max_files,
            stdin: rec.config.stdin,
            cgroups_path: rec.cgroups_path.clone(),
        };
        record::write(&dir.join(shim::CONFIG_FILE), &config)?;
        let mut child = tokio::process::Command::new(&self.opts.helper.program)
            .args(&self.opts.helper.shim_args)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                RuntimeError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "starting the shim {}: {e}",
                        self.opts.helper.program.display()
                    ),
                )
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // The shim lives on; reap it whenever it ends so it never lingers
        // as a zombie.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        let read = tokio::time::timeout(Duration::from_secs(60), reader.read_line(&mut line)).await;
        match read {
            Err(_) => Err(RuntimeError::new(
                ErrorKind::Timeout,
                format!("container {}: the shim did not report within 60s", rec.id),
            )),
            Ok(Err(e)) => Err(RuntimeError::io("reading the shim's report", e)),
            Ok(Ok(_)) => {
                let line = line.trim_end();
                if line.starts_with("ok ") {
                    Ok(())
                } else {
                    let message = line.strip_prefix("error ").unwrap_or(line);
                    let message = if message.is_empty() {
                        "the shim ended without a report"
                    } else {
                        message
                    };
                    Err(RuntimeError::new(
                        ErrorKind::InvalidSpec,
                        message.to_string(),
                    ))
                }
            }
        }
    }

    /// Signals the container and waits for its shim to record the exit.
    async fn kill_and_wait(&self, id: &str, started: &Started, timeout: Duration) -> Result<()> {
        let shim = match PidWait::open(started.shim_pid) {
            Some(w) => w,
            None => return Ok(()),
        };
        if self.has_exited(id) {
            return Ok(());
        }
        if !timeout.is_zero() {
            pidfd_signal(started.pid, rustix::process::Signal::TERM);
            if wait_pidfd(&shim, timeout).await {
                return Ok(());
            }
        }
        pidfd_signal(started.pid, rustix::process::Signal::KILL);
        if wait_pidfd(&shim, Duration::from_secs(30)).await {
            Ok(())
        } else {
            Err(RuntimeError::new(
                ErrorKind::Timeout,
                format!("container {id} did not exit within 30s of SIGKILL"),
            ))
        }
    }

    async fn delete(&self, rec: &ContainerRecord) -> Result<()> {
        if let Some(started) = self.started(&rec.id)? {
            if !self.has_exited(&rec.id) {
                self.kill_and_wait(&rec.id, &started, Duration::ZERO)
                    .await?;
            }
        }
        let state_dir = self.opts.state_root.join(&rec.id);
        if state_dir.exists() {
            let id = rec.id.clone();
            tokio::task::spawn_blocking(move || {
                libcontainer::container::Container::load(state_dir.clone())
                    .and_then(|mut c| c.delete(true))
                    .map_err(|e| RuntimeError::internal(format!("deleting container {id}: {e}")))
                    .or_else(|e| record::remove_dir(&state_dir).and(Err(e)))
            })
            .await
            .map_err(|e| RuntimeError::internal(format!("delete task: {e}")))??;
        }
        cgroups::remove(&self.cgroups, &rec.cgroups_path)?;
        let dir = self.dir(&rec.id);
        rootfs::unmount(&dir.join("bundle"))?;
        record::remove_dir(&dir)
    }

    fn running(&self, id: &str) -> Result<(ContainerRecord, Started)> {
        let rec = self.record(id)?;
        let status = self.status_of(&rec)?;
        match (status.state, self.started(id)?) {
            (ContainerState::Running, Some(s)) => Ok((rec, s)),
            _ => Err(RuntimeError::precondition(format!(
                "container {id} is not running"
            ))),
        }
    }
}

#[async_trait]
impl Runtime for YoukiRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion {
            runtime_name: "youki".into(),
            runtime_version: "0.7.0".into(),
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
            if let Some(started) = self.started(&rec.id)? {
                self.kill_and_wait(&rec.id, &started, Duration::ZERO)
                    .await?;
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
        self.opts.images.pull(image, auth).await
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>> {
        Ok(self.opts.images.status(image))
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        Ok(self.opts.images.list())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.opts.images.remove(image).await
    }

    async fn import_image(&self, archive: &Path) -> Result<Vec<ImageInfo>> {
        self.opts.images.import(archive).await
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
        if let Some(parent) = rec.log_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RuntimeError::io(parent.display(), e))?;
        }
        self.spawn_shim(&rec).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.record(id)?;
        match self.started(id)? {
            Some(started) => self.kill_and_wait(id, &started, timeout).await,
            None => Ok(()),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        match self.record(id) {
            Ok(rec) => self.delete(&rec).await,
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        self.status_of(&self.record(id)?)
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        let mut out = Vec::new();
        for rec in self.all_records()? {
            if !filter.may_match(&rec.id, &rec.sandbox_id) {
                continue;
            }
            let status = self.status_of(&rec)?;
            if filter.matches(&status) {
                out.push(status);
            }
        }
        Ok(out)
    }

    async fn exec(&self, container_id: &str, request: ExecRequest) -> Result<StreamSession> {
        let (_, started) = self.running(container_id)?;
        if request.cmd.is_empty() {
            return Err(RuntimeError::invalid("exec needs a command"));
        }
        let req_path = self
            .dir(container_id)
            .join(format!("exec-{}.json", new_id()));
        record::write(
            &req_path,
            &exec::ExecConfig {
                id: container_id.to_string(),
                state_root: self.opts.state_root.clone(),
                args: request.cmd.clone(),
            },
        )?;
        let mut cmd = tokio::process::Command::new(&self.opts.helper.program);
        cmd.args(&self.opts.helper.exec_args).arg(&req_path);
        let pts = PathBuf::from(format!("/proc/{}/root/dev/pts", started.pid));
        crate::streams::spawn_exec(cmd, &request, Some(&pts), req_path)
    }

    async fn attach(&self, container_id: &str, stdin: bool) -> Result<StreamSession> {
        let (rec, started) = self.running(container_id)?;
        let dir = self.dir(container_id);
        let stdin = if stdin && rec.config.stdin {
            let fifo = dir.join(shim::STDIN_FIFO);
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .await
                .map_err(|e| RuntimeError::io(fifo.display(), e))?;
            Some(Box::pin(f) as crate::api::BoxWrite)
        } else {
            None
        };
        let shim = PidWait::open(started.shim_pid);
        let exit_file = dir.join(shim::EXIT_FILE);
        let exit = Box::pin(async move {
            if let Some(shim) = shim {
                while !wait_pidfd(&shim, Duration::from_secs(3600)).await {}
            }
            let exited: Option<Exited> = record::read(&exit_file)?;
            Ok(exited.map(|e| e.exit_code).unwrap_or(255))
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
