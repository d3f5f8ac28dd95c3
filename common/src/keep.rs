//! The program's side of `tcpserver -k`: a program that tcpserver started
//! for one connection may, once done with it, take the next connection in
//! the same process instead of exiting, so that a busy server pays for a
//! program start (exec, dynamic loading, page faults: about a millisecond
//! here) once per hundred connections instead of once per connection.
//!
//! tcpserver says so with two things: descriptor 3, a SOCK_SEQPACKET
//! socket to it, and UCSPIKEEP, the program it ran (its argv\[0\]). A
//! program takes connections over only when it is that program: run
//! through a chain (`rblsmtpd qmail-smtpd`), whatever ran before it would
//! be skipped for the next connections, so then it closes the socket and
//! goes on as if started without -k.
//!
//! The exchange: when a connection is over, the program sends its exit
//! code (4 bytes, little-endian) and waits; tcpserver answers with the
//! next connection, its descriptor attached, the data being the program's
//! whole environment for it (`NAME=value\0` entries), or closes the socket
//! to say there will be no more. Each connection thus starts as a fresh
//! start would: descriptors 0 and 1 on the connection, tcpserver's
//! environment with this connection's variables, the first directory.

use nix::sys::socket::{
    getsockopt, recvmsg, send, sockopt, ControlMessageOwned, MsgFlags, SockType,
};
use std::ffi::{OsStr, OsString};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// The variable naming the program tcpserver ran.
pub const VAR: &str = "UCSPIKEEP";
/// The descriptor of the socket to tcpserver.
pub const FD: RawFd = 3;
/// The largest message sent with a connection (for tcpserver, its
/// environment); with a larger one the connection gets a process of its own.
pub const MAXDATA: usize = 64 * 1024;

/// A program kept by tcpserver for more connections.
pub struct Keep {
    sock: OwnedFd,
    /// The directory the program started in, gone back to before each
    /// connection.
    cwd: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl Keep {
    /// Take over from `tcpserver -k` when it ran this very program
    /// (`argv0`). UCSPIKEEP leaves the environment either way, so the
    /// program's own children never see it.
    pub fn from_env(argv0: &OsStr) -> Option<Keep> {
        let ran = std::env::var_os(VAR)?;
        std::env::remove_var(VAR);
        // SAFETY: borrowing descriptor 3 only to ask what it is.
        let fd3 = unsafe { std::os::fd::BorrowedFd::borrow_raw(FD) };
        if getsockopt(&fd3, sockopt::SockType).ok()? != SockType::SeqPacket {
            return None;
        }
        // SAFETY: descriptor 3 is tcpserver's socket, ours from now on.
        let sock = unsafe { OwnedFd::from_raw_fd(FD) };
        if ran != argv0 {
            return None;
        }
        // SAFETY: marking our own descriptor close-on-exec.
        unsafe { libc::fcntl(FD, libc::F_SETFD, libc::FD_CLOEXEC) };
        let cwd = std::fs::File::open(".").ok().map(OwnedFd::from);
        Some(Keep {
            sock,
            cwd,
            buf: vec![0; MAXDATA],
        })
    }

    /// The connection is over, with exit code `code`: tell tcpserver and
    /// wait for the next one. False when there is none (the program then
    /// exits); true with descriptors 0 and 1, the environment and the
    /// directory set up for it.
    pub fn next(&mut self, code: i32) -> bool {
        // The client must see its connection closed now, not when the
        // next one arrives.
        null_stdio();
        if !report(&self.sock, code) {
            return false;
        }
        let Some((conn, len)) = receive(&self.sock, &mut self.buf) else {
            return false;
        };
        // SAFETY: putting the received connection on descriptors 0 and 1.
        unsafe {
            libc::dup2(conn.as_raw_fd(), 0);
            libc::dup2(conn.as_raw_fd(), 1);
        }
        set_environment(&self.buf[..len]);
        if let Some(d) = &self.cwd {
            // SAFETY: fchdir to a directory descriptor we hold.
            unsafe { libc::fchdir(d.as_raw_fd()) };
        }
        true
    }
}

/// Tell the server over `sock` that a connection ended with `code`.
pub fn report(sock: &OwnedFd, code: i32) -> bool {
    let word = (code as u32).to_le_bytes();
    send(sock.as_raw_fd(), &word, MsgFlags::MSG_NOSIGNAL) == Ok(4)
}

/// The next connection from the server over `sock`, with the length of
/// the message that came with it in `buf`; None when the server closed
/// the socket (or sent anything else).
pub fn receive(sock: &OwnedFd, buf: &mut [u8]) -> Option<(OwnedFd, usize)> {
    loop {
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        };
        let mut conn = None;
        for c in msg.cmsgs().ok()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: a descriptor just received, ours alone.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    conn.get_or_insert(owned);
                }
            }
        }
        let truncated = msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        let len = msg.bytes;
        return match conn {
            Some(c) if !truncated && len > 0 => Some((c, len)),
            _ => None,
        };
    }
}

/// /dev/null on descriptors 0 and 1, closing our copies of the connection.
/// /dev/null itself may land on 0 or 1 when one of them was closed.
pub fn null_stdio() {
    let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let fd = std::os::fd::IntoRawFd::into_raw_fd(null);
    // SAFETY: dup2 onto the standard descriptors, then closing the
    // descriptor open() gave unless it is one of them.
    unsafe {
        for to in [0, 1] {
            if fd != to {
                libc::dup2(fd, to);
            }
        }
        if fd > 1 {
            libc::close(fd);
        }
    }
}

/// Make the environment exactly `block`'s entries.
fn set_environment(block: &[u8]) {
    let old: Vec<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    for k in old {
        std::env::remove_var(k);
    }
    for (k, v) in entries(block) {
        std::env::set_var(OsStr::from_bytes(k), OsStr::from_bytes(v));
    }
}

/// The `NAME=value\0` entries of an environment block; anything without
/// a name is left out.
fn entries(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    block.split(|&c| c == 0).filter_map(|e| {
        let eq = e.iter().position(|&c| c == b'=')?;
        (eq > 0).then(|| (&e[..eq], &e[eq + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn environment_entries() {
        let got: Vec<_> = entries(b"A=1\0B=x=y\0=bad\0junk\0C=\0").collect();
        assert_eq!(got, [(&b"A"[..], &b"1"[..]), (b"B", b"x=y"), (b"C", b"")]);
    }
}
