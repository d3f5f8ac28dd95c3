//! Delivery into a maildir (maildir(5)): write the message under tmp/ with a
//! unique name, fsync it, link it into new/, remove the tmp/ name, and fsync
//! new/ so the link survives a crash on filesystems without synchronous
//! directory updates. As qmail-local's alarm does, a delivery still stuck
//! after 24 hours (a hung NFS server, say) is given up: the tmp/ file
//! removed, "Timeout on maildir delivery. (#4.3.0)", exit 111. Also the
//! helpers' view of a maildir: cleaning tmp/ and listing new/ and cur/
//! oldest first.

use crate::local::{bare, temp_errno};
use common::Error;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// qmail-local's alarm on a maildir delivery.
const DELIVERY_LIMIT: Duration = Duration::from_secs(86400);
const TIMEOUT_TEXT: &str = "Timeout on maildir delivery. (#4.3.0)";

/// The host part of unique names: `/` and `:` would break the name, so they
/// are written as \057 and \072 (maildir(5)).
pub fn unique_host() -> String {
    let h = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    h.replace('/', "\\057").replace(':', "\\072")
}

/// A unique name: seconds, then M + microseconds and P + pid, then host.
pub fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        unique_host()
    )
}

fn temp_error() -> Error {
    bare(111, "Temporary error on maildir delivery. (#4.3.0)")
}

/// Create tmp/NAME exclusively, trying a new name twice more after a pause
/// if one is taken.
fn create_tmp(dir: &Path) -> Result<(PathBuf, File), Error> {
    for attempt in 0..3 {
        let name = unique_name();
        let path = dir.join("tmp").join(&name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 2 => {
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            Err(_) => return Err(temp_error()),
        }
    }
    Err(temp_error())
}

/// Check the maildir can be entered, with qmail-local's texts.
fn check_dir(dir: &Path) -> Result<(), Error> {
    let r = nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).and_then(|_| {
        if dir.is_dir() {
            Ok(())
        } else {
            Err(nix::errno::Errno::ENOTDIR)
        }
    });
    match r {
        Ok(()) => Ok(()),
        Err(e) if temp_errno(e as i32) => Err(temp_error()),
        Err(_) => Err(bare(111, "Unable to chdir to maildir. (#4.2.1)")),
    }
}

/// Deliver `msg` (already rewound) into maildir `dir` with the Return-Path
/// and Delivered-To lines on top.
pub fn deliver(dir: &Path, rpline: &[u8], dtline: &[u8], msg: &mut File) -> Result<(), Error> {
    deliver_within(DELIVERY_LIMIT, dir, rpline, dtline, msg)
}

/// [`deliver`] giving up after `limit`: the tmp/ file removed, nothing in
/// new/ (unless the limit passed after the link).
fn deliver_within(
    limit: Duration,
    dir: &Path,
    rpline: &[u8],
    dtline: &[u8],
    msg: &mut File,
) -> Result<(), Error> {
    check_dir(dir)?;
    let (tmp, mut f) = create_tmp(dir)?;
    let result = Limit::start(limit).and_then(|lim| {
        write_message(&lim, &mut f, &[rpline, dtline], msg)?;
        let new = dir.join("new").join(tmp.file_name().unwrap_or_default());
        let linked = std::fs::hard_link(&tmp, &new);
        lim.check()?;
        linked.map_err(|_| temp_error())?;
        let synced = File::open(dir.join("new")).and_then(|d| d.sync_all());
        lim.check()?;
        synced.map_err(|_| temp_error())
    });
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Write `head` then everything from `msg` into `out`, and sync it.
fn write_message(lim: &Limit, out: &mut File, head: &[&[u8]], msg: &mut File) -> Result<(), Error> {
    for h in head {
        lim.write_all(out, h)?;
    }
    let mut buf = [0u8; 65536];
    loop {
        let n = match msg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                lim.check()?;
                continue;
            }
            Err(_) => return Err(bare(111, "Unable to read message. (#4.3.0)")),
        };
        lim.write_all(out, &buf[..n])?;
    }
    let synced = out.sync_all();
    lim.check()?;
    synced.map_err(|_| temp_error())
}

