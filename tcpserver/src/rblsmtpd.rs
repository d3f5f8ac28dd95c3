//! rblsmtpd: block mail from clients listed in a DNS block list, or named
//! by $RBLSMTPD, by holding an SMTP conversation that refuses every
//! recipient; otherwise run the real SMTP server.
//!
//! $RBLSMTPD set and empty: accept without lookups. Set to text: refuse with
//! `451 text`; to `-text`: refuse with `553 text`. Otherwise each -r base
//! (TXT lookup, listed = refuse with its text) and -a base (A lookup,
//! listed = accept) is asked in order until one decides.

use common::getopt::{getopt, scan_ulong};
use common::{Error, Result};
use dnscache::stub::Resolver;
use std::ffi::OsString;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const USAGE: &str =
    "rblsmtpd [ -b ] [ -R ] [ -t timeout ] [ -r base ] [ -a base ] smtpd [ arg ... ]";

/// What the lookups decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Undecided,
    Accept,
    /// Refuse with this reply code and text.
    Refuse(&'static str, Vec<u8>),
}

struct State {
    decision: Decision,
    bounce: bool,
    fail_closed: bool,
    reverse: String,
    resolver: Option<Resolver>,
}

impl State {
    fn resolver(&mut self) -> &Resolver {
        self.resolver.get_or_insert_with(Resolver::from_env)
    }

    /// -r: a TXT record under base lists the client.
    fn rbl(&mut self, base: &str) {
        if self.decision != Decision::Undecided {
            return;
        }
        let name = format!("{}{base}", self.reverse);
        match self.resolver().txt(&name) {
            Err(_) if self.fail_closed => {
                self.decision = Decision::Refuse("451", b"temporary RBL lookup error".to_vec())
            }
            Err(_) => {}
            Ok(txt) => {
                let text: String = txt.concat();
                if !text.is_empty() {
                    let code = if self.bounce { "553" } else { "451" };
                    self.decision = Decision::Refuse(code, text.into_bytes());
                }
            }
        }
    }

    /// -a: an A record under base vouches for the client.
    fn antirbl(&mut self, base: &str) {
        if self.decision != Decision::Undecided {
            return;
        }
        let name = format!("{}{base}", self.reverse);
        match self.resolver().ip4(&name) {
            Err(_) if !self.fail_closed => self.decision = Decision::Accept,
            Err(_) => {}
            Ok(ips) if !ips.is_empty() => self.decision = Decision::Accept,
            Ok(_) => {}
        }
    }
}

/// The DNS name prefix for an address: `4.3.2.1.` or IPv6 nibbles.
pub fn reverse(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(v6)) => v6
            .octets()
            .iter()
            .rev()
            .map(|b| format!("{:x}.{:x}.", b & 15, b >> 4))
            .collect(),
        Err(_) => String::new(),
    }
}

/// The decision $RBLSMTPD imposes, if set.
pub fn from_env(v: Option<&[u8]>) -> Decision {
    match v {
        None => Decision::Undecided,
        Some([]) => Decision::Accept,
        Some([b'-', rest @ ..]) => Decision::Refuse("553", rest.to_vec()),
        Some(text) => Decision::Refuse("451", text.to_vec()),
    }
}

