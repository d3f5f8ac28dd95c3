//! qmail-qmqpc: qmail-queue's interface (message on fd 0, envelope on fd 1,
//! qmail-queue's exit codes) but the message goes by QMQP to the first
//! server of control/qmqpservers that answers: mini-qmail, a host with no
//! queue of its own.
//!
//! A server line is an IP address (IPv4 or IPv6), QMQP's port 628; a line
//! `IP:PORT` or `[IPv6]:PORT` names another port. Exit codes: 0 accepted,
//! 31 refused for good, 71 refused for now, 72/73 no server reachable
//! (timeout / refused), 74 the connection failed mid-way, 54 read error,
//! 55 no qmqpservers, 61 no QMAILHOME, 91 bad envelope.

use common::Error;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::Duration;

const PORT_QMQP: u16 = 628;

fn die(code: i32) -> Error {
    Error::silent(code)
}

/// How far an envelope has been read.
#[derive(Debug, PartialEq, Eq)]
enum Envelope {
    /// Sender and recipients, complete.
    Done(Vec<u8>, Vec<Vec<u8>>),
    More,
    Bad,
}

/// Parse `F sender \0 (T recip \0)* \0`.
fn parse_envelope(buf: &[u8]) -> Envelope {
    let mut items = buf.split(|&b| b == 0);
    let complete = buf.iter().filter(|&&b| b == 0).count();
    let Some(first) = items.next() else {
        return Envelope::More;
    };
    if complete == 0 {
        return if buf.is_empty() || buf[0] == b'F' {
            Envelope::More
        } else {
            Envelope::Bad
        };
    }
    if first.first() != Some(&b'F') {
        return Envelope::Bad;
    }
    let mut rcpts = Vec::new();
    for (i, item) in items.enumerate() {
        if i + 1 >= complete {
            return if item.is_empty() || item[0] == b'T' {
                Envelope::More
            } else {
                Envelope::Bad
            };
        }
        if item.is_empty() {
            return Envelope::Done(first[1..].to_vec(), rcpts);
        }
        if item[0] != b'T' {
            return Envelope::Bad;
        }
        rcpts.push(item[1..].to_vec());
    }
    Envelope::More
}

fn read_envelope() -> Result<(Vec<u8>, Vec<Vec<u8>>), Error> {
    // SAFETY: fd 1 is the envelope pipe by qmail-queue's interface; the
    // File is forgotten, never closed twice.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = f.read(&mut chunk).map_err(|_| die(54))?;
        if n == 0 {
            return Err(die(91));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_envelope(&buf) {
            Envelope::Done(s, r) => return Ok((s, r)),
            Envelope::More => {}
            Envelope::Bad => return Err(die(91)),
        }
    }
}

fn netstring(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{}:", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.push(b',');
}

/// The QMQP packet: a netstring of message, sender, recipients.
fn packet(message: &[u8], sender: &[u8], rcpts: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(message.len() + 64);
    netstring(&mut inner, message);
    netstring(&mut inner, sender);
    for r in rcpts {
        netstring(&mut inner, r);
    }
    let mut out = Vec::with_capacity(inner.len() + 16);
    netstring(&mut out, &inner);
    out
}

/// A qmqpservers line as an address to connect to.
fn server(line: &str) -> Option<SocketAddr> {
    if let Ok(ip) = line.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, PORT_QMQP));
    }
    line.parse::<SocketAddr>().ok()
}

/// Give the packet to one server: Err(code) to try no further, Ok(code)
/// when it could not be reached (the next one is tried).
fn doit(addr: SocketAddr, pkt: &[u8]) -> Result<i32, Error> {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(72),
        Err(_) => return Ok(73),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
    s.write_all(pkt).map_err(|_| die(74))?;
    let mut buf = [0u8; 256];
    loop {
        let n = s.read(&mut buf).map_err(|_| die(74))?;
        if n == 0 {
            return Err(die(74));
        }
        for &ch in &buf[..n] {
            match ch {
                b'K' => return Err(die(0)),
                b'Z' => return Err(die(71)),
                b'D' => return Err(die(31)),
                _ => {}
            }
        }
    }
}

pub fn run() -> Result<(), Error> {
    std::env::set_current_dir(crate::home::home()).map_err(|_| die(61))?;
    let servers = match crate::control::read_lines("qmqpservers") {
        Ok(Some(s)) => s,
        _ => return Err(die(55)),
    };
    let mut message = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut message)
        .map_err(|_| die(54))?;
    let (sender, rcpts) = read_envelope()?;
    let pkt = packet(&message, &sender, &rcpts);
    let mut lasterror = 55;
    for line in &servers {
        if let Some(addr) = server(line) {
            match doit(addr, &pkt) {
                Ok(code) => lasterror = code,
                Err(e) if e.code == 0 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
    Err(die(lasterror))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        assert_eq!(
            parse_envelope(b"Fa@b\0Tc@d\0Te@f\0\0"),
            Envelope::Done(b"a@b".to_vec(), vec![b"c@d".to_vec(), b"e@f".to_vec()])
        );
        assert_eq!(parse_envelope(b"F\0\0"), Envelope::Done(vec![], vec![]));
        assert_eq!(parse_envelope(b"Fa@b\0Tc"), Envelope::More);
        assert_eq!(parse_envelope(b"Fa@b\0"), Envelope::More);
        assert_eq!(parse_envelope(b"Xa@b\0"), Envelope::Bad);
        assert_eq!(parse_envelope(b"Fa\0Xb\0\0"), Envelope::Bad);
    }

    #[test]
    fn packet_is_nested_netstrings() {
        assert_eq!(
            packet(b"hi\n", b"a@b", &[b"c@d".to_vec()]),
            b"18:3:hi\n,3:a@b,3:c@d,,".to_vec()
        );
    }

    #[test]
    fn server_lines() {
        assert_eq!(server("10.0.0.1"), Some("10.0.0.1:628".parse().unwrap()));
        assert_eq!(server("::1"), Some("[::1]:628".parse().unwrap()));
        assert_eq!(
            server("127.0.0.1:7628"),
            Some("127.0.0.1:7628".parse().unwrap())
        );
        assert_eq!(server("mx.example"), None);
    }
}
