//! The spawn protocol shared by qmail-lspawn and qmail-rspawn. qmail-send
//! writes requests on fd 0: a delivery number byte, the message's file name
//! under queue/mess (`S/N`), the sender and the recipient, each ending in
//! \0. The spawner runs one delivery program per request with the message
//! on its fd 0 and a pipe on fds 1 and 2, and when that pipe reaches end of
//! file (after the child has died, or a resident process has answered for
//! the delivery) writes back the delivery number, the report (`K`, `Z` or
//! `D` and text) and \0 on fd 1. Its first byte out is how many deliveries
//! it can run at once.
//!
//! Beyond qmail, one delivery may carry several recipients (qmail-send
//! groups a message's remote recipients at one domain, so that qmail-remote
//! gives them to the server over one connection): such a request leaves the
//! recipient field empty and follows it with the recipients, each ending in
//! \0, then an empty field. The reply is then one report per recipient, in
//! the request's order, each with the delivery number. A single-recipient
//! request and its reply are the original bytes.

use common::Error;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

/// How many deliveries one spawner runs at once (conf-spawn).
pub const AUTO_SPAWN: usize = 120;

/// What differs between the local and the remote spawner.
pub trait Spawner {
    /// Fork the delivery program for `recips` (`at` is the index of the
    /// first one's last '@'), message on `mess`, output to `out`.
    fn spawn(
        &self,
        mess: OwnedFd,
        out: OwnedFd,
        sender: &str,
        recips: &[String],
        at: usize,
    ) -> Option<Pid>;
    /// Whether one delivery may carry several recipients.
    fn groups(&self) -> bool;
    /// The reports for a finished delivery of `n` recipients: K/Z/D and
    /// text, one per recipient.
    fn report(&self, status: WaitStatus, output: &[u8], n: usize) -> Vec<Vec<u8>>;
    /// Cut the program's output beyond this many bytes (0: never).
    fn truncreport(&self) -> usize;
    /// Deliveries in hand in resident processes (which outlive them): the
    /// descriptor that answers for each and the pid standing for it.
    fn watched(&self) -> Vec<(RawFd, Pid)> {
        Vec::new()
    }
    /// The exit status resident process `pid` gave for its delivery in
    /// hand, once it has given it.
    fn answer(&self, _pid: Pid) -> Option<i32> {
        None
    }
    /// Child `pid` has been reaped: whether it was a resident process that
    /// died with a delivery in hand it never answered for.
    fn gone(&self, _pid: Pid) -> bool {
        false
    }
    /// Milliseconds until `tick` has something to do (-1: nothing).
    fn timeout(&self) -> i32 {
        -1
    }
    /// Housekeeping between requests (idle resident processes).
    fn tick(&self) {}
}

/// One delivery in progress.
struct Delivery {
    fdin: std::fs::File,
    pid: Option<Pid>,
    status: Option<WaitStatus>,
    fdout: Option<OwnedFd>,
    output: Vec<u8>,
    recips: usize,
}

/// The request being read from qmail-send: stage 0 wants the delivery
/// number, 1 to 3 the fields, 4 the rest of a recipient list.
#[derive(Default)]
struct Request {
    stage: usize,
    delnum: usize,
    fields: [Vec<u8>; 3],
    list: Vec<Vec<u8>>,
    item: Vec<u8>,
}

impl Request {
    /// Take one byte; true when it completed the request.
    fn take(&mut self, ch: u8) -> bool {
        match self.stage {
            0 => {
                *self = Request {
                    delnum: usize::from(ch),
                    stage: 1,
                    ..Request::default()
                };
                false
            }
            1..=3 if ch != 0 => {
                self.fields[self.stage - 1].push(ch);
                false
            }
            3 if self.fields[2].is_empty() => {
                self.stage = 4;
                false
            }
            1..=3 => {
                self.stage += 1;
                if self.stage == 4 {
                    self.list = vec![std::mem::take(&mut self.fields[2])];
                    self.stage = 0;
                }
                self.stage == 0
            }
            _ if ch != 0 => {
                self.item.push(ch);
                false
            }
            _ if self.item.is_empty() => {
                self.stage = 0;
                true
            }
            _ => {
                self.list.push(std::mem::take(&mut self.item));
                false
            }
        }
    }
}

