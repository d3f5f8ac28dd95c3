//! qmail-send: the queue manager. It turns todo/ entries into info/local/
//! remote files, hands each recipient to qmail-lspawn or qmail-rspawn,
//! records results, writes bounces, and asks qmail-clean to remove what is
//! finished, logging every step in qmail-send's exact words on fd 0.
//!
//! Descriptors as qmail-start arranges them: 0 log, 1/2 to and from
//! qmail-lspawn, 3/4 to and from qmail-rspawn, 5/6 to and from qmail-clean.
//! Signals: SIGTERM finishes deliveries in hand then exits, SIGALRM retries
//! everything now, SIGHUP rereads locals and virtualdomains.
//!
//! The main loop reads like the original's: compute the next wakeup from
//! every part's needs, poll, then let each part act.

// A channel number indexes several parallel arrays (fds, queues, counts),
// as in the original; iterating over one of them would hide that.
#![allow(clippy::needless_range_loop)]

mod bounce;
mod clean;
mod deliver;
mod rewrite;
mod todo;

pub use rewrite::{sender_for, vdoms, Chan, Rewriter};

use crate::control::{self, SendControls};
use common::Error;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Check todo/ at least this often even without a trigger.
const SLEEP_TODO: i64 = 1500;
/// Never sleep longer than this.
const SLEEP_FOREVER: i64 = 86400;
/// Time between scans for ossified files.
const SLEEP_CLEANUP: i64 = 76431;
/// Retry delay after a system failure.
const SLEEP_SYSFAIL: i64 = 123;
/// A file this old without todo/info is left over from a crash.
const OSSIFIED: i64 = 129600;
/// Longest delivery report kept.
const REPORTMAX: usize = 10000;

const CHANFDOUT: [RawFd; 2] = [1, 3];
const CHANFDIN: [RawFd; 2] = [2, 4];
const CLEANOUT: RawFd = 5;
const CLEANIN: RawFd = 6;
/// Retry schedules: local deliveries retry sooner than remote ones.
const CHANSKIP: [i64; 2] = [10, 20];
const CHANSTATUS: [&str; 2] = [" local ", " remote "];
const TOCHAN: [&str; 2] = [" to local ", " to remote "];

/// A min-heap of (time, message number).
type PrioQ = BinaryHeap<Reverse<(i64, u64)>>;

fn pq_min(q: &PrioQ) -> Option<(i64, u64)> {
    q.peek().map(|r| r.0)
}

/// Signals noted by handlers, acted on by the loop.
struct Flags {
    exit: Arc<AtomicBool>,
    run: Arc<AtomicBool>,
    read: Arc<AtomicBool>,
    wake: std::os::unix::net::UnixStream,
}

fn flags() -> Result<Flags, Error> {
    use signal_hook::consts::{SIGALRM, SIGHUP, SIGTERM};
    let (r, w) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Error::sys("unable to create pipe", e))?;
    r.set_nonblocking(true)
        .map_err(|e| Error::sys("unable to set nonblocking", e))?;
    w.set_nonblocking(true)
        .map_err(|e| Error::sys("unable to set nonblocking", e))?;
    let f = Flags {
        exit: Arc::new(AtomicBool::new(false)),
        run: Arc::new(AtomicBool::new(false)),
        read: Arc::new(AtomicBool::new(false)),
        wake: r,
    };
    for (sig, flag) in [(SIGTERM, &f.exit), (SIGALRM, &f.run), (SIGHUP, &f.read)] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| Error::sys("unable to catch signal", e))?;
        let w2 = w.try_clone().map_err(|e| Error::sys("unable to dup", e))?;
        signal_hook::low_level::pipe::register(sig, w2)
            .map_err(|e| Error::sys("unable to catch signal", e))?;
    }
    Ok(f)
}

