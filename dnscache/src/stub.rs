//! The stub resolver the whole suite shares (tcpserver -h/-l, rblsmtpd,
//! qmail-remote and the dns* tools): it asks a recursive server (dnscache)
//! as djbdns' dns_transmit does, and digs the wanted records out of answers.
//!
//! API (stable; callers in other packages depend on it):
//!
//! ```text
//! Resolver::from_env() -> Resolver        servers from $DNSCACHEIP, else /etc/resolv.conf, else 127.0.0.1:53
//! Resolver::with_servers(Vec<SocketAddr>) -> Resolver
//! resolver.with_timeouts(&[Duration]) -> Resolver   (optional: the UDP rounds, default 1, 3, 11, 45 s)
//! resolver.servers() -> &[SocketAddr]
//! resolver.ip4(name)  -> Result<Vec<Ipv4Addr>, DnsError>   follows CNAMEs; NXDOMAIN -> Ok(empty);
//!                                                          "1.2.3.4" or "[1.2.3.4]" returned without a query
//! resolver.ip6(name)  -> Result<Vec<Ipv6Addr>, DnsError>   likewise for AAAA and IPv6 literals
//! resolver.name(ip)   -> Result<Option<String>, DnsError>  PTR in in-addr.arpa / ip6.arpa
//! resolver.mx(name)   -> Result<Vec<(u16, String)>, DnsError>  (preference, host) in answer order
//! resolver.txt(name)  -> Result<Vec<String>, DnsError>     one string per TXT record, its strings
//!                                                          joined, bytes outside 32..=126 as '?'
//! resolver.query(wire_name, qtype, recursive) -> Result<Vec<u8>, DnsError>   the raw response
//! ```
//!
//! Names come back in djbdns' dotted form: lowercase, no trailing dot, odd
//! bytes as `\ooo`. `DnsError`'s Display is djb's errno wording ("timed out",
//! "temporary failure", "protocol error", ...), for `unable to ...: why` lines.
//!
//! Transport: each UDP try uses a fresh socket on a random source port,
//! connected to the server asked (so the kernel drops packets from anyone
//! else), and a random query id; a packet counts as the answer only if it is
//! a response with that id and exactly our question. Rounds of timeouts go
//! over every server as djbdns does (1, 3, 11, 45 s: at most a minute per
//! server). A truncated answer is asked again over TCP of the same server.
//! Unlike djbdns a server that refuses, fails (SERVFAIL, REFUSED, NOTIMP) or
//! answers garbage is not asked again, so a dead setup fails at once instead
//! of after 11 s.