/// The spawner's loop state.
struct Spawn<'a, S: Spawner> {
    sp: &'a S,
    /// Who must own a message: looked up once, as the original has it
    /// compiled in, because a user lookup can walk every NSS module.
    qmailq: u32,
    d: Vec<Option<Delivery>>,
    req: Request,
    reading: bool,
    writing: bool,
}

pub fn run(sp: &impl Spawner) -> Result<(), Error> {
    let home = crate::home::home();
    std::env::set_current_dir(home.join("queue/mess")).map_err(|_| Error::silent(111))?;
    let sigchld = signal_pipe()?;
    let mut s = Spawn {
        sp,
        qmailq: crate::ids::ids().qmailq,
        d: (0..AUTO_SPAWN).map(|_| None).collect(),
        req: Request::default(),
        reading: true,
        writing: true,
    };
    s.out(&[AUTO_SPAWN as u8]);
    loop {
        if !s.reading && s.d.iter().all(Option::is_none) {
            return Ok(());
        }
        s.poll_once(&sigchld);
    }
}

fn signal_pipe() -> Result<std::os::unix::net::UnixStream, Error> {
    let (r, w) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Error::sys("unable to create pipe", e))?;
    r.set_nonblocking(true)
        .and_then(|_| w.set_nonblocking(true))
        .map_err(|e| Error::sys("unable to set nonblocking", e))?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, w)
        .map_err(|e| Error::sys("unable to catch SIGCHLD", e))?;
    Ok(r)
}

