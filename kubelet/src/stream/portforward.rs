//! Port forwarding into a pod's network namespace, in both protocols
//! clients speak: the WebSocket channel framing (two channels per port:
//! data `2i`, error `2i+1`, each opened by the port number in two
//! little-endian bytes) and SPDY/3.1 `portforward.k8s.io` (a data and an
//! error stream per forwarded connection, paired by `requestid`), the
//! latter over a plain upgrade or tunnelled in WebSocket messages. The
//! runtime dials the port inside the sandbox; this module moves bytes.

use std::collections::HashMap;

use futures::{SinkExt, StreamExt};
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::channel::{self, Inbound, Protocol};
use super::spdy;
use super::websocket::{self, Socket};
use crate::server::{text, Body};
use crate::KubeletConfig;

/// The WebSocket subprotocol of SPDY tunnelled in binary messages.
pub const SPDY_OVER_WEBSOCKET: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol negotiated on a plain SPDY upgrade.
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// Ports from `ports=80,81` or `port=80&port=81`; each must be 1–65535.
pub fn parse_ports(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "ports" && k != "port" {
            continue;
        }
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("invalid port {p:?}: must be 1-65535")),
            }
        }
    }
    Ok(ports)
}

pub fn serve(
    cfg: KubeletConfig,
    sandbox_id: String,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    if websocket::is_websocket(&req) {
        let offered = websocket::offered_protocols(&req);
        let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
        if offered.contains(&SPDY_OVER_WEBSOCKET) {
            return websocket::accept(req, SPDY_OVER_WEBSOCKET, move |socket| async move {
                let (io, pump) = websocket_bytes(socket);
                tokio::spawn(pump);
                spdy_session(cfg, sandbox_id, io).await;
            });
        }
        let ports = match parse_ports(req.uri().query().unwrap_or("")) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return text(StatusCode::BAD_REQUEST, "at least one port must be given"),
            Err(m) => return text(StatusCode::BAD_REQUEST, m),
        };
        let protocol = Protocol::negotiate(&offered.join(",")).unwrap_or(Protocol::V4);
        let name = offered
            .iter()
            .find(|p| **p == protocol.name() || **p == PORT_FORWARD_PROTOCOL)
            .map(|p| p.to_string())
            .unwrap_or_default();
        return websocket::accept(req, &name, move |socket| {
            channel_session(cfg, sandbox_id, ports, protocol, socket)
        });
    }
    let spdy_upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    let wants_port_forward = req
        .headers()
        .get_all(STREAM_PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PORT_FORWARD_PROTOCOL);
    if !spdy_upgrade || !wants_port_forward {
        return text(
            StatusCode::BAD_REQUEST,
            "port forwarding needs a WebSocket or SPDY/3.1 upgrade with protocol portforward.k8s.io",
        );
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => spdy_session(cfg, sandbox_id, TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade did not complete"),
        }
    });
    let mut r = text(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = r.headers_mut();
    h.remove(hyper::header::CONTENT_TYPE);
    h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        STREAM_PROTOCOL_HEADER,
        HeaderValue::from_static(PORT_FORWARD_PROTOCOL),
    );
    r
}

/// Turns a WebSocket carrying a byte stream in binary messages into that
/// byte stream; the returned future moves the bytes until either side ends.
fn websocket_bytes(
    socket: Socket,
) -> (
    tokio::io::DuplexStream,
    impl std::future::Future<Output = ()> + Send,
) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let pump = async move {
        let (mut sink, mut inbound) = socket.split();
        let (mut read, mut write) = tokio::io::split(theirs);
        let incoming = async {
            while let Some(Ok(m)) = inbound.next().await {
                match m {
                    Message::Binary(b) if write.write_all(&b).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = write.shutdown().await;
        };
        let outgoing = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = sink.close().await;
        };
        // Either direction ending ends the session: SPDY has no use for a
        // half-open transport.
        tokio::select! {
            _ = incoming => {}
            _ = outgoing => {}
        }
    };
    (ours, pump)
}

/// Serves SPDY streams until the client ends the session.
async fn spdy_session<IO>(cfg: KubeletConfig, sandbox_id: String, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (session, mut streams) = spdy::serve(io);
    // Error streams waiting for their data stream, by request id.
    let mut errors: HashMap<String, spdy::Stream> = HashMap::new();
    while let Some(stream) = streams.recv().await {
        let request = stream.header("requestid").unwrap_or("").to_string();
        match stream.header("streamtype") {
            Some("error") => {
                errors.insert(request, stream);
            }
            Some("data") => {
                let error = errors.remove(&request);
                let port = stream.header("port").and_then(|p| p.parse::<u16>().ok());
                tokio::spawn(forward_spdy_pair(
                    cfg.clone(),
                    sandbox_id.clone(),
                    port,
                    stream,
                    error,
                ));
            }
            _ => stream.reset(),
        }
    }
    if let Err(e) = session.join().await {
        tracing::warn!(sandbox = %sandbox_id, "port-forward session ended: {e}");
    }
}