use crate::packet::{self, Message, Record, T_A, T_AAAA, T_CNAME, T_MX, T_PTR, T_TXT};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Why a lookup failed: temporary (try later) or permanent (a name that
/// cannot be asked). Display gives djb's wording of the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    Temp(String),
    Perm(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Temp(s) | DnsError::Perm(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DnsError {}

impl DnsError {
    fn proto() -> DnsError {
        DnsError::Temp(common::errstr::text(libc::EPROTO).to_string())
    }
    fn io(e: &io::Error) -> DnsError {
        DnsError::Temp(common::error::Errno::from(e).text().to_string())
    }
}

/// Most servers djbdns takes from its configuration.
const MAX_SERVERS: usize = 16;
/// CNAME hops followed across queries before giving up.
const MAX_CNAME_QUERIES: usize = 10;

/// A stub resolver: the servers to ask and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeouts: Vec<Duration>,
    tcp_timeout: Duration,
}

impl Resolver {
    /// Servers from $DNSCACHEIP (whitespace/comma separated; each an IPv4 or
    /// IPv6 address, optionally with a port: `127.0.0.1:5353`, `[::1]:5353`),
    /// else `nameserver` lines of /etc/resolv.conf, else 127.0.0.1 port 53 --
    /// as djbdns' dns_resolvconfip does.
    pub fn from_env() -> Resolver {
        let env = std::env::var_os("DNSCACHEIP").map(|v| v.to_string_lossy().into_owned());
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        Resolver::with_servers(servers_from(env.as_deref(), &resolv))
    }

    /// A resolver asking exactly `servers` (at most 16 are used).
    pub fn with_servers(mut servers: Vec<SocketAddr>) -> Resolver {
        servers.truncate(MAX_SERVERS);
        Resolver {
            servers,
            timeouts: [1, 3, 11, 45]
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
            tcp_timeout: Duration::from_secs(10),
        }
    }

    /// The same resolver with other UDP rounds (each round asks every server
    /// once, waiting that long); the TCP timeout becomes the longest round.
    pub fn with_timeouts(mut self, rounds: &[Duration]) -> Resolver {
        self.timeouts = rounds.to_vec();
        self.tcp_timeout = rounds
            .iter()
            .copied()
            .max()
            .unwrap_or(Duration::from_secs(10));
        self
    }

    /// The servers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// IPv4 addresses of `name`, following CNAMEs; NXDOMAIN gives Ok(empty).
    /// A name made only of digits, dots and brackets is read as addresses
    /// without a query, as djbdns' dns_ip4 does.
    pub fn ip4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        if let Some(ips) = ip4_literal(name.as_bytes()) {
            return Ok(ips);
        }
        let mut ips: Vec<Ipv4Addr> = self
            .lookup(name, T_A)?
            .iter()
            .filter_map(|(buf, r)| <[u8; 4]>::try_from(r.data(buf)).ok())
            .map(Ipv4Addr::from)
            .collect();
        shuffle(&mut ips);
        Ok(ips)
    }

    /// IPv6 addresses of `name`, following CNAMEs; NXDOMAIN gives Ok(empty).
    /// An IPv6 literal (bare or in brackets) is returned without a query, an
    /// IPv4 literal has none.
    pub fn ip6(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<Ipv6Addr>() {
            return Ok(vec![ip]);
        }
        if ip4_literal(name.as_bytes()).is_some() {
            return Ok(Vec::new());
        }
        let mut ips: Vec<Ipv6Addr> = self
            .lookup(name, T_AAAA)?
            .iter()
            .filter_map(|(buf, r)| <[u8; 16]>::try_from(r.data(buf)).ok())
            .map(Ipv6Addr::from)
            .collect();
        shuffle(&mut ips);
        Ok(ips)
    }

    /// The host name of `ip` (its first PTR record), None when it has none.
    pub fn name(&self, ip: IpAddr) -> Result<Option<String>, DnsError> {
        let found = self.lookup(&reverse_name(ip), T_PTR)?;
        for (buf, r) in &found {
            if let Some((n, _)) = packet::get_name(buf, r.data_pos) {
                return Ok(Some(packet::name_to_dot(&n)));
            }
        }
        Ok(None)
    }

    /// The MX records of `name` as (preference, host), in answer order.
    pub fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let mut out = Vec::new();
        for (buf, r) in &self.lookup(name, T_MX)? {
            let d = r.data(buf);
            if d.len() < 3 {
                return Err(DnsError::proto());
            }
            let pref = u16::from_be_bytes([d[0], d[1]]);
            let (host, _) = packet::get_name(buf, r.data_pos + 2).ok_or_else(DnsError::proto)?;
            out.push((pref, packet::name_to_dot(&host)));
        }
        Ok(out)
    }

    /// The TXT records of `name`: each record's strings joined, bytes outside
    /// 32..=126 replaced by `?` as djbdns' dns_txt does.
    pub fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        Ok(self
            .lookup(name, T_TXT)?
            .iter()
            .map(|(buf, r)| txt_text(r.data(buf)))
            .collect())
    }

    /// Ask the servers for `qname` (wire form) of type `qtype` and return the
    /// first acceptable response as it came (used by dnsq and dnsqr).
    pub fn query(&self, qname: &[u8], qtype: u16, recursive: bool) -> Result<Vec<u8>, DnsError> {
        let mut failed = vec![false; self.servers.len()];
        let mut last = DnsError::Temp(common::errstr::text(libc::ETIMEDOUT).to_string());
        for &round in &self.timeouts {
            for (i, &server) in self.servers.iter().enumerate() {
                if failed[i] {
                    continue;
                }
                match self.ask(server, qname, qtype, recursive, round) {
                    Ok(Reply::Answer(p)) => return Ok(p),
                    Ok(Reply::TimedOut) => {}
                    Ok(Reply::Failed(e)) | Err(e) => {
                        failed[i] = true;
                        last = e;
                    }
                }
            }
            if failed.iter().all(|&f| f) {
                break;
            }
        }
        Err(last)
    }

    /// Every record of type `qtype` for `name` and the CNAME chain from it,
    /// each with the packet it sits in; asks again at the end of a chain the
    /// server left unresolved (an authoritative server outside its zone).
    fn lookup(&self, name: &str, qtype: u16) -> Result<Vec<(Vec<u8>, Record)>, DnsError> {
        let mut target = packet::name_from_dot(name.as_bytes())
            .map_err(|_| DnsError::Perm(common::errstr::text(libc::EPROTO).to_string()))?;
        for _ in 0..MAX_CNAME_QUERIES {
            let buf = self.query(&target, qtype, true)?;
            let msg = packet::parse(&buf).ok_or_else(DnsError::proto)?;
            if msg.header.rcode() == packet::RCODE_NXDOMAIN {
                return Ok(Vec::new());
            }
            let chain = cname_chain(&buf, &msg, &target);
            let found: Vec<Record> = msg
                .answers
                .iter()
                .filter(|r| r.rtype == qtype && r.class == packet::C_IN)
                .filter(|r| chain.iter().any(|n| packet::name_equal(n, &r.name)))
                .cloned()
                .collect();
            let end = chain.last().cloned().unwrap_or_default();
            if !found.is_empty() || chain.len() == 1 {
                return Ok(found.into_iter().map(|r| (buf.clone(), r)).collect());
            }
            target = end;
        }
        Ok(Vec::new())
    }

    /// One try at one server: UDP, and TCP when the answer is truncated.
    fn ask(
        &self,
        server: SocketAddr,
        qname: &[u8],
        qtype: u16,
        recursive: bool,
        wait: Duration,
    ) -> Result<Reply, DnsError> {
        let id = random_u16();
        let query = packet::build_query(id, qname, qtype, recursive);
        let sock = udp_socket(server).map_err(|e| DnsError::io(&e))?;
        sock.connect(server).map_err(|e| DnsError::io(&e))?;
        if let Err(e) = sock.send(&query) {
            return Ok(Reply::Failed(DnsError::io(&e)));
        }
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Reply::TimedOut);
            }
            sock.set_read_timeout(Some(left))
                .map_err(|e| DnsError::io(&e))?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if is_timeout(&e) => return Ok(Reply::TimedOut),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Reply::Failed(DnsError::io(&e))),
            };
            let answer = &buf[..n];
            if !relevant(answer, &query) {
                continue;
            }
            let header = packet::Header::parse(answer).ok_or_else(DnsError::proto)?;
            if header.truncated() {
                return Ok(self.ask_tcp(server, &query));
            }
            return Ok(judge(answer.to_vec()));
        }
    }

    /// Ask `server` over TCP (after a truncated UDP answer).
    fn ask_tcp(&self, server: SocketAddr, query: &[u8]) -> Reply {
        match tcp_exchange(server, query, self.tcp_timeout) {
            Ok(answer) if relevant(&answer, query) => judge(answer),
            Ok(_) => Reply::Failed(DnsError::proto()),
            Err(e) if is_timeout(&e) => Reply::TimedOut,
            Err(e) => Reply::Failed(DnsError::io(&e)),
        }
    }
}

