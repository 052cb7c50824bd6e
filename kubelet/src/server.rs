//! The kubelet's HTTPS endpoint (port 10250 by default): `/healthz`,
//! `/pods`, `/stats/summary`, `/run`,
//! `/containerLogs/<namespace>/<pod>/<container>` with the query options
//! `kubectl logs` passes through the API server (`follow`, `previous`,
//! `timestamps`, `tailLines`, `sinceSeconds`, `sinceTime`, `limitBytes`),
//! and the streaming endpoints of [`crate::stream`]. Clients must present a
//! certificate signed by the cluster CA (the API server does); the TLS
//! setup is given, this module only routes and serves.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use runtime::cri_log::{self, LineAssembler, LogOptions};
use runtime::types::{ContainerFilter, ContainerState, ContainerStatus};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::pod::command::{LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE};
use crate::KubeletConfig;

pub(crate) type Body = BoxBody<Bytes, Infallible>;

pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(message.into())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    r
}

fn query(req: &Request<hyper::body::Incoming>) -> BTreeMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn flag(q: &BTreeMap<String, String>, name: &str) -> bool {
    q.get(name)
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1")
}

/// `kubectl logs` options from the query string; bad values are a 400.
pub fn log_options(q: &BTreeMap<String, String>) -> Result<LogOptions, String> {
    let number = |name: &str| -> Result<Option<i64>, String> {
        q.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid {name}: {v:?}"))
            })
            .transpose()
    };
    let mut opts = LogOptions {
        timestamps: flag(q, "timestamps"),
        ..Default::default()
    };
    if let Some(n) = number("tailLines")? {
        opts.tail_lines = Some(n.max(0) as u64);
    }
    if let Some(n) = number("limitBytes")? {
        if n < 1 {
            return Err("limitBytes must be a positive number".into());
        }
        opts.limit_bytes = Some(n as u64);
    }
    let now = time::OffsetDateTime::now_utc();
    if let Some(n) = number("sinceSeconds")? {
        if n < 1 {
            return Err("sinceSeconds must be a positive number".into());
        }
        opts.since = Some(now - time::Duration::seconds(n));
    }
    if let Some(t) = q.get("sinceTime") {
        let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|_| format!("invalid sinceTime: {t:?}"))?;
        opts.since = Some(parsed);
    }
    Ok(opts)
}

/// The container whose log is asked for: the newest attempt, or the one
/// before it with `previous`.
async fn find_container(
    cfg: &KubeletConfig,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<ContainerStatus, (StatusCode, String)> {
    let selector = BTreeMap::from([
        (LABEL_POD_NAMESPACE.to_string(), ns.to_string()),
        (LABEL_POD_NAME.to_string(), pod.to_string()),
        (LABEL_CONTAINER_NAME.to_string(), container.to_string()),
    ]);
    let mut all = cfg
        .runtime
        .list_containers(&ContainerFilter {
            label_selector: selector,
            ..Default::default()
        })
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    all.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
    let index = usize::from(previous);
    all.into_iter().nth(index).ok_or_else(|| {
        let message = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            )
        };
        (StatusCode::BAD_REQUEST, message)
    })
}

