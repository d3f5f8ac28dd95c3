//! How svscan waits between two scans. The original sleeps five seconds;
//! ours also watches the scan directory with inotify, so a service moved or
//! linked into it starts within half a second (the five-second rescan stays
//! as the guarantee), and in PID-1 mode it wakes on SIGCHLD to reap orphans
//! and on SIGTERM/SIGINT to shut down, through a signal self-pipe.

use common::{Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why a wait ended.
pub enum Event {
    Timeout,
    /// A child exited (PID-1 mode).
    Child,
    /// SIGTERM or SIGINT (PID-1 mode).
    Stop,
    /// An entry was created or moved into the scan directory.
    DirChanged,
}

/// The signal self-pipe and the stop flag, present only in PID-1 mode.
struct Signals {
    rd: UnixStream,
    stop: Arc<AtomicBool>,
}

pub struct Waker {
    signals: Option<Signals>,
    /// None when inotify is unavailable: then only the rescan period counts.
    watch: Option<Inotify>,
}

impl Waker {
    /// Watch the current directory; catch signals only when `pid1`.
    pub fn new(pid1: bool) -> Result<Waker> {
        let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .ok()
            .filter(|i| {
                let mask = AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_ONLYDIR;
                i.add_watch(".", mask).is_ok()
            });
        let signals = if pid1 { Some(catch_signals()?) } else { None };
        Ok(Waker { signals, watch })
    }

    /// Wait at most `limit` for a signal or a change of the scan directory.
    pub fn wait(&mut self, limit: Duration) -> Event {
        let ms = limit.as_millis().min(60_000) as u16;
        let mut fds = Vec::with_capacity(2);
        if let Some(s) = &self.signals {
            fds.push(PollFd::new(s.rd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(i) = &self.watch {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(limit);
            return Event::Timeout;
        }
        if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
            return Event::Timeout;
        }
        drop(fds);
        if let Some(s) = &mut self.signals {
            let mut buf = [0u8; 64];
            let mut woke = false;
            while matches!(s.rd.read(&mut buf), Ok(n) if n > 0) {
                woke = true;
            }
            if s.stop.load(Ordering::Relaxed) {
                return Event::Stop;
            }
            if woke {
                return Event::Child;
            }
        }
        match &self.watch {
            Some(i) if i.read_events().is_ok_and(|ev| !ev.is_empty()) => Event::DirChanged,
            _ => Event::Timeout,
        }
    }
}

fn catch_signals() -> Result<Signals> {
    let fail = |e| Error::sys("unable to catch signals", e);
    let (rd, wr) = UnixStream::pair().map_err(fail)?;
    rd.set_nonblocking(true).map_err(fail)?;
    wr.set_nonblocking(true).map_err(fail)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(fail)?;
    }
    for sig in [SIGTERM, SIGINT, SIGCHLD] {
        let w = wr.try_clone().map_err(fail)?;
        signal_hook::low_level::pipe::register(sig, w).map_err(fail)?;
    }
    Ok(Signals { rd, stop })
}
