//! The rules of tcprules and tcpserver -x: the text syntax (`address:allow`
//! or `:deny`, `,VAR="value"` instructions, ranges `1.2.3.40-50`), the cdb
//! keys and values it compiles to (byte-compatible with ucspi-tcp 0.88), and
//! the order in which a connection's keys are looked up. qmail reuses the
//! lookup for its own rules databases.
//!
//! Beyond the original, opt-in: CIDR rules. `10.0.0.0/8` and friends compile
//! to the very prefix keys the original looks up (`10.`, or the set of
//! `a.b.c.` / address keys that cover the block), so even Debian's tcpserver
//! honours them; IPv6 blocks (`2001:db8::/32`) become `NET/LEN` keys plus a
//! `/6` record listing the lengths in use, so a lookup costs at most one
//! probe per distinct length, whatever the number of rules.

use crate::cdb;
use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Key of the record that lists the IPv6 CIDR prefix lengths in use.
pub const V6_LENGTHS_KEY: &[u8] = b"/6";

/// A line that tcprules cannot parse (the line, trailing blanks removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub Vec<u8>);

/// An address tcprules cannot expand (a bad range or CIDR block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

/// One parsed rule: its address and the cdb data (`D\0` for deny, then
/// `+NAME=value\0` per variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub address: Vec<u8>,
    pub data: Vec<u8>,
}

/// Parse one input line (with or without its newline). Comments, blank
/// lines and lines without a colon yield None, as in the original.
pub fn parse_line(raw: &[u8]) -> Result<Option<Rule>, BadLine> {
    let mut data = Vec::new();
    Ok(parse_into(raw, &mut data)?.map(|address| Rule {
        address: address.to_vec(),
        data,
    }))
}

/// [`parse_line`] without allocating: the rule's data goes into `data`
/// (cleared first) and its address is returned as a slice of `raw`.
pub fn parse_into<'a>(raw: &'a [u8], data: &mut Vec<u8>) -> Result<Option<&'a [u8]>, BadLine> {
    data.clear();
    if matches!(raw.first(), None | Some(b'#') | Some(b'\n')) {
        return Ok(None);
    }
    let mut len = raw.len();
    while len > 0 && matches!(raw[len - 1], b'\n' | b' ' | b'\t') {
        len -= 1;
    }
    let line = &raw[..len];
    let bad = || BadLine(line.to_vec());
    let Some(first) = line.iter().position(|&c| c == b':') else {
        return Ok(None);
    };
    // IPv6 addresses contain colons: the address ends at the first colon
    // that is followed by an action.
    let colon = (first..len)
        .find(|&i| line[i] == b':' && is_action(&line[i + 1..]))
        .ok_or_else(bad)?;
    let mut rest = &line[colon + 1..];
    if let Some(r) = rest.strip_prefix(b"allow") {
        rest = r;
    } else if let Some(r) = rest.strip_prefix(b"deny") {
        data.extend_from_slice(b"D\0");
        rest = r;
    }
    while !rest.is_empty() {
        rest = parse_instruction(rest, data).ok_or_else(bad)?;
    }
    Ok(Some(&line[..colon]))
}

fn is_action(s: &[u8]) -> bool {
    s.starts_with(b"allow") || s.starts_with(b"deny")
}

/// `,NAME=qvalueq` with any quote character q; returns what follows.
fn parse_instruction<'a>(s: &'a [u8], data: &mut Vec<u8>) -> Option<&'a [u8]> {
    let s = s.strip_prefix(b",")?;
    let eq = s.iter().position(|&c| c == b'=')?;
    let (&quote, after) = s[eq + 1..].split_first()?;
    let end = after.iter().position(|&c| c == quote)?;
    data.push(b'+');
    data.extend_from_slice(&s[..=eq]);
    data.extend_from_slice(&after[..end]);
    data.push(0);
    Some(&after[end + 1..])
}

