//! One task per pod: drives the pod toward its spec through the runtime
//! (sandbox, volumes, init containers in order, then the containers, with
//! restarts per `restartPolicy` and crash-loop back-off), reports its
//! status, and on deletion stops everything within the grace period and
//! finalizes the pod's deletion. Level-triggered: each sync looks at what
//! the runtime has, so a sync after a restart of the kubelet continues
//! where the last one left off.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use runtime::types::{
    ContainerFilter, ContainerState, ContainerStatus as RtStatus, SandboxFilter, SandboxState,
    SandboxStatus,
};
use tokio::sync::mpsc;

use crate::pod::backoff::{crash_loop_message, stable_key, CrashLoopBackOff};
use crate::pod::command::{self, LABEL_CONTAINER_NAME, LABEL_POD_UID};
use crate::pod::env::{self, EnvInputs};
use crate::pod::resources::{pod_fits, pod_requests, ResourceAmounts};
use crate::pod::status::{self, StatusInputs, Waiting};
use crate::probe::{self, Kind, Prober};
use crate::volumes::{self, VolumeSources};
use crate::{node_info, KubeletConfig, Result};

/// What the manager tells a worker.
pub enum Update {
    Pod(Box<Pod>),
    /// The pod is gone from the API.
    Deleted,
}

/// How often a pod is synced when nothing else happens: how quickly an
/// exited container is seen (upstream relists every second too).
const RESYNC: Duration = Duration::from_secs(1);

/// Volumes fed from ConfigMaps and Secrets are rewritten every this many
/// syncs (about every 5 seconds).
const VOLUME_RESYNC_EVERY: u64 = 5;

pub struct PodWorker {
    cfg: KubeletConfig,
    pod: Pod,
    backoff: CrashLoopBackOff,
    waiting: BTreeMap<String, Waiting>,
    last_status: Option<PodStatus>,
    memory_capacity: i64,
    /// The pod reached Succeeded or Failed: nothing restarts any more.
    terminal: bool,
    prober: Prober,
    /// Admission has passed (or the pod ran before a restart).
    admitted: bool,
    /// Why admission rejected the pod: (reason, message).
    rejected: Option<(String, String)>,
    /// Syncs so far, to pace periodic work.
    syncs: u64,
    pull_backoff: CrashLoopBackOff,
    /// When each image's last pull failed.
    pull_failures: BTreeMap<String, SystemTime>,
    /// Probe verdicts by container name, as the status reports them.
    readiness: BTreeMap<String, bool>,
    startup: BTreeMap<String, bool>,
}

fn name_of(pod: &Pod) -> (String, String, String) {
    let m = &pod.metadata;
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default(),
    )
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The newest attempt of container `name` among `all`.
fn latest<'a>(all: &'a [RtStatus], name: &str) -> Option<&'a RtStatus> {
    all.iter()
        .filter(|c| c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(name))
        .max_by_key(|c| (c.attempt, c.created_at))
}

/// What to do with a container now.
enum Step {
    Start { attempt: u32 },
    Wait,
    Done,
}

impl PodWorker {
    pub fn new(cfg: KubeletConfig, pod: Pod) -> Self {
        let memory_capacity = node_info::meminfo().get("MemTotal").copied().unwrap_or(0) as i64;
        PodWorker {
            cfg,
            pod,
            backoff: CrashLoopBackOff::default(),
            waiting: BTreeMap::new(),
            last_status: None,
            memory_capacity,
            terminal: false,
            prober: Prober::default(),
            admitted: false,
            rejected: None,
            syncs: 0,
            pull_backoff: CrashLoopBackOff::default(),
            pull_failures: BTreeMap::new(),
            readiness: BTreeMap::new(),
            startup: BTreeMap::new(),
        }
    }

    pub async fn run(mut self, mut updates: mpsc::UnboundedReceiver<Update>) {
        let mut deleted = false;
        loop {
            if deleted || self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate(deleted).await;
                return;
            }
            if let Err(e) = self.sync().await {
                let (ns, name, _) = name_of(&self.pod);
                tracing::warn!(pod = %format!("{ns}/{name}"), "sync: {e}");
            }
            tokio::select! {
                update = updates.recv() => match update {
                    Some(Update::Pod(p)) => self.pod = *p,
                    Some(Update::Deleted) | None => deleted = true,
                },
                _ = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.cfg.client.clone(), &name_of(&self.pod).0)
    }