/// `rblsmtpd opts smtpd [ arg ... ]`
pub fn run(args: &[OsString]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let p = getopt("rblsmtpd", args, "bBcCt:r:a:").ok_or_else(|| Error::usage(USAGE))?;
    if p.operands.is_empty() {
        return Err(Error::usage(USAGE));
    }
    let ip = std::env::var("TCPREMOTEIP").unwrap_or_default();
    let env = std::env::var_os("RBLSMTPD");
    let mut st = State {
        decision: from_env(env.as_deref().map(|v| v.as_bytes())),
        bounce: false,
        fail_closed: false,
        reverse: reverse(&ip),
        resolver: None,
    };
    let mut timeout = 60;
    let mut want_default = true;
    for o in &p.opts {
        let arg = o.arg_str();
        match o.flag {
            b'b' => st.bounce = true,
            b'B' => st.bounce = false,
            b'c' => st.fail_closed = true,
            b'C' => st.fail_closed = false,
            b't' => timeout = scan_ulong(o.arg.as_deref().unwrap_or_default()).0,
            b'r' => {
                st.rbl(&arg);
                want_default = false;
            }
            b'a' => st.antirbl(&arg),
            _ => {}
        }
    }
    if want_default {
        st.rbl("rbl.maps.vix.com");
    }
    if let Decision::Refuse(code, text) = &st.decision {
        refuse(&ip, code, text, timeout);
    }
    let e = crate::tools::exec(&p.operands[0], &p.operands);
    Err(Error::sys(
        format!("unable to run {}", p.operands[0].to_string_lossy()),
        e,
    ))
}

/// The reply to every recipient and to DATA: code, text cut at 200 bytes,
/// unprintable bytes as `?`.
pub fn message(code: &str, text: &[u8]) -> Vec<u8> {
    let mut m = format!("{code} ").into_bytes();
    m.extend(
        text.iter()
            .take(200)
            .map(|&c| if (32..=126).contains(&c) { c } else { b'?' }),
    );
    m
}

/// Log the refusal, then hold the SMTP conversation until QUIT, the end of
/// input or the timeout; never returns.
fn refuse(ip: &str, code: &str, text: &[u8], timeout: u64) -> ! {
    let msg = message(code, text);
    let mut log = format!("rblsmtpd: {ip} pid {}: ", std::process::id()).into_bytes();
    log.extend_from_slice(&msg);
    log.push(b'\n');
    write_all(2, &log);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    converse(&msg, deadline);
    std::process::exit(0)
}

/// The SMTP side: 220 greeting, 250 for HELO/EHLO/MAIL/NOOP/RSET, 221 for
/// QUIT, the refusal for anything else.
fn converse(msg: &[u8], deadline: Instant) {
    if !write_all(1, b"220 rblsmtpd.local\r\n") {
        return;
    }
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if crate::net::wait_fd(0, libc::POLLIN, deadline).is_err() {
            return;
        }
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        for &c in &buf[..n as usize] {
            if c != b'\n' {
                if line.len() < 1000 {
                    line.push(c);
                }
                continue;
            }
            let reply = reply_to(&line, msg);
            line.clear();
            if !write_all(1, &reply) || reply.starts_with(b"221") {
                return;
            }
        }
    }
}

/// The reply to one command line.
pub fn reply_to(line: &[u8], msg: &[u8]) -> Vec<u8> {
    let verb: Vec<u8> = line
        .iter()
        .take_while(|&&c| c != b' ' && c != b'\r')
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut r = match verb.as_slice() {
        b"quit" => b"221 rblsmtpd.local".to_vec(),
        b"helo" | b"ehlo" | b"mail" | b"noop" | b"rset" => b"250 rblsmtpd.local".to_vec(),
        _ => msg.to_vec(),
    };
    r.extend_from_slice(b"\r\n");
    r
}

fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_replies() {
        assert_eq!(from_env(Some(b"")), Decision::Accept);
        assert_eq!(
            from_env(Some(b"-no")),
            Decision::Refuse("553", b"no".to_vec())
        );
        assert_eq!(
            from_env(Some(b"go away")),
            Decision::Refuse("451", b"go away".to_vec())
        );
        assert_eq!(message("451", b"a\tb\x01c"), b"451 a?b?c");
        assert_eq!(reply_to(b"Data\r", b"451 x"), b"451 x\r\n");
        assert_eq!(reply_to(b"EHLO y\r", b"451 x"), b"250 rblsmtpd.local\r\n");
        assert_eq!(reply_to(b"quit", b"451 x"), b"221 rblsmtpd.local\r\n");
        assert_eq!(reverse("127.0.0.2"), "2.0.0.127.");
        assert!(reverse("::1").starts_with("1.0.0.0."));
    }
}