impl<S: Spawner> Spawn<'_, S> {
    /// Write to qmail-send; once that fails, stop writing but keep working.
    fn out(&mut self, b: &[u8]) {
        if !self.writing {
            return;
        }
        let mut b = b;
        while !b.is_empty() {
            let n = unsafe { libc::write(1, b.as_ptr().cast(), b.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                self.writing = false;
                return;
            }
            b = &b[n as usize..];
        }
    }

    /// The same report for each of a request's `n` recipients.
    fn err(&mut self, delnum: usize, n: usize, text: &str) {
        for _ in 0..n.max(1) {
            self.report(delnum, text.as_bytes());
        }
    }

    fn report(&mut self, delnum: usize, text: &[u8]) {
        let mut b = vec![delnum as u8];
        b.extend_from_slice(text);
        b.push(0);
        self.out(&b);
    }

    fn poll_once(&mut self, sigchld: &std::os::unix::net::UnixStream) {
        let mut fds = vec![pfd(sigchld.as_raw_fd())];
        if self.reading {
            fds.push(pfd(0));
        }
        let busy: Vec<usize> = (0..self.d.len()).filter(|&i| self.d[i].is_some()).collect();
        for &i in &busy {
            fds.push(pfd(self.d[i].as_ref().expect("busy").fdin.as_raw_fd()));
        }
        let watched = self.sp.watched();
        fds.extend(watched.iter().map(|&(fd, _)| pfd(fd)));
        let r = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                self.sp.timeout(),
            )
        };
        if r < 0 {
            return;
        }
        self.sp.tick();
        let ready = |fd: i32| {
            fds.iter().any(|p| {
                p.fd == fd && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            })
        };
        for &(fd, pid) in &watched {
            if ready(fd) {
                if let Some(code) = self.sp.answer(pid) {
                    self.ended(pid, WaitStatus::Exited(pid, code));
                }
            }
        }
        let mut buf = [0u8; 256];
        while matches!((&*sigchld).read(&mut buf), Ok(n) if n > 0) {}
        self.reap();
        if self.reading && ready(0) {
            self.getcmd();
        }
        for i in busy {
            let fd = match &self.d[i] {
                Some(d) => d.fdin.as_raw_fd(),
                None => continue,
            };
            if ready(fd) {
                self.read_child(i);
            }
        }
    }

    /// Collect dead children. A resident process may have answered just
    /// before it died: its answer, not its death, ends the delivery.
    fn reap(&mut self) {
        while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            let Some(pid) = st.pid() else { break };
            let answered = self.sp.answer(pid);
            let unanswered = self.sp.gone(pid);
            let st = match answered {
                Some(code) => WaitStatus::Exited(pid, code),
                // A resident process's own exit code says nothing about
                // the delivery; dying unanswered is never a success.
                None if unanswered && st == WaitStatus::Exited(pid, 0) => {
                    WaitStatus::Exited(pid, 111)
                }
                None => st,
            };
            self.ended(pid, st);
        }
    }

    /// The delivery `pid` stood for is over; closing our copy of its pipe
    /// lets end of file come.
    fn ended(&mut self, pid: Pid, st: WaitStatus) {
        for d in self.d.iter_mut().flatten() {
            if d.pid == Some(pid) {
                d.fdout = None;
                d.status = Some(st);
                d.pid = None;
            }
        }
    }

    fn read_child(&mut self, i: usize) {
        let mut buf = [0u8; 128];
        let d = self.d[i].as_mut().expect("busy");
        match d.fdin.read(&mut buf) {
            Err(_) => {}
            Ok(0) => {
                if d.pid.is_some() {
                    return;
                }
                let d = self.d[i].take().expect("busy");
                let status = d
                    .status
                    .unwrap_or(WaitStatus::Exited(Pid::from_raw(0), 111));
                for r in self.sp.report(status, &d.output, d.recips) {
                    self.report(i, &r);
                }
            }
            Ok(n) => {
                d.output.extend_from_slice(&buf[..n]);
                let t = self.sp.truncreport();
                if t > 100 && d.output.len() > t {
                    let msg = b"\nError report too long, sorry.\n";
                    d.output.truncate(t - msg.len() - 3);
                    d.output.extend_from_slice(msg);
                }
            }
        }
    }

    fn getcmd(&mut self) {
        let mut buf = [0u8; 1024];
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            self.reading = false;
            return;
        }
        if n < 0 {
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                self.reading = false;
            }
            return;
        }
        for &ch in &buf[..n as usize] {
            if self.req.take(ch) {
                let req = std::mem::take(&mut self.req);
                self.docmd(req);
            }
        }
    }

    fn docmd(&mut self, req: Request) {
        let i = req.delnum;
        let n = req.list.len();
        if i >= AUTO_SPAWN {
            return self.err(i, n, "ZInternal error: delnum too big. (#4.3.5)\n");
        }
        if self.d[i].is_some() {
            return self.err(i, n, "ZInternal error: delnum in use. (#4.3.5)\n");
        }
        if n != 1 && !self.sp.groups() {
            let text = "ZInternal error: several recipients for one delivery. (#4.3.5)\n";
            return self.err(i, n, text);
        }
        let [messid, sender, _] = req.fields;
        if let Err(text) = check_messid(&messid) {
            return self.err(i, n, text);
        }
        let recips: Vec<String> = req
            .list
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
        let sender = String::from_utf8_lossy(&sender).into_owned();
        let Some(at) = recips.first().and_then(|r| r.rfind('@')) else {
            return self.err(i, n, "DSorry, address must include host name. (#5.1.3)\n");
        };
        let messname = String::from_utf8_lossy(&messid).into_owned();
        let mess = match open_message(&messname, self.qmailq) {
            Ok(f) => f,
            Err(text) => return self.err(i, n, text),
        };
        let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return self.err(i, n, "Zqmail-spawn unable to create pipe. (#4.3.0)\n");
        };
        let Ok(w2) = w.try_clone() else {
            return self.err(i, n, "Zqmail-spawn unable to create pipe. (#4.3.0)\n");
        };
        let Some(pid) = self.sp.spawn(mess, w2, &sender, &recips, at) else {
            return self.err(i, n, "Zqmail-spawn unable to fork. (#4.3.0)\n");
        };
        self.d[i] = Some(Delivery {
            fdin: std::fs::File::from(r),
            pid: Some(pid),
            status: None,
            fdout: Some(w),
            output: Vec::new(),
            recips: n,
        });
    }
}

