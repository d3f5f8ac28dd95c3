//! dnsq's and dnsqr's rendering of a response, line for line as djbdns'
//! printpacket and printrecord: a summary line, the questions, then every
//! record as `answer:`, `authority:` or `additional:` with its name, TTL and
//! data (NS/PTR/CNAME/MX/SOA/A decoded, anything else as type number and
//! escaped bytes). Also the type names dnsq accepts (parsetype).

use crate::packet::{self, Record, C_IN, T_A, T_CNAME, T_MX, T_NS, T_PTR, T_SOA};

/// A packet that cannot be rendered (djbdns says "protocol error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed;

/// The query type named by `s`: a number, or one of djbdns' names.
pub fn parse_type(s: &[u8]) -> Option<u16> {
    if s.iter().all(u8::is_ascii_digit) {
        let v = s.iter().fold(0u64, |v, &d| {
            v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        return Some(v as u16);
    }
    let names: [(&str, u16); 14] = [
        ("a", packet::T_A),
        ("ns", packet::T_NS),
        ("mx", packet::T_MX),
        ("any", packet::T_ANY),
        ("ptr", packet::T_PTR),
        ("txt", packet::T_TXT),
        ("cname", packet::T_CNAME),
        ("soa", packet::T_SOA),
        ("hinfo", packet::T_HINFO),
        ("rp", packet::T_RP),
        ("sig", packet::T_SIG),
        ("key", packet::T_KEY),
        ("aaaa", packet::T_AAAA),
        ("axfr", packet::T_AXFR),
    ];
    names
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(s))
        .map(|&(_, t)| t)
}

/// The whole rendering of packet `buf`.
pub fn print_packet(out: &mut String, buf: &[u8]) -> Result<(), Malformed> {
    let h = packet::Header::parse(buf).ok_or(Malformed)?;
    out.push_str(&format!(
        "{} bytes, {}+{}+{}+{} records",
        buf.len(),
        h.qdcount,
        h.ancount,
        h.nscount,
        h.arcount
    ));
    summary_flags(out, h.flags);
    out.push('\n');
    let mut pos = 12;
    for _ in 0..h.qdcount {
        out.push_str("query: ");
        let (q, p) = packet::get_question(buf, pos).ok_or(Malformed)?;
        pos = p;
        if q.qclass != C_IN {
            out.push_str("weird class");
        } else {
            out.push_str(&format!("{} ", q.qtype));
            packet::name_to_dot_cat(out, &q.name);
        }
        out.push('\n');
    }
    let sections = [
        ("answer: ", h.ancount),
        ("authority: ", h.nscount),
        ("additional: ", h.arcount),
    ];
    for (label, count) in sections {
        for _ in 0..count {
            out.push_str(label);
            pos = print_record(out, buf, pos)?;
        }
    }
    if pos != buf.len() {
        return Err(Malformed);
    }
    Ok(())
}

fn summary_flags(out: &mut String, f: [u8; 2]) {
    let bits: [(bool, &str); 6] = [
        (f[0] & 128 != 0, ", response"),
        (f[0] & 120 != 0, ", weird op"),
        (f[0] & 4 != 0, ", authoritative"),
        (f[0] & 2 != 0, ", truncated"),
        (f[0] & 1 != 0, ", weird rd"),
        (f[1] & 128 != 0, ", weird ra"),
    ];
    for (on, text) in bits {
        if on {
            out.push_str(text);
        }
    }
    out.push_str(match f[1] & 15 {
        0 => ", noerror",
        3 => ", nxdomain",
        4 => ", notimp",
        5 => ", refused",
        _ => ", weird rcode",
    });
    if f[1] & 112 != 0 {
        out.push_str(", weird z");
    }
}

/// One record line; returns the position after the record.
fn print_record(out: &mut String, buf: &[u8], pos: usize) -> Result<usize, Malformed> {
    let (r, next) = packet::get_record(buf, pos).ok_or(Malformed)?;
    packet::name_to_dot_cat(out, &r.name);
    out.push_str(&format!(" {}", r.ttl));
    if r.class != C_IN {
        out.push_str(" weird class\n");
        return Ok(next);
    }
    let end = print_data(out, buf, &r)?;
    out.push('\n');
    if end != next {
        return Err(Malformed);
    }
    Ok(next)
}

/// The data part of a record line; returns where its reading stopped.
fn print_data(out: &mut String, buf: &[u8], r: &Record) -> Result<usize, Malformed> {
    let name_at = |out: &mut String, p: usize| -> Result<usize, Malformed> {
        let (n, p) = packet::get_name(buf, p).ok_or(Malformed)?;
        packet::name_to_dot_cat(out, &n);
        Ok(p)
    };
    let pos = r.data_pos;
    match r.rtype {
        T_NS | T_PTR | T_CNAME => {
            out.push_str(match r.rtype {
                T_NS => " NS ",
                T_PTR => " PTR ",
                _ => " CNAME ",
            });
            name_at(out, pos)
        }
        T_MX => {
            let pref = buf.get(pos..pos + 2).ok_or(Malformed)?;
            out.push_str(&format!(" MX {} ", u16::from_be_bytes([pref[0], pref[1]])));
            name_at(out, pos + 2)
        }
        T_SOA => {
            out.push_str(" SOA ");
            let p = name_at(out, pos)?;
            out.push(' ');
            let p = name_at(out, p)?;
            let nums = buf.get(p..p + 20).ok_or(Malformed)?;
            for n in nums.chunks_exact(4) {
                out.push_str(&format!(
                    " {}",
                    u32::from_be_bytes([n[0], n[1], n[2], n[3]])
                ));
            }
            Ok(p + 20)
        }
        T_A => {
            let d = r.data(buf);
            if d.len() != 4 {
                return Err(Malformed);
            }
            out.push_str(&format!(" A {}.{}.{}.{}", d[0], d[1], d[2], d[3]));
            Ok(pos + 4)
        }
        other => {
            out.push_str(&format!(" {other} "));
            for &b in r.data(buf) {
                if (33..=126).contains(&b) && b != b'\\' {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            Ok(pos + r.data_len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(parse_type(b"MX"), Some(15));
        assert_eq!(parse_type(b"65551"), Some(15));
        assert_eq!(parse_type(b""), Some(0));
        assert_eq!(parse_type(b"aaaa"), Some(28));
        assert_eq!(parse_type(b"bogus"), None);
    }

    #[test]
    fn a_response() {
        let mut p = packet::build_query(1, b"\x01a\x00", T_A, false);
        p[2] = 0x84;
        p[7] = 2;
        p.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01");
        p.extend_from_slice(b"\xc0\x0c\x00\x63\x00\x01\x00\x00\x00\x3c\x00\x03a\\\x00");
        let mut s = String::new();
        print_packet(&mut s, &p).unwrap();
        assert_eq!(
            s,
            "50 bytes, 1+2+0+0 records, response, authoritative, noerror\n\
             query: 1 a\n\
             answer: a 60 A 10.0.0.1\n\
             answer: a 60 99 a\\134\\000\n"
        );
        p.push(0);
        assert_eq!(print_packet(&mut String::new(), &p), Err(Malformed));
    }
}
