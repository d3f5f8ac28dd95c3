//! What svscan does beyond the original when it is PID 1 of a container (or
//! asked to act as one with SVSCAN_PID1=1): it becomes the subreaper of its
//! tree, and on SIGTERM or SIGINT stops the whole tree cleanly. As an
//! ordinary process none of this exists.

use super::{errtext, show, warn, Scanner};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::time::{Duration, Instant};

/// How long each shutdown phase (services, then loggers) may take.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Whether svscan should act as a container's init.
pub fn wanted() -> bool {
    nix::unistd::getpid().as_raw() == 1 || std::env::var_os("SVSCAN_PID1").is_some_and(|v| v == "1")
}

/// Make orphans of the tree come to us rather than to the real init.
pub fn become_subreaper() {
    if nix::unistd::getpid().as_raw() != 1 {
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
}

impl Scanner {
    /// `svc -dx` every service's supervise, wait for them, then the same for
    /// the loggers, so a logger still drains what its service wrote last.
    pub fn shutdown(&mut self) {
        for e in &self.entries {
            if e.pid.is_some() {
                tell(&e.name, "");
            }
        }
        self.wait_gone(|s| s.entries.iter().all(|e| e.pid.is_none()));
        for e in &self.entries {
            if e.pidlog.is_some() {
                tell(&e.name, "/log");
            }
        }
        self.wait_gone(|s| s.entries.iter().all(|e| e.pidlog.is_none()));
    }

    fn wait_gone(&mut self, done: impl Fn(&Scanner) -> bool) {
        let deadline = Instant::now() + STOP_DEADLINE;
        while !done(self) && Instant::now() < deadline {
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Orphans that exited meanwhile.
        while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
    }
}

/// Write "dx" to the control fifo of NAME's (or NAME/log's) supervise, as
/// `svc -dx` does.
fn tell(name: &std::ffi::OsStr, sub: &str) {
    let shown = format!("{}{sub}", show(name));
    let path = format!("{shown}/supervise/control");
    let flags = nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK;
    let r = nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()).and_then(|fd| {
        // SAFETY: fd was just opened and is closed right below.
        let r = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, b"dx");
        let _ = nix::unistd::close(fd);
        r
    });
    if let Err(e) = r {
        warn(format_args!("unable to control {shown}: {}", errtext(e)));
    }
}
