//! The DNS wire format as the stub resolver and the client tools need it:
//! domain names in wire form and djbdns' dotted form (escapes both ways),
//! queries, and a bounds-checked reader for responses. Hand-written rather
//! than hickory-proto because tcpserver links the resolver and the codec is
//! small; every read is checked against the packet length, compression
//! pointers are followed a bounded number of times and names are limited to
//! 255 bytes, so no packet can make the reader loop or read out of bounds.

/// Record types the suite asks for.
pub const T_A: u16 = 1;
pub const T_NS: u16 = 2;
pub const T_CNAME: u16 = 5;
pub const T_SOA: u16 = 6;
pub const T_PTR: u16 = 12;
pub const T_HINFO: u16 = 13;
pub const T_MX: u16 = 15;
pub const T_TXT: u16 = 16;
pub const T_RP: u16 = 17;
pub const T_SIG: u16 = 24;
pub const T_KEY: u16 = 25;
pub const T_AAAA: u16 = 28;
pub const T_AXFR: u16 = 252;
pub const T_ANY: u16 = 255;
/// The Internet class.
pub const C_IN: u16 = 1;

/// Longest name in wire form, terminating zero included (RFC 1035).
const MAX_NAME: usize = 255;
/// Compression pointers followed per name: more than any honest packet needs,
/// few enough that a pointer loop ends at once.
const MAX_POINTERS: usize = 128;

/// Why a name could not be turned into wire form (djbdns says "protocol error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName;

/// Turn a dotted name into wire form the way djbdns' dns_domain_fromdot does:
/// empty labels are skipped (`a..b` is `a.b`), `\c` quotes a character and
/// `\ooo` (one to three octal digits) gives a byte; labels over 63 bytes or
/// names over 255 are refused.
pub fn name_from_dot(dotted: &[u8]) -> Result<Vec<u8>, BadName> {
    let mut name = Vec::with_capacity(dotted.len() + 2);
    let mut label: Vec<u8> = Vec::with_capacity(63);
    let mut i = 0;
    while i < dotted.len() {
        let mut ch = dotted[i];
        i += 1;
        if ch == b'.' {
            push_label(&mut name, &mut label)?;
            continue;
        }
        if ch == b'\\' {
            if i >= dotted.len() {
                break;
            }
            ch = dotted[i];
            i += 1;
            if (b'0'..=b'7').contains(&ch) {
                let mut v = u32::from(ch - b'0');
                for _ in 0..2 {
                    match dotted.get(i) {
                        Some(&d) if (b'0'..=b'7').contains(&d) => {
                            v = (v << 3) + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                ch = v as u8;
            }
        }
        if label.len() >= 63 {
            return Err(BadName);
        }
        label.push(ch);
    }
    push_label(&mut name, &mut label)?;
    if name.len() + 1 > MAX_NAME {
        return Err(BadName);
    }
    name.push(0);
    Ok(name)
}

fn push_label(name: &mut Vec<u8>, label: &mut Vec<u8>) -> Result<(), BadName> {
    if label.is_empty() {
        return Ok(());
    }
    if name.len() + label.len() + 1 > MAX_NAME {
        return Err(BadName);
    }
    name.push(label.len() as u8);
    name.append(label);
    Ok(())
}

/// Append a wire-form name in djbdns' dotted form: lowercase, letters, digits,
/// `-` and `_` as they are, every other byte as `\ooo`, the root as `.`, no
/// trailing dot.
pub fn name_to_dot_cat(out: &mut String, wire: &[u8]) {
    if wire.first().copied().unwrap_or(0) == 0 {
        out.push('.');
        return;
    }
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        if pos > 0 {
            out.push('.');
        }
        let end = (pos + 1 + usize::from(len)).min(wire.len());
        for &b in &wire[pos + 1..end] {
            let c = b.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
                out.push(c as char);
            } else {
                out.push_str(&format!("\\{:03o}", c));
            }
        }
        pos = end;
    }
}

/// The dotted form of a wire-form name.
pub fn name_to_dot(wire: &[u8]) -> String {
    let mut s = String::new();
    name_to_dot_cat(&mut s, wire);
    s
}

/// Whether two wire-form names are equal, ignoring ASCII case.
pub fn name_equal(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A query for `qname` (wire form) of type `qtype`, class IN, with the RD
/// bit when `recursive`.
pub fn build_query(id: u16, qname: &[u8], qtype: u16, recursive: bool) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.push(if recursive { 1 } else { 0 });
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&C_IN.to_be_bytes());
    q
}

