//! queue/lock/tcpto: qmail-remote's memory of hosts that recently timed
//! out, and the two tools that show and clear it. The file holds 64
//! records of 16 bytes: IPv4 address (4 bytes), number of recent timeouts
//! (1 byte), 3 unused, time of the last timeout as a little-endian 32-bit
//! count of seconds (4 bytes), 4 unused. Writers lock the file (flock on a
//! write descriptor) while they read and rewrite it.
//!
//! qmail-remote consults it before each connection (`skip`) and records
//! the outcome after (`record`), as qmail 1.03 does: only connection
//! timeouts count, a host with two or more recent timeouts is skipped for
//! about an hour (64 to 95 minutes, varied by pid so that parallel
//! deliveries do not all retry at once), a timeout within two minutes of
//! the last one is not counted again, a successful or refused connection
//! clears the count, and a new host takes a free record or else the one
//! with the oldest timeout. Only IPv4 hosts fit the format; IPv6 hosts are
//! never remembered. Every failure to use the file is ignored: it is an
//! optimisation, never a reason to defer.

use common::error::Errno;
use common::Error;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

/// The file's size.
pub const SIZE: usize = 1024;

/// One record in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ip: [u8; 4],
    pub timeouts: u8,
    pub when: i64,
}

/// The records in use (timeouts >= 1) in `buf`.
pub fn entries(buf: &[u8]) -> Vec<Entry> {
    buf.chunks_exact(16)
        .filter(|r| r[4] >= 1)
        .map(|r| Entry {
            ip: [r[0], r[1], r[2], r[3]],
            timeouts: r[4],
            when: i64::from(u32::from_le_bytes([r[8], r[9], r[10], r[11]])),
        })
        .collect()
}

fn lock(f: &std::fs::File) -> bool {
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) == 0 }
}

/// qmail-tcpto: print each remembered host.
pub fn show(out: &mut impl Write) -> Result<(), Error> {
    let dir = crate::home::home().join("queue/lock");
    let fail = |out: &mut dyn Write, what: &str, e: std::io::Error| {
        let _ = writeln!(out, "fatal: {what}: {}", Errno::from(&e).text());
        Error::silent(111)
    };
    std::env::set_current_dir(&dir).map_err(|e| fail(out, "unable to chdir", e))?;
    let lockf = std::fs::OpenOptions::new()
        .write(true)
        .open("tcpto")
        .map_err(|e| fail(out, "unable to open tcpto", e))?;
    let mut f = std::fs::File::open("tcpto").map_err(|e| fail(out, "unable to open tcpto", e))?;
    if !lock(&lockf) {
        return Err(fail(
            out,
            "unable to lock tcpto",
            std::io::Error::last_os_error(),
        ));
    }
    let mut buf = vec![0u8; SIZE];
    let n = f
        .read(&mut buf)
        .map_err(|e| fail(out, "unable to read tcpto", e))?;
    drop(lockf);
    let now = crate::date822::now();
    for e in entries(&buf[..n]) {
        let [a, b, c, d] = e.ip;
        let _ = writeln!(
            out,
            "{a}.{b}.{c}.{d} timed out {} seconds ago; # recent timeouts: {}",
            now - e.when,
            e.timeouts
        );
    }
    Ok(())
}

