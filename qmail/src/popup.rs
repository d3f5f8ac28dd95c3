//! qmail-popup: the POP3 authorization state. It greets with an APOP
//! timestamp, takes USER/PASS or APOP, and hands the name, the password and
//! the timestamp to the checkpassword program on fd 3; that program (and the
//! qmail-pop3d it execs) then owns the connection. Any outcome ends
//! qmail-popup, as in netqmail: a failed login closes the connection.
//!
//! Also the POP3 line I/O both qmail-popup and qmail-pop3d use: commands
//! read from fd 0 with the originals' 1200-second timeout, replies written
//! to fd 1, and lines bounded so a client cannot make us grow without end.

use common::Error;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds a read or write may wait before the session is abandoned.
pub const TIMEOUT_MS: u32 = 1200 * 1000;
/// The longest command line kept; longer ones are answered as syntax errors.
pub const MAX_LINE: usize = 1024;
/// Largest amount of output buffered before it is written.
const OUT_CHUNK: usize = 8192;

/// One command line from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The command word (as sent) and its argument (leading spaces removed).
    Command(Vec<u8>, Vec<u8>),
    /// The line exceeded [`MAX_LINE`]; its bytes were thrown away.
    TooLong,
}

/// The connection on fds 0 and 1. Failures of the network become
/// `Error::silent(die)`: both originals just exit, with their own code.
pub struct Io {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    discarding: bool,
    die: i32,
    /// Never read past the end of a line: what follows belongs to the
    /// program qmail-popup hands the connection to.
    exact: bool,
    /// The TLS session after STLS: everything then goes through it.
    tls: Option<crate::tls::Session>,
}

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the whole life of the process.
    unsafe { BorrowedFd::borrow_raw(0) }
}

fn stdout() -> BorrowedFd<'static> {
    // SAFETY: fd 1 stays open for the whole life of the process.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Wait until `fd` is ready for `what`, at most [`TIMEOUT_MS`].
fn wait(fd: BorrowedFd, what: PollFlags) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), what)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(TIMEOUT_MS).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

impl Io {
    /// `die` is the exit code used when the client goes away or times out.
    pub fn new(die: i32) -> Io {
        Io {
            inbuf: Vec::new(),
            out: Vec::new(),
            discarding: false,
            die,
            exact: false,
            tls: None,
        }
    }

    /// Like [`Io::new`], but reads stop at each line's end.
    pub fn exact(die: i32) -> Io {
        Io {
            exact: true,
            ..Io::new(die)
        }
    }

