//! Envelope addresses as qmail-smtpd reads them from MAIL and RCPT, the
//! badmailfrom test, the machine's own addresses (`user@[ip]` of this host
//! becomes `user@localiphost`) and the Received line qmail writes.

use std::collections::HashSet;
use std::net::IpAddr;

/// Longest address accepted (qmail-smtpd's limit, below qmail-queue's).
const MAXADDR: usize = 900;

/// The address in a MAIL or RCPT argument (`FROM:<a@b>` or the bare form
/// `FROM: a@b`), quotes and backslashes removed and a source route dropped;
/// the rest of the line (ESMTP parameters) is returned too. None when the
/// address is too long.
pub fn parse(arg: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let (mut rest, terminator) = match arg.iter().position(|&b| b == b'<') {
        Some(p) => (&arg[p + 1..], b'>'),
        None => {
            // The client never read RFC 821: take what follows the colon.
            let mut r = match arg.iter().position(|&b| b == b':') {
                Some(p) => &arg[p + 1..],
                None => &arg[arg.len()..],
            };
            while r.first() == Some(&b' ') {
                r = &r[1..];
            }
            (r, b' ')
        }
    };
    if rest.first() == Some(&b'@') {
        rest = match rest.iter().position(|&b| b == b':') {
            Some(p) => &rest[p + 1..],
            None => &rest[rest.len()..],
        };
    }
    let (addr, used) = unquote(rest, terminator);
    if addr.len() > MAXADDR {
        return None;
    }
    Some((addr, &rest[used.min(rest.len())..]))
}

/// Copy `s` up to an unquoted `terminator`, removing quoting; returns the
/// address and how many bytes of `s` it spanned (terminator included).
fn unquote(s: &[u8], terminator: u8) -> (Vec<u8>, usize) {
    let mut addr = Vec::new();
    let (mut esc, mut quoted) = (false, false);
    for (i, &ch) in s.iter().enumerate() {
        if esc {
            addr.push(ch);
            esc = false;
            continue;
        }
        if !quoted && ch == terminator {
            return (addr, i + 1);
        }
        match ch {
            b'\\' => esc = true,
            b'"' => quoted = !quoted,
            _ => addr.push(ch),
        }
    }
    (addr, s.len())
}

/// The SIZE=n parameter of MAIL (RFC 1870), if given.
pub fn size_param(params: &[u8]) -> Option<u64> {
    params
        .split(|&b| b == b' ')
        .find(|p| p.len() > 5 && p[..5].eq_ignore_ascii_case(b"SIZE="))
        .map(|p| {
            let (v, _) = common::getopt::scan_ulong(std::ffi::OsStr::from_bytes(&p[5..]));
            v
        })
}

use std::os::unix::ffi::OsStrExt;

/// Whether `addr` (or its `@host` part) is listed in badmailfrom;
/// `bmf` holds the lowercased lines.
pub fn bad_mail_from(bmf: &HashSet<Vec<u8>>, addr: &[u8]) -> bool {
    if bmf.contains(&addr.to_ascii_lowercase()) {
        return true;
    }
    match addr.iter().rposition(|&b| b == b'@') {
        Some(j) => bmf.contains(&addr[j..].to_ascii_lowercase()),
        None => false,
    }
}

