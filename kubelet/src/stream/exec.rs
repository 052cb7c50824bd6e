//! `/exec` and `/attach`: a process's streams carried over a WebSocket in
//! the channel framing of [`super::channel`]. The runtime runs the process
//! (or owns the container being attached to); this module only moves
//! bytes, forwards resizes and reports how the process ended.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use runtime::api::StreamSession;
use runtime::types::{ExecRequest, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::channel::{self, Inbound, Protocol};
use super::websocket::Socket;
use crate::KubeletConfig;

/// How long output may still arrive after the process has ended (a child
/// it left running may hold its stdout open forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What the client asked for, from the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// Parses `command=..&command=..&stdin=1&stdout=true..`; exec needs a
    /// command, and every session needs at least one stream.
    pub fn parse(query: &str, exec: bool) -> Result<StreamOptions, String> {
        let mut o = StreamOptions {
            command: Vec::new(),
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let on = v.is_empty() || v == "1" || v == "true";
            match k.as_ref() {
                "command" => o.command.push(v.into_owned()),
                "input" | "stdin" => o.stdin = on,
                "output" | "stdout" => o.stdout = on,
                "error" | "stderr" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        if exec && o.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        if !(o.stdin || o.stdout || o.stderr) {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        // A terminal merges stderr into stdout.
        if o.tty {
            o.stderr = false;
        }
        Ok(o)
    }
}

/// Runs `command` in the container (or attaches to it when `command` is
/// `None`) and serves the session until it ends or the client goes away.
pub async fn serve(
    cfg: KubeletConfig,
    container_id: String,
    opts: StreamOptions,
    exec: bool,
    protocol: Protocol,
    socket: Socket,
) {
    let (mut sink, mut inbound) = socket.split();
    let session = if exec {
        cfg.runtime
            .exec(
                &container_id,
                ExecRequest {
                    cmd: opts.command.clone(),
                    tty: opts.tty,
                    stdin: opts.stdin,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                },
            )
            .await
    } else {
        cfg.runtime.attach(&container_id, opts.stdin).await
    };
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            let status = channel::failure(&e.to_string());
            let _ = sink
                .send(Message::binary(channel::frame(
                    channel::ERROR,
                    status.to_string().as_bytes(),
                )))
                .await;
            let _ = sink.send(close_message()).await;
            return;
        }
    };
    let StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;

    // One writer owns the sink, so messages of different channels never
    // interleave inside one another.
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
    // Clients wait for a first message before they consider the stream
    // open; an empty one on the first output channel is what they expect.
    let first = if opts.stdout || !opts.stderr {
        channel::STDOUT
    } else {
        channel::STDERR
    };
    let _ = out_tx.send(Message::binary(vec![first])).await;

    let mut outputs = Vec::new();
    for (ch, reader) in [(channel::STDOUT, stdout), (channel::STDERR, stderr)] {
        let Some(mut reader) = reader else { continue };
        let tx = out_tx.clone();
        outputs.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(Message::binary(channel::frame(ch, &buf[..n])))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }));
    }

    // The client's side: stdin, resizes, half-closes, and its going away.
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(Ok(m)) = inbound.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            match channel::parse(&data, protocol) {
                Inbound::Data {
                    channel: channel::STDIN,
                    data,
                } => {
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(data).await.is_err() || w.flush().await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Inbound::Close {
                    channel: channel::STDIN,
                } => {
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                }
                Inbound::Resize { width, height } => {
                    if let Some(r) = resize.as_ref() {
                        let _ = r(TerminalSize { width, height });
                    }
                }
                _ => {}
            }
        }
        let _ = gone_tx.send(());
    });

    let ended = tokio::select! {
        code = exit => Some(code),
        _ = gone_rx => None,
    };
    match ended {
        Some(code) => {
            let wait_outputs = futures::future::join_all(outputs.iter_mut());
            let _ = tokio::time::timeout(OUTPUT_GRACE, wait_outputs).await;
            let status = match code {
                Ok(code) if exec => channel::exit_status(&opts.command, code),
                Ok(_) => channel::exit_status(&[], 0),
                Err(e) => channel::failure(&e.to_string()),
            };
            let _ = out_tx
                .send(Message::binary(channel::frame(
                    channel::ERROR,
                    status.to_string().as_bytes(),
                )))
                .await;
            let _ = out_tx.send(close_message()).await;
        }
        None => tracing::debug!(container_id, "stream client went away"),
    }
    for o in &outputs {
        o.abort();
    }
    reader.abort();
    drop(out_tx);
    let _ = writer.await;
}

fn close_message() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flags_and_repeated_commands() {
        let o = StreamOptions::parse(
            "command=sh&command=-c&command=echo%20hi&stdin=true&stdout=1&stderr=1&tty=true",
            true,
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo hi"]);
        assert!(o.stdin && o.stdout && o.tty);
        assert!(!o.stderr, "a tty carries stderr on stdout");
        assert!(StreamOptions::parse("stdout=1", true).is_err());
        assert!(StreamOptions::parse("command=ls", true).is_err());
        assert!(StreamOptions::parse("stdout=true", false).is_ok());
    }
}