thread_local! {
    /// Set by SIGALRM when this thread's delivery limit has passed.
    static EXPIRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

extern "C" fn expired(_: libc::c_int) {
    EXPIRED.with(|e| e.set(true));
}

/// qmail-local's alarm on a maildir delivery, without the child process it
/// ran in: a timer sends SIGALRM to this thread, whose handler (installed
/// without SA_RESTART) interrupts a read or write stuck on a dead NFS server;
/// every step then checks whether the limit has passed. The original's
/// handler, too, could only run once the stuck system call gave way.
struct Limit {
    _timer: nix::sys::timer::Timer,
}

impl Limit {
    fn start(limit: Duration) -> Result<Limit, Error> {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigEvent, SigHandler, SigSet};
        use nix::sys::signal::{SigevNotify, Signal};
        use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
        EXPIRED.with(|e| e.set(false));
        let on_alarm = SigAction::new(
            SigHandler::Handler(expired),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only sets a thread-local flag.
        unsafe { sigaction(Signal::SIGALRM, &on_alarm) }.map_err(|_| temp_error())?;
        let event = SigEvent::new(SigevNotify::SigevThreadId {
            signal: Signal::SIGALRM,
            thread_id: nix::unistd::gettid().as_raw(),
            si_value: 0,
        });
        let mut timer =
            Timer::new(nix::time::ClockId::CLOCK_MONOTONIC, event).map_err(|_| temp_error())?;
        timer
            .set(
                Expiration::OneShot(limit.into()),
                TimerSetTimeFlags::empty(),
            )
            .map_err(|_| temp_error())?;
        Ok(Limit { _timer: timer })
    }

    fn check(&self) -> Result<(), Error> {
        if EXPIRED.with(std::cell::Cell::get) {
            return Err(bare(111, TIMEOUT_TEXT));
        }
        Ok(())
    }

    fn write_all(&self, out: &mut File, mut b: &[u8]) -> Result<(), Error> {
        while !b.is_empty() {
            match out.write(b) {
                Ok(0) => return Err(temp_error()),
                Ok(n) => b = &b[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.check()?;
                    return Err(temp_error());
                }
            }
            self.check()?;
        }
        Ok(())
    }
}

/// One message found by [`scan`]: its path relative to the maildir and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mtime: i64,
}

/// Remove files in tmp/ last accessed more than 36 hours ago (maildir(5)).
pub fn clean(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir.join("tmp")) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for e in rd.flatten() {
        if e.file_name().as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        if let Ok(st) = std::fs::metadata(e.path()) {
            if now > st.atime() + 129600 {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// List messages in new/ (and cur/ when asked), oldest first, skipping
/// names starting with `.` and files modified in the current second (their
/// order against the next arrivals is not yet known). Errors carry the
/// helpers' texts.
pub fn scan(dir: &Path, new: bool, cur: bool) -> Result<Vec<Entry>, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = Vec::new();
    for (sub, wanted) in [("new", new), ("cur", cur)] {
        if !wanted {
            continue;
        }
        let rd = std::fs::read_dir(dir.join(sub))
            .map_err(|e| Error::sys(format!("unable to scan $MAILDIR/{sub}"), e))?;
        for e in rd {
            let e = e.map_err(|e| Error::sys(format!("unable to read $MAILDIR/{sub}"), e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(st) = std::fs::metadata(e.path()) {
                if st.mtime() < now {
                    out.push(Entry {
                        name: format!("{sub}/{name}"),
                        mtime: st.mtime(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// $MAILDIR, entered: the helpers' common start.
pub fn chdir_env() -> Result<(), Error> {
    let dir = std::env::var_os("MAILDIR").ok_or_else(|| Error::temp("MAILDIR not set"))?;
    std::env::set_current_dir(&dir).map_err(|e| {
        Error::sys(
            format!("unable to chdir to {}", Path::new(&dir).display()),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("maildir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        d
    }

    fn count(d: &Path, sub: &str) -> usize {
        std::fs::read_dir(d.join(sub)).unwrap().count()
    }

    #[test]
    fn a_delivery_past_its_limit_is_given_up_without_a_trace() {
        let d = maildir("timeout");
        // A fifo opened for reading and writing never reaches end of file:
        // the message read hangs as on a dead NFS server.
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut msg = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let started = std::time::Instant::now();
        let r = deliver_within(Duration::from_millis(300), &d, b"R\n", b"D\n", &mut msg);
        assert_eq!(r.unwrap_err().msg, "Timeout on maildir delivery. (#4.3.0)");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!((count(&d, "tmp"), count(&d, "new")), (0, 0));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_delivery_within_its_limit_lands_in_new() {
        let d = maildir("intime");
        let body = d.join("body");
        std::fs::write(&body, "Subject: x\n\nhi\n").unwrap();
        let mut msg = File::open(&body).unwrap();
        deliver_within(Duration::from_secs(600), &d, b"R\n", b"D\n", &mut msg).unwrap();
        assert_eq!((count(&d, "tmp"), count(&d, "new")), (0, 1));
        let f = std::fs::read_dir(d.join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read(f.path()).unwrap(),
            b"R\nD\nSubject: x\n\nhi\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
