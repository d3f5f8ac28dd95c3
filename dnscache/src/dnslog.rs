//! dnscache's log lines, word for word as djbdns 1.05 writes them on
//! stderr (for multilog): names lowercase with a dot after every label and
//! odd bytes as `?`, addresses and ports in hex, types as numbers except the
//! record kinds djbdns spells out (ns, cname, ptr, mx, soa).

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// A name as the log shows it: `www.example.com.`, the root as `.`.
pub fn name(wire: &[u8]) -> String {
    if wire.first().copied().unwrap_or(0) == 0 {
        return ".".into();
    }
    let mut s = String::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let end = (pos + 1 + usize::from(len)).min(wire.len());
        for &b in &wire[pos + 1..end] {
            let c = if b <= 32 || b > 126 {
                b'?'
            } else {
                b.to_ascii_lowercase()
            };
            s.push(c as char);
        }
        s.push('.');
        pos = end;
    }
    s
}

/// An address in hex: 8 digits for IPv4, 32 for IPv6.
pub fn ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => hex(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hex(&v4.octets()),
            None => hex(&v6.octets()),
        },
    }
}

/// Lowercase hex digits of `data`, by table: this runs for every query.
fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * data.len());
    for &b in data {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn hexbytes(data: &[u8]) -> String {
    if data.len() > 31 {
        return hex(&data[..31]) + "...";
    }
    hex(data)
}

pub fn starting() -> String {
    "starting".into()
}

/// `query NUM IP:PORT:ID TYPE NAME`
pub fn query(qnum: u64, client: SocketAddr, id: u16, qtype: u16, qname: &[u8]) -> String {
    format!(
        "query {qnum} {}:{:04x}:{id:04x} {qtype} {}",
        ip(client.ip()),
        client.port(),
        name(qname)
    )
}

/// `tx GLUELESSNESS TYPE NAME CONTROL SERVER...`
pub fn tx(
    level: usize,
    qtype: u16,
    qname: &[u8],
    control: &[u8],
    servers: &[SocketAddr],
) -> String {
    let mut s = format!("tx {level} {qtype} {} {}", name(qname), name(control));
    for sv in servers {
        s.push(' ');
        s.push_str(&ip(sv.ip()));
    }
    s
}

/// `rr SERVER TTL ...` for one cached record, its data decoded as djbdns does.
pub fn rr(server: IpAddr, ttl: u32, rtype: u16, owner: &[u8], data: &RrData) -> String {
    let head = format!("rr {} {ttl}", ip(server));
    let o = name(owner);
    match data {
        RrData::Name(kind, n) => format!("{head} {kind} {o} {}", name(n)),
        RrData::Mx(pref, n) => format!("{head} mx {o} {pref} {}", name(n)),
        RrData::Soa(m, r, nums) => {
            let mut s = format!("{head} soa {o} {} {}", name(m), name(r));
            for n in nums {
                let _ = write!(s, " {n}");
            }
            s
        }
        RrData::Raw(d) => format!("{head} {rtype} {o} {}", hexbytes(d)),
    }
}

/// Record data as the rr line shows it.
pub enum RrData {
    /// ns, cname or ptr and the name.
    Name(&'static str, Vec<u8>),
    Mx(u16, Vec<u8>),
    Soa(Vec<u8>, Vec<u8>, [u32; 5]),
    Raw(Vec<u8>),
}

pub fn cached(qtype: u16, qname: &[u8]) -> String {
    format!("cached {qtype} {}", name(qname))
}
pub fn cached_cname(from: &[u8], to: &[u8]) -> String {
    format!("cached cname {} {}", name(from), name(to))
}
pub fn cached_ns(control: &[u8], ns: &[u8]) -> String {
    format!("cached ns {} {}", name(control), name(ns))
}
pub fn cached_nxdomain(qname: &[u8]) -> String {
    format!("cached nxdomain {}", name(qname))
}
pub fn sent(qnum: u64, len: usize) -> String {
    format!("sent {qnum} {len}")
}
pub fn nodata(server: IpAddr, ttl: u32, qtype: u16, qname: &[u8]) -> String {
    format!("nodata {} {ttl} {qtype} {}", ip(server), name(qname))
}
pub fn nxdomain(server: IpAddr, ttl: u32, qname: &[u8]) -> String {
    format!("nxdomain {} {ttl} {}", ip(server), name(qname))
}
pub fn lame(server: IpAddr, control: &[u8], referral: &[u8]) -> String {
    format!("lame {} {} {}", ip(server), name(control), name(referral))
}
pub fn servfail(qname: &[u8], why: &str) -> String {
    format!("servfail {} {why}", name(qname))
}
pub fn drop(qnum: u64, why: &str) -> String {
    format!("drop {qnum} {why}")
}
pub fn tcpopen(client: SocketAddr) -> String {
    format!("tcpopen {}:{:04x}", ip(client.ip()), client.port())
}
pub fn tcpclose(client: SocketAddr, why: &str) -> String {
    format!("tcpclose {}:{:04x} {why}", ip(client.ip()), client.port())
}
pub fn stats(queries: u64, motion: u64, udp: usize, tcp: usize) -> String {
    format!("stats {queries} {motion} {udp} {tcp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_djbdns_writes_them() {
        let client: SocketAddr = "127.0.0.1:49619".parse().unwrap();
        assert_eq!(
            query(1, client, 0xc15e, 1, b"\x03WWW\x07example\x04test\x00"),
            "query 1 7f000001:c1d3:c15e 1 www.example.test."
        );
        let ns: SocketAddr = "127.0.0.9:53".parse().unwrap();
        assert_eq!(
            tx(
                0,
                1,
                b"\x03www\x07example\x04test\x00",
                b"\x07example\x04test\x00",
                &[ns]
            ),
            "tx 0 1 www.example.test. example.test. 7f000009"
        );
        assert_eq!(
            rr(
                ns.ip(),
                3600,
                1,
                b"\x03www\x00",
                &RrData::Raw(vec![10, 1, 2, 3])
            ),
            "rr 7f000009 3600 1 www. 0a010203"
        );
        assert_eq!(
            rr(
                ns.ip(),
                3600,
                15,
                b"\x01e\x00",
                &RrData::Mx(10, b"\x01m\x01e\x00".to_vec())
            ),
            "rr 7f000009 3600 mx e. 10 m.e."
        );
        assert_eq!(name(b"\x00"), ".");
        assert_eq!(name(b"\x03a b\x00"), "a?b.");
        assert_eq!(tcpopen(client), "tcpopen 7f000001:c1d3");
    }
}
