//! dnsname: the host name (PTR) of each IP address, an empty line when it
//! has none. Besides dotted IPv4 (read as djbdns' ip4_scan does, ignoring
//! anything after the fourth number) it takes IPv6 addresses.

use crate::stub::Resolver;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;

pub fn run(args: &[OsString]) -> common::Result<()> {
    let resolver = Resolver::from_env();
    let mut out = String::new();
    for arg in args {
        let shown = super::text(arg);
        let ip = ip4_scan(arg.as_bytes())
            .map(IpAddr::V4)
            .or_else(|| shown.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
            .ok_or_else(|| common::Error::temp(format!("unable to parse IP address {shown}")))?;
        let name = resolver
            .name(ip)
            .map_err(|e| super::lookup_failed("host name", &shown, &e))?;
        out.push_str(name.as_deref().unwrap_or(""));
        out.push('\n');
    }
    super::emit(out.as_bytes());
    Ok(())
}

/// Four dot-separated decimal numbers at the start of `s`, each taken
/// modulo 256 as djbdns does.
pub fn ip4_scan(s: &[u8]) -> Option<Ipv4Addr> {
    let mut o = [0u8; 4];
    let mut pos = 0;
    for (i, slot) in o.iter_mut().enumerate() {
        if i > 0 {
            if s.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let digits = s[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let v = s[pos..pos + digits].iter().fold(0u64, |v, &d| {
            v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        *slot = v as u8;
        pos += digits;
    }
    Some(Ipv4Addr::from(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_like_ip4_scan() {
        assert_eq!(ip4_scan(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(ip4_scan(b"1.2.3.4xyz"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(ip4_scan(b"1.2.3.260"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(ip4_scan(b"1.2.3"), None);
        assert_eq!(ip4_scan(b"foo"), None);
    }
}
