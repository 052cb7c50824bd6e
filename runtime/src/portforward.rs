//! Port forwarding into a pod: a TCP connection to a port on the pod's
//! loopback, made from inside the pod's network namespace.
//!
//! The socket is created by a throw-away OS thread that joined the pod's
//! network namespace (a socket stays in the namespace it was created in,
//! whichever thread uses it later), then handed to tokio. This module
//! only connects; copying bytes between the stream and the API server's
//! port-forward stream is the caller's job. It never changes the
//! namespace of a tokio thread.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream as StdTcpStream};
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{ErrorKind, Result, RuntimeError};
use crate::netns::{run_in_namespace_async, NamespaceKind};

/// How long a connect inside the pod may take. Loopback connects either
/// succeed or are refused at once; this only bounds a listener whose
/// backlog is full.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `port` on the loopback of the network namespace pinned at
/// `netns_path` (127.0.0.1 first, then ::1, like `localhost`).
///
/// Errors: the namespace file missing → `NotFound`; nothing listening →
/// `FailedPrecondition` (the pod is reachable, but its state does not
/// allow the operation yet: no process listens on that port; `Unavailable`
/// is kept for the runtime itself being unreachable, which a caller may
/// treat as node trouble); no answer in time → `Timeout`.
pub async fn connect_in_netns(netns_path: &Path, port: u16) -> Result<TcpStream> {
    connect_in_netns_with_timeout(netns_path, port, CONNECT_TIMEOUT).await
}

/// [`connect_in_netns`] with an explicit connect timeout.
pub async fn connect_in_netns_with_timeout(
    netns_path: &Path,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream> {
    if port == 0 {
        return Err(RuntimeError::invalid("port 0 cannot be forwarded"));
    }
    let std_stream = run_in_namespace_async(netns_path, NamespaceKind::Net, move || {
        connect_loopback(port, timeout)
    })
    .await??;
    TcpStream::from_std(std_stream)
        .map_err(|e| RuntimeError::io("register forwarded connection with tokio", e))
}

fn connect_loopback(port: u16, timeout: Duration) -> Result<StdTcpStream> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let stream = match StdTcpStream::connect_timeout(&v4, timeout) {
        Ok(s) => s,
        // Only a refusal on v4 is worth a v6 try: a listener bound to ::1
        // alone is legitimate, while a v4 timeout would just double.
        // If ::1 fails too, report the v4 refusal: a v6 error (IPv6
        // disabled in the pod, say) would only obscure what happened.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            StdTcpStream::connect_timeout(&v6, timeout).map_err(|_| connect_error(port, e))?
        }
        Err(e) => return Err(connect_error(port, e)),
    };
    // tokio requires a non-blocking socket in from_std.
    stream
        .set_nonblocking(true)
        .map_err(|e| RuntimeError::io("set forwarded connection non-blocking", e))?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

fn connect_error(port: u16, e: io::Error) -> RuntimeError {
    let kind = match e.kind() {
        // Refused, or the pod's loopback is down: the pod's own state.
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NetworkUnreachable => {
            ErrorKind::FailedPrecondition
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
        _ => ErrorKind::Internal,
    };
    RuntimeError::new(
        kind,
        format!("connect to port {port} in the pod's network namespace: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::{run_in_namespace, NamespaceSet};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A netns with `lo` up (new namespaces start with it down).
    fn netns_with_lo(dir: &Path) -> NamespaceSet {
        let set = NamespaceSet::create(dir, &[NamespaceKind::Net], None).unwrap();
        let status = std::process::Command::new("nsenter")
            .arg(format!("--net={}", set.net_path().unwrap().display()))
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(status.success());
        set
    }

    #[tokio::test]
    async fn reaches_a_listener_inside_the_netns() {
        let tmp = tempfile::tempdir().unwrap();
        let set = netns_with_lo(tmp.path());
        let ns = set.net_path().unwrap().to_path_buf();
        // The listener socket is made inside the namespace and then served
        // from an ordinary thread: it stays in the namespace.
        let listener = run_in_namespace(&ns, NamespaceKind::Net, || {
            std::net::TcpListener::bind("127.0.0.1:0").unwrap()
        })
        .unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(b"pong").unwrap();
            buf
        });
        // The same port on the host's loopback has no listener.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

        let mut stream = connect_in_netns(&ns, port).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"pong");
        assert_eq!(&server.join().unwrap(), b"ping");
        drop(stream);
        set.remove().unwrap();
    }

    #[tokio::test]
    async fn closed_port_is_a_quick_typed_error() {
        let tmp = tempfile::tempdir().unwrap();
        let set = netns_with_lo(tmp.path());
        let ns = set.net_path().unwrap().to_path_buf();
        let started = Instant::now();
        let err = connect_in_netns(&ns, 9).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
        assert!(err.message.contains("port 9"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let err = connect_in_netns(&tmp.path().join("nope"), 80)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        set.remove().unwrap();
    }
}
