//! queue/lock/tcpto: qmail-remote's memory of hosts that recently timed
//! out, and the two tools that show and clear it. The file holds 64
//! records of 16 bytes: IPv4 address (4 bytes), number of recent timeouts
//! (1 byte), 3 unused, time of the last timeout as a little-endian 32-bit
//! count of seconds (4 bytes), 4 unused. Writers lock the file (flock on a
//! write descriptor) while they read and rewrite it.

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

#[cfg(test)]
mod tests {
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
