//! Client access (`root/ip/`) decided once per client address and
//! remembered until the directory changes. djbdns stats the candidate file
//! names for every packet so that a file added to ip/ takes effect at once;
//! the directory's modification time, checked once per batch of packets,
//! keeps that promise (adding or removing a name changes it) for one stat
//! instead of four or more per packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Addresses remembered at most; beyond this the memory is started afresh.
const MAX_REMEMBERED: usize = 10_000;

pub struct Access {
    dir: PathBuf,
    stamp: Option<(i64, i64, u64)>,
    known: HashMap<IpAddr, bool>,
}

impl Access {
    pub fn new(dir: impl Into<PathBuf>) -> Access {
        Access {
            dir: dir.into(),
            stamp: None,
            known: HashMap::new(),
        }
    }

    /// Forget every decision if the directory changed since the last look.
    pub fn refresh(&mut self) {
        let stamp = std::fs::metadata(&self.dir)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.ino()));
        if stamp != self.stamp || stamp.is_none() {
            self.known.clear();
            self.stamp = stamp;
        }
    }

    /// Whether `ip` may use the cache.
    pub fn allowed(&mut self, ip: IpAddr) -> bool {
        if let Some(&ok) = self.known.get(&ip) {
            return ok;
        }
        let ok = crate::roots::ok_client(&self.dir, ip);
        if self.stamp.is_some() {
            if self.known.len() >= MAX_REMEMBERED {
                self.known.clear();
            }
            self.known.insert(ip, ok);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_takes_effect_at_the_next_refresh() {
        let dir = std::env::temp_dir().join(format!("access-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let mut a = Access::new(&dir);
        a.refresh();
        assert!(!a.allowed(ip));
        // Make sure the directory's time moves even on a coarse clock.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("10.1"), "").unwrap();
        a.refresh();
        assert!(a.allowed(ip));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::remove_file(dir.join("10.1")).unwrap();
        a.refresh();
        assert!(!a.allowed(ip));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