/// Write a log line piece to fd 0 (unbuffered, as the original).
pub fn log(s: &str) {
    let mut b = s.as_bytes();
    while !b.is_empty() {
        let n = unsafe { libc::write(0, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        b = &b[n as usize..];
    }
}

/// A string made safe for the log: newline -> '/', unprintable and '%' -> '_'.
pub fn safe(s: &[u8]) -> String {
    s.iter()
        .map(|&c| match c {
            b'\n' => '/',
            b'%' => '_',
            33..=126 => c as char,
            _ => '_',
        })
        .collect()
}

/// Seconds since the epoch.
fn now() -> i64 {
    crate::date822::now()
}

/// The controls qmail-send holds.
pub struct Controls {
    pub lifetime: i64,
    pub concurrency: [usize; 2],
    pub bouncefrom: String,
    pub bouncehost: String,
    pub doublebounceto: String,
    pub rw: Rewriter,
}

fn load_controls() -> Result<Controls, Error> {
    let c = SendControls::load()?;
    Ok(Controls {
        lifetime: c.queuelifetime,
        concurrency: [c.concurrencylocal as usize, c.concurrencyremote as usize],
        bouncefrom: c.bouncefrom,
        bouncehost: c.bouncehost,
        doublebounceto: format!("{}@{}", c.doublebounceto, c.doublebouncehost),
        rw: Rewriter {
            envnoathost: c.envnoathost,
            locals: c.locals,
            percenthack: c.percenthack,
            vdoms: vdoms(&c.virtualdomains),
        },
    })
}

/// Everything qmail-send knows, owned by the main loop.
pub struct Send {
    ctl: Controls,
    recent: i64,
    exitasap: bool,
    spawn_alive: [bool; 2],
    pqchan: [PrioQ; 2],
    pqdone: PrioQ,
    pqfail: PrioQ,
    d: deliver::Deliveries,
    todo: todo::Todo,
    cleanup: Option<Vec<u64>>,
    cleanuptime: i64,
    /// Finished messages whose info/N is unlinked, waiting for the sync of
    /// its directory before qmail-clean may remove them.
    done: Vec<u64>,
    /// Messages between the request to remove info/N and qmail-clean's
    /// answer for mess/N.
    finishing: usize,
    /// qmail-clean, and qmail-done (None if it could not be started).
    clean: clean::Peer,
    fsdone: Option<clean::Peer>,
}

pub fn run() -> Result<(), Error> {
    let fail = |m: &str| {
        log(&format!("alert: cannot start: {m}\n"));
        Error::silent(111)
    };
    std::env::set_current_dir(crate::home::home())
        .map_err(|_| fail("unable to switch to home directory"))?;
    let ctl = load_controls().map_err(|_| fail("unable to read controls"))?;
    std::env::set_current_dir("queue").map_err(|_| fail("unable to switch to queue directory"))?;
    let flags = flags()?;
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::umask(0o077);
    }
    let mutex = std::fs::OpenOptions::new()
        .write(true)
        .open("lock/sendmutex")
        .map_err(|_| fail("unable to open mutex"))?;
    if unsafe { libc::flock(mutex.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
        return Err(fail("qmail-send is already running"));
    }
    let mut concurrency = ctl.concurrency;
    for (c, conc) in concurrency.iter_mut().enumerate() {
        let u =
            read_spawn_limit(CHANFDIN[c]).ok_or_else(|| fail("hath the daemon spawn no fire?"))?;
        *conc = (*conc).min(u);
    }
    let mut s = Send::new(ctl, concurrency);
    s.main_loop(&flags);
    s.pqfinish();
    log("status: exiting\n");
    drop(mutex);
    Ok(())
}

/// The spawner's first byte: how many deliveries it can run at once.
fn read_spawn_limit(fd: RawFd) -> Option<usize> {
    let mut b = [0u8];
    loop {
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n == 1 {
            return Some(usize::from(b[0]));
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

impl Send {
    fn new(ctl: Controls, concurrency: [usize; 2]) -> Send {
        let mut s = Send {
            ctl,
            recent: now(),
            exitasap: false,
            spawn_alive: [true, true],
            pqchan: [PrioQ::new(), PrioQ::new()],
            pqdone: PrioQ::new(),
            pqfail: PrioQ::new(),
            d: deliver::Deliveries::new(concurrency),
            todo: todo::Todo::new(),
            cleanup: None,
            cleanuptime: now(),
            done: Vec::new(),
            finishing: 0,
            clean: clean::Peer::clean(),
            fsdone: clean::Peer::done(),
        };
        for c in 0..2 {
            unsafe {
                let fl = libc::fcntl(CHANFDOUT[c], libc::F_GETFL);
                if fl == -1 || libc::fcntl(CHANFDOUT[c], libc::F_SETFL, fl | libc::O_NONBLOCK) == -1
                {
                    s.spawndied(c);
                }
            }
        }
        s.pqstart();
        s.del_status();
        s
    }

    fn spawndied(&mut self, c: usize) {
        log("alert: oh no! lost spawn connection! dying...\n");
        self.spawn_alive[c] = false;
        self.exitasap = true;
    }

    fn cleandied(&mut self) {
        log("alert: oh no! lost qmail-clean connection! dying...\n");
        self.exitasap = true;
    }

    fn main_loop(&mut self, flags: &Flags) {
        while !self.exitasap || !self.del_canexit() || self.todo.busy() || self.helpers_busy() {
            self.recent = now();
            if flags.exit.swap(false, Ordering::SeqCst) {
                self.exitasap = true;
            }
            if flags.run.swap(false, Ordering::SeqCst) {
                self.pqrun();
            }
            if flags.read.swap(false, Ordering::SeqCst) {
                self.reread();
            }
            let mut wakeup = self.recent + SLEEP_FOREVER;
            let mut fds = vec![pollfd(flags.wake.as_raw_fd(), libc::POLLIN)];
            self.comm_selprep(&mut fds);
            self.del_selprep(&mut fds);
            self.helpers_selprep(&mut fds);
            self.pass_selprep(&mut wakeup);
            self.todo_selprep(&mut fds, &mut wakeup);
            self.cleanup_selprep(&mut wakeup);
            let timeout = if wakeup <= self.recent {
                0
            } else {
                (wakeup - self.recent + 1).min(SLEEP_FOREVER) * 1000
            };
            let r =
                unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout as i32) };
            if r == -1 {
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    log("warning: trouble in select\n");
                }
                continue;
            }
            self.recent = now();
            let ready = Ready(fds);
            if ready.has(flags.wake.as_raw_fd(), libc::POLLIN) {
                drain(&flags.wake);
            }
            self.comm_do(&ready);
            self.del_do(&ready);
            self.helpers_do(&ready);
            self.todo_do(&ready);
            self.pass_do();
            self.cleanup_do();
        }
    }

    fn reread(&mut self) {
        if std::env::set_current_dir(crate::home::home()).is_err() {
            log("alert: unable to reread controls: unable to switch to home directory\n");
            return;
        }
        match control::lines_or_me("locals", true) {
            Err(_) => log("alert: unable to reread control/locals\n"),
            Ok(locals) => match control::read_lines("virtualdomains") {
                Err(_) => log("alert: unable to reread control/virtualdomains\n"),
                Ok(v) => {
                    self.ctl.rw.locals = locals;
                    self.ctl.rw.vdoms = vdoms(&v.unwrap_or_default());
                }
            },
        }
        while std::env::set_current_dir("queue").is_err() {
            log("alert: unable to switch back to queue directory; HELP! sleeping...\n");
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
    }

    fn cleanup_selprep(&self, wakeup: &mut i64) {
        if self.cleanup.is_some() {
            *wakeup = 0;
        }
        if *wakeup > self.cleanuptime {
            *wakeup = self.cleanuptime;
        }
    }

    /// Remove one ossified mess/ file without todo or info per pass.
    fn cleanup_do(&mut self) {
        if self.cleanup.is_none() {
            if self.recent < self.cleanuptime {
                return;
            }
            self.cleanup = Some(crate::queue::list("mess", true).unwrap_or_default());
        }
        let Some(id) = self.cleanup.as_mut().and_then(Vec::pop) else {
            self.cleanup = None;
            self.cleanuptime = self.recent + SLEEP_CLEANUP;
            return;
        };
        use std::os::unix::fs::MetadataExt;
        let Ok(md) = std::fs::metadata(crate::queue::mess(id)) else {
            return;
        };
        if self.recent <= md.atime() + OSSIFIED {
            return;
        }
        for f in [crate::queue::info(id), crate::queue::todo(id)] {
            match std::fs::metadata(&f) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                _ => return,
            }
        }
        self.ask(
            clean::Who::Clean,
            vec![(format!("foop/{id}"), clean::After::Nothing)],
        );
    }
}

/// The poll set after poll returned.
pub struct Ready(Vec<libc::pollfd>);

impl Ready {
    fn has(&self, fd: RawFd, ev: libc::c_short) -> bool {
        self.0
            .iter()
            .any(|p| p.fd == fd && p.revents & (ev | libc::POLLHUP | libc::POLLERR) != 0)
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn drain(mut r: &std::os::unix::net::UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
}

fn write_all(fd: RawFd, mut b: &[u8]) -> bool {
    while !b.is_empty() {
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        b = &b[n as usize..];
    }
    true
}

/// `birth + (isqrt(recent - birth) + chanskip)^2`: qmail's retry schedule,
/// roughly quadratic in the message's age.
pub fn nextretry(birth: i64, recent: i64, c: usize) -> i64 {
    let mut n = if birth > recent {
        0
    } else {
        ((recent - birth) as f64).sqrt() as i64
    };
    // Correct the float estimate to the exact integer square root.
    while n * n > recent - birth && n > 0 {
        n -= 1;
    }
    while (n + 1) * (n + 1) <= recent - birth {
        n += 1;
    }
    n += CHANSKIP[c];
    birth + n * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_is_quadratic() {
        assert_eq!(nextretry(1000, 1000, 0), 1100);
        assert_eq!(nextretry(1000, 1000, 1), 1400);
        assert_eq!(nextretry(0, 400, 0), 900);
        assert_eq!(nextretry(0, 399, 1), (19 + 20) * (19 + 20));
        assert_eq!(nextretry(500, 10, 0), 600);
    }

    #[test]
    fn log_text_is_made_safe() {
        assert_eq!(safe(b"a b\n%c\x01"), "a_b/_c_");
    }
}
