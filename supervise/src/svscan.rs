//! svscan: start and keep running one `supervise` per service directory
//! (daemontools 0.76). Every five seconds it reaps dead supervise processes
//! and rescans: each subdirectory not starting with `.` gets `supervise NAME`,
//! and when NAME/log is a directory a second `supervise log` (run inside
//! NAME) reads, on its stdin, a pipe whose write end is NAME's stdout. svscan
//! holds both ends of that pipe for as long as it tracks the service, so no
//! byte is lost while either side restarts. A directory that disappears is
//! forgotten once its supervise processes have exited; nothing is killed.
//! Beyond the original, a directory created in or moved into the scan
//! directory is noticed through inotify and scanned for half a second later.
//!
//! As an ordinary process svscan catches no signals: killing it leaves the
//! services running. Only as PID 1 of a container (or with SVSCAN_PID1=1,
//! which also makes it the subreaper of its descendants) does it reap
//! orphans and, on SIGTERM or SIGINT, bring every service and then every
//! logger down with `svc -dx`'s control bytes before exiting 0.

use common::pathexec;
use common::{Error, Result};
use nix::sys::stat::{stat, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

mod pid1;
mod wait;

/// The original's fixed table size.
pub const SERVICES: usize = 1000;
/// Time between two scans.
pub const PERIOD: Duration = Duration::from_secs(5);
/// After a change in the scan directory, how long to let it settle (a
/// service directory and its log/ made one after the other) before scanning.
pub const SETTLE: Duration = Duration::from_millis(500);

const WARNING: &str = "svscan: warning: ";

fn warn(msg: impl std::fmt::Display) {
    eprintln!("{WARNING}{msg}");
}

/// One service directory svscan tracks, known by device and inode so that a
/// renamed or re-linked directory keeps its supervise and its log pipe.
struct Entry {
    dev: u64,
    ino: u64,
    name: OsString,
    active: bool,
    pid: Option<Pid>,
    pidlog: Option<Pid>,
    /// (read end, write end) of the log pipe, when the service has log/.
    pipe: Option<(OwnedFd, OwnedFd)>,
}

/// Every service being tracked: the state owned by svscan's loop.
#[derive(Default)]
pub struct Scanner {
    entries: Vec<Entry>,
}

impl Scanner {
    /// Collect every exited child, forgetting the supervise it was.
    /// Children svscan did not start (orphans it inherited) are reaped too.
    pub fn reap(&mut self) {
        loop {
            let pid = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(st) => st.pid(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for e in &mut self.entries {
                if e.pid == pid {
                    e.pid = None;
                    break;
                }
                if e.pidlog == pid {
                    e.pidlog = None;
                    break;
                }
            }
        }
    }

    /// One pass over the current directory, then drop the entries whose
    /// directory is gone and whose supervise processes have all exited.
    pub fn scan(&mut self) {
        for e in &mut self.entries {
            e.active = false;
        }
        if let Err(e) = self.scan_dir() {
            warn(format_args!("unable to read directory: {}", e.text()));
            return;
        }
        self.entries
            .retain(|e| e.active || e.pid.is_some() || e.pidlog.is_some());
    }

    fn scan_dir(&mut self) -> std::result::Result<(), common::error::Errno> {
        for d in std::fs::read_dir(".")? {
            self.start(&d?.file_name());
        }
        Ok(())
    }

    /// How many services are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no service is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn start(&mut self, name: &OsStr) {
        if name.as_bytes().first() == Some(&b'.') {
            return;
        }
        let st = match stat(name) {
            Ok(st) => st,
            Err(e) => {
                return warn(format_args!(
                    "unable to stat {}: {}",
                    show(name),
                    errtext(e)
                ))
            }
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            return;
        }
        let (dev, ino) = (st.st_dev, st.st_ino);
        let i = match self
            .entries
            .iter()
            .position(|e| e.ino == ino && e.dev == dev)
        {
            Some(i) => i,
            None => match new_entry(name, dev, ino, self.entries.len()) {
                Some(e) => {
                    self.entries.push(e);
                    self.entries.len() - 1
                }
                None => return,
            },
        };
        let e = &mut self.entries[i];
        e.active = true;
        if e.pid.is_none() {
            e.pid = spawn_service(name, e.pipe.as_ref().map(|p| p.1.as_raw_fd()));
        }
        if let Some((rd, _)) = &e.pipe {
            if e.pidlog.is_none() {
                e.pidlog = spawn_logger(name, rd.as_raw_fd());
            }
        }
    }
}

/// A newly seen service directory: decide once whether it has a logger,
/// and if so make the pipe that will join the two.
fn new_entry(name: &OsStr, dev: u64, ino: u64, count: usize) -> Option<Entry> {
    if count >= SERVICES {
        warn(format_args!(
            "unable to start {}: running too many services",
            show(name)
        ));
        return None;
    }
    let mut log = false;
    if name.len() <= 255 {
        let mut fnlog = name.to_os_string();
        fnlog.push("/log");
        match stat(fnlog.as_os_str()) {
            Ok(st) => log = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                warn(format_args!(
                    "unable to stat {}/log: {}",
                    show(name),
                    errtext(e)
                ));
                return None;
            }
        }
    }
    let pipe = if log {
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => Some(p),
            Err(e) => {
                warn(format_args!(
                    "unable to create pipe for {}: {}",
                    show(name),
                    errtext(e)
                ));
                return None;
            }
        }
    } else {
        None
    };
    Some(Entry {
        dev,
        ino,
        name: name.to_os_string(),
        active: false,
        pid: None,
        pidlog: None,
        pipe,
    })
}

