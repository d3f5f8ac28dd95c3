//! The client connection of the network servers (qmail-smtpd, qmail-qmtpd,
//! qmail-qmqpd): fd 0 in, fd 1 out as tcpserver hands them over, every read
//! and write bounded by the server's timeout, output buffered and flushed
//! before any read that would wait, so pipelined replies go out in one
//! segment and a client waiting for an answer always gets it.
//!
//! A failed read or write, or end of input, ends the server with exit 1 as
//! qmail's servers do (`_exit(1)`); a read timeout first says so to the
//! client with the text the caller gives.

use common::Error;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::BorrowedFd;

/// What a server does when its peer goes away: leave silently with exit 1.
pub fn gone() -> Error {
    Error::silent(1)
}

/// One line as read by [`Conn::line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line without its `\n`.
    Ok(Vec<u8>),
    /// The line was longer than allowed; its bytes were read and dropped.
    TooLong,
}

/// The connection: buffered input and output on fds 0 and 1.
pub struct Conn {
    inbuf: Vec<u8>,
    pos: usize,
    len: usize,
    out: Vec<u8>,
    timeout_ms: i32,
    /// Sent before exiting when a read times out (qmail-smtpd's 451 line).
    timeout_reply: &'static [u8],
    /// Exit codes when the peer goes away and when it stalls.
    eof_code: i32,
    timeout_code: i32,
    /// After STARTTLS: everything goes through this TLS session.
    tls: Option<crate::tls::Session>,
}

impl Conn {
    /// A connection whose reads and writes each wait at most `timeout` seconds.
    pub fn new(timeout: u64, timeout_reply: &'static [u8]) -> Conn {
        let ms = timeout.saturating_mul(1000).min(i32::MAX as u64) as i32;
        Conn {
            inbuf: vec![0; 8192],
            pos: 0,
            len: 0,
            out: Vec::with_capacity(1024),
            timeout_ms: ms.max(1),
            timeout_reply,
            eof_code: 1,
            timeout_code: 1,
            tls: None,
        }
    }

    /// Exit with `eof` when the peer goes away and `timeout` when it stalls
    /// (qmail-smtpd: 1 and 1; the QMTP and QMQP servers: 0 and 111).
    pub fn exit_codes(mut self, eof: i32, timeout: i32) -> Conn {
        self.eof_code = eof;
        self.timeout_code = timeout;
        self
    }

    fn gone(&self) -> Error {
        Error::silent(self.eof_code)
    }

    /// Queue `s` for the client.
    pub fn out(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
    }

    /// Switch to TLS. Input the client sent after STARTTLS in plaintext is
    /// dropped, so nothing can be injected into the encrypted session.
    pub fn start_tls(&mut self, session: crate::tls::Session) {
        self.pos = self.len;
        self.tls = Some(session);
    }

    /// Whether the session is encrypted.
    pub fn tls(&self) -> Option<&crate::tls::Session> {
        self.tls.as_ref()
    }

    /// Send what is queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        let mut done = 0;
        while done < self.out.len() {
            wait_for(1, PollFlags::POLLOUT, self.timeout_ms).map_err(|_| self.gone())?;
            let fd = unsafe { BorrowedFd::borrow_raw(1) };
            match nix::unistd::write(fd, &self.out[done..]) {
                Ok(0) => return Err(self.gone()),
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => return Err(self.gone()),
            }
        }
        self.out.clear();
        Ok(())
    }

    fn flush_tls(&mut self) -> Result<(), Error> {
        let out = std::mem::take(&mut self.out);
        let Some(t) = self.tls.as_mut() else {
            return Ok(());
        };
        t.send(&out).map_err(|_| Error::silent(self.eof_code))?;
        while t.wants_write() {
            wait_for(1, PollFlags::POLLOUT, self.timeout_ms)
                .map_err(|_| Error::silent(self.eof_code))?;
            match t.write_network() {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Error::silent(self.eof_code)),
            }
        }
        Ok(())
    }

    /// Refill from the TLS session: decrypted bytes first, then the network.
    fn fill_tls(&mut self) -> Result<(), Error> {
        loop {
            self.flush_tls()?;
            let Some(t) = self.tls.as_mut() else {
                return Err(self.gone());
            };
            let n = t.buffered(&mut self.inbuf);
            if n > 0 {
                (self.pos, self.len) = (0, n);
                return Ok(());
            }
            if wait_for(0, PollFlags::POLLIN, self.timeout_ms).is_err() {
                self.out(self.timeout_reply);
                let _ = self.flush_tls();
                return Err(Error::silent(self.timeout_code));
            }
            let Some(t) = self.tls.as_mut() else {
                return Err(self.gone());
            };
            match t.read_network(&mut self.inbuf) {
                crate::tls::Input::Data(n) => {
                    (self.pos, self.len) = (0, n);
                    return Ok(());
                }
                crate::tls::Input::Nothing => {}
                crate::tls::Input::Closed => {
                    let _ = self.flush_tls();
                    return Err(self.gone());
                }
            }
        }
    }

    /// Refill the input buffer: flush first, then wait for the client.
    fn fill(&mut self) -> Result<(), Error> {
        if self.tls.is_some() {
            return self.fill_tls();
        }
        self.flush()?;
        loop {
            if wait_for(0, PollFlags::POLLIN, self.timeout_ms).is_err() {
                self.out(self.timeout_reply);
                let _ = self.flush();
                return Err(Error::silent(self.timeout_code));
            }
            match nix::unistd::read(0, &mut self.inbuf) {
                Ok(0) => return Err(self.gone()),
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(());
                }
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => return Err(self.gone()),
            }
        }
    }

    /// The bytes already read and not yet consumed, refilling when empty.
    pub fn peek(&mut self) -> Result<&[u8], Error> {
        if self.pos == self.len {
            self.fill()?;
        }
        Ok(&self.inbuf[self.pos..self.len])
    }

    /// Mark `n` bytes of [`Conn::peek`]'s slice as consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }

    /// Whether input is already waiting in the buffer (pipelining).
    pub fn buffered(&self) -> bool {
        self.pos < self.len
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, Error> {
        let b = self.peek()?[0];
        self.pos += 1;
        Ok(b)
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let mut v = Vec::with_capacity(n.min(65536));
        while v.len() < n {
            let avail = self.peek()?;
            let take = avail.len().min(n - v.len());
            v.extend_from_slice(&avail[..take]);
            self.consume(take);
        }
        Ok(v)
    }

    /// A line up to `\n` holding at most `max` bytes; longer lines are read
    /// to their end and dropped, so a client cannot make the server grow.
    pub fn line(&mut self, max: usize) -> Result<Line, Error> {
        let mut v = Vec::new();
        let mut long = false;
        loop {
            let avail = self.peek()?;
            let (take, end) = match avail.iter().position(|&b| b == b'\n') {
                Some(p) => (p, true),
                None => (avail.len(), false),
            };
            if !long && v.len() + take <= max {
                v.extend_from_slice(&avail[..take]);
            } else {
                long = true;
                v.clear();
            }
            self.consume(take + usize::from(end));
            if end {
                return Ok(if long { Line::TooLong } else { Line::Ok(v) });
            }
        }
    }
}

/// Wait until fd is ready for `what`, at most `ms` milliseconds.
fn wait_for(fd: i32, what: PollFlags, ms: i32) -> Result<(), ()> {
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(bfd, what)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let t = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, t) {
            Ok(0) => return Err(()),
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(()),
        }
    }
}