/// The cdb keys one rule's address stands for: itself, or every address of
/// a range, or the prefix keys of a CIDR block. IPv6 block lengths are
/// reported through `v6_len`.
pub fn keys(
    address: &[u8],
    v6_len: &mut dyn FnMut(u8),
    emit: &mut dyn FnMut(&[u8]),
) -> Result<(), BadAddress> {
    if address.contains(&b'=') || address.contains(&b'@') {
        emit(address);
        return Ok(());
    }
    if let Some(slash) = address.iter().position(|&c| c == b'/') {
        return cidr_keys(&address[..slash], &address[slash + 1..], v6_len, emit);
    }
    if let Some(dash) = address.iter().position(|&c| c == b'-') {
        return range_keys(address, dash, emit);
    }
    emit(address);
    Ok(())
}

/// `a.b.c.X-Y` (the range may sit in any component): one key per number.
fn range_keys(address: &[u8], dash: usize, emit: &mut dyn FnMut(&[u8])) -> Result<(), BadAddress> {
    let left = address[..dash]
        .iter()
        .rposition(|&c| c == b'.')
        .map_or(0, |p| p + 1);
    let right = address[dash + 1..]
        .iter()
        .position(|&c| c == b'.')
        .map_or(address.len(), |p| dash + 1 + p);
    let bot = whole_number(&address[left..dash])?;
    let top = whole_number(&address[dash + 1..right])?.min(255);
    let mut key = Vec::with_capacity(address.len());
    for n in bot..=top {
        key.clear();
        key.extend_from_slice(&address[..left]);
        key.extend_from_slice(n.to_string().as_bytes());
        key.extend_from_slice(&address[right..]);
        emit(&key);
    }
    Ok(())
}

/// The original's getnum: all digits (an empty string is 0).
fn whole_number(s: &[u8]) -> Result<u64, BadAddress> {
    if !s.iter().all(u8::is_ascii_digit) {
        return Err(BadAddress);
    }
    Ok(s.iter().fold(0u64, |v, &d| {
        v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn cidr_keys(
    net: &[u8],
    len: &[u8],
    v6_len: &mut dyn FnMut(u8),
    emit: &mut dyn FnMut(&[u8]),
) -> Result<(), BadAddress> {
    let text = std::str::from_utf8(net).map_err(|_| BadAddress)?;
    let bits = whole_number(len)?;
    if len.is_empty() {
        return Err(BadAddress);
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        if bits > 32 {
            return Err(BadAddress);
        }
        v4_cidr_keys(u32::from(v4), bits as u32, emit);
        return Ok(());
    }
    let v6: Ipv6Addr = text.parse().map_err(|_| BadAddress)?;
    if bits > 128 {
        return Err(BadAddress);
    }
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    let masked = Ipv6Addr::from(u128::from(v6) & mask);
    v6_len(bits as u8);
    emit(format!("{masked}/{bits}").as_bytes());
    Ok(())
}

/// An IPv4 block as the dotted prefix keys the original looks up: whole
/// octets become `a.b.`, a partial octet is spelt out value by value.
fn v4_cidr_keys(addr: u32, bits: u32, emit: &mut dyn FnMut(&[u8])) {
    let octets = (if bits == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - bits))
    })
    .to_be_bytes();
    let whole = (bits / 8) as usize;
    let spare = bits % 8;
    let mut prefix = String::new();
    for o in &octets[..whole] {
        prefix.push_str(&o.to_string());
        prefix.push('.');
    }
    if spare == 0 {
        if whole == 4 {
            prefix.pop();
        }
        emit(prefix.as_bytes());
        return;
    }
    let base = octets[whole];
    let count = 1u32 << (8 - spare);
    for v in 0..count {
        let mut key = format!("{prefix}{}", u32::from(base) + v);
        if whole < 3 {
            key.push('.');
        }
        emit(key.as_bytes());
    }
}

/// Why compiling failed.
#[derive(Debug)]
pub enum CompileError {
    Read(io::Error),
    Write(io::Error),
    Bad(BadLine),
}

/// Read rules from `input` and add their records to `out`.
pub fn compile<R: BufRead, W: Write>(
    input: &mut R,
    out: &mut cdb::Writer<W>,
) -> Result<(), CompileError> {
    let mut line = Vec::with_capacity(256);
    let mut data = Vec::with_capacity(256);
    let mut v6_lengths = [false; 129];
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .map_err(CompileError::Read)?
            == 0
        {
            break;
        }
        let Some(address) = parse_into(&line, &mut data).map_err(CompileError::Bad)? else {
            continue;
        };
        let mut werr = None;
        keys(
            address,
            &mut |l| v6_lengths[usize::from(l)] = true,
            &mut |k| {
                if werr.is_none() {
                    werr = out.add(k, &data).err();
                }
            },
        )
        .map_err(|BadAddress| CompileError::Bad(BadLine(trimmed(&line))))?;
        if let Some(e) = werr {
            return Err(CompileError::Write(e));
        }
    }
    let lengths: Vec<u8> = (0..=128u8)
        .rev()
        .filter(|&l| v6_lengths[usize::from(l)])
        .collect();
    if !lengths.is_empty() {
        out.add(V6_LENGTHS_KEY, &lengths)
            .map_err(CompileError::Write)?;
    }
    Ok(())
}

