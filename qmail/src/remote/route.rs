//! Where qmail-remote connects: control/smtproutes (longest matching domain
//! suffix, `:` default route, `relay:port`), else the host's MX records by
//! preference with a random order among equals, else its own addresses; and
//! never to an MX at or worse than one of our own addresses.

use dnscache::stub::{DnsError, Resolver};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One address to try, with its MX preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pref: u32,
    pub addr: SocketAddr,
    /// The host name the address is for (MX host, relay or domain): the
    /// name TLS certificates are checked against.
    pub name: String,
}

/// The relay and port smtproutes gives for `host`: None for "use MX".
pub fn relay(host: &str, routes: &[String]) -> Option<(String, u16)> {
    let host = host.to_ascii_lowercase();
    let table: Vec<(String, &str)> = routes
        .iter()
        .map(|l| match l.split_once(':') {
            Some((k, v)) => (k.to_ascii_lowercase(), v),
            None => (l.to_ascii_lowercase(), ""),
        })
        .collect();
    let b = host.as_bytes();
    let starts = (0..=b.len()).filter(|&i| i == 0 || i == b.len() || b[i] == b'.');
    for i in starts {
        if let Some((_, v)) = table.iter().find(|(k, _)| k == &host[i..]) {
            return parse_relay(v);
        }
    }
    None
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; an empty relay means MX.
fn parse_relay(v: &str) -> Option<(String, u16)> {
    let (h, port) = if let Some(rest) = v.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (format!("[{h}]"), p.strip_prefix(':')),
            None => (v.to_string(), None),
        }
    } else {
        match v.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (v.to_string(), None),
        }
    };
    if h.is_empty() {
        return None;
    }
    let port = port.map_or(25, |p| {
        let (n, _) = common::getopt::scan_ulong(std::ffi::OsStr::new(p));
        n as u16
    });
    Some((h, port))
}

/// The addresses of `name` (A, then AAAA); an address literal, bracketed
/// or not, without asking DNS.
fn addrs(r: &Resolver, name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    if let Ok(ip) = bare.unwrap_or(name).parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut v: Vec<IpAddr> = r.ip4(name)?.into_iter().map(IpAddr::V4).collect();
    v.extend(r.ip6(name)?.into_iter().map(IpAddr::V6));
    Ok(v)
}

/// Addresses of this machine (qmail's ipme, with 0.0.0.0 and ::).
fn ipme() -> HashSet<IpAddr> {
    let mut me: HashSet<IpAddr> = [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]
    .into_iter()
    .collect();
    if let Ok(ifs) = nix::ifaddrs::getifaddrs() {
        for i in ifs {
            let Some(a) = i.address else { continue };
            if let Some(v4) = a.as_sockaddr_in() {
                me.insert(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = a.as_sockaddr_in6() {
                me.insert(IpAddr::V6(v6.ip()));
            }
        }
    }
    me
}

/// A cheap random number for the MX tie-break (time and pid, as qmail).
fn random() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 16)
}

/// MX records sorted by preference, shuffled among equal preferences.
fn sorted_mx(mut mx: Vec<(u16, String)>) -> Vec<(u16, String)> {
    let mut seed = random() | 1;
    let mut keyed: Vec<(u16, u64, String)> = mx
        .drain(..)
        .map(|(p, h)| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (p, seed, h)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(p, _, h)| (p, h)).collect()
}

fn temp_dns() -> String {
    "ZSorry, I couldn't find any host by that name. (#4.1.2)\n".to_string()
}

