//! Delivery into a maildir (maildir(5)): write the message under tmp/ with a
//! unique name, fsync it, link it into new/, remove the tmp/ name, and fsync
//! new/ so the link survives a crash on filesystems without synchronous
//! directory updates. As in qmail-local the delivery runs in a child, and
//! one still stuck after 24 hours (a hung NFS server, say) is killed as the
//! original's alarm ends it: the tmp/ file removed, "Timeout on maildir delivery. (#4.3.0)", exit 111. Also the
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
    deliver_within(DELIVERY_LIMIT, dir, rpline, dtline, msg)
}

/// [`deliver`] giving up after `limit`.
fn deliver_within(
    limit: Duration,
    dir: &Path,
    rpline: &[u8],
    dtline: &[u8],
    msg: &mut File,
) -> Result<(), Error> {
    check_dir(dir)?;
    // Named here, in the parent, so that the parent can remove it whatever
    // became of the child.
    let (tmp, mut f) = create_tmp(dir)?;
    let result = in_child(limit, || {
        write_message(&mut f, &[rpline, dtline], msg)?;
        let new = dir.join("new").join(tmp.file_name().unwrap_or_default());
        std::fs::hard_link(&tmp, &new).map_err(|_| temp_error())?;
        File::open(dir.join("new"))
            .and_then(|d| d.sync_all())
            .map_err(|_| temp_error())
    });
    let _ = std::fs::remove_file(&tmp);
    result
}

/// How a delivery child ends, by its exit code (qmail-local's numbering;
/// the last is the parent's word for a child killed by a signal).
const OUTCOMES: [&str; 6] = [
    "",
    "Temporary error on maildir delivery. (#4.3.0)",
    "Unable to chdir to maildir. (#4.2.1)",
    TIMEOUT_TEXT,
    "Unable to read message. (#4.3.0)",
    "Aack, child crashed. (#4.3.0)",
];

fn outcome(code: usize) -> Result<(), Error> {
    match code {
        0 => Ok(()),
        c => Err(bare(111, OUTCOMES.get(c).copied().unwrap_or(OUTCOMES[1]))),
    }
}

/// Run `work` in a child process, as qmail-local runs a maildir delivery,
/// so that a delivery stuck in the kernel (a hung NFS server) can be
/// killed after `limit`, where the original's alarm would have ended it.
fn in_child(limit: Duration, work: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    // SAFETY: qmail-local is single-threaded; the child only does the
    // delivery and leaves through _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match work() {
                Ok(()) => 0,
                Err(e) => OUTCOMES.iter().position(|t| *t == e.msg).unwrap_or(1),
            };
            unsafe { libc::_exit(code as i32) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => outcome(reap(child, limit)),
        Err(e) => Err(bare(
            111,
            format!(
                "Unable to fork: {}. (#4.3.0)",
                common::errstr::text(e as i32)
            ),
        )),
    }
}

/// Wait for `child` at most `limit`, then kill it; its outcome code.
fn reap(child: nix::unistd::Pid, limit: Duration) -> usize {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = std::time::Instant::now() + limit;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code as usize,
            Ok(WaitStatus::Signaled(..)) => return 5,
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) | Err(_) => return 1,
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            return 3;
        }
        wait_exit(child, left);
    }
}

/// Sleep until `child` may have exited or `left` has passed: poll on a
/// pidfd where the kernel has them, short naps otherwise.
fn wait_exit(child: nix::unistd::Pid, left: Duration) {
    let ms = left.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) } as i32;
    if fd < 0 {
        std::thread::sleep(left.min(Duration::from_millis(100)));
        return;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; fd is ours and closed right after.
    unsafe {
        libc::poll(&mut p, 1, ms);
        libc::close(fd);
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

    #[test]
    fn a_child_killed_by_a_signal_is_a_crash() {
        let r = in_child(Duration::from_secs(600), || {
            unsafe { libc::raise(libc::SIGKILL) };
            Ok(())
        });
        assert_eq!(r.unwrap_err().msg, "Aack, child crashed. (#4.3.0)");
    }

    #[test]
    fn a_childs_failure_comes_back_with_its_text() {
        let r = in_child(Duration::from_secs(600), || {
            Err(bare(111, "Unable to read message. (#4.3.0)"))
        });
        assert_eq!(r.unwrap_err().msg, "Unable to read message. (#4.3.0)");
    }
}