/// What one try at a server gave.
enum Reply {
    Answer(Vec<u8>),
    TimedOut,
    /// The server is of no use for this query: do not ask it again.
    Failed(DnsError),
}

/// Accept an answer unless the server says it failed (djbdns treats every
/// rcode but "no error" and "no such name" so) or it does not parse.
fn judge(answer: Vec<u8>) -> Reply {
    let Some(msg) = packet::parse(&answer) else {
        return Reply::Failed(DnsError::proto());
    };
    match msg.header.rcode() {
        0 | packet::RCODE_NXDOMAIN => Reply::Answer(answer),
        _ => Reply::Failed(DnsError::Temp(
            common::errstr::text(libc::EAGAIN).to_string(),
        )),
    }
}

/// Whether `answer` is a response to `query` (dnscache's upstream check too).
pub fn is_answer_to(answer: &[u8], query: &[u8]) -> bool {
    relevant(answer, query)
}

/// Whether `answer` is a response to `query`: same id, response bit, and
/// exactly the one question asked (name compared without case).
fn relevant(answer: &[u8], query: &[u8]) -> bool {
    let (Some(a), Some(q)) = (packet::Header::parse(answer), packet::Header::parse(query)) else {
        return false;
    };
    if a.id != q.id || !a.is_response() || a.flags[0] & 0x78 != 0 || a.qdcount != 1 {
        return false;
    }
    match (
        packet::get_question(answer, 12),
        packet::get_question(query, 12),
    ) {
        (Some((aq, _)), Some((qq, _))) => {
            aq.qtype == qq.qtype && aq.qclass == qq.qclass && packet::name_equal(&aq.name, &qq.name)
        }
        _ => false,
    }
}

