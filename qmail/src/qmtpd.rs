//! qmail-qmtpd: receive mail by QMTP (netstrings: message, sender, list of
//! recipients; any number of messages per connection) and queue each with
//! qmail-queue, answering one netstring per recipient as netqmail does.
//! Relay control is qmail-smtpd's: RELAYCLIENT or rcpthosts; databytes and
//! DATABYTES limit the size.
//!
//! Exit codes as the original: 0 when the client hangs up, 100 on a
//! protocol violation, 111 on a local problem or after an hour.

use crate::queue::client::Qmail;
use crate::rcpthosts::RcptHosts;
use crate::smtpd::addr::{received, Peer};
use crate::smtpd::io::Conn;
use common::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// A whole connection may last this long (seconds).
const LIFETIME: u32 = 3600;

pub fn badproto() -> Error {
    Error::silent(100)
}

pub fn resources() -> Error {
    Error::silent(111)
}

extern "C" fn on_alarm(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(111) }
}

/// End the process with 111 after LIFETIME seconds, as the originals' alarm does.
pub fn start_lifetime() {
    let act = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_alarm),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only calls _exit.
    let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGALRM, &act) };
    nix::unistd::alarm::set(LIFETIME);
}

/// The connection of a netstring server: EOF exits 0, a stall 111.
pub fn conn() -> Conn {
    Conn::new(u64::from(LIFETIME), b"").exit_codes(0, 111)
}

/// A netstring length: digits up to ':'.
pub fn getlen(c: &mut Conn) -> Result<u64, Error> {
    let mut len: u64 = 0;
    loop {
        let ch = c.byte()?;
        if ch == b':' {
            return Ok(len);
        }
        if len > 200_000_000 {
            return Err(resources());
        }
        if !ch.is_ascii_digit() {
            return Err(badproto());
        }
        len = 10 * len + u64::from(ch - b'0');
    }
}

pub fn getcomma(c: &mut Conn) -> Result<(), Error> {
    if c.byte()? != b',' {
        return Err(badproto());
    }
    Ok(())
}

/// tcpserver's description of the client, as qmail reads it.
pub fn peer() -> Peer {
    let env = |n: &str| std::env::var_os(n).map(OsString::into_vec);
    Peer {
        remoteip: env("TCPREMOTEIP").unwrap_or_else(|| b"unknown".to_vec()),
        remotehost: env("TCPREMOTEHOST").unwrap_or_else(|| b"unknown".to_vec()),
        remoteinfo: env("TCPREMOTEINFO"),
        local: env("TCPLOCALHOST")
            .or_else(|| env("TCPLOCALIP"))
            .unwrap_or_else(|| b"unknown".to_vec()),
    }
}

/// Message bytes on their way to qmail-queue, batched and counted.
struct Body {
    qq: Qmail,
    buf: Vec<u8>,
    /// databytes + 1 still allowed; reaching 0 fails the message.
    left: u64,
    limited: bool,
}

impl Body {
    fn put(&mut self, b: u8) {
        if self.limited && self.left > 0 {
            self.left -= 1;
        }
        self.buf.push(b);
        if self.buf.len() >= 8192 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.overflowed() {
            self.qq.put(&self.buf);
        }
        self.buf.clear();
    }

    fn overflowed(&self) -> bool {
        self.limited && self.left == 0
    }
}

/// Why a recipient is refused: qmail-qmtpd's failure letters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rcpt {
    Ok,
    /// Not in rcpthosts.
    Domain,
    /// Too long or containing NUL.
    Bad,
}

struct Settings {
    rcpthosts: RcptHosts,
    relayclient: Option<Vec<u8>>,
    databytes: u64,
    peer: Peer,
}

pub fn run() -> Result<(), Error> {
    start_lifetime();
    std::env::set_current_dir(crate::home::home()).map_err(|_| resources())?;
    let rcpthosts = RcptHosts::load().map_err(|_| resources())?;
    let mut databytes = crate::control::read_int("databytes", 0)
        .map_err(|_| resources())?
        .max(0) as u64;
    if let Some(x) = std::env::var_os("DATABYTES") {
        databytes = common::getopt::scan_ulong(&x).0;
    }
    let s = Settings {
        rcpthosts,
        relayclient: std::env::var_os("RELAYCLIENT").map(OsString::into_vec),
        databytes,
        peer: peer(),
    };
    let mut c = conn();
    loop {
        message(&mut c, &s)?;
    }
}