/// The EDNS0 (RFC 6891) UDP payload size dnscache offers and accepts at most.
pub const EDNS_SIZE: u16 = 1232;
/// Type of the EDNS0 pseudo-record.
pub const T_OPT: u16 = 41;

/// An OPT pseudo-record offering `size` bytes over UDP.
pub fn opt_record(size: u16) -> [u8; 11] {
    let s = size.to_be_bytes();
    [0, 0, 41, s[0], s[1], 0, 0, 0, 0, 0, 0]
}

/// `query` with an OPT record added (arcount becomes 1).
pub fn with_edns(mut query: Vec<u8>, size: u16) -> Vec<u8> {
    if query.len() >= 12 {
        query[10..12].copy_from_slice(&1u16.to_be_bytes());
        query.extend_from_slice(&opt_record(size));
    }
    query
}

/// The UDP payload size a message's OPT record offers, if it has one.
pub fn edns_size(msg: &Message) -> Option<u16> {
    msg.additional
        .iter()
        .find(|r| r.rtype == T_OPT && r.name == [0])
        .map(|r| r.class)
}

/// The fixed 12-byte header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// Bytes 2 and 3: QR, opcode, AA, TC, RD / RA, Z, RCODE.
    pub flags: [u8; 2],
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h = buf.get(..12)?;
        let u = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: u(0),
            flags: [h[2], h[3]],
            qdcount: u(4),
            ancount: u(6),
            nscount: u(8),
            arcount: u(10),
        })
    }
    pub fn is_response(&self) -> bool {
        self.flags[0] & 0x80 != 0
    }
    pub fn truncated(&self) -> bool {
        self.flags[0] & 0x02 != 0
    }
    pub fn rcode(&self) -> u8 {
        self.flags[1] & 0x0f
    }
}

/// Rcode of a name that does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;

/// Read the name at `pos` of `buf`, following compression pointers; returns
/// the name in wire form and the position after it in the original stream.
pub fn get_name(buf: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::with_capacity(64);
    let mut after: Option<usize> = None;
    let mut pointers = 0;
    loop {
        let len = *buf.get(pos)?;
        match len & 0xc0 {
            0xc0 => {
                let low = *buf.get(pos + 1)?;
                after.get_or_insert(pos + 2);
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return None;
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(low);
            }
            0 => {
                let l = usize::from(len);
                if l == 0 {
                    name.push(0);
                    return Some((name, after.unwrap_or(pos + 1)));
                }
                let label = buf.get(pos + 1..pos + 1 + l)?;
                if name.len() + 1 + l + 1 > MAX_NAME {
                    return None;
                }
                name.push(len);
                name.extend_from_slice(label);
                pos += 1 + l;
            }
            _ => return None,
        }
    }
}

/// A question entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Read the question at `pos`; returns it and the position after it.
pub fn get_question(buf: &[u8], pos: usize) -> Option<(Question, usize)> {
    let (name, pos) = get_name(buf, pos)?;
    let f = buf.get(pos..pos + 4)?;
    let q = Question {
        name,
        qtype: u16::from_be_bytes([f[0], f[1]]),
        qclass: u16::from_be_bytes([f[2], f[3]]),
    };
    Some((q, pos + 4))
}

/// A resource record; its data stays in the packet (names in it may be
/// compressed against the whole packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Where the record data starts in the packet.
    pub data_pos: usize,
    pub data_len: usize,
}

impl Record {
    /// The record data.
    pub fn data<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.data_pos..self.data_pos + self.data_len]
    }
}

/// Read the record at `pos`; returns it and the position after its data.
pub fn get_record(buf: &[u8], pos: usize) -> Option<(Record, usize)> {
    let (name, pos) = get_name(buf, pos)?;
    let f = buf.get(pos..pos + 10)?;
    let data_len = usize::from(u16::from_be_bytes([f[8], f[9]]));
    let data_pos = pos + 10;
    if data_pos + data_len > buf.len() {
        return None;
    }
    let r = Record {
        name,
        rtype: u16::from_be_bytes([f[0], f[1]]),
        class: u16::from_be_bytes([f[2], f[3]]),
        ttl: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
        data_pos,
        data_len,
    };
    Some((r, data_pos + data_len))
}

