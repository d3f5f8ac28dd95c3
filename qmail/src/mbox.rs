//! Delivery into an mbox file (mbox(5) as qmail writes it): lock with flock
//! (giving up after 30 seconds), append the From_ line, Return-Path and
//! Delivered-To, the message with `>From ` quoting and a blank line, fsync;
//! on any failure cut the file back to where it was. Also the date format of
//! the From_ line and the quoting test, shared with maildir2mbox.

use crate::local::bare;
use common::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether a line needs a `>` in front: `From ` after any number of `>`.
pub fn gfrom(line: &[u8]) -> bool {
    let start = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
    line[start..].starts_with(b"From ")
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The From_ line date: `Sun Nov 22 07:06:31 2026\n` in UTC, day of month
/// zero-padded (qmail's myctime, not ctime's space padding).
pub fn ctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {}\n",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        y
    )
}

/// Take an exclusive flock, polling for at most 30 seconds. Ok(false) when
/// the file cannot be locked at all (qmail then writes without the lock).
fn lock(f: &File) -> Result<bool, Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error().raw_os_error();
        if e != Some(libc::EWOULDBLOCK) && e != Some(libc::EINTR) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Err(bare(
                111,
                "File has been locked for 30 seconds straight. (#4.3.0)",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What went wrong while appending.
enum Failure {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Append the headers and the quoted message to `out`.
fn append(out: &mut impl Write, head: &[&[u8]], msg: &mut File) -> Result<(), Failure> {
    for h in head {
        out.write_all(h).map_err(Failure::Write)?;
    }
    let mut r = BufReader::with_capacity(65536, msg);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(Failure::Read)?;
        if n == 0 {
            break;
        }
        if gfrom(&line) {
            out.write_all(b">").map_err(Failure::Write)?;
        }
        out.write_all(&line).map_err(Failure::Write)?;
        if line.last() != Some(&b'\n') {
            out.write_all(b"\n").map_err(Failure::Write)?;
            break;
        }
    }
    out.write_all(b"\n").map_err(Failure::Write)
}

/// Deliver `msg` (already rewound) to the mbox at `path`.
pub fn deliver(path: &Path, head: &[&[u8]], msg: &mut File) -> Result<(), Error> {
    let shown = path.display();
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            let why = common::error::Errno::from(e).text();
            bare(111, format!("Unable to open {shown}: {why}. (#4.2.1)"))
        })?;
    let locked = lock(&f)?;
    let pos = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let result = {
        let mut w = std::io::BufWriter::with_capacity(65536, &f);
        append(&mut w, head, msg)
            .and_then(|_| w.flush().map_err(Failure::Write))
            .and_then(|_| f.sync_all().map_err(Failure::Write))
    };
    let Err(fail) = result else {
        return Ok(());
    };
    let msg = match fail {
        Failure::Read(e) => format!(
            "Unable to read message: {}. (#4.3.0)",
            common::error::Errno::from(e).text()
        ),
        Failure::Write(e) => format!(
            "Unable to write {shown}: {}. (#4.3.0)",
            common::error::Errno::from(e).text()
        ),
    };
    if locked {
        let _ = f.set_len(pos);
    }
    Err(bare(111, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_quoting() {
        assert!(gfrom(b"From x"));
        assert!(gfrom(b">>From x"));
        assert!(!gfrom(b"From:"));
        assert!(!gfrom(b" From x"));
    }

    #[test]
    fn ctime_is_utc_zero_padded() {
        assert_eq!(ctime(0), "Thu Jan 01 00:00:00 1970\n");
        assert_eq!(ctime(1_000_000_000), "Sun Sep 09 01:46:40 2001\n");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000\n");
    }
}
