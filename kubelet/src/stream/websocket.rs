//! The server side of the WebSocket handshake (RFC 6455) on a hyper
//! request: checks the upgrade headers, picks a subprotocol, answers 101
//! and hands the upgraded connection to a task. Knows nothing about what
//! runs over the socket.

use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::server::{text, Body};

pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Whether the request asks to become a WebSocket.
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    header_has(req, UPGRADE, "websocket")
}

fn header_has<B>(req: &Request<B>, name: hyper::header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// The subprotocols the client offers, in its order of preference.
pub fn offered_protocols<B>(req: &Request<B>) -> String {
    req.headers()
        .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

/// Answers 101 with `protocol` and runs `session` on the socket once the
/// client has switched. The caller has checked everything that can fail
/// before this point: after the 101 errors travel inside the protocol.
pub fn accept<F, Fut>(
    req: Request<hyper::body::Incoming>,
    protocol: &str,
    session: F,
) -> Response<Body>
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if !header_has(&req, CONNECTION, "upgrade") {
        return text(StatusCode::BAD_REQUEST, "missing Connection: Upgrade");
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade did not complete"),
        }
    });
    let mut r = text(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = r.headers_mut();
    h.remove(hyper::header::CONTENT_TYPE);
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        SEC_WEBSOCKET_ACCEPT,
        derive_accept_key(key.as_bytes())
            .parse()
            .expect("base64 is a valid header"),
    );
    if let Ok(p) = HeaderValue::from_str(protocol) {
        h.insert(hyper::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    r
}