/// A parsed response: header, questions and the three record sections.
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

/// Parse a whole packet; None when any part lies outside it.
pub fn parse(buf: &[u8]) -> Option<Message> {
    let header = Header::parse(buf)?;
    let mut pos = 12;
    let mut questions = Vec::new();
    for _ in 0..header.qdcount {
        let (q, p) = get_question(buf, pos)?;
        questions.push(q);
        pos = p;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    let counts = [header.ancount, header.nscount, header.arcount];
    for (section, &count) in sections.iter_mut().zip(counts.iter()) {
        for _ in 0..count {
            let (r, p) = get_record(buf, pos)?;
            section.push(r);
            pos = p;
        }
    }
    let [answers, authority, additional] = sections;
    Some(Message {
        header,
        questions,
        answers,
        authority,
        additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_to_wire_like_djbdns() {
        assert_eq!(name_from_dot(b"a..b.").unwrap(), b"\x01a\x01b\x00");
        assert_eq!(name_from_dot(b"").unwrap(), b"\x00");
        assert_eq!(
            name_from_dot(b"x\\.y\\101\\0").unwrap(),
            b"\x05x.yA\x00\x00"
        );
        assert!(name_from_dot(&[b'a'; 64]).is_err());
        assert!(name_from_dot(&[b'a'; 63]).is_ok());
        let long: Vec<u8> = std::iter::repeat_n(b"abcdefghi.".as_slice(), 26)
            .flatten()
            .copied()
            .collect();
        assert!(name_from_dot(&long).is_err());
    }

    #[test]
    fn wire_to_dotted_like_djbdns() {
        assert_eq!(name_to_dot(b"\x00"), ".");
        assert_eq!(name_to_dot(b"\x03W-w\x05a.b_C\x00"), "w-w.a\\056b_c");
        assert_eq!(name_to_dot(b"\x02\x00\xff\x00"), "\\000\\377");
    }

    #[test]
    fn compression_loops_and_bounds() {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(b"\xc0\x0c");
        assert!(get_name(&p, 12).is_none(), "self pointer");
        let mut p = vec![0u8; 12];
        p.extend_from_slice(b"\x03abc\xc0\x0c");
        assert!(get_name(&p, 12).is_none(), "loop through a label");
        assert!(get_name(b"\x05ab", 0).is_none(), "label past the end");
        assert!(get_name(b"\xc0", 0).is_none(), "half pointer");
        assert!(get_name(b"\x80", 0).is_none(), "reserved label type");
        let mut p = b"\x03com\x00".to_vec();
        p.extend_from_slice(b"\x03www\xc0\x00");
        assert_eq!(
            get_name(&p, 5).unwrap(),
            (b"\x03www\x03com\x00".to_vec(), 11)
        );
        // Pointers may build a name longer than 255 bytes only by reuse: refused.
        let mut p = vec![63u8];
        p.extend_from_slice(&[b'a'; 63]);
        p.push(0);
        for i in 0..4u8 {
            let prev = if i == 0 {
                0
            } else {
                65 + 66 * (usize::from(i) - 1)
            };
            p.push(63);
            p.extend_from_slice(&[b'b'; 63]);
            p.push(0xc0 | (prev >> 8) as u8);
            p.push(prev as u8);
        }
        assert!(get_name(&p, p.len() - 66).is_none());
    }

    #[test]
    fn query_and_response_roundtrip() {
        let q = build_query(0x1234, b"\x01a\x00", T_MX, true);
        assert_eq!(
            &q[..12],
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        );
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(b"\xc0\x0c\x00\x0f\x00\x01\x00\x00\x0e\x10\x00\x04\x00\x0a\xc0\x0c");
        let m = parse(&r).unwrap();
        assert!(m.header.is_response());
        assert_eq!(m.questions[0].name, b"\x01a\x00");
        assert_eq!(m.answers[0].rtype, T_MX);
        assert_eq!(m.answers[0].ttl, 3600);
        assert_eq!(m.answers[0].data(&r), b"\x00\x0a\xc0\x0c");
        r.pop();
        assert!(parse(&r).is_none(), "data past the end");
    }
}
