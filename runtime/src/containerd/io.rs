//! The standard streams of containerd tasks and exec processes: named
//! pipes (fifos) in the container's directory that the runc shim opens by
//! path, rkube's ends of them, and the copy of a container's output into
//! its CRI log file.
//!
//! Opening order matters with fifos: the shim opens the output fifos for
//! writing and blocks until a reader exists, so rkube opens its read ends
//! (non-blocking) before asking for the task. A fifo reader sees the end
//! of the stream once every writer is gone, which is when the shim has
//! copied the process's last output.
//!
//! This module must not talk to containerd; callers do that.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::unix::pipe;

use crate::cri_log::{LogWriter, Stream};
use crate::error::{Result, RuntimeError};

/// Creates a fifo (an existing one is reused).
pub fn mkfifo(path: &Path) -> Result<()> {
    match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(RuntimeError::internal(format!(
            "mkfifo {}: {e}",
            path.display()
        ))),
    }
}

/// rkube's read end of an output fifo, opened before any writer exists
/// (non-blocking, so the open does not wait for one).
pub fn open_reader(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))
}

/// A read-write handle on a stdin fifo: it never blocks on open, and while
/// it is held the process's stdin sees no end of file.
pub fn open_holder(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))
}

fn libc_o_nonblock() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
}

/// An async reader over an output fifo. Must be made once the shim has
/// opened its write end: before that, a read would see end of file.
pub fn async_reader(file: File) -> Result<pipe::Receiver> {
    pipe::Receiver::from_file(file).map_err(|e| RuntimeError::io("reading a fifo", e))
}

/// An async writer over a stdin fifo handle from [`open_holder`].
pub fn async_writer(file: File) -> Result<pipe::Sender> {
    pipe::Sender::from_file(file).map_err(|e| RuntimeError::io("writing a fifo", e))
}

/// A write end on a stdin fifo that the shim already reads.
pub fn open_writer(path: &Path) -> Result<pipe::Sender> {
    pipe::OpenOptions::new()
        .open_sender(path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))
}

/// The fifo paths of one process: the main one (`prefix` empty) or an
/// exec (`exec-<id>-`).
#[derive(Debug, Clone)]
pub struct Fifos {
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    /// `None` with a terminal: the shim sends everything to stdout.
    pub stderr: Option<PathBuf>,
}

impl Fifos {
    pub fn create(dir: &Path, prefix: &str, stdin: bool, tty: bool) -> Result<Fifos> {
        let fifos = Fifos {
            stdin: stdin.then(|| dir.join(format!("{prefix}stdin"))),
            stdout: dir.join(format!("{prefix}stdout")),
            stderr: (!tty).then(|| dir.join(format!("{prefix}stderr"))),
        };
        for p in fifos.paths() {
            mkfifo(p)?;
        }
        Ok(fifos)
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.stdin
            .iter()
            .chain(Some(&self.stdout))
            .chain(self.stderr.iter())
    }

    pub fn remove(&self) {
        for p in self.paths() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The strings a task or exec request carries ("" for none).
    pub fn stdin_str(&self) -> String {
        path_str(self.stdin.as_deref())
    }
    pub fn stdout_str(&self) -> String {
        path_str(Some(&self.stdout))
    }
    pub fn stderr_str(&self) -> String {
        path_str(self.stderr.as_deref())
    }
}

fn path_str(p: Option<&Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Copies a container's output fifos into its CRI log file until the
/// shim closes them (the process has ended and its output is drained).
pub async fn copy_to_log(
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    log_path: PathBuf,
    max_bytes: u64,
    max_files: u32,
) {
    let writer = match LogWriter::open(&log_path, max_bytes, max_files) {
        Ok(w) => std::sync::Arc::new(std::sync::Mutex::new(w)),
        Err(e) => {
            tracing::warn!(log = %log_path.display(), "opening the container log: {e}");
            return;
        }
    };
    let copy = |rx: Option<pipe::Receiver>, stream: Stream| {
        let writer = writer.clone();
        async move {
            let Some(mut rx) = rx else { return };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rx.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut w) = writer.lock() {
                            let _ = w.write(stream, &buf[..n]);
                        }
                    }
                }
            }
            if let Ok(mut w) = writer.lock() {
                let _ = w.flush_partial(stream);
            }
        }
    };
    tokio::join!(copy(stdout, Stream::Stdout), copy(stderr, Stream::Stderr));
}

/// A writer that runs `on_close` once it is dropped: for closing the
/// process's stdin in containerd as the caller lets go of it.
pub struct ClosingWriter<W> {
    inner: W,
    on_close: Option<Box<dyn FnOnce() + Send>>,
}

impl<W> ClosingWriter<W> {
    pub fn new(inner: W, on_close: Box<dyn FnOnce() + Send>) -> Self {
        ClosingWriter {
            inner,
            on_close: Some(on_close),
        }
    }
}

impl<W> Drop for ClosingWriter<W> {
    fn drop(&mut self) {
        if let Some(f) = self.on_close.take() {
            f();
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ClosingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
