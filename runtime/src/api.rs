//! The [`Runtime`] trait: what the kubelet asks of a container runtime,
//! shaped after CRI's RuntimeService and ImageService. A runtime runs what
//! it is told and reports what it sees; restarts, back-off, probes and pod
//! phases are the kubelet's business, not a runtime's.

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::Result;
use crate::types::*;

pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Changes the terminal size of a tty session.
pub type Resizer = Box<dyn Fn(TerminalSize) -> Result<()> + Send + Sync>;

/// A running exec or attach: its streams and, for exec, its exit code.
///
/// With a tty, all output arrives on `stdout` and `stderr` is `None`.
/// Dropping `stdin` closes the process's standard input.
pub struct StreamSession {
    pub stdin: Option<BoxWrite>,
    pub stdout: Option<BoxRead>,
    pub stderr: Option<BoxRead>,
    pub resize: Option<Resizer>,
    /// Resolves to the exit code once the process has ended (exec) or once
    /// the container has (attach).
    pub exit: BoxFuture<'static, Result<i32>>,
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    async fn version(&self) -> Result<RuntimeVersion>;

    // Sandboxes
    /// Creates the pod's namespaces and network; returns the sandbox id.
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String>;
    /// Stops every container in the sandbox and releases its network
    /// (the IP is freed); the sandbox stays listed until removed.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Removes a sandbox and everything left of it. Removing what is gone
    /// already is not an error.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus>;
    async fn list_pod_sandboxes(&self, filter: &SandboxFilter) -> Result<Vec<SandboxStatus>>;

    // Images
    async fn pull_image(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<ImageInfo>;
    /// `None` when the image is not on the node.
    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>>;
    async fn list_images(&self) -> Result<Vec<ImageInfo>>;
    async fn remove_image(&self, image: &str) -> Result<()>;
    /// Loads the images in an OCI image-layout tar or a `docker save` tar.
    async fn import_image(&self, archive: &Path) -> Result<Vec<ImageInfo>>;

    // Containers
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &SandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM, then SIGKILL once `timeout` has passed (at once for zero).
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Removes a stopped container (a running one is killed first).
    /// Removing what is gone already is not an error.
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>>;

    // Streams
    async fn exec(&self, container_id: &str, request: ExecRequest) -> Result<StreamSession>;
    /// Attaches to the main process: its output from now on, and its stdin
    /// when the container was created with `stdin`.
    async fn attach(&self, container_id: &str, stdin: bool) -> Result<StreamSession>;
    /// A TCP connection to `port` on the sandbox's loopback, made inside
    /// its network namespace.
    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<TcpStream>;

    // Stats
    async fn container_stats(&self, id: &str) -> Result<ResourceStats>;
    async fn pod_sandbox_stats(&self, id: &str) -> Result<ResourceStats>;
}