async fn container_logs(
    cfg: KubeletConfig,
    path: &str,
    q: BTreeMap<String, String>,
) -> Response<Body> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let [ns, pod, container] = parts[..] else {
        return text(
            StatusCode::NOT_FOUND,
            "expected /containerLogs/<namespace>/<pod>/<container>",
        );
    };
    let opts = match log_options(&q) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let previous = flag(&q, "previous");
    let found = match find_container(&cfg, ns, pod, container, previous).await {
        Ok(c) => c,
        Err((code, m)) => return text(code, m),
    };
    let log_path = found.log_path.clone();
    let (so_far, offset) = match tokio::task::spawn_blocking({
        let (p, o) = (log_path.clone(), opts.clone());
        move || cri_log::read_logs_with_offset(&p, &o)
    })
    .await
    {
        Ok(Ok(read)) => read,
        Ok(Err(e)) if e.kind == runtime::ErrorKind::NotFound => (Vec::new(), 0),
        Ok(Err(e)) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let follow = flag(&q, "follow") && !previous && found.state == ContainerState::Running;
    if !follow {
        return text(
            StatusCode::OK,
            String::from_utf8_lossy(&so_far).into_owned(),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let _ = tx.send(Bytes::from(so_far)).await;
    tokio::spawn(follow_log(
        cfg,
        found.id.clone(),
        log_path,
        offset,
        opts.timestamps,
        tx,
    ));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    r
}

/// Streams what the log file holds from `offset` (where the history sent
/// first ended) until the container ends or the client goes away.
async fn follow_log(
    cfg: KubeletConfig,
    id: String,
    path: PathBuf,
    offset: u64,
    timestamps: bool,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return;
    };
    if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return;
    }
    let mut assembler = LineAssembler::new();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut idle_checks = 0u32;
    loop {
        let n = file.read(&mut buf).await.unwrap_or(0);
        if n > 0 {
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                if let Ok(parsed) = cri_log::parse_line(&line[..line.len() - 1]) {
                    if let Some(entry) = assembler.push(&parsed) {
                        cri_log::format_entry(&entry, timestamps, &mut out);
                    }
                }
            }
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            continue;
        }
        if tx.is_closed() {
            return;
        }
        // Every few idle rounds, see whether the container still runs.
        idle_checks += 1;
        if idle_checks.is_multiple_of(10) {
            match cfg.runtime.container_status(&id).await {
                Ok(s) if s.state == ContainerState::Running => {}
                _ => {
                    // One last read for what it wrote before it ended.
                    let n = file.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    continue;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn route(
    cfg: KubeletConfig,
    stats: Arc<crate::stats::UsageRates>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // Streams upgrade with GET (WebSocket) or POST (SPDY); `/run` posts.
    if let Some(rest) = path.strip_prefix("/exec/") {
        return crate::stream::exec_or_attach(cfg, true, rest, req).await;
    }
    if let Some(rest) = path.strip_prefix("/attach/") {
        return crate::stream::exec_or_attach(cfg, false, rest, req).await;
    }
    if let Some(rest) = path.strip_prefix("/portForward/") {
        return crate::stream::port_forward(cfg, rest, req).await;
    }
    if let Some(rest) = path.strip_prefix("/run/") {
        if method != hyper::Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "/run takes POST");
        }
        return run_command(cfg, rest, req.uri().query().unwrap_or("")).await;
    }
    if method != hyper::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
    }
    match path.as_str() {
        "/healthz" => return text(StatusCode::OK, "ok"),
        "/pods" | "/pods/" => return json(&crate::stats::pod_list(&cfg)),
        "/stats/summary" | "/stats/summary/" => {
            return json(&crate::stats::summary(&cfg, &stats).await)
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/containerLogs/") {
        let q = query(&req);
        return container_logs(cfg, rest, q).await;
    }
    text(StatusCode::NOT_FOUND, "not found")
}

fn json(value: &serde_json::Value) -> Response<Body> {
    let mut r = text(StatusCode::OK, value.to_string());
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("valid"));
    r
}

/// `/run/<ns>/<pod>/<container>?cmd=...`: runs a command and answers with
/// its combined output (upstream's non-streaming exec).
async fn run_command(cfg: KubeletConfig, rest: &str, query: &str) -> Response<Body> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (ns, pod, container) = match parts[..] {
        [ns, pod, container] | [ns, pod, _, container] => (ns, pod, container),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "expected /run/<namespace>/<pod>/<container>",
            )
        }
    };
    let cmd: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "cmd")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    if cmd.is_empty() {
        return text(StatusCode::BAD_REQUEST, "cmd is required");
    }
    let id = match crate::stream::running_container(&cfg, ns, pod, container).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let request = runtime::types::ExecRequest {
        cmd,
        tty: false,
        stdin: false,
        stdout: true,
        stderr: true,
    };
    let session = match cfg.runtime.exec(&id, request).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut out = Vec::new();
    for reader in [session.stdout, session.stderr].into_iter().flatten() {
        let mut reader = reader;
        let _ = reader.read_to_end(&mut out).await;
    }
    let _ = session.exit.await;
    text(StatusCode::OK, String::from_utf8_lossy(&out).into_owned())
}

/// Serves until the task is dropped.
pub async fn serve(
    cfg: KubeletConfig,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let stats = Arc::new(crate::stats::UsageRates::default());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let cfg = cfg.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let (cfg, stats) = (cfg.clone(), stats.clone());
                async move { Ok::<_, Infallible>(route(cfg, stats, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_options_checked() {
        let q = BTreeMap::from([
            ("tailLines".to_string(), "5".to_string()),
            ("timestamps".to_string(), "true".to_string()),
        ]);
        let o = log_options(&q).unwrap();
        assert_eq!((o.tail_lines, o.timestamps), (Some(5), true));
        let bad = BTreeMap::from([("limitBytes".to_string(), "0".to_string())]);
        assert!(log_options(&bad).is_err());
        let bad = BTreeMap::from([("sinceTime".to_string(), "yesterday".to_string())]);
        assert!(log_options(&bad).is_err());
    }
}
