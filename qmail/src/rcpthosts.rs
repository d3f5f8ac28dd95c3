//! Which recipient domains the SMTP server accepts mail for: control/rcpthosts
//! and control/morercpthosts.cdb (built by qmail-newmrh). A line `.dom`
//! accepts every subdomain of dom; an address without `@` is accepted (it
//! is local by envnoathost). Unlike qmail 1.03, a host with neither file
//! accepts no domain at all: a missing control file never makes an open relay.

use common::Error;
use std::collections::HashSet;

pub struct RcptHosts {
    hosts: HashSet<Vec<u8>>,
    more: Option<cdb::CDB>,
}

fn trouble() -> Error {
    Error::temp("unable to read controls")
}

impl RcptHosts {
    /// Read both controls; an unreadable file is an error (the server
    /// answers 421 then).
    pub fn load() -> Result<RcptHosts, Error> {
        let lines = crate::control::read_lines("rcpthosts").map_err(|_| trouble())?;
        let hosts = lines
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.into_bytes().to_ascii_lowercase())
            .collect();
        let path = crate::control::file("morercpthosts.cdb");
        let more = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => return Err(trouble()),
            Ok(_) => Some(cdb::CDB::open(&path).map_err(|_| trouble())?),
        };
        Ok(RcptHosts { hosts, more })
    }

    /// Whether mail for `addr` is accepted; Err when the cdb is unreadable.
    pub fn allowed(&self, addr: &[u8]) -> Result<bool, Error> {
        let Some(at) = addr.iter().rposition(|&b| b == b'@') else {
            return Ok(true);
        };
        let host = addr[at + 1..].to_ascii_lowercase();
        let suffixes: Vec<&[u8]> = (0..host.len())
            .filter(|&j| j == 0 || host[j] == b'.')
            .map(|j| &host[j..])
            .collect();
        if suffixes.iter().any(|s| self.hosts.contains(*s)) {
            return Ok(true);
        }
        if let Some(db) = &self.more {
            for s in &suffixes {
                match db.get(s) {
                    Some(Ok(_)) => return Ok(true),
                    Some(Err(_)) => return Err(trouble()),
                    None => {}
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_dotted_suffixes() {
        let rh = RcptHosts {
            hosts: [b"example.org".to_vec(), b".sub.net".to_vec()].into(),
            more: None,
        };
        assert!(rh.allowed(b"u@Example.ORG").unwrap());
        assert!(rh.allowed(b"u@a.b.sub.net").unwrap());
        assert!(!rh.allowed(b"u@sub.net").unwrap());
        assert!(!rh.allowed(b"u@xexample.org").unwrap());
        assert!(!rh.allowed(b"u@").unwrap());
        assert!(rh.allowed(b"postmaster").unwrap());
    }

    #[test]
    fn nothing_listed_accepts_nothing() {
        let rh = RcptHosts {
            hosts: HashSet::new(),
            more: None,
        };
        assert!(!rh.allowed(b"u@example.org").unwrap());
    }
}
