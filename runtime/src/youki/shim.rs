//! The per-container helper process ("shim") of the youki backend.
//!
//! libcontainer forks (clone) and runs a lot of Rust code in the children;
//! doing that from rkube's multi-threaded async process risks a child
//! inheriting a lock another thread held (the allocator's, tracing's).
//! So each container is created by a fresh, single-purpose process: the
//! shim. It creates and starts the container, reports its pid on stdout,
//! then stays as the container's parent (a child subreaper) for its
//! lifetime: it copies the container's stdout/stderr into the CRI log
//! file and, when the container ends, records the exit code and whether
//! the kernel's OOM killer ended it. It runs in its own session, so a
//! restart of rkube leaves running containers and their logs alone.
//!
//! The shim reads its instructions from `shim.json` in the container's
//! directory and writes `started.json` and `exit.json` beside it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::sys::wait::{waitpid, WaitStatus};
use serde::{Deserialize, Serialize};

use crate::cgroups::{self, CgroupSetup};
use crate::cri_log::{LogWriter, Stream};
use crate::record;

/// What the shim is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// libcontainer's state directory (`<root>/<id>` holds its state).
    pub state_root: PathBuf,
    pub bundle: PathBuf,
    pub log_path: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// Give the container a stdin that `attach` can write to (a fifo).
    pub stdin: bool,
    pub cgroups_path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub pid: u32,
    pub shim_pid: u32,
    pub started_at: SystemTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exited {
    pub exit_code: i32,
    pub finished_at: SystemTime,
    pub oom_killed: bool,
}

pub const CONFIG_FILE: &str = "shim.json";
pub const STARTED_FILE: &str = "started.json";
pub const EXIT_FILE: &str = "exit.json";
pub const STDIN_FIFO: &str = "stdin";

/// Entry point of `rkube youki-shim <container-dir>`; returns the process
/// exit code. Prints `ok <pid>` or `error <message>` as its first line.
pub fn main(container_dir: &Path) -> i32 {
    let config: ShimConfig = match record::read(&container_dir.join(CONFIG_FILE)) {
        Ok(Some(c)) => c,
        Ok(None) => return report_error("shim.json is missing"),
        Err(e) => return report_error(&e.to_string()),
    };
    // Its own session: signals to rkube's process group do not reach it.
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return report_error(&format!("becoming a child subreaper: {e}"));
    }
    let (out_r, out_w) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return report_error(&format!("pipe: {e}")),
    };
    let (err_r, err_w) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return report_error(&format!("pipe: {e}")),
    };
    let stdin = match open_stdin(container_dir, config.stdin) {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let writer = match LogWriter::open(&config.log_path, config.log_max_bytes, config.log_max_files)
    {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => return report_error(&format!("opening the log file: {e}")),
    };
    let pid = match create_and_start(&config, stdin, out_w, err_w) {
        Ok(pid) => pid,
        Err(e) => return report_error(&e),
    };
    let started = Started {
        pid,
        shim_pid: std::process::id(),
        started_at: SystemTime::now(),
    };
    if let Err(e) = record::write(&container_dir.join(STARTED_FILE), &started) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        return report_error(&e.to_string());
    }
    println!("ok {pid}");
    let _ = std::io::stdout().flush();
    detach_stdio();

    let copiers = [(out_r, Stream::Stdout), (err_r, Stream::Stderr)]
        .into_iter()
        .map(|(fd, stream)| {
            let writer = writer.clone();
            std::thread::spawn(move || copy_to_log(fd, stream, &writer))
        })
        .collect::<Vec<_>>();
    let exit_code = wait_for(pid);
    for c in copiers {
        let _ = c.join();
    }
    if let Ok(mut w) = writer.lock() {
        let _ = w.flush_partial(Stream::Stdout);
        let _ = w.flush_partial(Stream::Stderr);
    }
    let oom_killed = CgroupSetup::detect()
        .and_then(|setup| cgroups::oom_kill_count(&setup, &config.cgroups_path))
        .unwrap_or(0)
        > 0;
    let exited = Exited {
        exit_code,
        finished_at: SystemTime::now(),
        oom_killed,
    };
    match record::write(&container_dir.join(EXIT_FILE), &exited) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn report_error(message: &str) -> i32 {
    println!("error {}", message.replace('\n', " "));
    let _ = std::io::stdout().flush();
    1
}

/// The container's stdin: a fifo `attach` writes to, or /dev/null.
fn open_stdin(dir: &Path, wanted: bool) -> Result<OwnedFd, String> {
    if !wanted {
        return File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| format!("/dev/null: {e}"));
    }
    let fifo = dir.join(STDIN_FIFO);
    match nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(format!("mkfifo {}: {e}", fifo.display())),
    }
    // Opened read-write so the container never sees end-of-file between
    // two attaches, and opening does not block waiting for a writer.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .map(OwnedFd::from)
        .map_err(|e| format!("opening {}: {e}", fifo.display()))
}

fn create_and_start(
    config: &ShimConfig,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<u32, String> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;

    let mut container = ContainerBuilder::new(config.id.clone(), SyscallType::default())
        .with_root_path(&config.state_root)
        .map_err(|e| format!("state directory: {e}"))?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .validate_id()
        .map_err(|e| format!("container id: {e}"))?
        .as_init(&config.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| format!("creating the container: {e}"))?;
    container
        .start()
        .map_err(|e| format!("starting the container: {e}"))?;
    let pid = container
        .pid()
        .ok_or("the container has no pid after start")?;
    Ok(pid.as_raw() as u32)
}

/// The shim's own stdout went to whoever started it; that reader may go
/// away (rkube restarts), so nothing more is written there.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

fn copy_to_log(fd: OwnedFd, stream: Stream, writer: &Mutex<LogWriter>) {
    let mut file = File::from(fd);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Ok(mut w) = writer.lock() {
                    let _ = w.write(stream, &buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// Reaps children until the container's init exits; its exit code, or
/// 128 + the signal that ended it.
fn wait_for(pid: u32) -> i32 {
    let target = nix::unistd::Pid::from_raw(pid as i32);
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == target => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            // No children left: the container is gone without us seeing
            // its status (should not happen for a subreaper).
            Err(_) => return 255,
        }
    }
}
