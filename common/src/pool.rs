//! The server's side of keeping processes for more connections (tcpserver
//! -k, qmail-queued): a process started with a SOCK_SEQPACKET socket to the
//! server reports the end of each connection with its exit code (4 bytes)
//! and then waits (see keep.rs); the next connection, its descriptor
//! attached to a message the process understands, goes to the process that
//! waited least (its memory is the warmest) instead of to a new one. A
//! process is let go after a number of connections, as Postfix lets its
//! smtpd go after 100, so that whatever it leaks stays bounded, and after
//! a while without work: the server closes its socket.
//!
//! A process that does not take connections over simply exits, the socket
//! closing with it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

struct Worker {
    pid: libc::pid_t,
    sock: OwnedFd,
    uses: u32,
    /// Since when it has been waiting; None while it serves a connection.
    idle_since: Option<Instant>,
}

/// What a busy process's socket said.
pub enum Report {
    /// The connection is over: the process's pid and exit code.
    Done(libc::pid_t, i32),
    /// The process went away (or never took connections over); it will be
    /// reaped.
    Gone,
}

pub struct Pool {
    workers: Vec<Worker>,
    /// Connections one process serves before it is let go.
    max_uses: u32,
    /// How long a process waits for a connection before it is let go.
    idle: Duration,
}

impl Pool {
    pub fn new(max_uses: u32, idle: Duration) -> Pool {
        Pool {
            workers: Vec::new(),
            max_uses,
            idle,
        }
    }

    /// A socket pair for a new process: ours, and the one it gets as
    /// descriptor 3.
    pub fn pair() -> Result<(OwnedFd, OwnedFd), nix::errno::Errno> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
    }

    /// A process just started on a connection, with `sock` to it.
    pub fn add(&mut self, pid: libc::pid_t, sock: OwnedFd) {
        self.workers.push(Worker {
            pid,
            sock,
            uses: 0,
            idle_since: None,
        });
    }

    /// Whether a process waits for a connection.
    pub fn has_idle(&self) -> bool {
        self.workers.iter().any(|w| w.idle_since.is_some())
    }

    /// Hand connection `fd`, with the message `data` (not empty), to a
    /// waiting process; its pid, or None when no process took it.
    pub fn hand_over(&mut self, fd: RawFd, data: &[u8]) -> Option<libc::pid_t> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        if data.is_empty() || data.len() > crate::keep::MAXDATA {
            return None;
        }
        loop {
            let i = self
                .workers
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.idle_since.map(|t| (t, i)))
                .max()?
                .1;
            let w = &mut self.workers[i];
            let fds = [fd];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            let iov = [std::io::IoSlice::new(data)];
            let sent = sendmsg::<()>(
                w.sock.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
            if sent == Ok(data.len()) {
                w.idle_since = None;
                return Some(w.pid);
            }
            // Gone while waiting: it will be reaped; try another.
            self.workers.swap_remove(i);
        }
    }

    /// The sockets of the processs serving a connection, to poll.
    pub fn busy(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.workers
            .iter()
            .filter(|w| w.idle_since.is_none())
            .map(|w| w.sock.as_raw_fd())
    }

    /// Read what a busy process's socket `fd` has to say; None when it is
    /// not (or no longer) one of ours.
    pub fn read(&mut self, fd: RawFd, now: Instant) -> Option<Report> {
        let i = self
            .workers
            .iter()
            .position(|w| w.sock.as_raw_fd() == fd && w.idle_since.is_none())?;
        let mut word = [0u8; 4];
        // SAFETY: reading into our buffer from our socket; the process is
        // waiting to be read, so this does not block for long.
        let n = unsafe { libc::recv(fd, word.as_mut_ptr().cast(), word.len(), libc::MSG_DONTWAIT) };
        if n == -1 && nix::errno::Errno::last() == nix::errno::Errno::EAGAIN {
            return None;
        }
        if n != 4 {
            self.workers.swap_remove(i);
            return Some(Report::Gone);
        }
        let w = &mut self.workers[i];
        let pid = w.pid;
        w.uses += 1;
        if w.uses >= self.max_uses {
            // Closing the socket tells it to exit.
            self.workers.swap_remove(i);
        } else {
            w.idle_since = Some(now);
        }
        Some(Report::Done(pid, i32::from_le_bytes(word)))
    }

    /// Let go of the processes idle for too long; the poll(2) timeout
    /// until the next one is due, in milliseconds (-1: none waits).
    pub fn expire(&mut self, now: Instant) -> i32 {
        let idle = self.idle;
        self.workers
            .retain(|w| w.idle_since.is_none_or(|t| now.duration_since(t) < idle));
        let next = self.workers.iter().filter_map(|w| w.idle_since).min();
        next.map_or(-1, |t| {
            let ms = (t + idle).saturating_duration_since(now).as_millis();
            ms.min(i32::MAX as u128 - 1) as i32 + 1
        })
    }

    /// Close every socket (in a forked child, which must not hold them).
    pub fn close_all(&mut self) {
        self.workers.clear();
    }

    /// Process `pid` was reaped.
    pub fn forget(&mut self, pid: libc::pid_t) {
        self.workers.retain(|w| w.pid != pid);
    }
}