    /// How much may be read now: everything, or up to the next LF. A
    /// socket is peeked at; anything else is read a byte at a time.
    fn readable(&self, buf: &mut [u8]) -> usize {
        if !self.exact {
            return buf.len();
        }
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::recv(0, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
        if n <= 0 {
            return 1;
        }
        let peeked = &buf[..n as usize];
        peeked
            .iter()
            .position(|&c| c == b'\n')
            .map_or(peeked.len(), |i| i + 1)
    }

    fn gone(&self) -> Error {
        Error::silent(self.die)
    }

    /// The next command line; an error when the client closed or timed out.
    pub fn read_line(&mut self) -> Result<Line, Error> {
        loop {
            if let Some(i) = self.inbuf.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = self.inbuf.drain(..=i).collect();
                if std::mem::take(&mut self.discarding) {
                    return Ok(Line::TooLong);
                }
                return Ok(parse(&line[..line.len() - 1]));
            }
            if self.inbuf.len() > MAX_LINE {
                self.inbuf.clear();
                self.discarding = true;
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<(), Error> {
        if self.tls.is_some() {
            return self.fill_tls();
        }
        self.flush()?;
        if !wait(stdin(), PollFlags::POLLIN) {
            return Err(self.gone());
        }
        let mut buf = [0u8; 4096];
        let want = self.readable(&mut buf);
        loop {
            match nix::unistd::read(0, &mut buf[..want]) {
                Ok(0) => return Err(self.gone()),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Err(self.gone()),
            }
        }
    }

    /// Queue bytes for the client, writing when enough have gathered.
    pub fn put(&mut self, b: &[u8]) -> Result<(), Error> {
        self.out.extend_from_slice(b);
        if self.out.len() >= OUT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Refill from the TLS session: decrypted bytes first, then the network.
    fn fill_tls(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; 4096];
        loop {
            self.flush()?;
            let t = self.tls.as_mut().ok_or(Error::silent(self.die))?;
            let n = t.buffered(&mut buf);
            if n > 0 {
                self.inbuf.extend_from_slice(&buf[..n]);
                return Ok(());
            }
            if !wait(stdin(), PollFlags::POLLIN) {
                return Err(self.gone());
            }
            let t = self.tls.as_mut().ok_or(Error::silent(self.die))?;
            match t.read_network(&mut buf) {
                crate::tls::Input::Data(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                crate::tls::Input::Nothing => {}
                crate::tls::Input::Closed => {
                    let _ = self.flush();
                    return Err(self.gone());
                }
            }
        }
    }

    /// Start TLS on the connection (the plaintext reply already sent);
    /// anything the client sent before the handshake is dropped.
    pub fn start_tls(&mut self, session: crate::tls::Session) {
        self.inbuf.clear();
        self.discarding = false;
        self.tls = Some(session);
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Write everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        let mut done = 0;
        while done < self.out.len() {
            if !wait(stdout(), PollFlags::POLLOUT) {
                return Err(self.gone());
            }
            match nix::unistd::write(stdout(), &self.out[done..]) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return Err(self.gone()),
            }
        }
        self.out.clear();
        Ok(())
    }

    fn flush_tls(&mut self) -> Result<(), Error> {
        let out = std::mem::take(&mut self.out);
        let die = self.die;
        let Some(t) = self.tls.as_mut() else {
            return Ok(());
        };
        t.send(&out).map_err(|_| Error::silent(die))?;
        while t.wants_write() {
            if !wait(stdout(), PollFlags::POLLOUT) {
                return Err(Error::silent(die));
            }
            match t.write_network() {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Error::silent(die)),
            }
        }
        Ok(())
    }

    /// `-ERR text`, flushed.
    pub fn err(&mut self, text: &str) -> Result<(), Error> {
        self.put(b"-ERR ")?;
        self.put(text.as_bytes())?;
        self.put(b"\r\n")?;
        self.flush()
    }

    /// The bare `+OK `, flushed.
    pub fn okay(&mut self) -> Result<(), Error> {
        self.put(b"+OK \r\n")?;
        self.flush()
    }
}

/// Split a line (without its LF) into command word and argument as the
/// originals do: a trailing CR goes, a NUL ends the line (they use C
/// strings), the word ends at the first space, the argument starts after
/// the spaces that follow it.
pub fn parse(line: &[u8]) -> Line {
    let mut line = line;
    if let Some(z) = line.iter().position(|&c| c == 0) {
        line = &line[..z];
    } else if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let sp = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    let mut arg = &line[sp..];
    while arg.first() == Some(&b' ') {
        arg = &arg[1..];
    }
    Line::Command(line[..sp].to_vec(), arg.to_vec())
}

/// The authorization state of one connection.
struct Popup {
    io: Io,
    hostname: Vec<u8>,
    child: Vec<OsString>,
    /// `pid.time@`, the start of the APOP timestamp.
    unique: Vec<u8>,
    user: Option<Vec<u8>>,
}

/// qmail-popup hostname subprogram [args...]
pub fn run(args: &[OsString]) -> Result<(), Error> {
    // A client that goes away must not kill us with SIGPIPE mid-reply.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut io = Io::exact(1);
    if args.len() < 3 {
        io.err("usage: popup hostname subprogram")?;
        return Err(Error::silent(1));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut p = Popup {
        io,
        hostname: args[1].as_bytes().to_vec(),
        child: args[2..].to_vec(),
        unique: format!("{}.{}@", std::process::id(), now).into_bytes(),
        user: None,
    };
    p.greet()?;
    loop {
        p.command()?;
    }
}

impl Popup {
    fn greet(&mut self) -> Result<(), Error> {
        self.io.put(b"+OK <")?;
        let (u, h) = (self.unique.clone(), self.hostname.clone());
        self.io.put(&u)?;
        self.io.put(&h)?;
        self.io.put(b">\r\n")?;
        self.io.flush()
    }

    fn command(&mut self) -> Result<(), Error> {
        let (cmd, arg) = match self.io.read_line()? {
            Line::Command(c, a) => (c.to_ascii_lowercase(), a),
            Line::TooLong => return self.io.err("syntax error"),
        };
        match &cmd[..] {
            b"user" => self.user(arg),
            b"pass" => self.pass(arg),
            b"apop" => self.apop(arg),
            b"quit" => {
                self.io.okay()?;
                Err(Error::silent(1))
            }
            b"noop" => self.io.okay(),
            b"capa" => self.capa(),
            b"stls" if self.offers_tls() => self.stls(arg),
            _ => self.io.err("authorization first"),
        }
    }

    /// STLS is offered when control/servercert.pem exists and TLS is not
    /// yet on; otherwise the command is unknown, as in the original.
    fn offers_tls(&self) -> bool {
        !self.io.is_tls() && crate::tls::available()
    }

    /// CAPA (RFC 2449), which the original lacks: what this chain serves.
    fn capa(&mut self) -> Result<(), Error> {
        self.io
            .put(b"+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n")?;
        if self.offers_tls() {
            self.io.put(b"STLS\r\n")?;
        }
        self.io.put(b".\r\n")?;
        self.io.flush()
    }

    /// STLS (RFC 2595): answer in plaintext, then everything is encrypted
    /// and authorization starts over (a USER given before is forgotten).
    fn stls(&mut self, arg: Vec<u8>) -> Result<(), Error> {
        if !arg.is_empty() {
            return self.io.err("syntax error");
        }
        let session = match crate::tls::config().and_then(crate::tls::Session::new) {
            Ok(s) => s,
            Err(_) => return self.io.err("TLS missing certificate"),
        };
        self.io.put(b"+OK begin TLS negotiation\r\n")?;
        self.io.flush()?;
        self.io.start_tls(session);
        self.user = None;
        Ok(())
    }

    fn user(&mut self, arg: Vec<u8>) -> Result<(), Error> {
        if arg.is_empty() {
            return self.io.err("syntax error");
        }
        self.io.okay()?;
        self.user = Some(arg);
        Ok(())
    }

    fn pass(&mut self, arg: Vec<u8>) -> Result<(), Error> {
        let Some(user) = self.user.clone() else {
            return self.io.err("USER first");
        };
        if arg.is_empty() {
            return self.io.err("syntax error");
        }
        self.login(&user, arg)
    }

    fn apop(&mut self, arg: Vec<u8>) -> Result<(), Error> {
        let Some(sp) = arg.iter().position(|&c| c == b' ') else {
            return self.io.err("syntax error");
        };
        self.login(&arg[..sp], arg[sp + 1..].to_vec())
    }

    /// Run the checkpassword chain and end: it either served the session
    /// or refused the login.
    fn login(&mut self, user: &[u8], mut pass: Vec<u8>) -> Result<(), Error> {
        let mut up = Vec::with_capacity(user.len() + pass.len() + 64);
        up.extend_from_slice(user);
        up.push(0);
        up.extend_from_slice(&pass);
        up.push(0);
        up.extend_from_slice(&self.unique);
        up.extend_from_slice(&self.hostname);
        up.push(0);
        pass.fill(0);
        let status = if self.io.is_tls() {
            self.login_tls(&up)
        } else {
            spawn_checker(&self.child, &up, None).and_then(Started::reap)
        };
        up.fill(0);
        match status {
            Some(s) if s.signal().is_some() => self.io.err("aack, child crashed")?,
            Some(s) if s.code() == Some(0) => {}
            Some(_) => self.io.err("authorization failed")?,
            None => self.io.err("unable to fork")?,
        }
        Err(Error::silent(1))
    }
}

impl Popup {
    /// Under TLS the subprograms talk plaintext on a socket pair whose
    /// other end qmail-popup relays through the TLS session until they
    /// close it.
    fn login_tls(&mut self, up: &[u8]) -> Option<std::process::ExitStatus> {
        let (mine, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .ok()?;
        let child = spawn_checker(&self.child, up, Some(theirs.as_raw_fd()));
        drop(theirs);
        if let Some(Started::Child(_)) = child {
            let pending = std::mem::take(&mut self.io.inbuf);
            let _ = self.relay(&mine, &pending);
        }
        drop(mine);
        child?.reap()
    }

    /// Copy between the TLS session and `sock` until the subprogram's side
    /// closes, the client goes away or nothing moves for the timeout.
    fn relay(&mut self, sock: &std::os::fd::OwnedFd, pending: &[u8]) -> Result<(), Error> {
        let mut to_child = std::fs::File::from(sock.try_clone().map_err(|_| self.io.gone())?);
        to_child.write_all(pending).map_err(|_| self.io.gone())?;
        let mut buf = [0u8; 4096];
        loop {
            let t = self.io.tls.as_mut().ok_or(Error::silent(1))?;
            let n = t.buffered(&mut buf);
            if n > 0 {
                to_child.write_all(&buf[..n]).map_err(|_| self.io.gone())?;
                continue;
            }
            let mut fds = [
                PollFd::new(stdin(), PollFlags::POLLIN),
                PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            ];
            let timeout = PollTimeout::try_from(TIMEOUT_MS).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(self.io.gone()),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Err(self.io.gone()),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let (net, child) = (ready(&fds[0]), ready(&fds[1]));
            if child {
                match nix::unistd::read(sock.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => return self.io.flush(),
                    Ok(n) => {
                        self.io.put(&buf[..n])?;
                        self.io.flush()?;
                    }
                }
            }
            if net {
                let t = self.io.tls.as_mut().ok_or(Error::silent(1))?;
                match t.read_network(&mut buf) {
                    crate::tls::Input::Data(n) => {
                        to_child.write_all(&buf[..n]).map_err(|_| self.io.gone())?;
                    }
                    crate::tls::Input::Nothing => self.io.flush()?,
                    crate::tls::Input::Closed => return Err(self.io.gone()),
                }
            }
        }
    }
}

/// Wait for the subprogram.
fn reap(mut child: std::process::Child) -> Option<std::process::ExitStatus> {
    loop {
        match child.wait() {
            Ok(s) => return Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// Start the subprogram with `up` readable on fd 3 and the network (or
/// `net`, the relay's socket under TLS) on fds 0, 1 and 2: its error
/// messages reach the client, as in qmail. A program that cannot be
/// executed counts as a refusal, like the original's child exiting 1
/// after a failed execvp; None means no child could be made.
fn spawn_checker(argv: &[OsString], up: &[u8], net: Option<RawFd>) -> Option<Started> {
    let (r, w) = nix::unistd::pipe().ok()?;
    let rfd = r.as_raw_fd();
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            common::sig::reset_for_exec();
            libc::close(wfd);
            if let Some(n) = net {
                if libc::dup2(n, 0) == -1 || libc::dup2(n, 1) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::dup2(1, 2) == -1 || libc::dup2(rfd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(r);
    let child = match child {
        Ok(c) => c,
        Err(_) => return Some(Started::NoExec),
    };
    // The checker may exit without reading everything: a short write
    // changes nothing, so its result is ignored (SIGPIPE is ignored).
    let mut wf = std::fs::File::from(w);
    let _ = wf.write_all(up);
    drop(wf);
    Some(Started::Child(child))
}

/// What starting the subprogram gave.
enum Started {
    Child(std::process::Child),
    /// It could not be executed: a refusal, as the original's `_exit(1)`.
    NoExec,
}

impl Started {
    /// Wait for it; None when waiting failed.
    fn reap(self) -> Option<std::process::ExitStatus> {
        match self {
            Started::Child(c) => reap(c),
            Started::NoExec => Some(std::process::ExitStatus::from_raw(1 << 8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_like_the_original() {
        assert_eq!(
            parse(b"USER  joe\r"),
            Line::Command(b"USER".to_vec(), b"joe".to_vec())
        );
        assert_eq!(
            parse(b"pass a b\0c"),
            Line::Command(b"pass".to_vec(), b"a b".to_vec())
        );
        assert_eq!(parse(b""), Line::Command(vec![], vec![]));
        assert_eq!(parse(b"QUIT"), Line::Command(b"QUIT".to_vec(), vec![]));
    }
}
