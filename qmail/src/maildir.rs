//! Delivery into a maildir (maildir(5)): write the message under tmp/ with a
//! unique name, fsync it, link it into new/, remove the tmp/ name, and fsync
//! new/ so the link survives a crash on filesystems without synchronous
//! directory updates. A delivery still stuck after 24 hours (a hung NFS
//! server, say) is given up as qmail-local's alarm gives it up: the tmp/
//! file removed, "Timeout on maildir delivery. (#4.3.0)", exit 111. Also the
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

/// Write `head` then everything from `msg` into `out`.
fn write_message(out: &mut File, head: &[&[u8]], msg: &mut File) -> Result<(), Error> {
    for h in head {
        out.write_all(h).map_err(|_| temp_error())?;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match msg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(bare(111, "Unable to read message. (#4.3.0)")),
        };
        out.write_all(&buf[..n]).map_err(|_| temp_error())?;
    }
    out.sync_all().map_err(|_| temp_error())
}

/// Deliver `msg` (already rewound) into maildir `dir` with the Return-Path
/// and Delivered-To lines on top.
pub fn deliver(dir: &Path, rpline: &[u8], dtline: &[u8], msg: &mut File) -> Result<(), Error> {
    check_dir(dir)?;
    let (tmp, mut f) = create_tmp(dir)?;
    let doomed = tmp.clone();
    let result = within(
        DELIVERY_LIMIT,
        move || give_up(&doomed),
        || {
            write_message(&mut f, &[rpline, dtline], msg).and_then(|_| {
                drop(f);
                let new = dir.join("new").join(tmp.file_name().unwrap_or_default());
                std::fs::hard_link(&tmp, &new).map_err(|_| temp_error())?;
                File::open(dir.join("new"))
                    .and_then(|d| d.sync_all())
                    .map_err(|_| temp_error())
            })
        },
    );
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The end of a delivery past its time: the stuck main thread cannot be
/// interrupted safely, so the process goes, leaving no tmp/ file behind and
/// the deferral text for qmail-lspawn, as the original's alarm handler does.
fn give_up(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
    let line = format!("{TIMEOUT_TEXT}\n");
    // SAFETY: write(2) and _exit(2) on plain data; no lock another thread
    // may hold is taken, unlike std's stderr and exit.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(111);
    }
}

/// Run `work`; if it is still running after `limit`, a watchdog thread runs
/// `expire`. The watchdog is gone again when this returns, so the program
/// is single-threaded whenever it forks.
fn within<T>(
    limit: Duration,
    expire: impl FnOnce() + Send + 'static,
    work: impl FnOnce() -> T,
) -> T {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let dog = std::thread::spawn(move || {
        if wait.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            expire();
        }
    });
    let r = work();
    drop(done);
    let _ = dog.join();
    r
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
    use super::within;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_watchdog_fires_only_past_the_limit() {
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        let r = within(
            Duration::from_secs(60),
            move || f.store(true, Ordering::SeqCst),
            || 7,
        );
        assert_eq!(r, 7);
        assert!(!fired.load(Ordering::SeqCst));
        let f = fired.clone();
        within(
            Duration::from_millis(50),
            move || f.store(true, Ordering::SeqCst),
            || std::thread::sleep(Duration::from_millis(500)),
        );
        assert!(fired.load(Ordering::SeqCst));
    }
}
