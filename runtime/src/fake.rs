//! A runtime that runs nothing: sandboxes, containers and images are
//! records in memory, and time moves only when a test says so. For unit
//! tests of the kubelet and for simulated nodes at scale.
//!
//! Containers "run" from start until stopped or until a test calls
//! [`FakeRuntime::exit_container`]; a stop ends them with 137 (killed) when
//! the timeout is zero and 0 otherwise.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::net::TcpStream;

use crate::api::{Runtime, StreamSession};
use crate::error::{ErrorKind, Result, RuntimeError};
use crate::types::*;

#[derive(Default)]
struct State {
    next_id: u64,
    sandboxes: BTreeMap<String, SandboxStatus>,
    containers: BTreeMap<String, ContainerStatus>,
    images: BTreeMap<String, ImageInfo>,
    unpullable: HashSet<String>,
    /// Every call, in order, for tests that check what was asked.
    calls: Vec<String>,
}

#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

fn epoch(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn digest_of(s: &str) -> String {
    // Deterministic and distinct per name; not a real hash of content.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("sha256:{h:016x}{h:016x}{h:016x}{h:016x}")
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes pulls of `image` fail as a missing image would.
    pub fn make_unpullable(&self, image: &str) {
        self.state
            .lock()
            .unwrap()
            .unpullable
            .insert(image.to_string());
    }

    /// Ends a running container with `code`, as if its process exited.
    pub fn exit_container(&self, id: &str, code: i32) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        let tick = st.next_id;
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::not_found(id))?;
        finish(c, code, tick);
        Ok(())
    }

    /// The calls made so far (`run_pod_sandbox <name>`, `start_container <id>`, …).
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn with<T>(&self, call: String, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(call);
        st.next_id += 1;
        f(&mut st)
    }
}

fn finish(c: &mut ContainerStatus, code: i32, tick: u64) {
    if c.state == ContainerState::Running {
        c.state = ContainerState::Exited;
        c.exit_code = Some(code);
        c.pid = None;
        c.finished_at = Some(epoch(tick));
        c.reason = if code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        };
    }
}

