//! Resident qmail-local processes: qmail-lspawn's way of not paying a
//! process creation and exit for every local delivery.
//!
//! A resident process is forked once for a uid and gid, becomes that user,
//! and then carries out qmail-local for one delivery after another, each
//! handed over a socket with the message and the report pipe. It only ever
//! delivers for the user it has become, so no delivery can touch another
//! user's mail, and before each one it puts back the environment it started
//! with; qmail-local itself sets the umask and the directory. One delivery
//! at a time per process: qmail-send's concurrency limit still counts
//! processes, and a process's pid names its delivery in hand.
//!
//! The exchange, over a SOCK_SEQPACKET pair: qmail-lspawn sends qmail-local's
//! arguments, each ending in \0, with the message and the pipe as two
//! descriptors; the process runs the delivery with them on fds 0, 1 and 2,
//! closes them (so the pipe reaches end of file), and answers with the
//! exit code qmail-local would have had, 4 bytes. End of file on the socket
//! tells it to exit. qmail-lspawn closes a process's socket when it has
//! been idle for IDLE, or after MAX_USES deliveries.

use common::privs::Account;
use nix::sys::socket::{
    recv, recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use nix::unistd::{ForkResult, Pid};
use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::time::{Duration, Instant};

/// How long an unused process is kept.
const IDLE: Duration = Duration::from_secs(5);
/// Idle processes kept at most (beyond them the longest idle goes).
const MAX_IDLE: usize = 32;
/// Deliveries per process before a fresh one takes over.
const MAX_USES: u32 = 1000;
/// The longest request: qmail-local's arguments, addresses included.
const REQUEST_MAX: usize = 1 << 17;
/// The socket's descriptor in the resident process.
const SOCK_FD: RawFd = 3;
/// Exit code of a resident process that lost its way (a temporary failure
/// for a delivery in hand).
const LOST: i32 = 111;

struct Worker {
    pid: Pid,
    acct: Account,
    sock: OwnedFd,
    busy: bool,
    uses: u32,
    since: Instant,
}

/// qmail-lspawn's resident processes.
#[derive(Default)]
pub struct Pool {
    workers: RefCell<Vec<Worker>>,
}

impl Pool {
    /// Start qmail-local with `args` as `acct` in a resident process; the
    /// process's pid, which stands for the delivery until it is answered.
    pub fn deliver(
        &self,
        acct: Account,
        drop_privileges: bool,
        mess: &OwnedFd,
        out: &OwnedFd,
        args: &[&[u8]],
    ) -> Option<Pid> {
        let mut req = Vec::new();
        for a in args {
            req.extend_from_slice(a);
            req.push(0);
        }
        let fds = [mess.as_raw_fd(), out.as_raw_fd()];
        let mut ws = self.workers.borrow_mut();
        // An idle process whose socket fails has died; a fresh one gets a
        // second chance.
        if let Some(i) = ws.iter().position(|w| !w.busy && w.acct == acct) {
            let w = &mut ws[i];
            if hand_over(&w.sock, &req, &fds) {
                w.busy = true;
                return Some(w.pid);
            }
            ws.remove(i);
        }
        let mut w = start(acct, drop_privileges)?;
        if !hand_over(&w.sock, &req, &fds) {
            return None;
        }
        w.busy = true;
        let pid = w.pid;
        ws.push(w);
        Some(pid)
    }

    /// The sockets to watch: one per delivery in hand.
    pub fn watched(&self) -> Vec<(RawFd, Pid)> {
        let ws = self.workers.borrow();
        ws.iter()
            .filter(|w| w.busy)
            .map(|w| (w.sock.as_raw_fd(), w.pid))
            .collect()
    }

    /// The exit code process `pid` gave for its delivery, if it has.
    pub fn answer(&self, pid: Pid) -> Option<i32> {
        let mut ws = self.workers.borrow_mut();
        let i = ws.iter().position(|w| w.pid == pid && w.busy)?;
        let mut code = [0u8; 4];
        match recv(ws[i].sock.as_raw_fd(), &mut code, MsgFlags::MSG_DONTWAIT) {
            Ok(4) => {}
            // Not an answer: the process is past trusting. Its death, once
            // reaped, ends the delivery as a crash.
            Ok(n) if n > 0 => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                return None;
            }
            _ => return None,
        }
        let w = &mut ws[i];
        w.busy = false;
        w.uses += 1;
        w.since = Instant::now();
        if w.uses >= MAX_USES {
            ws.remove(i);
        }
        Some(i32::from_le_bytes(code))
    }

    /// Process `pid` has been reaped: whether it died with a delivery in
    /// hand that it never answered for.
    pub fn gone(&self, pid: Pid) -> bool {
        let mut ws = self.workers.borrow_mut();
        let busy = ws.iter().any(|w| w.pid == pid && w.busy);
        ws.retain(|w| w.pid != pid);
        busy
    }

    /// Milliseconds until an idle process is due to go; -1 if none is.
    pub fn timeout(&self) -> i32 {
        let ws = self.workers.borrow();
        let now = Instant::now();
        ws.iter()
            .filter(|w| !w.busy)
            .map(|w| (w.since + IDLE).saturating_duration_since(now).as_millis() as i32 + 1)
            .min()
            .unwrap_or(-1)
    }

    /// Let idle processes go: those idle long enough, and the longest idle
    /// beyond MAX_IDLE. Closing the socket is the word to exit.
    pub fn tick(&self) {
        let mut ws = self.workers.borrow_mut();
        let now = Instant::now();
        ws.retain(|w| w.busy || now < w.since + IDLE);
        let mut idle: Vec<Instant> = ws.iter().filter(|w| !w.busy).map(|w| w.since).collect();
        if idle.len() > MAX_IDLE {
            idle.sort_unstable();
            let cut = idle[idle.len() - MAX_IDLE];
            ws.retain(|w| w.busy || w.since >= cut);
        }
    }
}