    async fn runtime_state(&self) -> Result<(Option<SandboxStatus>, Vec<RtStatus>)> {
        let uid = name_of(&self.pod).2;
        let selector = BTreeMap::from([(LABEL_POD_UID.to_string(), uid.clone())]);
        let sandboxes = self
            .cfg
            .runtime
            .list_pod_sandboxes(&SandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            })
            .await?;
        let sandbox = sandboxes
            .into_iter()
            .max_by_key(|s| (s.state == SandboxState::Ready, s.created_at));
        let containers = self
            .cfg
            .runtime
            .list_containers(&ContainerFilter {
                label_selector: selector,
                ..Default::default()
            })
            .await?;
        Ok((sandbox, containers))
    }

    /// Admission, once per pod before anything runs: a pod whose requests
    /// do not fit what the node has left is rejected (Failed, with
    /// upstream's reason and message) and never started.
    async fn admit(
        &mut self,
        sandbox: Option<&SandboxStatus>,
        containers: &[RtStatus],
    ) -> Result<()> {
        if self.rejected.is_some() {
            return Ok(());
        }
        if self.admitted || sandbox.is_some() || !containers.is_empty() {
            self.admitted = true;
            return Ok(());
        }
        let info = node_info::MachineInfo::read(&self.cfg.root_dir);
        let allocatable = ResourceAmounts {
            cpu_milli: i64::from(info.cpus) * 1000,
            memory_bytes: info.memory_bytes as i64,
        };
        let pods: Api<Pod> = Api::all(self.cfg.client.clone());
        let selector = format!("spec.nodeName={}", self.cfg.node_name);
        let others = pods.list(&ListParams::default().fields(&selector)).await?;
        let uid = name_of(&self.pod).2;
        let mut used = ResourceAmounts::default();
        for p in others
            .items
            .iter()
            .filter(|p| p.metadata.uid.as_deref() != Some(uid.as_str()))
        {
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            // Only pods this kubelet has admitted (they have a start time)
            // and that still run count against the node.
            let started = p.status.as_ref().is_some_and(|s| s.start_time.is_some());
            if started && phase != "Succeeded" && phase != "Failed" {
                let r = pod_requests(p);
                used.cpu_milli += r.cpu_milli;
                used.memory_bytes += r.memory_bytes;
            }
        }
        match pod_fits(&self.pod, allocatable, used) {
            Ok(()) => self.admitted = true,
            Err(unfit) => {
                let (ns, name, _) = name_of(&self.pod);
                tracing::info!(pod = %format!("{ns}/{name}"), "rejected: {unfit}");
                self.rejected =
                    Some((unfit.reason, format!("Pod was rejected: {}", unfit.message)));
                self.terminal = true;
            }
        }
        Ok(())
    }

    async fn sync(&mut self) -> Result<()> {
        let (mut sandbox, mut containers) = self.runtime_state().await?;
        self.admit(sandbox.as_ref(), &containers).await?;
        if !self.terminal {
            if sandbox
                .as_ref()
                .is_none_or(|s| s.state != SandboxState::Ready)
            {
                sandbox = self.start_sandbox(sandbox.as_ref()).await;
            }
            if let Some(sb) = sandbox.clone() {
                self.sync_containers(&sb, &containers).await;
                containers = self.runtime_state().await?.1;
                if self.run_probes(&sb, &containers).await {
                    containers = self.runtime_state().await?.1;
                }
                self.refresh_volumes(&containers).await;
            }
        }
        self.report(sandbox.as_ref(), &containers).await
    }

    /// Rewrites configMap, secret and projected volumes from the current
    /// objects every few syncs, so running containers see updates (as
    /// upstream's periodic volume sync does).
    async fn refresh_volumes(&mut self, containers: &[RtStatus]) {
        self.syncs = self.syncs.wrapping_add(1);
        let has_sourced_volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .is_some_and(|v| {
                v.iter()
                    .any(|v| v.config_map.is_some() || v.secret.is_some() || v.projected.is_some())
            });
        let any_running = containers
            .iter()
            .any(|c| c.state == ContainerState::Running);
        if !has_sourced_volumes || !any_running || !self.syncs.is_multiple_of(VOLUME_RESYNC_EVERY) {
            return;
        }
        let sources = self.volume_sources().await;
        if let Err(e) = volumes::prepare(&self.cfg.root_dir, &self.pod, &sources) {
            tracing::debug!("refreshing volumes: {e}");
        }
    }

    async fn start_sandbox(&mut self, previous: Option<&SandboxStatus>) -> Option<SandboxStatus> {
        let mut config = match command::sandbox_config(
            &self.pod,
            &self.cfg.cluster_dns,
            &self.cfg.cluster_domain,
            &self.cfg.log_root,
        ) {
            Ok(c) => c,
            Err(e) => {
                self.wait_all("CreateContainerConfigError", &e.to_string());
                return None;
            }
        };
        config.metadata.attempt = previous.map(|p| p.metadata.attempt + 1).unwrap_or(0);
        if let Some(prev) = previous {
            let _ = self.cfg.runtime.remove_pod_sandbox(&prev.id).await;
        }
        match self.cfg.runtime.run_pod_sandbox(&config).await {
            Ok(id) => self.cfg.runtime.pod_sandbox_status(&id).await.ok(),
            Err(e) => {
                self.wait_all(
                    "ContainerCreating",
                    &format!("Failed to create pod sandbox: {e}"),
                );
                None
            }
        }
    }

    fn wait_all(&mut self, reason: &str, message: &str) {
        for c in self.all_containers() {
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: reason.into(),
                    message: message.into(),
                },
            );
        }
    }

    fn all_containers(&self) -> Vec<Container> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        spec.init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers)
            .collect()
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    /// Whether an exited container should run again under `policy`.
    fn should_restart(policy: &str, exit_code: i32) -> bool {
        match policy {
            "Never" => false,
            "OnFailure" => exit_code != 0,
            _ => true,
        }
    }

    fn decide(&mut self, c: &Container, current: Option<&RtStatus>, policy: &str) -> Step {
        match current {
            None => Step::Start { attempt: 0 },
            Some(s) => match s.state {
                ContainerState::Running => Step::Wait,
                ContainerState::Created | ContainerState::Unknown => Step::Wait,
                ContainerState::Exited => {
                    let code = s.exit_code.unwrap_or(0);
                    if !Self::should_restart(policy, code) {
                        return Step::Done;
                    }
                    let key = stable_key(&self.pod, c);
                    let finished = s.finished_at.unwrap_or_else(SystemTime::now);
                    match self.backoff.check(&key, finished, SystemTime::now()) {
                        Ok(()) => Step::Start {
                            attempt: s.attempt + 1,
                        },
                        Err(delay) => {
                            self.waiting.insert(
                                c.name.clone(),
                                Waiting {
                                    reason: "CrashLoopBackOff".into(),
                                    message: crash_loop_message(delay, &c.name, &self.pod),
                                },
                            );
                            Step::Wait
                        }
                    }
                }
            },
        }
    }

    async fn sync_containers(&mut self, sandbox: &SandboxStatus, all: &[RtStatus]) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let policy = self.restart_policy().to_string();
        // Init containers, one at a time, in order; sidecars only need to
        // have started.
        for c in spec.init_containers.iter().flatten() {
            let current = latest(all, &c.name);
            if is_sidecar(c) {
                if let Step::Start { attempt } = self.decide(c, current, "Always") {
                    self.start_container(sandbox, c, attempt).await;
                    return;
                }
                continue;
            }
            match current {
                Some(s) if s.state == ContainerState::Exited && s.exit_code == Some(0) => continue,
                _ => {}
            }
            let init_policy = if policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            match self.decide(c, current, init_policy) {
                Step::Start { attempt } => {
                    self.start_container(sandbox, c, attempt).await;
                    return;
                }
                Step::Wait | Step::Done => return,
            }
        }
        for c in &spec.containers {
            let current = latest(all, &c.name);
            if let Step::Start { attempt } = self.decide(c, current, &policy) {
                self.start_container(sandbox, c, attempt).await;
            }
        }
    }

    /// Pulls `image` with the pod's `imagePullSecrets` for its registry,
    /// falling back to an anonymous pull like upstream.
    async fn pull(&self, image: &str) -> runtime::Result<runtime::types::ImageInfo> {
        let registry = runtime::image::ImageRef::parse(image)
            .map(|r| r.registry)
            .unwrap_or_default();
        let ns = name_of(&self.pod).0;
        let secrets: Api<Secret> = Api::namespaced(self.cfg.client.clone(), &ns);
        let names: Vec<String> = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        let mut last_err = None;
        for name in names {
            let Ok(Some(secret)) = secrets.get_opt(&name).await else {
                continue;
            };
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            if let Some(auth) = crate::pod::pull_secrets::credentials(&data).get(&registry) {
                match self.cfg.runtime.pull_image(image, Some(auth)).await {
                    Ok(info) => return Ok(info),
                    Err(e) => last_err = Some(e),
                }
            }
        }
        match self.cfg.runtime.pull_image(image, None).await {
            Ok(info) => Ok(info),
            Err(e) => Err(last_err.unwrap_or(e)),
        }
    }

    async fn ensure_image(&mut self, c: &Container) -> std::result::Result<(), Waiting> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if image.ends_with(":latest") || !image.rsplit('/').next().unwrap_or("").contains(':') {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let present = self
            .cfg
            .runtime
            .image_status(&image)
            .await
            .ok()
            .flatten()
            .is_some();
        match policy.as_str() {
            "Never" if !present => Err(Waiting {
                reason: "ErrImageNeverPull".into(),
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            }),
            "Never" => Ok(()),
            "IfNotPresent" if present => Ok(()),
            _ => {
                // Failed pulls back off like crashes (10 s doubling to
                // 5 min): ImagePullBackOff while waiting.
                let key = format!("pull {image}");
                let now = SystemTime::now();
                if let Some(failed) = self.pull_failures.get(&key) {
                    if let Some(delay) = self.pull_backoff.in_back_off(&key, *failed, now) {
                        let message =
                            format!("Back-off pulling image \"{image}\": retry in {delay:?}");
                        return Err(Waiting {
                            reason: "ImagePullBackOff".into(),
                            message,
                        });
                    }
                }
                let result = self.pull(&image).await;
                if result.is_err() && !present {
                    self.pull_backoff.next(&key, now, now);
                    self.pull_failures.insert(key, now);
                } else {
                    self.pull_backoff.remove(&key);
                    self.pull_failures.remove(&key);
                }
                self.pulled(c, result, present)
            }
        }
    }

    fn pulled(
        &self,
        c: &Container,
        result: runtime::Result<runtime::types::ImageInfo>,
        present: bool,
    ) -> std::result::Result<(), Waiting> {
        match result {
            Ok(_) => Ok(()),
            // With Always, a present image still runs when the
            // registry is unreachable (as upstream falls back).
            Err(_) if present => Ok(()),
            Err(e) => {
                let previous = self.waiting.get(&c.name).map(|w| w.reason.as_str());
                let reason = if matches!(previous, Some("ErrImagePull" | "ImagePullBackOff")) {
                    "ImagePullBackOff"
                } else {
                    "ErrImagePull"
                };
                Err(Waiting {
                    reason: reason.into(),
                    message: e.message,
                })
            }
        }
    }

    async fn fetch_env_sources(
        &self,
        c: &Container,
    ) -> (
        BTreeMap<String, BTreeMap<String, String>>,
        BTreeMap<String, BTreeMap<String, Vec<u8>>>,
        Vec<Service>,
    ) {
        let ns = name_of(&self.pod).0;
        let (cm_names, secret_names) = env::referenced_objects(c);
        let mut cms = BTreeMap::new();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.cfg.client.clone(), &ns);
        for name in cm_names {
            if let Ok(Some(cm)) = cm_api.get_opt(&name).await {
                let mut data = cm.data.unwrap_or_default();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                cms.insert(name, data);
            }
        }
        let mut secrets = BTreeMap::new();
        let secret_api: Api<Secret> = Api::namespaced(self.cfg.client.clone(), &ns);
        for name in secret_names {
            if let Ok(Some(s)) = secret_api.get_opt(&name).await {
                let data = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                secrets.insert(name, data);
            }
        }
        let services: Api<Service> = Api::namespaced(self.cfg.client.clone(), &ns);
        let mut svcs = services
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        if ns != "default" {
            let default: Api<Service> = Api::namespaced(self.cfg.client.clone(), "default");
            if let Ok(Some(k)) = default.get_opt("kubernetes").await {
                svcs.push(k);
            }
        }
        (cms, secrets, svcs)
    }

    async fn volume_sources(&self) -> VolumeSources {
        let ns = name_of(&self.pod).0;
        let (cms, secrets) = volumes::referenced(&self.pod);
        let mut out = VolumeSources::default();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.cfg.client.clone(), &ns);
        for name in cms {
            if let Ok(Some(cm)) = cm_api.get_opt(&name).await {
                let mut data: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(
                    cm.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                out.config_maps.insert(name, data);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.cfg.client.clone(), &ns);
        for name in secrets {
            if let Ok(Some(s)) = secret_api.get_opt(&name).await {
                out.secrets.insert(
                    name,
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect(),
                );
            }
        }
        out
    }

    async fn start_container(&mut self, sandbox: &SandboxStatus, c: &Container, attempt: u32) {
        let result = self.try_start(sandbox, c, attempt).await;
        match result {
            Ok(()) => {
                self.waiting.remove(&c.name);
            }
            Err(w) => {
                let (ns, name, _) = name_of(&self.pod);
                tracing::info!(pod = %format!("{ns}/{name}"), container = %c.name, "{}: {}", w.reason, w.message);
                self.waiting.insert(c.name.clone(), w);
            }
        }
    }

    async fn try_start(
        &mut self,
        sandbox: &SandboxStatus,
        c: &Container,
        attempt: u32,
    ) -> std::result::Result<(), Waiting> {
        if !self.waiting.contains_key(&c.name) {
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                },
            );
        }
        self.ensure_image(c).await?;
        let config_error = |m: String| Waiting {
            reason: "CreateContainerConfigError".into(),
            message: m,
        };
        let (cms, secrets, services) = self.fetch_env_sources(c).await;
        let allocatable = BTreeMap::new();
        let host_ips = vec![self.cfg.node_ip.to_string()];
        let inputs = EnvInputs {
            config_maps: &cms,
            secrets: &secrets,
            services: &services,
            pod_ips: &sandbox.ips,
            host_ips: &host_ips,
            node_allocatable: &allocatable,
        };
        let envs =
            env::container_env(&self.pod, c, &inputs).map_err(|e| config_error(e.to_string()))?;
        let sources = self.volume_sources().await;
        let vols =
            volumes::prepare(&self.cfg.root_dir, &self.pod, &sources).map_err(config_error)?;
        let mut mounts = volumes::container_mounts(c, &vols).map_err(config_error)?;
        let host_network = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if !host_network && !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            let (hostname, domain) =
                command::pod_hostname_and_domain(&self.pod, &self.cfg.cluster_domain)
                    .map_err(|e| config_error(e.to_string()))?;
            let hosts = volumes::write_hosts(
                &self.cfg.root_dir,
                &self.pod,
                sandbox.ips.first().map(String::as_str),
                &hostname,
                &domain,
            )
            .map_err(config_error)?;
            mounts.push(runtime::types::Mount {
                container_path: "/etc/hosts".into(),
                host_path: hosts,
                readonly: false,
            });
        }
        let config =
            command::container_config(&self.pod, c, attempt, envs, mounts, self.memory_capacity)
                .map_err(|e| config_error(e.to_string()))?;
        let sandbox_config = command::sandbox_config(
            &self.pod,
            &self.cfg.cluster_dns,
            &self.cfg.cluster_domain,
            &self.cfg.log_root,
        )
        .map_err(|e| config_error(e.to_string()))?;
        let id = self
            .cfg
            .runtime
            .create_container(&sandbox.id, &config, &sandbox_config)
            .await
            .map_err(|e| Waiting {
                reason: "CreateContainerError".into(),
                message: e.message,
            })?;
        if let Err(e) = self.cfg.runtime.start_container(&id).await {
            return Err(Waiting {
                reason: "RunContainerError".into(),
                message: e.message,
            });
        }
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let pod_ip = sandbox
                .ips
                .first()
                .cloned()
                .unwrap_or_else(|| "127.0.0.1".into());
            let rt = self.cfg.runtime.as_ref();
            // A failed postStart hook kills the container; the restart
            // policy decides what happens next, as upstream.
            if !probe::run_hook(hook, c, &id, &pod_ip, rt, Duration::from_secs(120)).await {
                let (ns, name, _) = name_of(&self.pod);
                tracing::info!(pod = %format!("{ns}/{name}"), container = %c.name, "FailedPostStartHook");
                let _ = rt.stop_container(&id, Duration::ZERO).await;
            }
        }
        // Keep the previous attempt (for `kubectl logs --previous`), drop
        // the older ones.
        if attempt >= 2 {
            let (_, all) = self.runtime_state().await.unwrap_or_default();
            for old in all.iter().filter(|s| {
                s.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name) && s.attempt + 1 < attempt
            }) {
                let _ = self.cfg.runtime.remove_container(&old.id).await;
            }
        }
        Ok(())
    }

    /// Runs the probes that are due; returns whether a container was
    /// killed for failing its liveness or startup probe.
    async fn run_probes(&mut self, sandbox: &SandboxStatus, all: &[RtStatus]) -> bool {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let containers: Vec<Container> = spec
            .init_containers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(is_sidecar)
            .chain(spec.containers.clone())
            .collect();
        let pod_ip = sandbox
            .ips
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into());
        let now = SystemTime::now();
        let mut killed = false;
        let mut live = Vec::new();
        for c in &containers {
            let Some(s) = latest(all, &c.name).filter(|s| s.state == ContainerState::Running)
            else {
                self.readiness.remove(&c.name);
                self.startup.remove(&c.name);
                continue;
            };
            live.push(s.id.clone());
            let started = s.started_at.unwrap_or(now);
            for (kind, p) in self.prober.due(c, &s.id, started, now) {
                let ok = probe::run(&p, c, &s.id, &pod_ip, self.cfg.runtime.as_ref()).await;
                let verdict = self.prober.record(&s.id, kind, &p, ok, SystemTime::now());
                if verdict == Some(false) && matches!(kind, Kind::Liveness | Kind::Startup) {
                    let grace = p
                        .termination_grace_period_seconds
                        .or(spec.termination_grace_period_seconds)
                        .unwrap_or(30)
                        .max(0) as u64;
                    let (ns, name, _) = name_of(&self.pod);
                    tracing::info!(pod = %format!("{ns}/{name}"), container = %c.name, "{kind:?} probe failed; restarting");
                    let _ = self
                        .cfg
                        .runtime
                        .stop_container(&s.id, Duration::from_secs(grace))
                        .await;
                    killed = true;
                    break;
                }
            }
            if c.readiness_probe.is_some() {
                let ready = self.prober.result(&s.id, Kind::Readiness) == Some(true);
                self.readiness.insert(c.name.clone(), ready);
            }
            if c.startup_probe.is_some() {
                let started = self.prober.result(&s.id, Kind::Startup) == Some(true);
                self.startup.insert(c.name.clone(), started);
            }
        }
        self.prober.retain(&live);
        killed
    }

    async fn report(
        &mut self,
        sandbox: Option<&SandboxStatus>,
        containers: &[RtStatus],
    ) -> Result<()> {
        let host_ips = vec![self.cfg.node_ip.to_string()];
        // Containers that run again are no longer waiting.
        let running: Vec<String> = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.labels.get(LABEL_CONTAINER_NAME).cloned())
            .collect();
        for name in running {
            self.waiting.remove(&name);
        }
        let previous = self.last_status.clone().or_else(|| self.pod.status.clone());
        let computed = status::pod_status(&StatusInputs {
            pod: &self.pod,
            previous: previous.as_ref(),
            sandbox,
            containers,
            runtime_name: &self.cfg.runtime_name,
            waiting: &self.waiting,
            readiness: &self.readiness,
            startup: &self.startup,
            host_ips: &host_ips,
            pod_is_terminal: self.terminal,
            now: SystemTime::now(),
        });
        let mut computed = computed;
        if let Some((reason, message)) = &self.rejected {
            computed.phase = Some("Failed".into());
            computed.reason = Some(reason.clone());
            computed.message = Some(message.clone());
        }
        let phase = computed.phase.clone().unwrap_or_default();
        if (phase == "Succeeded" || phase == "Failed") && !self.terminal {
            self.terminal = true;
            // A finished pod keeps its containers (for logs) but not its
            // network.
            if let Some(sb) = sandbox {
                let _ = self.cfg.runtime.stop_pod_sandbox(&sb.id).await;
            }
        }
        if self.last_status.as_ref() != Some(&computed) {
            let (ns, name, uid) = name_of(&self.pod);
            let patch = serde_json::json!({
                "metadata": { "uid": uid },
                "status": computed,
            });
            let api: Api<Pod> = Api::namespaced(self.cfg.client.clone(), &ns);
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            self.last_status = Some(computed);
        }
        Ok(())
    }

    /// Stops the pod's containers within its grace period, removes its
    /// sandbox and volumes, and (when the API still has the pod) deletes
    /// it for good.
    async fn terminate(&mut self, gone_from_api: bool) {
        let grace = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0) as u64;
        let timeout = Duration::from_secs(grace);
        if let Ok((sandbox, containers)) = self.runtime_state().await {
            let pod_ip = sandbox
                .and_then(|s| s.ips.first().cloned())
                .unwrap_or_default();
            let specs = self.all_containers();
            let began = std::time::Instant::now();
            let stops = containers
                .iter()
                .filter(|c| c.state == ContainerState::Running)
                .map(|s| {
                    let spec = specs
                        .iter()
                        .find(|c| Some(&c.name) == s.labels.get(LABEL_CONTAINER_NAME))
                        .cloned();
                    let rt = self.cfg.runtime.clone();
                    let pod_ip = pod_ip.clone();
                    async move {
                        // preStop runs first and counts against the grace
                        // period; SIGTERM then SIGKILL get what is left.
                        if let Some(c) = &spec {
                            let hook = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
                            if let Some(hook) = hook {
                                probe::run_hook(hook, c, &s.id, &pod_ip, rt.as_ref(), timeout)
                                    .await;
                            }
                        }
                        let left = timeout.saturating_sub(began.elapsed());
                        rt.stop_container(&s.id, left).await
                    }
                });
            for r in futures::future::join_all(stops).await {
                if let Err(e) = r {
                    tracing::warn!("stopping a container: {e}");
                }
            }
        }
        let uid = name_of(&self.pod).2;
        let selector = BTreeMap::from([(LABEL_POD_UID.to_string(), uid.clone())]);
        if let Ok(sandboxes) = self
            .cfg
            .runtime
            .list_pod_sandboxes(&SandboxFilter {
                label_selector: selector,
                ..Default::default()
            })
            .await
        {
            for sb in sandboxes {
                let _ = self.cfg.runtime.stop_pod_sandbox(&sb.id).await;
                if let Err(e) = self.cfg.runtime.remove_pod_sandbox(&sb.id).await {
                    tracing::warn!("removing sandbox {}: {e}", sb.id);
                }
            }
        }
        volumes::remove(&self.cfg.root_dir, &self.pod);
        if !gone_from_api {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let name = name_of(&self.pod).1;
            if let Err(e) = self.pods().delete(&name, &params).await {
                tracing::debug!("finalizing the deletion of {name}: {e}");
            }
        }
    }
}
