//! dnscache's root/servers directory and root/ip access list.
//!
//! servers/: one file per domain (`@` is the root) listing the addresses of
//! that domain's servers one a line (or, with FORWARDONLY, of the caches to
//! forward to). Beyond djbdns a line may be an IPv6 address or carry a port
//! (`127.0.0.1:5300`, `[::1]:5300`); lines that are no address are ignored.
//! ip/: a client may query when a file names its address or a prefix of it
//! (`127.0.0.1`, `127.0.0`, `127`, ...); IPv6 clients are matched by files
//! named by the address or a prefix of its fully written form, colons kept
//! (`2001:0db8:0000`), or by a CIDR file name with `_` for `/`
//! (`2001:db8::_32`, `10.0.0.0_8`).

use crate::packet;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Most servers per domain, as djbdns.
const MAX_SERVERS: usize = 16;

/// The server lists, by lowercase wire-form domain.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    map: HashMap<Vec<u8>, Vec<SocketAddr>>,
}

impl Roots {
    /// Read every file of `dir` (names starting with `.` are skipped).
    pub fn load(dir: &Path) -> io::Result<Roots> {
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            if fname.starts_with('.') {
                continue;
            }
            let domain = if fname == "@" { "" } else { fname.as_str() };
            let Ok(wire) = packet::name_from_dot(domain.as_bytes()) else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path())?;
            map.insert(wire.to_ascii_lowercase(), parse_servers(&text));
        }
        Ok(Roots { map })
    }

    /// The servers configured for exactly `domain` (wire form).
    pub fn get(&self, domain: &[u8]) -> Option<&[SocketAddr]> {
        self.map
            .get(&domain.to_ascii_lowercase())
            .map(|v| v.as_slice())
    }

    pub fn insert(&mut self, domain: &[u8], servers: Vec<SocketAddr>) {
        self.map.insert(domain.to_ascii_lowercase(), servers);
    }
}

/// The addresses in a servers file, port 53 unless given.
pub fn parse_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| crate::stub::parse_server(l.trim()))
        .take(MAX_SERVERS)
        .collect()
}

/// Whether `ip` may query, by the files in the access directory `dir`.
pub fn ok_client(dir: &Path, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    candidates(ip).any(|name| dir.join(name).exists())
}

/// The file names that would allow `ip`, most specific dotted prefix
/// first, then the CIDR names; built one at a time because the first that
/// exists ends the search and this runs for every client packet.
fn candidates(ip: IpAddr) -> Box<dyn Iterator<Item = String>> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let dotted = (1..=4).rev().map(move |n| {
                let parts: Vec<String> = o[..n].iter().map(|b| b.to_string()).collect();
                parts.join(".")
            });
            let cidr = (0..=32u32).map(move |bits| {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
                format!("{net}_{bits}")
            });
            Box::new(dotted.chain(cidr))
        }
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:04x}")).collect();
            let full = std::iter::once(v6.to_string());
            let prefixes = (1..=8).rev().map(move |n| groups[..n].join(":"));
            let cidr = (0..=128u32).map(move |bits| {
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                format!("{net}_{bits}")
            });
            Box::new(full.chain(prefixes).chain(cidr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_by_prefix_and_cidr() {
        let dir = std::env::temp_dir().join(format!("dnscache-okclient-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("127.0.0"), "").unwrap();
        std::fs::write(dir.join("10.0.0.0_8"), "").unwrap();
        std::fs::write(dir.join("2001:0db8"), "").unwrap();
        std::fs::write(dir.join("fd00::_8"), "").unwrap();
        let ok = |s: &str| ok_client(&dir, s.parse().unwrap());
        assert!(ok("127.0.0.1") && ok("127.0.0.200") && !ok("127.0.1.1"));
        assert!(ok("10.9.8.7") && !ok("11.0.0.1"));
        assert!(ok("2001:db8::5") && !ok("2001:db9::5"));
        assert!(ok("fd12::1") && !ok("fe80::1"));
        assert!(ok("::ffff:127.0.0.9"), "mapped IPv4 is IPv4");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_files() {
        assert_eq!(
            parse_servers("198.41.0.4\n\n127.0.0.1:5300\n[::1]:53\nnot an address\n"),
            vec![
                "198.41.0.4:53".parse().unwrap(),
                "127.0.0.1:5300".parse().unwrap(),
                "[::1]:53".parse::<SocketAddr>().unwrap()
            ]
        );
    }
}
