//! The connection to containerd: one lazily connected gRPC channel over
//! its unix socket, requests tagged with rkube's containerd namespace (and
//! a lease while resources are being built), and the translation of gRPC
//! statuses into [`RuntimeError`]s.
//!
//! This module knows nothing of containers or images; it must never
//! retry on its own or block without a time limit (only the callers know
//! which calls, such as waiting for a process, may take long).

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{CreateRequest, DeleteRequest};
use containerd_client::tonic::metadata::AsciiMetadataValue;
use containerd_client::tonic::transport::{Channel, Endpoint, Uri};
use containerd_client::tonic::{Code, Request, Response, Status};

use crate::error::{ErrorKind, Result, RuntimeError};

/// How long establishing the socket connection may take: a daemon that is
/// down must show as `Unavailable` quickly, never as a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Limit on an ordinary call (everything but waiting for a process).
/// Creating a task starts a shim and runs `runc create`, which can take
/// a few seconds on a loaded node; minutes means something is stuck.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The gRPC metadata keys containerd reads its namespace and lease from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
const LEASE_HEADER: &str = "containerd-lease";

#[derive(Clone)]
pub struct Client {
    channel: Channel,
    socket: PathBuf,
    namespace: AsciiMetadataValue,
}

impl Client {
    /// A client for the daemon at `socket`; nothing is dialled until the
    /// first call, so a daemon that is down does not stop rkube starting.
    pub fn new(socket: &Path, namespace: &str) -> Result<Client> {
        let namespace: AsciiMetadataValue = namespace.parse().map_err(|_| {
            RuntimeError::invalid(format!("containerd namespace {namespace:?} is not valid"))
        })?;
        let path = socket.to_path_buf();
        // The URI is required by the API but unused: the connector dials
        // the socket.
        let channel = Endpoint::from_static("http://containerd.invalid")
            .connect_timeout(CONNECT_TIMEOUT)
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }));
        Ok(Client {
            channel,
            socket: socket.to_path_buf(),
            namespace,
        })
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `msg` as a request in rkube's namespace.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert(NAMESPACE_HEADER, self.namespace.clone());
        r
    }

    /// `msg` as a request in rkube's namespace, under `lease`: what the
    /// call creates is kept from containerd's garbage collector until the
    /// lease is deleted.
    pub fn leased<T>(&self, msg: T, lease: &Lease) -> Request<T> {
        let mut r = self.req(msg);
        if let Ok(v) = lease.id.parse() {
            r.metadata_mut().insert(LEASE_HEADER, v);
        }
        r
    }

    /// Fails fast with a clear message when the socket is not there at all.
    pub fn check_socket(&self) -> Result<()> {
        if self.socket.exists() {
            Ok(())
        } else {
            Err(RuntimeError::new(
                ErrorKind::Unavailable,
                format!(
                    "containerd socket {} does not exist (is containerd running?)",
                    self.socket.display()
                ),
            ))
        }
    }

    /// Runs one ordinary call with [`CALL_TIMEOUT`], mapping its status.
    pub async fn call<T, F>(&self, what: &str, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<Response<T>, Status>>,
    {
        self.check_socket()?;
        match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(self.error(what, &status)),
            Err(_) => Err(RuntimeError::new(
                ErrorKind::Timeout,
                format!("{what}: containerd did not answer within {CALL_TIMEOUT:?}"),
            )),
        }
    }

    /// Like [`Client::call`] without a time limit, for waiting on a
    /// process, which may rightly take as long as the process runs.
    pub async fn call_unbounded<T, F>(&self, what: &str, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<Response<T>, Status>>,
    {
        self.check_socket()?;
        fut.await
            .map(|r| r.into_inner())
            .map_err(|status| self.error(what, &status))
    }

    /// The runtime error for a failed call.
    pub fn error(&self, what: &str, status: &Status) -> RuntimeError {
        let kind = match status.code() {
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument => ErrorKind::InvalidSpec,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        let message = if kind == ErrorKind::Unavailable {
            format!(
                "{what}: containerd at {} is unavailable: {}",
                self.socket.display(),
                status_text(status)
            )
        } else {
            format!("{what}: {}", status_text(status))
        };
        RuntimeError::new(kind, message)
    }

    /// A lease that expires by itself after an hour, in case rkube dies
    /// before deleting it.
    pub async fn lease(&self) -> Result<Lease> {
        let id = format!("rkube-{}", crate::pod_sandbox::new_id());
        let expire = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let expire = expire
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| RuntimeError::internal(format!("formatting a lease expiry: {e}")))?;
        let request = CreateRequest {
            id: id.clone(),
            labels: [("containerd.io/gc.expire".to_string(), expire)].into(),
        };
        let mut leases = LeasesClient::new(self.channel());
        self.call(
            "creating a containerd lease",
            leases.create(self.req(request)),
        )
        .await?;
        Ok(Lease { id })
    }

    /// Deletes a lease; what it protected is now kept only by what
    /// references it (image records, containers).
    pub async fn release(&self, lease: Lease) {
        let mut leases = LeasesClient::new(self.channel());
        let request = DeleteRequest {
            id: lease.id.clone(),
            sync: false,
        };
        if let Err(e) = self
            .call(
                "deleting a containerd lease",
                leases.delete(self.req(request)),
            )
            .await
        {
            tracing::warn!(lease = %lease.id, "{e}");
        }
    }
}

/// The transport's own error hides behind the status's source; show it,
/// since "transport error" alone tells an operator nothing.
fn status_text(status: &Status) -> String {
    use std::error::Error;
    let mut text = status.message().to_string();
    let mut source = status.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.is_empty() {
        format!("{:?}", status.code())
    } else {
        text
    }
}

/// A containerd lease (see [`Client::lease`]).
pub struct Lease {
    pub id: String,
}

/// Whether an error says the object is not there.
pub fn is_not_found(e: &RuntimeError) -> bool {
    e.kind == ErrorKind::NotFound
}