/// qmail-tcpok: forget every host.
pub fn clear() -> Result<(), Error> {
    let home = crate::home::home();
    let h = home.display();
    std::env::set_current_dir(&home)
        .map_err(|e| Error::sys(format!("unable to chdir to {h}"), e))?;
    std::env::set_current_dir("queue/lock")
        .map_err(|e| Error::sys(format!("unable to chdir to {h}/queue/lock"), e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("tcpto")
        .map_err(|e| Error::sys(format!("unable to write {h}/queue/lock/tcpto"), e))?;
    if !lock(&f) {
        return Err(Error::sys(
            format!("unable to lock {h}/queue/lock/tcpto"),
            Errno::last(),
        ));
    }
    f.write_all(&[0u8; SIZE])
        .map_err(|e| Error::sys(format!("unable to clear {h}/queue/lock/tcpto"), e))
}

/// The file as qmail-remote finds it from QMAILHOME.
const PATH: &str = "queue/lock/tcpto";

fn field(r: &[u8]) -> i64 {
    i64::from(u32::from_le_bytes([r[8], r[9], r[10], r[11]]))
}

/// Whether `ip` has timed out often and recently enough in `buf` to be
/// skipped at time `now` by a process with pid `pid`.
pub fn should_skip(buf: &[u8], ip: [u8; 4], now: i64, pid: u32) -> bool {
    let Some(r) = buf.chunks_exact(16).find(|r| r[..4] == ip) else {
        return false;
    };
    let window = i64::from((60 + (pid & 31)) << 6);
    r[4] >= 2 && now - field(r) < window
}

/// The record to rewrite after a connection to `ip` at `now` (timed out
/// or not): its index and new bytes, None when nothing changes.
pub fn update(buf: &[u8], ip: [u8; 4], timedout: bool, now: i64) -> Option<(usize, [u8; 16])> {
    let records: Vec<&[u8]> = buf.chunks_exact(16).collect();
    let stamp = (now as u32).to_le_bytes();
    if let Some(i) = records.iter().position(|r| r[..4] == ip) {
        let mut r: [u8; 16] = records[i].try_into().ok()?;
        if !timedout {
            r[4] = 0;
        } else {
            if r[4] > 0 && now < 120 + field(&r) {
                return None;
            }
            r[4] = r[4].saturating_add(1);
            r[8..12].copy_from_slice(&stamp);
        }
        return Some((i, r));
    }
    if !timedout || records.is_empty() {
        return None;
    }
    let i = records.iter().position(|r| r[4] == 0).unwrap_or_else(|| {
        let oldest = (0..records.len()).min_by_key(|&i| field(records[i]));
        oldest.unwrap_or(0)
    });
    let mut r = [0u8; 16];
    r[..4].copy_from_slice(&ip);
    r[4] = 1;
    r[8..12].copy_from_slice(&stamp);
    Some((i, r))
}

/// The locked write descriptor and the file's contents, None when the
/// file cannot be used.
fn open_locked() -> Option<(std::fs::File, Vec<u8>)> {
    let lockf = std::fs::OpenOptions::new().write(true).open(PATH).ok()?;
    let mut f = std::fs::File::open(PATH).ok()?;
    if !lock(&lockf) {
        return None;
    }
    let mut buf = vec![0u8; SIZE];
    let n = f.read(&mut buf).ok()?;
    buf.truncate(n);
    Some((lockf, buf))
}

/// qmail-remote: whether to skip `ip` without trying it.
pub fn skip(ip: std::net::IpAddr) -> bool {
    let std::net::IpAddr::V4(v4) = ip else {
        return false;
    };
    match open_locked() {
        Some((_, buf)) => should_skip(&buf, v4.octets(), crate::date822::now(), std::process::id()),
        None => false,
    }
}

/// qmail-remote: remember how a connection to `ip` went.
pub fn record(ip: std::net::IpAddr, timedout: bool) {
    use std::io::{Seek, SeekFrom};
    let std::net::IpAddr::V4(v4) = ip else {
        return;
    };
    let Some((mut lockf, buf)) = open_locked() else {
        return;
    };
    if let Some((i, r)) = update(&buf, v4.octets(), timedout, crate::date822::now()) {
        // A lost update only costs a connection attempt later.
        if lockf.seek(SeekFrom::Start((i * 16) as u64)).is_ok() {
            let _ = lockf.write_all(&r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{should_skip, update};

    fn rec(ip: [u8; 4], n: u8, when: u32) -> Vec<u8> {
        let mut r = vec![0u8; 16];
        r[..4].copy_from_slice(&ip);
        r[4] = n;
        r[8..12].copy_from_slice(&when.to_le_bytes());
        r
    }

    #[test]
    fn two_recent_timeouts_skip_for_about_an_hour() {
        let ip = [10, 0, 0, 1];
        let buf = [rec(ip, 2, 10_000), vec![0; 16]].concat();
        assert!(should_skip(&buf, ip, 10_000 + 3839, 0));
        assert!(!should_skip(&buf, ip, 10_000 + 3840, 0));
        assert!(should_skip(&buf, ip, 10_000 + 5823, 31));
        assert!(!should_skip(&rec(ip, 1, 10_000), ip, 10_001, 0));
        assert!(!should_skip(&buf, [10, 0, 0, 2], 10_001, 0));
    }

    #[test]
    fn timeouts_are_counted_and_cleared() {
        let ip = [10, 0, 0, 1];
        let empty = vec![0u8; 64];
        assert_eq!(update(&empty, ip, false, 500), None);
        let (i, r) = update(&empty, ip, true, 500).unwrap();
        assert_eq!((i, r.to_vec()), (0, rec(ip, 1, 500)));
        let one = [rec(ip, 1, 500), vec![0; 48]].concat();
        assert_eq!(update(&one, ip, true, 619), None);
        assert_eq!(
            update(&one, ip, true, 620).unwrap().1.to_vec(),
            rec(ip, 2, 620)
        );
        assert_eq!(
            update(&one, ip, false, 700).unwrap().1.to_vec(),
            rec(ip, 0, 500)
        );
    }

    #[test]
    fn a_new_host_takes_a_free_or_the_oldest_record() {
        let full = [
            rec([1, 1, 1, 1], 1, 300),
            rec([2, 2, 2, 2], 3, 100),
            rec([3, 3, 3, 3], 1, 200),
        ]
        .concat();
        assert_eq!(update(&full, [9, 9, 9, 9], true, 900).unwrap().0, 1);
        let gap = [
            rec([1, 1, 1, 1], 1, 300),
            rec([2, 2, 2, 2], 0, 100),
            rec([3, 3, 3, 3], 1, 50),
        ]
        .concat();
        assert_eq!(update(&gap, [9, 9, 9, 9], true, 900).unwrap().0, 1);
    }
    #[test]
    fn records_in_use() {
        let mut buf = vec![0u8; 64];
        buf[16..20].copy_from_slice(&[127, 0, 0, 2]);
        buf[20] = 3;
        buf[24..28].copy_from_slice(&1000u32.to_le_bytes());
        let e = super::entries(&buf);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].ip, [127, 0, 0, 2]);
        assert_eq!((e[0].timeouts, e[0].when), (3, 1000));
    }
}
