//! The streams of exec and attach sessions: a helper process's stdio
//! (pipes, or a pty with resize) and a container's output followed from
//! its CRI log file. Shared by the backends that run exec through a local
//! helper process.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, ReadBuf};

use crate::api::{BoxRead, BoxWrite, StreamSession};
use crate::cri_log::{self, Stream};
use crate::error::{Result, RuntimeError};
use crate::types::{ExecRequest, TerminalSize};

/// A pty master's reads fail with EIO once every slave is closed; to a
/// reader that is simply the end of the output.
struct PtyReader(tokio::fs::File);

impl AsyncRead for PtyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(5) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

/// A pty pair. With `pts_dir` (a container's `/dev/pts`, reached through
/// `/proc/<pid>/root`), the pair comes from the container's own devpts
/// instance, so inside the container the slave is `/dev/pts/<n>` and
/// `tty`/`ttyname` work; otherwise from the host's.
fn open_pty(pts_dir: Option<&Path>) -> Result<Pty> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::os::unix::fs::OpenOptionsExt;
    let err = |what: &str, e: rustix::io::Errno| RuntimeError::internal(format!("{what}: {e}"));
    let master: OwnedFd = match pts_dir {
        Some(dir) => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(dir.join("ptmx"))
            .map_err(|e| RuntimeError::io(dir.join("ptmx").display(), e))?
            .into(),
        None => openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| err("openpt", e))?,
    };
    grantpt(&master).map_err(|e| err("grantpt", e))?;
    unlockpt(&master).map_err(|e| err("unlockpt", e))?;
    let name = ptsname(&master, Vec::new()).map_err(|e| err("ptsname", e))?;
    let name = Path::new(std::ffi::OsStr::from_bytes(name.as_bytes()));
    // The number is the master's instance's; the directory says which.
    let slave_path = match (pts_dir, name.file_name()) {
        (Some(dir), Some(n)) => dir.join(n),
        _ => name.to_path_buf(),
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(&slave_path)
        .map_err(|e| RuntimeError::io("opening the pty slave", e))?;
    Ok(Pty {
        master,
        slave: slave.into(),
    })
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Spawns `cmd` (an exec helper) with the streams `request` asks for; a
/// tty comes from `pts_dir` (see [`open_pty`]). `cleanup` is removed once
/// the process has ended.
pub fn spawn_exec(
    mut cmd: tokio::process::Command,
    request: &ExecRequest,
    pts_dir: Option<&Path>,
    cleanup: PathBuf,
) -> Result<StreamSession> {
    let spawn_err = |e: io::Error| RuntimeError::io("starting the exec helper", e);
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| RuntimeError::io("dup", e));
    let mut session;
    let mut child;
    if request.tty {
        let pty = open_pty(pts_dir)?;
        cmd.stdin(Stdio::from(dup(&pty.slave)?))
            .stdout(Stdio::from(dup(&pty.slave)?))
            .stderr(Stdio::from(pty.slave));
        child = cmd.spawn().map_err(spawn_err)?;
        // The Command holds copies of the slave; closing them lets the
        // master see the end when the process is gone.
        drop(cmd);
        let reader = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
        let writer = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
        let master = pty.master;
        session = StreamSession {
            stdin: request.stdin.then(|| Box::pin(writer) as BoxWrite),
            stdout: Some(Box::pin(PtyReader(reader)) as BoxRead),
            stderr: None,
            resize: Some(Box::new(move |size: TerminalSize| {
                let ws = rustix::termios::Winsize {
                    ws_row: size.height,
                    ws_col: size.width,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                rustix::termios::tcsetwinsize(&master, ws)
                    .map_err(|e| RuntimeError::internal(format!("resizing the terminal: {e}")))
            })),
            exit: Box::pin(async { Ok(0) }),
        };
    } else {
        let pick = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(pick(request.stdin))
            .stdout(pick(request.stdout))
            .stderr(pick(request.stderr));
        child = cmd.spawn().map_err(spawn_err)?;
        drop(cmd);
        session = StreamSession {
            stdin: child.stdin.take().map(|s| Box::pin(s) as BoxWrite),
            stdout: child.stdout.take().map(|s| Box::pin(s) as BoxRead),
            stderr: child.stderr.take().map(|s| Box::pin(s) as BoxRead),
            resize: None,
            exit: Box::pin(async { Ok(0) }),
        };
    }
    session.exit = Box::pin(async move {
        let status = child
            .wait()
            .await
            .map_err(|e| RuntimeError::io("waiting for exec", e));
        let _ = std::fs::remove_file(&cleanup);
        Ok(exit_code(status?))
    });
    Ok(session)
}

/// Attach: the container's output from now on, read from its CRI log
/// file as it grows, split back into stdout and stderr; stdin is whatever
/// writer the backend has for the container's stdin. The session ends once
/// `exit` (the container's exit code) resolves and the log is drained.
pub async fn attach_log(
    log_path: &Path,
    stdin: Option<BoxWrite>,
    exit: BoxFuture<'static, Result<i32>>,
) -> Result<StreamSession> {
    let mut file = tokio::fs::File::open(log_path)
        .await
        .map_err(|e| RuntimeError::io(log_path.display(), e))?;
    file.seek(io::SeekFrom::End(0))
        .await
        .map_err(|e| RuntimeError::io("seek", e))?;
    let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
    let (code_tx, code_rx) = tokio::sync::oneshot::channel::<Result<i32>>();
    tokio::spawn(async move {
        let mut exit = exit;
        let mut code = None;
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = file.read(&mut buf).await.unwrap_or(0);
            if n > 0 {
                pending.extend_from_slice(&buf[..n]);
                while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    if let Ok(parsed) = cri_log::parse_line(&line[..line.len() - 1]) {
                        let w = if parsed.stream == Stream::Stderr {
                            &mut err_w
                        } else {
                            &mut out_w
                        };
                        let _ = w.write_all(parsed.content).await;
                        if !parsed.partial {
                            let _ = w.write_all(b"\n").await;
                        }
                    }
                }
                continue;
            }
            if code.is_some() {
                // The container has ended and the log is read to its end.
                break;
            }
            // The log file has no change notification we can await here;
            // look again shortly unless the container ends first.
            tokio::select! {
                c = &mut exit => code = Some(c),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let _ = code_tx.send(code.unwrap_or(Ok(255)));
    });
    Ok(StreamSession {
        stdin,
        stdout: Some(Box::pin(out_r)),
        stderr: Some(Box::pin(err_r)),
        resize: None,
        exit: Box::pin(async move {
            code_rx
                .await
                .unwrap_or_else(|_| Err(RuntimeError::internal("attach ended early")))
        }),
    })
}