/// This host's addresses: every interface's, plus 0.0.0.0 and 127.0.0.1
/// as qmail's ipme adds them.
pub fn ipme() -> std::io::Result<HashSet<IpAddr>> {
    let mut set: HashSet<IpAddr> = HashSet::new();
    set.insert(IpAddr::from([0, 0, 0, 0]));
    set.insert(IpAddr::from([127, 0, 0, 1]));
    for ifa in nix::ifaddrs::getifaddrs()? {
        let Some(a) = ifa.address else { continue };
        if let Some(v4) = a.as_sockaddr_in() {
            set.insert(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = a.as_sockaddr_in6() {
            set.insert(IpAddr::V6(v6.ip()));
        }
    }
    Ok(set)
}

/// The address in a domain literal: `[1.2.3.4]` or `[IPv6:...]`.
fn literal(host: &[u8]) -> Option<IpAddr> {
    let inner = host.strip_prefix(b"[")?.strip_suffix(b"]")?;
    let text = std::str::from_utf8(inner).ok()?;
    if text.len() > 5 && text[..5].eq_ignore_ascii_case("IPv6:") {
        return text[5..].parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    text.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether the address's domain is an address literal (`[...]`).
pub fn has_literal(addr: &[u8]) -> bool {
    addr.iter()
        .rposition(|&b| b == b'@')
        .is_some_and(|j| literal(&addr[j + 1..]).is_some())
}

/// `user@[ip]` naming one of this host's addresses becomes `user@liphost`.
pub fn local_literal(addr: Vec<u8>, me: &HashSet<IpAddr>, liphost: &str) -> Vec<u8> {
    let Some(j) = addr.iter().rposition(|&b| b == b'@') else {
        return addr;
    };
    match literal(&addr[j + 1..]) {
        Some(ip) if me.contains(&ip) => {
            let mut a = addr[..=j].to_vec();
            a.extend_from_slice(liphost.as_bytes());
            a
        }
        _ => addr,
    }
}

/// Characters qmail lets through into a Received line; others become '?'.
fn safe(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() || b".@%+/=:-".contains(&b) {
        b
    } else {
        b'?'
    }
}

fn safeput(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&b| safe(b)));
}

/// Who is talking to us, as tcpserver's environment says.
pub struct Peer {
    pub remoteip: Vec<u8>,
    pub remotehost: Vec<u8>,
    pub remoteinfo: Option<Vec<u8>>,
    pub local: Vec<u8>,
}

/// `Received: from HOST (HELO helo) (INFO@IP)\n  by LOCAL with PROTO; DATE\n`;
/// the HELO part only when the client's HELO differs from its host name.
pub fn received(peer: &Peer, helo: Option<&[u8]>, proto: &str, when: i64) -> Vec<u8> {
    let mut r = b"Received: from ".to_vec();
    safeput(&mut r, &peer.remotehost);
    if let Some(h) = helo {
        r.extend_from_slice(b" (HELO ");
        safeput(&mut r, h);
        r.push(b')');
    }
    r.extend_from_slice(b" (");
    if let Some(info) = &peer.remoteinfo {
        safeput(&mut r, info);
        r.push(b'@');
    }
    safeput(&mut r, &peer.remoteip);
    r.extend_from_slice(b")\n  by ");
    safeput(&mut r, &peer.local);
    r.extend_from_slice(format!(" with {proto}; {}\n", crate::date822::fmt(when)).as_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        assert_eq!(parse(b"FROM:<a@b>").unwrap().0, b"a@b");
        assert_eq!(
            parse(b"from: a@b SIZE=5").unwrap(),
            (b"a@b".to_vec(), &b"SIZE=5"[..])
        );
        assert_eq!(parse(b"TO:<@x,@y:u@v>").unwrap().0, b"u@v");
        assert_eq!(parse(b"TO:<\"a b\\>\"@c>").unwrap().0, b"a b>@c");
        assert_eq!(parse(b"FROM:<>").unwrap().0, b"");
        assert_eq!(parse(b"FROM:<a@b> SIZE=99").unwrap().1, b" SIZE=99");
        let long = [b"TO:<".to_vec(), vec![b'a'; 901], b">".to_vec()].concat();
        assert!(parse(&long).is_none());
    }

    #[test]
    fn size_parameter() {
        assert_eq!(size_param(b" BODY=8BITMIME size=1234"), Some(1234));
        assert_eq!(size_param(b""), None);
    }

    #[test]
    fn badmailfrom_matches_address_and_host() {
        let bmf: HashSet<Vec<u8>> = [b"spam@x.org".to_vec(), b"@bad.org".to_vec()].into();
        assert!(bad_mail_from(&bmf, b"SPAM@x.org"));
        assert!(bad_mail_from(&bmf, b"any@Bad.Org"));
        assert!(!bad_mail_from(&bmf, b"ok@x.org"));
    }

    #[test]
    fn own_literals_become_localiphost() {
        let me: HashSet<IpAddr> = [IpAddr::from([127, 0, 0, 1])].into();
        assert_eq!(
            local_literal(b"u@[127.0.0.1]".to_vec(), &me, "h.org"),
            b"u@h.org"
        );
        assert_eq!(
            local_literal(b"u@[10.9.9.9]".to_vec(), &me, "h.org"),
            b"u@[10.9.9.9]"
        );
    }

    #[test]
    fn received_line_in_qmail_form() {
        let peer = Peer {
            remoteip: b"::1".to_vec(),
            remotehost: b"unknown".to_vec(),
            remoteinfo: Some(b"joe".to_vec()),
            local: b"mx.example.org".to_vec(),
        };
        let r = received(&peer, Some(b"bad host"), "SMTP", 0);
        assert_eq!(
            r,
            b"Received: from unknown (HELO bad?host) (joe@::1)\n  by mx.example.org with SMTP; 1 Jan 1970 00:00:00 -0000\n"
        );
    }
}
