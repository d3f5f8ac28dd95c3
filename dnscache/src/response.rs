//! The answers dnscache sends its clients: header (RA set, RD echoed), the
//! client's question as asked, and the answer records, with names
//! compressed against what was already written (as djbdns' response.c
//! does) so that more records fit in a 512-byte UDP answer. HIDETTL makes
//! every TTL zero.

use crate::packet::{self, T_CNAME, T_MX, T_NS, T_PTR, T_SOA};

/// A response to a client's question.
pub struct Answer<'a> {
    pub id: u16,
    pub rd: bool,
    pub rcode: u8,
    /// The question as the client sent it: name, type, class.
    pub question: &'a [u8],
    /// Answer records with uncompressed names.
    pub records: &'a [u8],
    pub ancount: u16,
    pub hide_ttl: bool,
    /// Whether the client offered EDNS0 (then an OPT record is added).
    pub edns: bool,
}

/// Names already in the packet: lowercase suffix and where it starts.
struct Writer {
    out: Vec<u8>,
    known: Vec<(Vec<u8>, usize)>,
}

impl Writer {
    /// Write `name`, pointing at an earlier copy of its longest known suffix.
    fn name(&mut self, name: &[u8]) {
        let mut pos = 0;
        while let Some(&len) = name.get(pos) {
            if len == 0 {
                break;
            }
            let suffix = name[pos..].to_ascii_lowercase();
            if let Some(&(_, at)) = self.known.iter().find(|(s, _)| *s == suffix) {
                self.out
                    .extend_from_slice(&(0xc000 | at as u16).to_be_bytes());
                return;
            }
            if self.out.len() < 0x4000 {
                self.known.push((suffix, self.out.len()));
            }
            let end = (pos + 1 + usize::from(len)).min(name.len());
            self.out.extend_from_slice(&name[pos..end]);
            pos = end;
        }
        self.out.push(0);
    }
}

/// The whole packet.
pub fn build(a: &Answer) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(512),
        known: Vec::new(),
    };
    w.out.extend_from_slice(&a.id.to_be_bytes());
    w.out.push(0x80 | u8::from(a.rd));
    w.out.push(0x80 | a.rcode);
    w.out.extend_from_slice(&[0, 1]);
    w.out.extend_from_slice(&a.ancount.to_be_bytes());
    w.out.extend_from_slice(&[0, 0, 0, 0]);
    if let Some((qname, p)) = packet::get_name(a.question, 0) {
        w.name(&qname);
        w.out
            .extend_from_slice(a.question.get(p..p + 4).unwrap_or(&[0, 0, 0, 1]));
    }
    let mut pos = 0;
    for _ in 0..a.ancount {
        match record(&mut w, a.records, pos, a.hide_ttl) {
            Some(p) => pos = p,
            None => break,
        }
    }
    if a.edns {
        add_opt(&mut w.out);
    }
    w.out
}

/// Append our OPT record and count it.
pub fn add_opt(p: &mut Vec<u8>) {
    if p.len() >= 12 {
        let ar = u16::from_be_bytes([p[10], p[11]]) + 1;
        p[10..12].copy_from_slice(&ar.to_be_bytes());
        p.extend_from_slice(&packet::opt_record(packet::EDNS_SIZE));
    }
}

/// Copy one record from `records` at `pos`; returns where the next starts.
fn record(w: &mut Writer, records: &[u8], pos: usize, hide_ttl: bool) -> Option<usize> {
    let (owner, p) = packet::get_name(records, pos)?;
    let fixed = records.get(p..p + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let data = records.get(p + 10..p + 10 + len)?;
    w.name(&owner);
    w.out.extend_from_slice(&fixed[..4]);
    w.out.extend_from_slice(if hide_ttl {
        &[0, 0, 0, 0]
    } else {
        &fixed[4..8]
    });
    let len_at = w.out.len();
    w.out.extend_from_slice(&[0, 0]);
    rdata(w, rtype, data);
    let rdlen = (w.out.len() - len_at - 2) as u16;
    w.out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Some(p + 10 + len)
}

/// Record data, names in it compressed where the type allows it (RFC 3597:
/// only the types of RFC 1035).
fn rdata(w: &mut Writer, rtype: u16, data: &[u8]) {
    let name_then_rest = |w: &mut Writer, at: usize, names: usize| -> bool {
        let mut p = at;
        for _ in 0..names {
            let Some((n, next)) = packet::get_name(data, p) else {
                return false;
            };
            w.name(&n);
            p = next;
        }
        w.out.extend_from_slice(&data[p..]);
        true
    };
    let start = w.out.len();
    let ok = match rtype {
        T_NS | T_CNAME | T_PTR => name_then_rest(w, 0, 1),
        T_MX if data.len() > 2 => {
            w.out.extend_from_slice(&data[..2]);
            name_then_rest(w, 2, 1)
        }
        T_SOA => name_then_rest(w, 0, 2),
        _ => {
            w.out.extend_from_slice(data);
            true
        }
    };
    if !ok {
        w.out.truncate(start);
        w.out.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_point_back_to_the_question() {
        let q = b"\x03www\x01e\x04test\x00\x00\x01\x00\x01";
        let mut recs = b"\x03www\x01e\x04test\x00\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x0d\x04mail\x01e\x04test\x00".to_vec();
        recs.extend_from_slice(
            b"\x04mail\x01e\x04test\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01",
        );
        let p = build(&Answer {
            id: 7,
            rd: true,
            rcode: 0,
            question: q,
            records: &recs,
            ancount: 2,
            hide_ttl: true,
            edns: false,
        });
        let msg = packet::parse(&p).unwrap();
        assert_eq!(msg.answers.len(), 2);
        assert_eq!(msg.answers[0].name, b"\x03www\x01e\x04test\x00");
        assert_eq!(
            packet::get_name(&p, msg.answers[0].data_pos).unwrap().0,
            b"\x04mail\x01e\x04test\x00"
        );
        assert_eq!(msg.answers[1].name, b"\x04mail\x01e\x04test\x00");
        assert_eq!(msg.answers[1].ttl, 0);
        assert_eq!(&p[2..4], &[0x81, 0x80]);
        // www.e.test twice in 12 bytes + pointers: far below the 101 uncompressed.
        assert!(p.len() < 12 + q.len() + 60, "{}", p.len());
    }
}
