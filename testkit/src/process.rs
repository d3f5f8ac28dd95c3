//! Processes a test started, ended by pid when their guard drops.
//!
//! Liveness is read from /proc/PID/stat because PID 1 on these machines does
//! not reap orphans: `kill -0` would call a zombie alive. A guard finds what
//! to kill both by parentage and by a marker variable in the environment,
//! because supervisors (supervise, qmail-send, svscan) restart children whose
//! parents died, and a tree walk alone would miss the reparented ones.

use std::collections::BTreeSet;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::wait::{wait_until, DEADLINE};

/// The environment variable every guarded process carries; its value is
/// unique per guard so one test's cleanup never touches another's.
pub const MARKER: &str = "TESTKIT_GUARD";

/// The parent pid and state letter of `pid`, None when it is gone.
pub fn proc_stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((ppid, state))
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((_, s)) if s != 'Z' && s != 'X')
}

/// Every live process with its parent pid.
fn processes() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((ppid, st)) = proc_stat(pid) {
            if st != 'Z' && st != 'X' {
                out.push((pid, ppid));
            }
        }
    }
    out
}

/// Every live descendant of `pid`, through /proc's parent links.
pub fn descendants(pid: u32) -> Vec<u32> {
    let procs = processes();
    let mut set = BTreeSet::from([pid]);
    grow(&mut set, &procs);
    set.remove(&pid);
    set.into_iter().collect()
}

/// Add to `set` every process whose parent is in it, until nothing changes.
fn grow(set: &mut BTreeSet<u32>, procs: &[(u32, u32)]) {
    loop {
        let before = set.len();
        for (p, pp) in procs {
            if set.contains(pp) {
                set.insert(*p);
            }
        }
        if set.len() == before {
            return;
        }
    }
}

/// Send `sig` to one pid, ignoring "no such process".
pub fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn carries_marker(pid: u32, tag: &str) -> bool {
    let want = format!("{MARKER}={tag}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        .unwrap_or(false)
}

/// A started process: on drop it, everything it started, and any pid
/// registered with [`Guard::also`] are stopped (SIGSTOP first, so nothing
/// forks behind the walk) and killed by pid, and the child is reaped.
pub struct Guard {
    pub child: Child,
    tag: String,
    extra: Vec<u32>,
    // Set once the child is reaped: its pid may then belong to a stranger,
    // so only marked processes are still ours.
    reaped: bool,
}

impl Guard {
    /// Spawn `cmd` marked with a fresh tag; panics naming the command when
    /// it cannot start.
    pub fn spawn(cmd: &mut Command) -> Guard {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        cmd.env(MARKER, &tag);
        match cmd.spawn() {
            Ok(child) => Guard {
                child,
                tag,
                extra: Vec::new(),
                reaped: false,
            },
            Err(e) => panic!("cannot start {cmd:?}: {e}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Also kill `pid` (and its descendants) when the guard drops.
    pub fn also(&mut self, pid: u32) {
        self.extra.push(pid);
    }

    /// Send `sig` to the guarded process only.
    pub fn signal(&self, sig: i32) {
        if !self.reaped {
            kill_pid(self.pid(), sig);
        }
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        let st = self.child.try_wait().ok().flatten();
        self.reaped |= st.is_some();
        st
    }

    /// Wait for the process to end, at most `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut st = None;
        wait_until(limit, || {
            st = self.try_status();
            st.is_some()
        });
        st
    }

    /// Everything this guard answers for, right now.
    fn members(&self) -> BTreeSet<u32> {
        let procs = processes();
        let mut set: BTreeSet<u32> = procs
            .iter()
            .filter(|(p, _)| carries_marker(*p, &self.tag))
            .map(|(p, _)| *p)
            .collect();
        if !self.reaped {
            set.insert(self.pid());
        }
        set.extend(self.extra.iter().copied());
        grow(&mut set, &procs);
        set.remove(&std::process::id());
        set
    }

    /// Kill the whole tree now (what drop does).
    pub fn kill_all(&mut self) {
        for sig in [libc::SIGSTOP, libc::SIGKILL] {
            for p in self.members() {
                kill_pid(p, sig);
            }
        }
        let _ = self.wait_for(DEADLINE);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_all();
    }
}