fn pfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn check_messid(m: &[u8]) -> Result<(), &'static str> {
    for (i, &c) in m.iter().enumerate() {
        if !(c.is_ascii_digit() || (i > 0 && c == b'/')) {
            return Err("DInternal error: messid has nonnumerics. (#5.3.5)\n");
        }
    }
    if m.len() > 100 {
        return Err("DInternal error: messid too long. (#5.3.5)\n");
    }
    if m.is_empty() {
        return Err("DInternal error: messid too short. (#5.3.5)\n");
    }
    Ok(())
}

/// Open the message, refusing anything qmailq did not write.
fn open_message(name: &str, qmailq: u32) -> Result<OwnedFd, &'static str> {
    let f =
        std::fs::File::open(name).map_err(|_| "Zqmail-spawn unable to open message. (#4.3.0)\n")?;
    let md = f
        .metadata()
        .map_err(|_| "Zqmail-spawn unable to fstat message. (#4.3.0)\n")?;
    if !md.is_file() {
        return Err("ZSorry, message has wrong type. (#4.3.5)\n");
    }
    if md.uid() != qmailq {
        return Err("ZSorry, message has wrong owner. (#4.3.5)\n");
    }
    Ok(OwnedFd::from(f))
}

/// In a forked child: message on fd 0, the report pipe on fds 1 and 2.
pub fn child_fds(mess: &OwnedFd, out: &OwnedFd) -> bool {
    unsafe {
        libc::dup2(mess.as_raw_fd(), 0) != -1
            && libc::dup2(out.as_raw_fd(), 1) != -1
            && libc::dup2(1, 2) != -1
    }
}

/// Whether an exec failure is temporary (djb's error_temp).
pub fn temp_errno(e: nix::errno::Errno) -> bool {
    use nix::errno::Errno::*;
    matches!(
        e,
        EINTR
            | ENOMEM
            | ETXTBSY
            | EIO
            | ETIMEDOUT
            | EAGAIN
            | ENFILE
            | EMFILE
            | ENOSPC
            | ENETDOWN
            | ENETUNREACH
            | ENETRESET
            | ECONNABORTED
            | ECONNRESET
            | ENOBUFS
            | ECONNREFUSED
            | EHOSTDOWN
            | EHOSTUNREACH
            | ENOLCK
            | EDQUOT
            | ESTALE
            | EBUSY
    )
}

#[cfg(test)]
mod tests {
    use super::Request;

    fn parse(bytes: &[u8]) -> Vec<(usize, Vec<Vec<u8>>)> {
        let mut r = Request::default();
        let mut done = Vec::new();
        for &b in bytes {
            if r.take(b) {
                let req = std::mem::take(&mut r);
                done.push((req.delnum, req.list));
            }
        }
        done
    }

    #[test]
    fn single_and_listed_requests() {
        let mut bytes = b"\x0512/34\0a@b\0c@d\0".to_vec();
        bytes.extend(b"\x0012/34\0\0\0e@f\0g@f\0\0");
        bytes.extend(b"\x01x\0\0h@i\0");
        let got = parse(&bytes);
        let v = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [(5, v(&["c@d"])), (0, v(&["e@f", "g@f"])), (1, v(&["h@i"]))]
        );
    }
}