async fn forward_spdy_pair(
    cfg: KubeletConfig,
    sandbox_id: String,
    port: Option<u16>,
    data: spdy::Stream,
    mut error: Option<spdy::Stream>,
) {
    let (data_read, mut data_write) = data.split();
    let outcome = match port {
        None => Err("a data stream needs a valid port header".to_string()),
        Some(port) => match cfg.runtime.port_forward(&sandbox_id, port).await {
            Ok(tcp) => {
                copy_both_ways(tcp, data_read, &mut data_write).await;
                Ok(())
            }
            Err(e) => Err(format!(
                "error forwarding port {port} to pod sandbox {sandbox_id}: {e}"
            )),
        },
    };
    if let (Err(message), Some(e)) = (&outcome, error.as_mut()) {
        let _ = e.write_all(message.as_bytes()).await;
    }
    let _ = data_write.shutdown().await;
    if let Some(mut e) = error {
        let _ = e.shutdown().await;
    }
}

/// Pod → client until the pod's side ends; client → pod until the
/// client's side ends, then the pod connection's write half is shut. The
/// download decides when the pair is done.
async fn copy_both_ways(
    tcp: tokio::net::TcpStream,
    mut from_client: spdy::StreamReader,
    to_client: &mut spdy::StreamWriter,
) {
    let (mut pod_read, mut pod_write) = tcp.into_split();
    let upload = async {
        let _ = tokio::io::copy(&mut from_client, &mut pod_write).await;
        let _ = pod_write.shutdown().await;
        // Nothing more to send; wait for the download to finish the pair.
        std::future::pending::<()>().await
    };
    let download = async {
        let _ = tokio::io::copy(&mut pod_read, to_client).await;
    };
    tokio::select! {
        _ = download => {}
        _ = upload => {}
    }
}

/// The WebSocket channel flavour: all ports are dialled at once, each
/// announced on its two channels; the session ends when every pod
/// connection has ended or the client goes away.
async fn channel_session(
    cfg: KubeletConfig,
    sandbox_id: String,
    ports: Vec<u16>,
    protocol: Protocol,
    socket: Socket,
) {
    let (mut sink, mut inbound) = socket.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let closing = m.is_close();
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut to_pod = Vec::new();
    let mut downloads = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let data_ch = (2 * i) as u8;
        let error_ch = data_ch + 1;
        for ch in [data_ch, error_ch] {
            let _ = out_tx
                .send(Message::binary(channel::frame(ch, &port.to_le_bytes())))
                .await;
        }
        match cfg.runtime.port_forward(&sandbox_id, *port).await {
            Ok(tcp) => {
                let (mut read, write) = tcp.into_split();
                to_pod.push(Some(write));
                let tx = out_tx.clone();
                downloads.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let m = Message::binary(channel::frame(data_ch, &buf[..n]));
                                if tx.send(m).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }));
            }
            Err(e) => {
                to_pod.push(None);
                let message =
                    format!("error forwarding port {port} to pod sandbox {sandbox_id}: {e}");
                let _ = out_tx
                    .send(Message::binary(channel::frame(
                        error_ch,
                        message.as_bytes(),
                    )))
                    .await;
            }
        }
    }
    let uploads = async {
        while let Some(Ok(m)) = inbound.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            match channel::parse(&data, protocol) {
                Inbound::Data { channel, data } if channel % 2 == 0 => {
                    let index = usize::from(channel / 2);
                    let failed = match to_pod.get_mut(index) {
                        Some(Some(w)) => w.write_all(data).await.is_err(),
                        _ => false,
                    };
                    if failed {
                        to_pod[index] = None;
                    }
                }
                Inbound::Close { channel } if channel % 2 == 0 => {
                    if let Some(slot) = to_pod.get_mut(usize::from(channel / 2)) {
                        if let Some(mut w) = slot.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                }
                _ => {}
            }
        }
    };
    let all_downloads = futures::future::join_all(downloads.iter_mut());
    tokio::select! {
        _ = uploads => {}
        _ = all_downloads => {
            let _ = out_tx.send(Message::Close(None)).await;
        }
    }
    for d in &downloads {
        d.abort();
    }
    drop(out_tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_comma_separated_or_repeated() {
        assert_eq!(parse_ports("ports=80,8080").unwrap(), [80, 8080]);
        assert_eq!(parse_ports("port=80&port=81").unwrap(), [80, 81]);
        assert!(parse_ports("ports=0").is_err());
        assert!(parse_ports("ports=http").is_err());
        assert!(parse_ports("").unwrap().is_empty());
    }
}
