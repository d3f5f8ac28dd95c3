//! Readiness notification with the s6 convention, beyond daemontools and
//! invisible unless a service asks for it: when the service directory holds
//! `notification-fd` naming a descriptor N, supervise hands ./run the write end
//! of a pipe as fd N; the first newline the service writes there means "ready".
//! supervise then records the moment in supervise/ready (a 12-byte TAI64N,
//! written atomically) and leaves supervise/status, whose 18-byte layout the
//! original svstat reads, untouched. The file is removed whenever the pid
//! changes, and readers also ignore it when it is older than the status stamp,
//! so a stale file left by a crash is never shown.

use common::tai::Tai64n;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Name of the file in the service directory naming the descriptor.
pub const FD_FILE: &str = "notification-fd";
/// Where supervise records the moment of readiness.
pub const READY: &str = "supervise/ready";
const READY_NEW: &str = "supervise/ready.new";

/// The descriptor number the service asked for: Ok(None) without the file,
/// Err(why) when the file is unreadable or holds no usable number.
pub fn wanted_fd() -> Result<Option<RawFd>, String> {
    let text = match std::fs::read(FD_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(common::error::Errno::from(e).text().to_string()),
    };
    parse_fd(&text)
        .map(Some)
        .ok_or_else(|| "bad format".to_string())
}

/// A decimal descriptor number of at least 3 (0-2 are the service's stdio),
/// optionally followed by a newline.
fn parse_fd(text: &[u8]) -> Option<RawFd> {
    let t = text.strip_suffix(b"\n").unwrap_or(text);
    if t.is_empty() || t.len() > 6 || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: RawFd = std::str::from_utf8(t).ok()?.parse().ok()?;
    (n >= 3).then_some(n)
}

/// The pipe of one incarnation of the service, read end kept by supervise.
pub struct Pipe {
    read: File,
}

/// What reading the notification pipe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The service wrote its newline.
    Ready,
    /// The service closed the pipe without a newline (or reading failed).
    Closed,
    /// Nothing decisive yet.
    Pending,
}

impl Pipe {
    /// A new pipe: supervise's read end and the write end for the child,
    /// both close-on-exec (the child dups its end onto the wanted number).
    pub fn new() -> nix::Result<(Pipe, OwnedFd)> {
        use nix::fcntl::OFlag;
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // The service must get a blocking descriptor, as with s6.
        nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::F_SETFL(OFlag::empty()))?;
        Ok((
            Pipe {
                read: File::from(r),
            },
            w,
        ))
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Read what is there without blocking.
    pub fn read(&mut self) -> Event {
        let mut buf = [0u8; 64];
        match self.read.read(&mut buf) {
            Ok(0) => Event::Closed,
            Ok(n) if buf[..n].contains(&b'\n') => Event::Ready,
            Ok(_) => Event::Pending,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Event::Pending,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Event::Pending,
            Err(_) => Event::Closed,
        }
    }
}

/// In the child: put the write end on descriptor `n` (not close-on-exec).
pub fn install_in_child(w: &OwnedFd, n: RawFd) -> nix::Result<()> {
    if w.as_raw_fd() == n {
        nix::fcntl::fcntl(n, nix::fcntl::F_SETFD(nix::fcntl::FdFlag::empty()))?;
        return Ok(());
    }
    nix::unistd::dup2(w.as_raw_fd(), n).map(|_| ())
}

/// Record readiness at `when`; the error is (step, errno) as for the status file.
pub fn mark(when: Tai64n) -> Result<(), (&'static str, common::error::Errno)> {
    crate::status::replace_file(READY_NEW, READY, &when.pack())
}

/// Forget readiness (the pid changed).
pub fn clear() {
    let _ = std::fs::remove_file(READY);
}

/// The moment of readiness recorded in `path` (a service's supervise/ready),
/// if it is well formed and not older than `since` (the status stamp).
pub fn read_ready(path: &str, since: Tai64n) -> Option<Tai64n> {
    let mut b = [0u8; 12];
    let mut f = File::open(path).ok()?;
    f.read_exact(&mut b).ok()?;
    let t = Tai64n::unpack(&b);
    (t >= since).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_numbers() {
        assert_eq!(parse_fd(b"3\n"), Some(3));
        assert_eq!(parse_fd(b"12"), Some(12));
        assert_eq!(parse_fd(b"2"), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"x3"), None);
        assert_eq!(parse_fd(b"3 \n"), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn pipe_reports_newline_and_close() {
        let (mut p, w) = Pipe::new().unwrap();
        assert_eq!(p.read(), Event::Pending);
        nix::unistd::write(&w, b"ab").unwrap();
        assert_eq!(p.read(), Event::Pending);
        nix::unistd::write(&w, b"\n").unwrap();
        assert_eq!(p.read(), Event::Ready);
        drop(w);
        assert_eq!(p.read(), Event::Closed);
    }
}
