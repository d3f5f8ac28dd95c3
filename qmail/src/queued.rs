//! qmail-queued: qmail-queue kept resident, so that putting a message into
//! the queue costs neither a program start (exec and dynamic loading,
//! about 1 ms here) nor a fork per message.
//!
//! It runs as the user qmail-queue is setuid to (qmailq), started beside
//! qmail-send by qmail-start or as a service of its own, and listens on an
//! abstract unix socket named after QMAILHOME. Each connection is one
//! message, handed to a waiting child (common::pool), or to a new one when
//! all are busy; the child carries out qmail-queue with the descriptors
//! the caller would have given qmail-queue as fds 0 and 1, the caller's
//! uid (the socket's credentials) standing for the real uid of a setuid
//! qmail-queue, then waits for the next message; it is let go after 1000
//! messages or a minute without one. The exchange with the caller, over
//! SOCK_SEQPACKET: the child sends its pid at once (4 bytes,
//! little-endian: qmail-queue's pid is the message's qp, here shared by
//! the messages one child queues), receives one byte with the two
//! descriptors, and answers with qmail-queue's exit code (4 bytes). End of
//! file before the code is a crash.
//!
//! Callers (`queue::client`) use it only when nothing replaces qmail-queue
//! (QMAILQUEUE unset) and the socket belongs to the user a started
//! qmail-queue would run as; otherwise, or when no server listens, they
//! start qmail-queue as always. Anyone may connect, as anyone may run the
//! setuid qmail-queue; an abstract name another user took first is simply
//! not trusted.

use common::pool::Pool;
use common::Error;
use nix::sys::socket::{
    accept4, bind, connect, getsockopt, listen, recvmsg, send, sendmsg, socket, sockopt,
    AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The socket's abstract name for the queue under `home`; None when the
/// name would not fit a socket address.
fn address(home: &Path) -> Option<UnixAddr> {
    let mut name = b"qmail-queue:".to_vec();
    name.extend_from_slice(home.as_os_str().as_bytes());
    UnixAddr::new_abstract(&name).ok()
}

/// The uid a started qmail-queue runs as: its owner when it is setuid,
/// the caller otherwise.
fn queue_uid(home: &Path) -> Option<u32> {
    let m = std::fs::metadata(home.join("bin/qmail-queue")).ok()?;
    if m.mode() & libc::S_ISUID != 0 {
        Some(m.uid())
    } else {
        Some(nix::unistd::geteuid().as_raw())
    }
}

/// Hand a message's two pipes (`fds`: message, envelope) to the server of
/// the queue under `home`; the connection, on which the pid and then the
/// exit code will come, or None when there is no server to trust.
pub fn hand_over(home: &Path, fds: [RawFd; 2]) -> Option<OwnedFd> {
    let addr = address(home)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    connect(sock.as_raw_fd(), &addr).ok()?;
    let server = getsockopt(&sock, sockopt::PeerCredentials).ok()?;
    if Some(server.uid()) != queue_uid(home) {
        return None;
    }
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"q")];
    match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(1) => Some(sock),
        _ => None,
    }
}

/// The next 4-byte word from the server (pid, then exit code); None at end
/// of file or on anything else.
pub fn word(sock: &OwnedFd) -> Option<u32> {
    let mut b = [0u8; 4];
    loop {
        match nix::sys::socket::recv(sock.as_raw_fd(), &mut b, MsgFlags::empty()) {
            Ok(4) => return Some(u32::from_le_bytes(b)),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Messages one child queues before it is let go, and how long it may
/// wait for the next.
const USES: u32 = 1000;
const IDLE: Duration = Duration::from_secs(60);

/// qmail-queued: listen, and hand every connection to a waiting child,
/// forking one when none waits.
pub fn run() -> Result<(), Error> {
    let home = crate::home::home();
    std::env::set_current_dir(&home)
        .map_err(|e| Error::temp(format!("unable to chdir to {}: {e}", home.display())))?;
    let addr = address(&home).ok_or_else(|| Error::temp("QMAILHOME is too long"))?;
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| Error::sys("unable to create socket", e))?;
    bind_patiently(&listener, &addr)?;
    listen(&listener, Backlog::MAXCONN).map_err(|e| Error::sys("unable to listen", e))?;
    quiet_stdio()?;
    // SAFETY: plain dispositions; children are reaped by the kernel.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut pool = Pool::new(USES, IDLE);
    let mut fds = Vec::new();
    loop {
        let timeout = pool.expire(Instant::now());
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.clear();
        fds.push(pollfd(listener.as_raw_fd()));
        fds.extend(pool.busy().map(pollfd));
        // SAFETY: poll on our own array of pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) } <= 0 {
            continue;
        }
        for f in &fds[1..] {
            if f.revents != 0 {
                // Done or gone, a child has nothing more to say to us.
                pool.read(f.fd, Instant::now());
            }
        }
        if fds[0].revents != 0 {
            accept_some(&listener, &mut pool);
        }
    }
}

/// Take the waiting connections, each to a waiting child or a new one.
fn accept_some(listener: &OwnedFd, pool: &mut Pool) {
    for _ in 0..16 {
        let conn = match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: a descriptor accept just made is ours alone.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
            Err(nix::errno::Errno::EMFILE | nix::errno::Errno::ENFILE) => {
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED) => continue,
            Err(_) => return,
        };
        if pool.hand_over(conn.as_raw_fd(), b"q").is_none() {
            start(listener, pool, conn);
        }
    }
}

