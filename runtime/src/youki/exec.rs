//! The exec helper of the youki backend: `rkube youki-exec <request.json>`
//! runs one process inside a running container (libcontainer's tenant
//! builder, which forks, hence a process of its own like the shim) with
//! the helper's own stdin/stdout/stderr, waits for it, and exits with its
//! exit code. Those three descriptors are pipes or a pty slave set up by
//! the caller.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::{waitpid, WaitStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    pub id: String,
    pub state_root: PathBuf,
    pub args: Vec<String>,
}

/// Exit code the helper uses when it could not start the process at all;
/// the message is on its stderr. (126 is what shells use for "cannot
/// execute".)
pub const EXEC_FAILED: i32 = 126;

pub fn main(request: &Path) -> i32 {
    let config: ExecConfig = match crate::record::read(request) {
        Ok(Some(c)) => c,
        _ => {
            eprintln!("exec request {} is missing or malformed", request.display());
            return EXEC_FAILED;
        }
    };
    // With a terminal, the process gets it as its controlling terminal (a
    // shell needs one for job control): a session of its own, inherited
    // by the process the tenant builder forks.
    if rustix::termios::isatty(std::io::stdin()) {
        let ctty = nix::unistd::setsid()
            .map_err(|e| e.to_string())
            .and_then(|_| {
                rustix::process::ioctl_tiocsctty(std::io::stdin()).map_err(|e| e.to_string())
            });
        if let Err(e) = ctty {
            eprintln!("taking the terminal: {e}");
            return EXEC_FAILED;
        }
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("becoming a child subreaper: {e}");
        return EXEC_FAILED;
    }
    match run(&config) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            EXEC_FAILED
        }
    }
}

fn dup_std(fd: i32) -> Result<OwnedFd, String> {
    use std::os::fd::AsFd;
    let borrowed = match fd {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        _ => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    borrowed.map_err(|e| format!("duplicating fd {fd}: {e}"))
}

fn run(config: &ExecConfig) -> Result<i32, String> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;

    let pid = ContainerBuilder::new(config.id.clone(), SyscallType::default())
        .with_root_path(&config.state_root)
        .map_err(|e| format!("state directory: {e}"))?
        .with_stdin(dup_std(0)?)
        .with_stdout(dup_std(1)?)
        .with_stderr(dup_std(2)?)
        .validate_id()
        .map_err(|e| format!("container id: {e}"))?
        .as_tenant()
        .with_container_args(config.args.clone())
        .with_detach(false)
        .build()
        .map_err(|e| format!("exec in container {}: {e}", config.id))?;
    let target = nix::unistd::Pid::from_raw(pid.as_raw());
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for the exec'd process: {e}")),
        }
    }
}
