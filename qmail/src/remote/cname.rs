//! The canonical name of a recipient's domain, as qmail 1.03's qmail-remote
//! puts it in RCPT TO when it delivers by MX (not through smtproutes): CNAME
//! records are followed for up to ten steps; a name that does not exist or
//! has no CNAME stays as it is; a temporary DNS failure defers the message
//! (`CNAME lookup failed temporarily. (#4.4.3)`), and an alias loop is left
//! alone ("not our problem"). Whether the domain was an alias matters too:
//! when every recipient's domain is one, qmail-remote does not refuse to
//! deliver to an MX that is this machine.

use dnscache::packet;
use dnscache::stub::{DnsError, Resolver};

/// The final record for a temporary failure.
pub const TEMP: &str = "ZCNAME lookup failed temporarily. (#4.4.3)\n";

/// Most CNAME steps followed, as qmail's dns_cname.
const STEPS: usize = 10;

/// The canonical form of `host` and whether it was an alias; Err on a
/// temporary DNS failure.
pub fn canonical(r: &Resolver, host: &str) -> Result<(String, bool), ()> {
    let mut name = host.to_string();
    for step in 0..STEPS {
        if name.is_empty() || name.ends_with(']') {
            return Ok((name, step > 0));
        }
        if let Some(n) = name.strip_suffix('.') {
            name = n.to_string();
            continue;
        }
        match alias_of(r, &name)? {
            Some(target) => name = target,
            None => return Ok((name, step > 0)),
        }
    }
    Ok((name, true))
}

/// The target of `name`'s CNAME record, None when it has none or does not
/// exist (or cannot be asked about at all).
fn alias_of(r: &Resolver, name: &str) -> Result<Option<String>, ()> {
    let Ok(wire) = packet::name_from_dot(name.as_bytes()) else {
        return Ok(None);
    };
    let buf = match r.query(&wire, packet::T_CNAME, true) {
        Ok(b) => b,
        Err(DnsError::Temp(_)) => return Err(()),
        Err(DnsError::Perm(_)) => return Ok(None),
    };
    let msg = packet::parse(&buf).ok_or(())?;
    if msg.header.rcode() == packet::RCODE_NXDOMAIN {
        return Ok(None);
    }
    let target = msg
        .answers
        .iter()
        .filter(|a| a.rtype == packet::T_CNAME && a.class == packet::C_IN)
        .find(|a| packet::name_equal(&a.name, &wire))
        .and_then(|a| packet::get_name(&buf, a.data_pos))
        .map(|(n, _)| packet::name_to_dot(&n));
    Ok(target)
}

/// A recipient as it goes into RCPT TO: quoted box, canonical domain when
/// `follow` (delivery by MX); with whether its domain was an alias.
pub fn recipient(r: &Resolver, addr: &str, follow: bool) -> Result<(String, bool), ()> {
    let Some((boxpart, domain)) = addr.rsplit_once('@') else {
        return Ok((super::mangle(addr), follow));
    };
    if !follow {
        return Ok((super::mangle(addr), false));
    }
    let (canon, alias) = canonical(r, domain)?;
    Ok((super::mangle(&format!("{boxpart}@{canon}")), alias))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver nobody answers (no servers at all) is never asked about
    /// literals, empty names or names made of dots.
    #[test]
    fn literals_are_not_looked_up() {
        let r = Resolver::with_servers(Vec::new());
        assert_eq!(
            canonical(&r, "[10.0.0.1]"),
            Ok(("[10.0.0.1]".into(), false))
        );
        assert_eq!(canonical(&r, ""), Ok((String::new(), false)));
        assert_eq!(
            recipient(&r, "joe@x.test", false),
            Ok(("joe@x.test".into(), false))
        );
        assert_eq!(
            recipient(&r, "postmaster", true),
            Ok(("postmaster".into(), true))
        );
    }
}