fn perm_dns(host: &str) -> String {
    let safe: String = host
        .bytes()
        .map(|b| {
            if (33..=126).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    format!("DSorry, I couldn't find any host named {safe}. (#5.1.2)\n")
}

fn dns_error(e: DnsError, host: &str) -> String {
    match e {
        DnsError::Temp(_) => temp_dns(),
        DnsError::Perm(_) => perm_dns(host),
    }
}

/// The addresses to try for `host`, in order, or the final record saying
/// why there are none. When every recipient's domain was an alias
/// (`all_aliases`), MX hosts that are this machine are not cut.
pub fn targets(host: &str, routes: &[String], all_aliases: bool) -> Result<Vec<Target>, String> {
    let r = Resolver::from_env();
    if let Some((relayhost, port)) = relay(host, routes) {
        let ips = addrs(&r, &relayhost).map_err(|e| dns_error(e, &relayhost))?;
        if ips.is_empty() {
            // qmail's resolver calls a name without addresses a hard error.
            return Err(perm_dns(&relayhost));
        }
        let t = ips.into_iter().map(|ip| Target {
            pref: 0,
            addr: SocketAddr::new(ip, port),
            name: relayhost.clone(),
        });
        return Ok(t.collect());
    }
    let mut all = Vec::new();
    let literal = host.starts_with('[');
    let mx = if literal {
        Vec::new()
    } else {
        sorted_mx(r.mx(host).map_err(|e| dns_error(e, host))?)
    };
    if mx.is_empty() {
        let ips = addrs(&r, host).map_err(|e| dns_error(e, host))?;
        if ips.is_empty() {
            return Err(perm_dns(host));
        }
        all.extend(ips.into_iter().map(|ip| (0u32, ip, host.to_string())));
    } else {
        let mut soft = false;
        for (pref, name) in &mx {
            match addrs(&r, name) {
                Ok(ips) => all.extend(
                    ips.into_iter()
                        .map(|ip| (u32::from(*pref), ip, name.clone())),
                ),
                Err(_) => soft = true,
            }
        }
        if all.is_empty() {
            return Err(if soft {
                temp_dns()
            } else {
                "DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n".to_string()
            });
        }
    }
    if all_aliases {
        return Ok(all
            .into_iter()
            .map(|(pref, ip, name)| Target {
                pref,
                addr: SocketAddr::new(ip, 25),
                name,
            })
            .collect());
    }
    best_not_me(all, &ipme())
}

/// Keep only addresses preferred over every MX that is this machine.
fn best_not_me(
    all: Vec<(u32, IpAddr, String)>,
    me: &HashSet<IpAddr>,
) -> Result<Vec<Target>, String> {
    let prefme = all
        .iter()
        .filter(|(_, ip, _)| me.contains(ip))
        .map(|(p, _, _)| *p)
        .min()
        .unwrap_or(100_000);
    let v: Vec<Target> = all
        .into_iter()
        .filter(|(p, _, _)| *p < prefme)
        .map(|(pref, ip, name)| Target {
            pref,
            addr: SocketAddr::new(ip, 25),
            name,
        })
        .collect();
    if v.is_empty() {
        return Err("DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n".to_string());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtproutes_lookup() {
        let routes: Vec<String> = [
            "example.com:relay.example.net:2525",
            ".sub.example.org:[::1]:26",
            "direct.example:",
            ":smart.host",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            relay("Example.COM", &routes),
            Some(("relay.example.net".into(), 2525))
        );
        assert_eq!(
            relay("a.sub.example.org", &routes),
            Some(("[::1]".into(), 26))
        );
        assert_eq!(relay("direct.example", &routes), None);
        assert_eq!(
            relay("other.test", &routes),
            Some(("smart.host".into(), 25))
        );
        assert_eq!(relay("x", &routes[..1]), None);
    }

    #[test]
    fn own_addresses_cut_the_mx_list() {
        let me: HashSet<IpAddr> = ["10.0.0.1".parse().unwrap()].into_iter().collect();
        let mx = |p: u32, ip: &str| (p, ip.parse().unwrap(), format!("mx{p}.example"));
        let all = vec![mx(5, "10.0.0.9"), mx(10, "10.0.0.1"), mx(20, "10.0.0.2")];
        let v = best_not_me(all, &me).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "mx5.example");
        assert!(best_not_me(vec![mx(1, "10.0.0.1")], &me).is_err());
    }

    #[test]
    fn mx_sorted_by_preference() {
        let v = sorted_mx(vec![(20, "b".into()), (10, "a".into()), (20, "c".into())]);
        assert_eq!(v[0], (10, "a".to_string()));
        assert_eq!(v.len(), 3);
    }
}