fn image_info(name: &str) -> ImageInfo {
    ImageInfo {
        id: digest_of(name),
        repo_tags: vec![name.to_string()],
        repo_digests: vec![format!("{name}@{}", digest_of(&format!("manifest {name}")))],
        size: 1 << 20,
        config: ImageConfig {
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion {
            runtime_name: "fake".into(),
            runtime_version: "0.1.0".into(),
        })
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        self.with(format!("run_pod_sandbox {}", config.metadata.name), |st| {
            let id = format!("sandbox-{}", st.next_id);
            let ips = if config.namespaces.network == NamespaceMode::Node {
                vec![]
            } else {
                vec![format!(
                    "10.88.{}.{}",
                    (st.next_id / 250) % 250,
                    st.next_id % 250 + 2
                )]
            };
            st.sandboxes.insert(
                id.clone(),
                SandboxStatus {
                    id: id.clone(),
                    metadata: config.metadata.clone(),
                    state: SandboxState::Ready,
                    created_at: epoch(st.next_id),
                    ips,
                    netns_path: Default::default(),
                    labels: config.labels.clone(),
                    annotations: config.annotations.clone(),
                },
            );
            Ok(id)
        })
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.with(format!("stop_pod_sandbox {id}"), |st| {
            let tick = st.next_id;
            let sb = st
                .sandboxes
                .get_mut(id)
                .ok_or_else(|| RuntimeError::not_found(id))?;
            sb.state = SandboxState::NotReady;
            sb.ips.clear();
            for c in st.containers.values_mut().filter(|c| c.sandbox_id == id) {
                finish(c, 137, tick);
            }
            Ok(())
        })
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.with(format!("remove_pod_sandbox {id}"), |st| {
            st.sandboxes.remove(id);
            st.containers.retain(|_, c| c.sandbox_id != id);
            Ok(())
        })
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus> {
        let st = self.state.lock().unwrap();
        st.sandboxes
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::not_found(id))
    }

    async fn list_pod_sandboxes(&self, filter: &SandboxFilter) -> Result<Vec<SandboxStatus>> {
        let st = self.state.lock().unwrap();
        Ok(st
            .sandboxes
            .values()
            .filter(|s| filter.matches(s))
            .cloned()
            .collect())
    }

    async fn pull_image(&self, image: &str, _auth: Option<&RegistryAuth>) -> Result<ImageInfo> {
        self.with(format!("pull_image {image}"), |st| {
            if st.unpullable.contains(image) {
                return Err(RuntimeError::pull(format!("{image}: manifest unknown")));
            }
            let info = image_info(image);
            st.images.insert(image.to_string(), info.clone());
            Ok(info)
        })
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>> {
        Ok(self.state.lock().unwrap().images.get(image).cloned())
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .images
            .values()
            .cloned()
            .collect())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.with(format!("remove_image {image}"), |st| {
            st.images.remove(image);
            Ok(())
        })
    }

    async fn import_image(&self, archive: &Path) -> Result<Vec<ImageInfo>> {
        Err(RuntimeError::new(
            ErrorKind::InvalidImage,
            format!(
                "{}: the fake runtime imports no archives",
                archive.display()
            ),
        ))
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &SandboxConfig,
    ) -> Result<String> {
        self.with(
            format!("create_container {sandbox_id} {}", config.name),
            |st| {
                if !st.sandboxes.contains_key(sandbox_id) {
                    return Err(RuntimeError::not_found(format!("sandbox {sandbox_id}")));
                }
                let image =
                    st.images.get(&config.image).cloned().ok_or_else(|| {
                        RuntimeError::not_found(format!("image {:?}", config.image))
                    })?;
                let id = format!("container-{}", st.next_id);
                st.containers.insert(
                    id.clone(),
                    ContainerStatus {
                        id: id.clone(),
                        sandbox_id: sandbox_id.to_string(),
                        name: config.name.clone(),
                        attempt: config.attempt,
                        image: config.image.clone(),
                        image_id: image.id,
                        state: ContainerState::Created,
                        pid: None,
                        created_at: epoch(st.next_id),
                        started_at: None,
                        finished_at: None,
                        exit_code: None,
                        reason: String::new(),
                        message: String::new(),
                        log_path: sandbox.log_directory.join(&config.log_path),
                        labels: config.labels.clone(),
                        annotations: config.annotations.clone(),
                    },
                );
                Ok(id)
            },
        )
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.with(format!("start_container {id}"), |st| {
            let tick = st.next_id;
            let c = st
                .containers
                .get_mut(id)
                .ok_or_else(|| RuntimeError::not_found(id))?;
            if c.state != ContainerState::Created {
                return Err(RuntimeError::precondition(format!(
                    "container {id} is not created"
                )));
            }
            c.state = ContainerState::Running;
            c.pid = Some(1000 + tick as u32);
            c.started_at = Some(epoch(tick));
            Ok(())
        })
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.with(format!("stop_container {id}"), |st| {
            let tick = st.next_id;
            let c = st
                .containers
                .get_mut(id)
                .ok_or_else(|| RuntimeError::not_found(id))?;
            finish(c, if timeout.is_zero() { 137 } else { 0 }, tick);
            Ok(())
        })
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.with(format!("remove_container {id}"), |st| {
            st.containers.remove(id);
            Ok(())
        })
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let st = self.state.lock().unwrap();
        st.containers
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::not_found(id))
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        let st = self.state.lock().unwrap();
        Ok(st
            .containers
            .values()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect())
    }

    async fn exec(&self, container_id: &str, request: ExecRequest) -> Result<StreamSession> {
        let st = self.state.lock().unwrap();
        let c = st
            .containers
            .get(container_id)
            .ok_or_else(|| RuntimeError::not_found(container_id))?;
        if c.state != ContainerState::Running {
            return Err(RuntimeError::precondition(format!(
                "container {container_id} is not running"
            )));
        }
        // Echoes the command line, so tests see their request arrive.
        let out = format!("{}\n", request.cmd.join(" ")).into_bytes();
        Ok(StreamSession {
            stdin: None,
            stdout: request
                .stdout
                .then(|| Box::pin(std::io::Cursor::new(out)) as _),
            stderr: None,
            resize: None,
            exit: Box::pin(async { Ok(0) }),
        })
    }

    async fn attach(&self, container_id: &str, _stdin: bool) -> Result<StreamSession> {
        self.container_status(container_id).await?;
        Ok(StreamSession {
            stdin: None,
            stdout: Some(Box::pin(std::io::Cursor::new(Vec::new()))),
            stderr: None,
            resize: None,
            exit: Box::pin(async { Ok(0) }),
        })
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<TcpStream> {
        Err(RuntimeError::precondition(format!(
            "sandbox {sandbox_id}: the fake runtime has no network to forward port {port} into"
        )))
    }

    async fn container_stats(&self, id: &str) -> Result<ResourceStats> {
        self.container_status(id).await?;
        Ok(ResourceStats::default())
    }

    async fn pod_sandbox_stats(&self, id: &str) -> Result<ResourceStats> {
        self.pod_sandbox_status(id).await?;
        Ok(ResourceStats::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(name: &str) -> SandboxConfig {
        SandboxConfig {
            metadata: PodMetadata {
                name: name.into(),
                namespace: "ns".into(),
                uid: name.into(),
                attempt: 0,
            },
            labels: BTreeMap::from([("app".into(), name.into())]),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn containers_move_through_their_states() {
        let rt = FakeRuntime::new();
        let sb_config = sandbox("a");
        let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
        let config = ContainerConfig {
            name: "c".into(),
            image: "busybox".into(),
            ..Default::default()
        };
        let missing = rt
            .create_container(&sb, &config, &sb_config)
            .await
            .unwrap_err();
        assert_eq!(
            missing.kind,
            ErrorKind::NotFound,
            "the image must be pulled first"
        );
        rt.pull_image("busybox", None).await.unwrap();
        let id = rt.create_container(&sb, &config, &sb_config).await.unwrap();
        assert_eq!(
            rt.container_status(&id).await.unwrap().state,
            ContainerState::Created
        );
        rt.start_container(&id).await.unwrap();
        let again = rt.start_container(&id).await.unwrap_err();
        assert_eq!(again.kind, ErrorKind::FailedPrecondition);
        rt.exit_container(&id, 3).unwrap();
        let s = rt.container_status(&id).await.unwrap();
        assert_eq!(
            (s.state, s.exit_code, s.reason.as_str()),
            (ContainerState::Exited, Some(3), "Error")
        );
        let exec = rt
            .exec(
                &id,
                ExecRequest {
                    cmd: vec!["true".into()],
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(
            exec.err().map(|e| e.kind),
            Some(ErrorKind::FailedPrecondition)
        );
    }

    #[tokio::test]
    async fn stopping_a_sandbox_ends_its_containers_and_filters_select() {
        let rt = FakeRuntime::new();
        rt.pull_image("busybox", None).await.unwrap();
        let (a_cfg, b_cfg) = (sandbox("a"), sandbox("b"));
        let a = rt.run_pod_sandbox(&a_cfg).await.unwrap();
        let b = rt.run_pod_sandbox(&b_cfg).await.unwrap();
        let config = ContainerConfig {
            name: "c".into(),
            image: "busybox".into(),
            ..Default::default()
        };
        let ca = rt.create_container(&a, &config, &a_cfg).await.unwrap();
        rt.start_container(&ca).await.unwrap();
        let cb = rt.create_container(&b, &config, &b_cfg).await.unwrap();
        rt.start_container(&cb).await.unwrap();
        rt.stop_pod_sandbox(&a).await.unwrap();
        assert_eq!(rt.container_status(&ca).await.unwrap().exit_code, Some(137));
        assert_eq!(
            rt.container_status(&cb).await.unwrap().state,
            ContainerState::Running
        );
        let ready = SandboxFilter {
            state: Some(SandboxState::Ready),
            ..Default::default()
        };
        let listed = rt.list_pod_sandboxes(&ready).await.unwrap();
        assert_eq!(
            listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            [b.as_str()]
        );
        let by_label = SandboxFilter {
            label_selector: BTreeMap::from([("app".into(), "a".into())]),
            ..Default::default()
        };
        assert_eq!(rt.list_pod_sandboxes(&by_label).await.unwrap()[0].id, a);
        let running = ContainerFilter {
            state: Some(ContainerState::Running),
            ..Default::default()
        };
        assert_eq!(rt.list_containers(&running).await.unwrap()[0].id, cb);
        rt.remove_pod_sandbox(&a).await.unwrap();
        assert_eq!(
            rt.container_status(&ca).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        rt.make_unpullable("ghost");
        let err = rt.pull_image("ghost", None).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ImagePullFailed);
        assert!(rt.calls().contains(&format!("stop_pod_sandbox {a}")));
    }
}