fn hand_over(sock: &OwnedFd, req: &[u8], fds: &[RawFd]) -> bool {
    let iov = [IoSlice::new(req)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    matches!(sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, flags, None), Ok(n) if n == req.len())
}

/// Fork a resident process for `acct`.
fn start(acct: Account, drop_privileges: bool) -> Option<Worker> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ok()?;
    // SAFETY: qmail-lspawn is single-threaded; the child never returns.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => serve(theirs, acct, drop_privileges),
        Ok(ForkResult::Parent { child }) => Some(Worker {
            pid: child,
            acct,
            sock: ours,
            busy: false,
            uses: 0,
            since: Instant::now(),
        }),
        Err(_) => None,
    }
}

/// The resident process: keep only the socket (other deliveries' pipes
/// must not be held open here), become the user, then deliver on request.
fn serve(sock: OwnedFd, acct: Account, drop_privileges: bool) -> ! {
    let exit = |c: i32| -> ! { unsafe { libc::_exit(c) } };
    // SAFETY: descriptor juggling on our own fds in a single-threaded child.
    unsafe {
        if sock.as_raw_fd() != SOCK_FD && libc::dup2(sock.as_raw_fd(), SOCK_FD) == -1 {
            exit(LOST);
        }
        std::mem::forget(sock);
        libc::syscall(libc::SYS_close_range, SOCK_FD + 1, u32::MAX, 0);
        libc::fcntl(SOCK_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    if drop_privileges && (common::privs::drop_to(acct).is_err() || nix::unistd::getuid().is_root())
    {
        exit(super::QLX_USAGE);
    }
    super::become_qmail_local();
    let Ok(devnull) = std::fs::File::open("/dev/null") else {
        exit(LOST)
    };
    // qmail-lspawn's own fds 0 and 1 talk to qmail-send: not ours to hold.
    if !(0..3).all(|fd| unsafe { libc::dup2(devnull.as_raw_fd(), fd) } != -1) {
        exit(LOST);
    }
    let base: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut buf = vec![0u8; REQUEST_MAX];
    loop {
        let Some((args, fds)) = next_request(&mut buf) else {
            exit(0)
        };
        restore_env(&base);
        // SAFETY: dup2 onto the standard descriptors.
        let placed = unsafe {
            libc::dup2(fds[0].as_raw_fd(), 0) != -1
                && libc::dup2(fds[1].as_raw_fd(), 1) != -1
                && libc::dup2(1, 2) != -1
        };
        drop(fds);
        let code = if placed { deliver(&args) } else { LOST };
        // SAFETY: as above; /dev/null stays open for the next time.
        let cleared = (0..3).all(|fd| unsafe { libc::dup2(devnull.as_raw_fd(), fd) } != -1);
        let sent = nix::unistd::write(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(SOCK_FD) },
            &code.to_le_bytes(),
        );
        if !cleared || !matches!(sent, Ok(4)) {
            exit(LOST);
        }
    }
}

/// Wait for a request: qmail-local's arguments and the two descriptors;
/// None at end of file on the socket. Anything else ends the process with
/// LOST, never 0: a delivery must not pass for done.
fn next_request(buf: &mut [u8]) -> Option<(Vec<OsString>, Vec<OwnedFd>)> {
    let lost = || -> ! { unsafe { libc::_exit(LOST) } };
    let mut space = nix::cmsg_space!([RawFd; 2]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let r = recvmsg::<()>(
            SOCK_FD,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        );
        let msg = match r {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => lost(),
            Ok(m) => m,
        };
        if msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
        {
            lost();
        }
        let mut fds = Vec::new();
        let Ok(cmsgs) = msg.cmsgs() else { lost() };
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: descriptors just received are ours alone.
                fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let n = msg.bytes;
        if n == 0 && fds.is_empty() {
            return None;
        }
        if fds.len() != 2 {
            lost();
        }
        let mut args = vec![OsString::from("--")];
        args.extend(
            buf[..n]
                .split(|&b| b == 0)
                .take(buf[..n].iter().filter(|&&b| b == 0).count())
                .map(|a| OsString::from_vec(a.to_vec())),
        );
        return Some((args, fds));
    }
}

fn restore_env(base: &[(OsString, OsString)]) {
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for (k, v) in base {
        std::env::set_var(k, v);
    }
}

/// One qmail-local run, ending as its process would: the error's line on
/// stderr, everything flushed, the exit code.
fn deliver(args: &[OsString]) -> i32 {
    let code = match crate::local::run(args) {
        Ok(()) => 0,
        Err(e) => {
            let line = e.line("qmail-local");
            if !line.is_empty() {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            e.code
        }
    };
    let _ = std::io::stdout().flush();
    code
}
