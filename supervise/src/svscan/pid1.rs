//! What svscan does beyond the original when it is PID 1 of a container (or
//! asked to act as one with SVSCAN_PID1=1): wake on SIGCHLD to reap orphans
//! at once, and on SIGTERM or SIGINT stop the whole tree cleanly. As an
//! ordinary process none of this exists: svscan just sleeps between scans.

use super::{errtext, show, warn, Scanner};
use common::{Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long each shutdown phase (services, then loggers) may take.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Why the wait between two scans ended.
pub enum Event {
    Timeout,
    Child,
    Stop,
}

/// The signal self-pipe and flags, present only in PID-1 mode.
struct Signals {
    rd: UnixStream,
    stop: Arc<AtomicBool>,
}

/// Waits between scans: a plain sleep normally, a poll on the signal pipe
/// in PID-1 mode.
pub struct Waker {
    signals: Option<Signals>,
}

/// Whether svscan should act as a container's init.
pub fn wanted() -> bool {
    nix::unistd::getpid().as_raw() == 1 || std::env::var_os("SVSCAN_PID1").is_some_and(|v| v == "1")
}

impl Waker {
    pub fn new() -> Result<Waker> {
        if !wanted() {
            return Ok(Waker { signals: None });
        }
        if nix::unistd::getpid().as_raw() != 1 {
            // Orphans of the tree come to us rather than to the real init.
            // SAFETY: plain prctl with an integer argument.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
        let (rd, wr) = UnixStream::pair().map_err(|e| Error::sys("unable to create pipe", e))?;
        rd.set_nonblocking(true)
            .and_then(|_| wr.set_nonblocking(true))
            .map_err(|e| Error::sys("unable to create pipe", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .map_err(|e| Error::sys("unable to catch signals", e))?;
        }
        for sig in [SIGTERM, SIGINT, SIGCHLD] {
            let w = wr
                .try_clone()
                .map_err(|e| Error::sys("unable to create pipe", e))?;
            signal_hook::low_level::pipe::register(sig, w)
                .map_err(|e| Error::sys("unable to catch signals", e))?;
        }
        Ok(Waker {
            signals: Some(Signals { rd, stop }),
        })
    }

    /// Wait at most `limit` for a signal.
    pub fn wait(&mut self, limit: Duration) -> Event {
        let Some(s) = &mut self.signals else {
            std::thread::sleep(limit);
            return Event::Timeout;
        };
        let ms = limit.as_millis().min(60_000) as u16;
        let mut fds = [PollFd::new(s.rd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 64];
                while matches!(s.rd.read(&mut buf), Ok(n) if n > 0) {}
                if s.stop.load(Ordering::Relaxed) {
                    Event::Stop
                } else {
                    Event::Child
                }
            }
            _ => Event::Timeout,
        }
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
