//! Waiting for and signalling processes this process did not start (or
//! no longer parents), through pidfds: a pidfd names one process, so a
//! recycled pid can never be signalled by mistake, and it becomes readable
//! when the process ends. Waiting is a `poll(2)` on the pidfd on the
//! blocking pool: tokio's readiness API for raw descriptors is `unsafe`
//! (it cannot prove the descriptor stays open), and this crate forbids
//! `unsafe`; stops are rare enough for a blocking thread each.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

/// A pidfd to wait on.
pub struct PidWait(OwnedFd);

impl PidWait {
    /// `None` when the process is gone already.
    pub fn open(pid: u32) -> Option<PidWait> {
        let pid = Pid::from_raw(pid as i32)?;
        pidfd_open(pid, PidfdFlags::empty()).ok().map(PidWait)
    }
}

/// True once the process has ended; false if `timeout` passed first.
pub async fn wait_pidfd(p: &PidWait, timeout: Duration) -> bool {
    let fd = match p.0.try_clone() {
        Ok(fd) => fd,
        Err(_) => return true,
    };
    tokio::task::spawn_blocking(move || ended_within(&fd, timeout))
        .await
        .unwrap_or(true)
}

fn ended_within(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Sends `sig` to `pid` if it still exists; a gone process is not an error.
pub fn pidfd_signal(pid: u32, sig: Signal) {
    if let Some(p) = PidWait::open(pid) {
        let _ = pidfd_send_signal(&p.0, sig);
    }
}

/// Whether a process with this pid exists (and is not a zombie we could
/// mistake for a live one: a zombie's pidfd is readable at once).
pub fn alive(pid: u32) -> bool {
    match PidWait::open(pid) {
        None => false,
        Some(p) => {
            let mut fds = [rustix::event::PollFd::new(
                &p.0,
                rustix::event::PollFlags::IN,
            )];
            let now = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            matches!(rustix::event::poll(&mut fds, Some(&now)), Ok(0))
        }
    }
}