/// `supervise NAME`, its stdout on the log pipe when there is one.
fn spawn_service(name: &OsStr, out: Option<i32>) -> Option<Pid> {
    spawn(name, &show(name), |argv| {
        if let Some(fd) = out {
            nix::unistd::dup2(fd, 1).map_err(|e| ("unable to set up descriptors for ", e))?;
        }
        argv.push(name.to_os_string());
        Ok(())
    })
}

/// `supervise log` inside NAME, its stdin the read end of the log pipe.
fn spawn_logger(name: &OsStr, input: i32) -> Option<Pid> {
    spawn(name, &format!("{}/log", show(name)), |argv| {
        nix::unistd::dup2(input, 0).map_err(|e| ("unable to set up descriptors for ", e))?;
        nix::unistd::chdir(name).map_err(|e| ("unable to switch to ", e))?;
        argv.push("log".into());
        Ok(())
    })
}

/// What a child failed to do before exec: the message's start and why.
type SetupError = (&'static str, nix::errno::Errno);

/// Fork; the child runs `setup` then execs supervise found through $PATH.
/// Failures in the child are reported as warnings, as the original does.
fn spawn(
    name: &OsStr,
    shown: &str,
    setup: impl FnOnce(&mut Vec<OsString>) -> std::result::Result<(), SetupError>,
) -> Option<Pid> {
    // SAFETY: svscan is single-threaded; the child only moves descriptors
    // and execs.
    match unsafe { fork() } {
        Err(e) => {
            warn(format_args!("unable to fork for {shown}: {}", errtext(e)));
            None
        }
        Ok(ForkResult::Parent { child }) => Some(child),
        Ok(ForkResult::Child) => {
            let mut argv = vec![OsString::from("supervise")];
            let what = match setup(&mut argv) {
                Ok(()) => {
                    let e = pathexec::run(&argv);
                    format!("unable to start supervise {shown}: {}", e.text())
                }
                Err((what, e)) => {
                    let target = if what.ends_with("to ") {
                        show(name)
                    } else {
                        shown.to_string()
                    };
                    format!("{what}{target}: {}", errtext(e))
                }
            };
            warn(what);
            std::process::exit(111)
        }
    }
}

fn show(name: &OsStr) -> String {
    name.to_string_lossy().into_owned()
}

fn errtext(e: nix::errno::Errno) -> &'static str {
    common::error::Errno::from(e).text()
}

/// `svscan [dir]`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    if let Some(dir) = args.first() {
        nix::unistd::chdir(dir.as_os_str())
            .map_err(|e| Error::sys(format!("unable to chdir to {}", dir.to_string_lossy()), e))?;
    }
    let pid1 = pid1::wanted();
    if pid1 {
        pid1::become_subreaper();
    }
    let mut waker = wait::Waker::new(pid1)?;
    let mut scanner = Scanner::default();
    loop {
        scanner.reap();
        scanner.scan();
        if !scanner.wait(&mut waker) {
            scanner.shutdown();
            return Ok(());
        }
    }
}

impl Scanner {
    /// Wait until the next scan is due; false when asked to shut down.
    fn wait(&mut self, waker: &mut wait::Waker) -> bool {
        let mut next = Instant::now() + PERIOD;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match waker.wait(left) {
                wait::Event::Timeout => {}
                wait::Event::Child => self.reap(),
                wait::Event::DirChanged => next = next.min(Instant::now() + SETTLE),
                wait::Event::Stop => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_limited_like_the_original() {
        let name = OsStr::new("x");
        assert!(new_entry(name, 1, 2, SERVICES - 1).is_some());
        assert!(new_entry(name, 1, 2, SERVICES).is_none());
    }
}
