//! Qualifying short names as djbdns' dns_ip4_qualify does (dnsipq, dnsq's
//! server argument): rewriting rules from $DNSREWRITEFILE or /etc/dnsrewrite,
//! else made from $LOCALDOMAIN, else from resolv.conf's first `search` or
//! `domain` line, else from the host name; then each `+`-separated candidate
//! is looked up in turn until one has addresses.

use crate::stub::{DnsError, Resolver};
use std::io;
use std::net::Ipv4Addr;

/// The rules in force: one rule per entry, such as `?:+.example.com` or `*.:`.
pub fn rules_from_env() -> io::Result<Vec<Vec<u8>>> {
    let file = std::env::var_os("DNSREWRITEFILE").unwrap_or_else(|| "/etc/dnsrewrite".into());
    if let Some(data) = read_if_exists(std::path::Path::new(&file))? {
        return Ok(rules_from_file(&data));
    }
    if let Some(ld) = std::env::var_os("LOCALDOMAIN") {
        use std::os::unix::ffi::OsStrExt;
        return Ok(rules_from_localdomain(ld.as_bytes()));
    }
    if let Some(data) = read_if_exists(std::path::Path::new("/etc/resolv.conf"))? {
        if let Some(rules) = rules_from_resolv_conf(&data) {
            return Ok(rules);
        }
    }
    let host = nix::unistd::gethostname().map_err(io::Error::from)?;
    use std::os::unix::ffi::OsStrExt;
    Ok(rules_from_hostname(host.as_bytes()))
}

fn read_if_exists(path: &std::path::Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A rewrite file: one rule a line, trailing blanks and CRs removed.
pub fn rules_from_file(data: &[u8]) -> Vec<Vec<u8>> {
    data.split(|&c| c == b'\n')
        .map(|l| {
            let end = l
                .iter()
                .rposition(|&c| c != b' ' && c != b'\t' && c != b'\r')
                .map_or(0, |p| p + 1);
            l[..end].to_vec()
        })
        .collect()
}

/// $LOCALDOMAIN's space-separated domains, tried in order.
pub fn rules_from_localdomain(ld: &[u8]) -> Vec<Vec<u8>> {
    let mut rule = b"?:".to_vec();
    for word in ld.split(|&c| c == b' ') {
        rule.extend_from_slice(b"+.");
        rule.extend_from_slice(word);
    }
    vec![rule, b"*.:".to_vec()]
}

/// The first `search` or `domain` line of resolv.conf, if any.
pub fn rules_from_resolv_conf(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = data.split(|&c| c == b'\n').find(|l| {
        l.len() >= 7
            && (l.starts_with(b"search") || l.starts_with(b"domain"))
            && (l[6] == b' ' || l[6] == b'\t')
    })?;
    let mut rule = b"?:".to_vec();
    for word in line[7..].split(|&c| c == b' ' || c == b'\t') {
        if !word.is_empty() {
            rule.extend_from_slice(b"+.");
            rule.extend_from_slice(word);
        }
    }
    Some(vec![rule, b"*.:".to_vec()])
}

/// The host name's domain (from its first dot on) for short names.
pub fn rules_from_hostname(host: &[u8]) -> Vec<Vec<u8>> {
    let mut rules = Vec::new();
    if let Some(dot) = host.iter().position(|&c| c == b'.') {
        let mut rule = b"?:".to_vec();
        rule.extend_from_slice(&host[dot..]);
        rules.push(rule);
    }
    rules.push(b"*.:".to_vec());
    rules
}

/// Apply one rule `Xsuffix:replacement` to `work`: `*` replaces a matching
/// suffix, `=` only a whole name, `?` a suffix of a name with no dots or
/// brackets before it, `-` replaces the whole name when the suffix matches.
fn apply(work: &mut Vec<u8>, rule: &[u8]) {
    let Some((&kind, rest)) = rule.split_first() else {
        return;
    };
    if !matches!(kind, b'?' | b'=' | b'*' | b'-') {
        return;
    }
    let Some(colon) = rest.iter().position(|&c| c == b':') else {
        return;
    };
    if work.len() < colon {
        return;
    }
    let prefix = work.len() - colon;
    if kind == b'=' && prefix != 0 {
        return;
    }
    if !rest[..colon].eq_ignore_ascii_case(&work[prefix..]) {
        return;
    }
    if kind == b'?'
        && work[..prefix]
            .iter()
            .any(|&c| matches!(c, b'.' | b'[' | b']'))
    {
        return;
    }
    work.truncate(if kind == b'-' { 0 } else { prefix });
    work.extend_from_slice(&rest[colon + 1..]);
}

/// Rewrite `name` by `rules` and look the candidates up in turn; returns the
/// last name tried and its addresses (empty when none had any).
pub fn ip4_qualify(
    resolver: &Resolver,
    name: &[u8],
    rules: &[Vec<u8>],
) -> Result<(Vec<u8>, Vec<Ipv4Addr>), DnsError> {
    let mut work = name.to_vec();
    for rule in rules {
        apply(&mut work, rule);
    }
    let Some(plus) = work.iter().position(|&c| c == b'+') else {
        let ips = resolver.ip4(&String::from_utf8_lossy(&work))?;
        return Ok((work, ips));
    };
    let base = work[..plus].to_vec();
    let mut fqdn = base.clone();
    for suffix in work[plus + 1..].split(|&c| c == b'+') {
        fqdn = [base.as_slice(), suffix].concat();
        let ips = resolver.ip4(&String::from_utf8_lossy(&fqdn))?;
        if !ips.is_empty() {
            return Ok((fqdn, ips));
        }
    }
    Ok((fqdn, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(name: &str, rules: &[Vec<u8>]) -> String {
        let mut w = name.as_bytes().to_vec();
        for r in rules {
            apply(&mut w, r);
        }
        String::from_utf8(w).unwrap()
    }

    #[test]
    fn rules_like_dns_rcrw() {
        let ld = rules_from_localdomain(b"a.test b.test");
        assert_eq!(ld, vec![b"?:+.a.test+.b.test".to_vec(), b"*.:".to_vec()]);
        assert_eq!(rewrite("www", &ld), "www+.a.test+.b.test");
        assert_eq!(rewrite("www.x", &ld), "www.x");
        assert_eq!(rewrite("www.x.", &ld), "www.x");
        let rc = rules_from_resolv_conf(b"nameserver 1.2.3.4\nsearch  x.test\ty.test\ndomain z\n");
        assert_eq!(rc.unwrap()[0], b"?:+.x.test+.y.test");
        assert!(rules_from_resolv_conf(b"nameserver 1.2.3.4\n").is_none());
        assert_eq!(rules_from_hostname(b"h.d.test")[0], b"?:.d.test");
        assert_eq!(rules_from_hostname(b"h"), vec![b"*.:".to_vec()]);
        let f = rules_from_file(
            b"=localhost:127.0.0.1 \r\n-.local:me.local\n*.example:.example.test\n",
        );
        assert_eq!(rewrite("localhost", &f), "127.0.0.1");
        assert_eq!(rewrite("x.localhost", &f), "x.localhost");
        assert_eq!(rewrite("a.b.LOCAL", &f), "me.local");
        assert_eq!(rewrite("www.example", &f), "www.example.test");
    }
}