/// `start` and the names its CNAME records lead to, in order, within the
/// answer section (bounded by the number of answers, so loops end).
fn cname_chain(buf: &[u8], msg: &Message, start: &[u8]) -> Vec<Vec<u8>> {
    let mut chain = vec![start.to_vec()];
    for _ in 0..msg.answers.len() {
        let last = chain.last().cloned().unwrap_or_default();
        let next = msg
            .answers
            .iter()
            .filter(|r| r.rtype == T_CNAME && r.class == packet::C_IN)
            .find(|r| packet::name_equal(&r.name, &last))
            .and_then(|r| packet::get_name(buf, r.data_pos))
            .map(|(n, _)| n);
        match next {
            Some(n) if !chain.iter().any(|c| packet::name_equal(c, &n)) => chain.push(n),
            _ => break,
        }
    }
    chain
}

/// The text of one TXT record as djbdns gives it.
fn txt_text(data: &[u8]) -> String {
    let mut out = String::new();
    let mut left = 0usize;
    for &b in data {
        if left == 0 {
            left = usize::from(b);
            continue;
        }
        left -= 1;
        out.push(if (32..=126).contains(&b) {
            b as char
        } else {
            '?'
        });
    }
    out
}

/// djbdns' dns_ip4 reading of a name made only of digits, dots and
/// brackets: each dot-separated number is a byte, the bytes grouped by four
/// (a trailing partial group dropped). None for any other name.
pub fn ip4_literal(name: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if !name
        .iter()
        .all(|&c| c.is_ascii_digit() || c == b'.' || c == b'[' || c == b']')
    {
        return None;
    }
    let mut bytes = Vec::new();
    let mut code: u8 = 0;
    for &c in name.iter().chain(std::iter::once(&b'.')) {
        match c {
            b'[' | b']' => {}
            b'.' => {
                bytes.push(code);
                code = 0;
            }
            d => code = code.wrapping_mul(10).wrapping_add(d - b'0'),
        }
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect(),
    )
}

/// The name whose PTR record names `ip`: in-addr.arpa, or ip6.arpa by nibbles.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 15, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// The servers djbdns' dns_resolvconfip would use: `$DNSCACHEIP` when it
/// names any, else the `nameserver` lines of resolv.conf, else 127.0.0.1.
pub fn servers_from(env: Option<&str>, resolv_conf: &[u8]) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = env
        .unwrap_or("")
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter_map(parse_server)
        .collect();
    if servers.is_empty() {
        servers = String::from_utf8_lossy(resolv_conf)
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("nameserver")?;
                if !rest.starts_with([' ', '\t']) {
                    return None;
                }
                parse_server(rest.split_ascii_whitespace().next()?)
            })
            .collect();
    }
    if servers.is_empty() {
        servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    servers.truncate(MAX_SERVERS);
    servers
}