/// One message: read it, queue it, answer for each recipient.
fn message(c: &mut Conn, s: &Settings) -> Result<(), Error> {
    let len = getlen(c)?;
    if len == 0 {
        return Err(badproto());
    }
    let mut qq = Qmail::open().map_err(|_| resources())?;
    let qp = qq.qp();
    let mut body = Body {
        qq,
        buf: Vec::with_capacity(8192),
        left: s.databytes.saturating_add(1),
        limited: s.databytes > 0,
    };
    let rcvd = received(&s.peer, None, "QMTP", crate::date822::now());
    body.qq.put(&rcvd);
    read_body(c, &mut body, len - 1, s.databytes)?;
    getcomma(c)?;
    let (sender, senderok) = sender(c)?;
    let rcpts = recipients(c, s)?;
    getcomma(c)?;
    let overflow = body.overflowed();
    let good: Vec<&Vec<u8>> = rcpts
        .iter()
        .filter(|(r, _)| *r == Rcpt::Ok)
        .map(|(_, a)| a)
        .collect();
    let mut qq = body.qq;
    let result = if !senderok || overflow || good.is_empty() {
        qq.fail();
        let _ = qq.close();
        Err("Zqq failed (#4.3.0)".to_string())
    } else {
        qq.from(&String::from_utf8_lossy(&sender));
        for a in &good {
            qq.to(&String::from_utf8_lossy(a));
        }
        qq.close()
    };
    let text = match result {
        Ok(()) => format!("Kok {} qp {qp}", crate::date822::now()),
        Err(x) => x,
    };
    let text = if !senderok {
        "Dunacceptable sender (#5.1.7)".to_string()
    } else if overflow {
        "Dsorry, that message size exceeds my databytes limit (#5.3.4)".to_string()
    } else {
        text
    };
    answer(c, &rcpts, &text);
    Ok(())
}

fn answer(c: &mut Conn, rcpts: &[(Rcpt, Vec<u8>)], text: &str) {
    for (r, _) in rcpts {
        match r {
            Rcpt::Ok => c.out(format!("{}:{text},", text.len()).as_bytes()),
            Rcpt::Domain => {
                c.out(b"66:Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1),")
            }
            Rcpt::Bad => c.out(b"46:Dsorry, I can't handle that recipient (#5.1.3),"),
        }
    }
}

/// The message: the first byte says whether lines end in LF (10) or CRLF
/// (13, turned into LF); `len` bytes follow.
fn read_body(c: &mut Conn, body: &mut Body, mut len: u64, databytes: u64) -> Result<(), Error> {
    let dos = match c.byte()? {
        10 => false,
        13 => true,
        _ => return Err(badproto()),
    };
    if !dos && databytes > 0 && len > databytes {
        body.left = 0;
    }
    let mut pending_cr = false;
    while len > 0 {
        let avail = c.peek()?;
        let n = avail.len().min(len as usize);
        let chunk = avail[..n].to_vec();
        c.consume(n);
        len -= n as u64;
        for b in chunk {
            if !dos {
                body.buf.push(b);
                continue;
            }
            if pending_cr {
                pending_cr = false;
                if b == b'\n' {
                    body.put(b);
                    continue;
                }
                body.put(b'\r');
            }
            if b == b'\r' {
                pending_cr = true;
            } else {
                body.put(b);
            }
        }
        body.flush();
    }
    if pending_cr {
        body.put(b'\r');
    }
    body.flush();
    Ok(())
}

/// The sender netstring: (address, acceptable).
fn sender(c: &mut Conn) -> Result<(Vec<u8>, bool), Error> {
    let len = getlen(c)?;
    let a = take(c, len)?;
    getcomma(c)?;
    Ok(match a {
        Some(a) if !a.contains(&0) => (a, true),
        _ => (Vec::new(), false),
    })
}

/// `len` bytes of an address; None (and the bytes dropped) from 1000 on,
/// so a client cannot make the server hold a huge address.
pub fn take(c: &mut Conn, len: u64) -> Result<Option<Vec<u8>>, Error> {
    if len < 1000 {
        return c.bytes(len as usize).map(Some);
    }
    let mut left = len;
    while left > 0 {
        let n = c.peek()?.len().min(left.min(usize::MAX as u64) as usize);
        c.consume(n);
        left -= n as u64;
    }
    Ok(None)
}

/// The recipient list: a netstring of netstrings.
fn recipients(c: &mut Conn, s: &Settings) -> Result<Vec<(Rcpt, Vec<u8>)>, Error> {
    let mut biglen = getlen(c)?;
    let mut out = Vec::new();
    while biglen > 0 {
        let mut len: u64 = 0;
        loop {
            if biglen == 0 {
                return Err(badproto());
            }
            let ch = c.byte()?;
            biglen -= 1;
            if ch == b':' {
                break;
            }
            if len > 200_000_000 {
                return Err(resources());
            }
            if !ch.is_ascii_digit() {
                return Err(badproto());
            }
            len = 10 * len + u64::from(ch - b'0');
        }
        if len >= biglen {
            return Err(badproto());
        }
        let a = take(c, len)?;
        getcomma(c)?;
        biglen -= len + 1;
        out.push(match a {
            Some(a) => judge(a, s)?,
            None => (Rcpt::Bad, Vec::new()),
        });
    }
    Ok(out)
}

fn judge(mut a: Vec<u8>, s: &Settings) -> Result<(Rcpt, Vec<u8>), Error> {
    let rc = s.relayclient.as_deref().unwrap_or(b"");
    if a.len() + rc.len() >= 1000 || a.contains(&0) {
        return Ok((Rcpt::Bad, a));
    }
    if s.relayclient.is_some() {
        a.extend_from_slice(rc);
    } else if !s.rcpthosts.allowed(&a).map_err(|_| resources())? {
        return Ok((Rcpt::Domain, a));
    }
    Ok((Rcpt::Ok, a))
}