/// Fork a child for `conn` that then waits for more. Without a child the
/// caller reads end of file: a crash, temporary.
fn start(listener: &OwnedFd, pool: &mut Pool, conn: OwnedFd) {
    let Ok((ours, theirs)) = Pool::pair() else {
        return;
    };
    // SAFETY: qmail-queued is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            // Only the parent may hold the other children's sockets: a
            // child let go must see its socket close.
            pool.close_all();
            // SAFETY: closing our copies of the parent's descriptors.
            unsafe { libc::close(listener.as_raw_fd()) };
            drop(ours);
            common::sig::reset_for_exec();
            // SAFETY: the child ends here, without unwinding into the loop.
            unsafe { libc::_exit(child(conn, theirs)) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => pool.add(child.as_raw(), ours),
        Err(_) => {}
    }
}

/// A child: queue a message for every connection the parent hands over.
fn child(mut conn: OwnedFd, parent: OwnedFd) -> i32 {
    let mut buf = [0u8; 1];
    loop {
        let code = serve(&conn);
        // Nothing of this message stays for the next: its descriptors,
        // the day's alarm.
        common::keep::null_stdio();
        // SAFETY: cancelling our own alarm.
        unsafe { libc::alarm(0) };
        // The parent hears first, so that a caller's next message finds
        // this child waiting.
        let told = common::keep::report(&parent, code);
        let _ = send(
            conn.as_raw_fd(),
            &code.to_le_bytes(),
            MsgFlags::MSG_NOSIGNAL,
        );
        drop(conn);
        if !told {
            return 0;
        }
        match common::keep::receive(&parent, &mut buf) {
            Some((next, _)) => conn = next,
            None => return 0,
        }
    }
}

/// Bind, giving a predecessor that is on its way out (qmail-send
/// restarted: the old server ends with the old qmail-send) a few seconds
/// to let go of the name.
fn bind_patiently(listener: &OwnedFd, addr: &UnixAddr) -> Result<(), Error> {
    let mut tries = 0;
    loop {
        match bind(listener.as_raw_fd(), addr) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EADDRINUSE) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(Error::sys("unable to bind socket", e)),
        }
    }
}

/// fds 0 and 1 on /dev/null: the server has no use for them, and must not
/// keep open whatever pipe it was started with; fd 2 stays for errors.
fn quiet_stdio() -> Result<(), Error> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::temp(format!("unable to open /dev/null: {e}")))?;
    for fd in [0, 1] {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } == -1 {
            return Err(Error::temp("unable to set up descriptors"));
        }
    }
    Ok(())
}

/// One message: qmail-queue's exit code, for the caller on `conn`.
fn serve(conn: &OwnedFd) -> i32 {
    let pid = std::process::id();
    if send(conn.as_raw_fd(), &pid.to_le_bytes(), MsgFlags::MSG_NOSIGNAL).is_err() {
        return 111;
    }
    let Ok(cred) = getsockopt(conn, sockopt::PeerCredentials) else {
        return 111;
    };
    let Some(fds) = descriptors(conn) else {
        return crate::qmail_queue::EXIT_READ;
    };
    for (fd, to) in fds.iter().zip([0, 1]) {
        // SAFETY: dup2 onto fds 0 and 1, which qmail-queue reads.
        if unsafe { libc::dup2(fd.as_raw_fd(), to) } == -1 {
            return 111;
        }
    }
    drop(fds);
    match crate::qmail_queue::queue_for(cred.uid()) {
        Ok(()) => 0,
        Err(e) => e.code,
    }
}

/// The message's and the envelope's descriptors, sent with one byte.
fn descriptors(conn: &OwnedFd) -> Option<Vec<OwnedFd>> {
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let mut b = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut b)];
    let msg = loop {
        match recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(m) => break m,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: descriptors just received are ours alone.
            fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    (msg.bytes == 1 && fds.len() == 2).then_some(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_follows_the_home() {
        let a = address(Path::new("/var/qmail")).unwrap();
        assert_eq!(a.as_abstract().unwrap(), b"qmail-queue:/var/qmail");
        assert!(address(Path::new(&"x".repeat(200))).is_none());
    }
}