fn trimmed(line: &[u8]) -> Vec<u8> {
    let mut len = line.len();
    while len > 0 && matches!(line[len - 1], b'\n' | b' ' | b'\t') {
        len -= 1;
    }
    line[..len].to_vec()
}

/// What the remote end is known as, for a lookup.
pub struct Peer<'a> {
    /// TCPREMOTEIP as tcpserver sets it (dotted IPv4, or IPv6 text).
    pub ip: &'a str,
    pub host: Option<&'a [u8]>,
    pub info: Option<&'a [u8]>,
}

/// Look `peer` up in the rules cdb `r` in the original's order; on a match
/// `key` holds the rule's key and `data` its instructions.
pub fn lookup<R: cdb::ReadAt + ?Sized>(
    r: &R,
    peer: &Peer,
    key: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> io::Result<bool> {
    let ip = peer.ip.as_bytes();
    if let Some(info) = peer.info {
        set(key, &[info, b"@", ip]);
        if cdb::find(r, key, data)? {
            return Ok(true);
        }
        if let Some(host) = peer.host {
            set(key, &[info, b"@=", host]);
            if cdb::find(r, key, data)? {
                return Ok(true);
            }
        }
    }
    set(key, &[ip]);
    if cdb::find(r, key, data)? {
        return Ok(true);
    }
    if let Some(host) = peer.host {
        set(key, &[b"=", host]);
        if cdb::find(r, key, data)? {
            return Ok(true);
        }
    }
    let v6 = peer.ip.contains(':');
    for end in (1..ip.len()).rev() {
        if ip[end - 1] == b'.' || (v6 && ip[end - 1] == b':') {
            set(key, &[&ip[..end]]);
            if cdb::find(r, key, data)? {
                return Ok(true);
            }
        }
    }
    if v6 && v6_cidr(r, peer.ip, key, data)? {
        return Ok(true);
    }
    if let Some(host) = peer.host {
        let h = host;
        for i in 0..h.len() {
            if h[i] == b'.' {
                set(key, &[b"=", &h[i..]]);
                if cdb::find(r, key, data)? {
                    return Ok(true);
                }
            }
        }
        set(key, &[b"="]);
        if cdb::find(r, key, data)? {
            return Ok(true);
        }
    }
    key.clear();
    cdb::find(r, key, data)
}

fn set(key: &mut Vec<u8>, parts: &[&[u8]]) {
    key.clear();
    for p in parts {
        key.extend_from_slice(p);
    }
}

/// Probe the `NET/LEN` keys of the lengths listed under `/6`, longest first.
fn v6_cidr<R: cdb::ReadAt + ?Sized>(
    r: &R,
    ip: &str,
    key: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> io::Result<bool> {
    let Ok(addr) = ip.parse::<Ipv6Addr>() else {
        return Ok(false);
    };
    let mut lengths = Vec::new();
    if !cdb::find(r, V6_LENGTHS_KEY, &mut lengths)? {
        return Ok(false);
    }
    for &bits in &lengths {
        let bits = u32::from(bits.min(128));
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        let net = Ipv6Addr::from(u128::from(addr) & mask);
        key.clear();
        write!(key, "{net}/{bits}").expect("writing to a Vec");
        if cdb::find(r, key, data)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a rule's data tells tcpserver to do.
pub struct Instructions<'a> {
    data: &'a [u8],
}

/// One instruction of a rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Instruction<'a> {
    Deny,
    /// `NAME=value` (the original's `+` records; a record without `=` is skipped).
    Set(&'a [u8], &'a [u8]),
    /// The full text after `+`, for tcprulescheck.
    Other,
}

pub fn instructions(data: &[u8]) -> Instructions<'_> {
    Instructions { data }
}

impl<'a> Iterator for Instructions<'a> {
    type Item = (Instruction<'a>, &'a [u8]);

    /// Each NUL-terminated record; an unterminated tail is ignored as the
    /// original does.
    fn next(&mut self) -> Option<Self::Item> {
        let end = self.data.iter().position(|&c| c == 0)?;
        let rec = &self.data[..end];
        self.data = &self.data[end + 1..];
        let ins = match rec.first() {
            Some(b'D') => Instruction::Deny,
            Some(b'+') => match rec[1..].iter().position(|&c| c == b'=') {
                Some(eq) => Instruction::Set(&rec[1..1 + eq], &rec[2 + eq..]),
                None => Instruction::Other,
            },
            _ => Instruction::Other,
        };
        Some((ins, rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        parse_line(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn guide_rules() {
        assert_eq!(
            rule("127.:allow,RELAYCLIENT=\"\"\n").data,
            b"+RELAYCLIENT=\0"
        );
        assert_eq!(
            rule("1.2.3.6:allow,RELAYCLIENT=\"@fixme\"").data,
            b"+RELAYCLIENT=@fixme\0"
        );
        assert_eq!(rule(":allow").address, b"");
        assert_eq!(rule(":deny").data, b"D\0");
        let r = rule("213.41.188.249:allow,RELAYCLIENT=\" \",RBLSMTPD=\" \"");
        assert_eq!(r.data, b"+RELAYCLIENT= \0+RBLSMTPD= \0");
        assert_eq!(rule("=.x.org:allow,A=/v/,B='w' \t\n").data, b"+A=v\0+B=w\0");
        assert_eq!(rule("::1:deny").address, b"::1");
        assert_eq!(rule("2001:db8::/32:allow").address, b"2001:db8::/32");
    }

    #[test]
    fn skipped_and_bad_lines() {
        assert_eq!(parse_line(b"# c:deny\n"), Ok(None));
        assert_eq!(parse_line(b"\n"), Ok(None));
        assert_eq!(parse_line(b"nocolon\n"), Ok(None));
        for bad in [
            "x:allowz",
            "x:allow,A=\"b",
            "x:allow,A",
            "x:allow,A=",
            "x:allow A=\"b\"",
            "x:permit",
        ] {
            assert_eq!(
                parse_line(bad.as_bytes()),
                Err(BadLine(bad.as_bytes().to_vec())),
                "{bad}"
            );
        }
    }

    fn all_keys(a: &str) -> Vec<String> {
        let mut v = Vec::new();
        keys(a.as_bytes(), &mut |_| {}, &mut |k| {
            v.push(String::from_utf8(k.to_vec()).unwrap())
        })
        .unwrap();
        v
    }

    #[test]
    fn ranges_and_cidr() {
        assert_eq!(
            all_keys("1.2.3.40-42"),
            ["1.2.3.40", "1.2.3.41", "1.2.3.42"]
        );
        assert_eq!(all_keys("1.2-3."), ["1.2.", "1.3."]);
        assert_eq!(all_keys("1.2.3.254-999").len(), 2);
        assert_eq!(all_keys("10.0.0.0/8"), ["10."]);
        assert_eq!(all_keys("10.1.2.3/32"), ["10.1.2.3"]);
        assert_eq!(all_keys("0.0.0.0/0"), [""]);
        assert_eq!(all_keys("10.1.16.0/20").len(), 16);
        assert_eq!(all_keys("10.1.16.0/20")[0], "10.1.16.");
        assert_eq!(all_keys("10.1.2.128/25")[127], "10.1.2.255");
        assert_eq!(all_keys("2001:db8:ff::/32"), ["2001:db8::/32"]);
        assert_eq!(all_keys("joe@1.2.3.4-5"), ["joe@1.2.3.4-5"]);
        assert!(keys(b"1.2.x-3", &mut |_| {}, &mut |_| {}).is_err());
        assert!(keys(b"10.0.0.0/33", &mut |_| {}, &mut |_| {}).is_err());
    }

    fn db(text: &str) -> Vec<u8> {
        let mut w = cdb::Writer::new(Vec::new()).unwrap();
        compile(&mut text.as_bytes(), &mut w).unwrap();
        cdb::finish_vec(w).unwrap()
    }

    fn check(db: &[u8], ip: &str, host: Option<&str>, info: Option<&str>) -> Option<String> {
        let (mut k, mut d) = (Vec::new(), Vec::new());
        let peer = Peer {
            ip,
            host: host.map(str::as_bytes),
            info: info.map(str::as_bytes),
        };
        lookup(db, &peer, &mut k, &mut d)
            .unwrap()
            .then(|| String::from_utf8(k).unwrap())
    }

    #[test]
    fn lookup_order() {
        let d = db("joe@1.2.3.4:deny\n1.2.3.4:allow\n1.2.3.:deny\n1.2.:allow\n=a.b.c:allow\n=.b.c:allow\n=:allow\n:deny\n2001:db8::/32:deny\n2001:db8::/48:allow\n");
        assert_eq!(
            check(&d, "1.2.3.4", None, Some("joe")).unwrap(),
            "joe@1.2.3.4"
        );
        assert_eq!(check(&d, "1.2.3.4", None, None).unwrap(), "1.2.3.4");
        assert_eq!(check(&d, "1.2.3.5", Some("a.b.c"), None).unwrap(), "=a.b.c");
        assert_eq!(check(&d, "1.2.3.5", Some("x.b.c"), None).unwrap(), "1.2.3.");
        assert_eq!(check(&d, "1.2.9.5", None, None).unwrap(), "1.2.");
        assert_eq!(check(&d, "9.9.9.9", Some("x.b.c"), None).unwrap(), "=.b.c");
        assert_eq!(check(&d, "9.9.9.9", Some("x"), None).unwrap(), "=");
        assert_eq!(check(&d, "9.9.9.9", None, None).unwrap(), "");
        assert_eq!(
            check(&d, "2001:db8::1", None, None).unwrap(),
            "2001:db8::/48"
        );
        assert_eq!(
            check(&d, "2001:db8:1::1", None, None).unwrap(),
            "2001:db8::/32"
        );
        assert_eq!(check(&db("1.2.3.4:allow\n"), "1.1.1.1", None, None), None);
    }

    #[test]
    fn instructions_decode() {
        let v: Vec<_> = instructions(b"D\0+A=b\0+C\0").map(|(i, _)| i).collect();
        assert_eq!(
            v,
            [
                Instruction::Deny,
                Instruction::Set(b"A", b"b"),
                Instruction::Other
            ]
        );
    }
}
