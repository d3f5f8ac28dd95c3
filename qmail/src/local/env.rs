//! The environment qmail-local gives to programs (qmail-command(8)) and the
//! header lines it adds: Return-Path, Delivered-To and the mbox From_ line.

use super::Args;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The lines qmail-local writes, and the queue pid after forwarding.
#[derive(Debug, Clone)]
pub struct Env {
    pub dtline: Vec<u8>,
    pub rpline: Vec<u8>,
    pub ufline: Vec<u8>,
    pub qp: u32,
    vars: Vec<(&'static str, Vec<u8>)>,
}

/// RFC 821 quoting of a local part, as qmail's quote(): only when needed.
fn quote_local(s: &[u8]) -> Vec<u8> {
    let ok = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c == b'.';
    let needs = s.is_empty()
        || !s.iter().all(|&c| ok(c))
        || s.first() == Some(&b'.')
        || s.last() == Some(&b'.')
        || s.windows(2).any(|w| w == b"..");
    if !needs {
        return s.to_vec();
    }
    let mut out = vec![b'"'];
    for &c in s {
        if matches!(c, b'\r' | b'\n' | b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
    out
}

/// quote2: quote the part before the last `@`, keep the domain.
pub fn quote_addr(s: &[u8]) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    match s.iter().rposition(|&b| b == b'@') {
        Some(at) => [quote_local(&s[..at]), s[at..].to_vec()].concat(),
        None => quote_local(s),
    }
}

fn newline_to_underscore(v: &mut [u8]) {
    for b in v.iter_mut().filter(|b| **b == b'\n') {
        *b = b'_';
    }
}

/// EXT2..EXT4: what follows the first, second, third `-` of ext.
fn ext_parts(ext: &[u8]) -> [Vec<u8>; 3] {
    let after = |s: &[u8]| match s.iter().position(|&b| b == b'-') {
        Some(p) => s[p + 1..].to_vec(),
        None => Vec::new(),
    };
    let e2 = after(ext);
    let e3 = after(&e2);
    let e4 = after(&e3);
    [e2, e3, e4]
}

/// HOST2..HOST4: host cut before its last, second-last, third-last dot.
fn host_parts(host: &[u8]) -> [Vec<u8>; 3] {
    let cut = |s: &[u8]| match s.iter().rposition(|&b| b == b'.') {
        Some(p) => s[..p].to_vec(),
        None => s.to_vec(),
    };
    let h2 = cut(host);
    let h3 = cut(&h2);
    let h4 = cut(&h3);
    [h2, h3, h4]
}

impl Env {
    pub fn new(a: &Args) -> Env {
        let recipient = [&a.local[..], b"@", &a.host].concat();
        let mut dtline = [&b"Delivered-To: "[..], &recipient].concat();
        newline_to_underscore(&mut dtline);
        dtline.push(b'\n');
        let mut rpline = [&b"Return-Path: <"[..], &quote_addr(&a.sender)].concat();
        newline_to_underscore(&mut rpline);
        rpline.extend(b">\n");
        let mut ufline = b"From ".to_vec();
        if a.sender.is_empty() {
            ufline.extend(b"MAILER-DAEMON");
        } else {
            ufline.extend(a.sender.iter().map(|&c| match c {
                b' ' | b'\t' | b'\n' => b'-',
                c => c,
            }));
        }
        ufline.push(b' ');
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        ufline.extend(crate::mbox::ctime(now).bytes());
        let [e2, e3, e4] = ext_parts(&a.ext);
        let [h2, h3, h4] = host_parts(&a.host);
        let vars = vec![
            ("HOST", a.host.clone()),
            ("HOME", a.homedir.clone()),
            ("USER", a.user.clone()),
            ("LOCAL", a.local.clone()),
            ("RECIPIENT", recipient),
            ("DTLINE", dtline.clone()),
            ("SENDER", a.sender.clone()),
            ("RPLINE", rpline.clone()),
            ("UFLINE", ufline.clone()),
            ("EXT", a.ext.clone()),
            ("EXT2", e2),
            ("EXT3", e3),
            ("EXT4", e4),
            ("HOST2", h2),
            ("HOST3", h3),
            ("HOST4", h4),
        ];
        Env {
            dtline,
            rpline,
            ufline,
            qp: 0,
            vars,
        }
    }

    /// Put the variables known before the .qmail search into the environment.
    pub fn export_early(&self) {
        for (k, v) in &self.vars {
            self.set(k, v);
        }
    }

    /// Set one variable for the programs qmail-local runs.
    pub fn set(&self, key: &str, value: &[u8]) {
        std::env::set_var(key, OsStr::from_bytes(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_like_qmail() {
        assert_eq!(quote_addr(b"joe@example.com"), b"joe@example.com");
        assert_eq!(quote_addr(b"a b@x"), b"\"a b\"@x");
        assert_eq!(quote_addr(b"a..b@x"), b"\"a..b\"@x");
        assert_eq!(quote_addr(b""), b"");
        assert_eq!(quote_addr(b"#@[]"), b"#@[]");
    }

    #[test]
    fn ext_and_host_parts() {
        assert_eq!(
            ext_parts(b"a-b-c-d"),
            [b"b-c-d".to_vec(), b"c-d".to_vec(), b"d".to_vec()]
        );
        assert_eq!(ext_parts(b"a"), [vec![], vec![], vec![]]);
        assert_eq!(
            host_parts(b"a.b.c.d"),
            [b"a.b.c".to_vec(), b"a.b".to_vec(), b"a".to_vec()]
        );
        assert_eq!(
            host_parts(b"x"),
            [b"x".to_vec(), b"x".to_vec(), b"x".to_vec()]
        );
    }
}