/// One server: an address (port 53) or an address with a port.
pub fn parse_server(word: &str) -> Option<SocketAddr> {
    if word.is_empty() {
        return None;
    }
    if let Ok(sa) = word.parse::<SocketAddr>() {
        return Some(sa);
    }
    let bare = word.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// A UDP socket of the server's family bound to a random port above 1024
/// (falling back to the kernel's choice if ten random ports are taken).
fn udp_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    for _ in 0..10 {
        let port = 1025 + random_u16() % (65535 - 1024);
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(any, port)) {
            return Ok(s);
        }
    }
    UdpSocket::bind(SocketAddr::new(any, 0))
}

/// Send `query` with its length prefix over TCP and read one framed answer,
/// all within `limit`.
fn tcp_exchange(server: SocketAddr, query: &[u8], limit: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        } else {
            Ok(d)
        }
    };
    let mut s = TcpStream::connect_timeout(&server, left()?)?;
    s.set_write_timeout(Some(left()?))?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed)?;
    let mut len = [0u8; 2];
    read_exact_by(&mut s, &mut len, &left)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact_by(&mut s, &mut answer, &left)?;
    Ok(answer)
}

fn read_exact_by(
    s: &mut TcpStream,
    mut buf: &mut [u8],
    left: &dyn Fn() -> io::Result<Duration>,
) -> io::Result<()> {
    while !buf.is_empty() {
        s.set_read_timeout(Some(left()?))?;
        match s.read(buf) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EPROTO)),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Random bytes from the kernel; a clock-derived fallback only if getrandom
/// itself fails (it does not on Linux with a seeded pool).
pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == buf.len() as isize {
        return;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id()) << 64;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    random_bytes(&mut b);
    u16::from_ne_bytes(b)
}

/// Shuffle as djbdns' dns_sortip does, so load spreads over the addresses.
fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = usize::from(random_u16()) % (i + 1);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_like_dns_ip4() {
        assert_eq!(
            ip4_literal(b"1.2.3.4"),
            Some(vec![Ipv4Addr::new(1, 2, 3, 4)])
        );
        assert_eq!(
            ip4_literal(b"[5.6.7.8]"),
            Some(vec![Ipv4Addr::new(5, 6, 7, 8)])
        );
        assert_eq!(
            ip4_literal(b"1.2.3.4.5.6.7.8.9"),
            Some(vec![Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)])
        );
        assert_eq!(ip4_literal(b"1.2.3"), Some(vec![]));
        assert_eq!(ip4_literal(b"a.2.3.4"), None);
    }

    #[test]
    fn server_lists() {
        let rc = b"domain x\nnameserver 10.0.0.1\nnameserver\t::1\nnameserverx 1.1.1.1\n";
        assert_eq!(
            servers_from(Some("127.0.0.1:5353, [::1]:5300 127.0.0.2 ::2 junk"), rc),
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:5300".parse().unwrap(),
                "127.0.0.2:53".parse().unwrap(),
                "[::2]:53".parse().unwrap(),
            ]
        );
        assert_eq!(
            servers_from(Some(""), rc),
            vec![
                "10.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(
            servers_from(None, b""),
            vec!["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().unwrap()),
            "1.0.0.127.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn txt_like_djbdns() {
        assert_eq!(txt_text(b"\x05hello\x05wor\x01d"), "hellowor?d");
        assert_eq!(txt_text(b"\x03a"), "a");
    }

    #[test]
    fn relevance() {
        let q = packet::build_query(7, b"\x01a\x00", T_A, true);
        let mut a = q.clone();
        a[2] |= 0x80;
        assert!(relevant(&a, &q));
        a[13] = b'A';
        assert!(relevant(&a, &q), "case does not matter");
        a[1] = 8;
        assert!(!relevant(&a, &q), "other id");
        assert!(!relevant(&q, &q), "not a response");
        let other = packet::build_query(7, b"\x01b\x00", T_A, true);
        let mut b = other.clone();
        b[2] |= 0x80;
        assert!(!relevant(&b, &q), "other question");
    }
}
