//! Test support shared by the package's integration tests: temporary
//! directories removed on drop, a guard that kills a process and every
//! descendant it had BY PID when dropped, bounded waits that poll instead of
//! sleeping for fixed times, liveness read from /proc/PID/stat (PID 1 here does
//! not reap orphans, so `kill -0` would call a zombie alive), and helpers to
//! write run scripts and to skip tests whose peer is missing.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Generous bound for anything expected to happen "soon" on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A fresh directory under the system temp dir, removed (best effort) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("{tag}-{}-{n}-{nanos}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = make_writable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Undo chmods a test made so the tree can be removed.
fn make_writable(p: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700))?;
        for e in fs::read_dir(p)?.flatten() {
            let _ = make_writable(&e.path());
        }
    }
    Ok(())
}

/// The parent pid and state letter of `pid` from /proc, None if gone.
pub fn proc_stat(pid: u32) -> Option<(u32, char)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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

/// Every live descendant of `pid`, found through /proc's parent links.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut table = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((ppid, st)) = proc_stat(p) {
                    if st != 'Z' {
                        table.push((p, ppid));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(p, pp) in &table {
            if pp == parent && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

/// SIGKILL one pid (ignoring "no such process").
pub fn kill_pid(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Owns a started process; on drop kills it and all its descendants by pid,
/// plus any extra pids registered with [`Guard::also`], and reaps it.
pub struct Guard {
    pub child: Child,
    extra: Vec<u32>,
}

impl Guard {
    pub fn new(child: Child) -> Guard {
        Guard {
            child,
            extra: Vec::new(),
        }
    }

    /// Spawn `cmd` and guard it; panics with the command when it cannot start.
    pub fn spawn(cmd: &mut Command) -> Guard {
        match cmd.spawn() {
            Ok(c) => Guard::new(c),
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

    /// The exit status if the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Wait for the process to end, at most `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill the whole tree now (what drop does).
    pub fn kill_all(&mut self) {
        let mut pids = vec![self.child.id()];
        pids.extend(self.extra.iter().copied());
        let mut all = Vec::new();
        for p in pids {
            all.extend(descendants(p));
            all.push(p);
        }
        for &p in &all {
            kill_pid(p, libc::SIGKILL);
        }
        let _ = self.wait_for(DEADLINE);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Poll `f` every 10 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `f` until it yields a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let mut out = None;
    wait_until(limit, || {
        out = f();
        out.is_some()
    });
    out
}

/// Run `cmd` to completion with stdout/stderr captured, killing it (by pid)
/// if it outlives `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Guard::spawn(cmd);
    let out_reader = drain(g.child.stdout.take().expect("stdout"));
    let err_reader = drain(g.child.stderr.take().expect("stderr"));
    let status = match g.wait_for(limit) {
        Some(st) => st,
        None => panic!("{cmd:?} still running after {limit:?}"),
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Read a pipe to its end on a helper thread (the test process is not a
/// forking program, so threads are fine here).
fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Run `cmd` with the default deadline.
pub fn run(cmd: &mut Command) -> Output {
    run_bounded(cmd, DEADLINE)
}

/// Write `body` to `path` with mode 0755 (through a temporary name, so a
/// supervisor never executes a half-written script).
pub fn write_script(path: &Path, body: &str) {
    let tmp = path.with_extension("tmp-script");
    fs::write(&tmp, body).expect("write script");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod script");
    fs::rename(&tmp, path).expect("rename script");
}

/// PATH with `dir` first, so programs exec'd through PATH are ours.
pub fn path_with(dir: &Path) -> OsString {
    let mut p = OsString::from(dir);
    if let Some(old) = std::env::var_os("PATH") {
        p.push(":");
        p.push(old);
    }
    p
}

/// The directory holding a binary given by env!("CARGO_BIN_EXE_...").
pub fn dir_of(bin: &str) -> PathBuf {
    Path::new(bin).parent().expect("bin dir").to_path_buf()
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// True when `path` is an executable file; otherwise prints why the calling
/// test skips.
pub fn have_peer(path: &str, test: &str) -> bool {
    let ok = fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP {test}: {path} is not installed");
    }
    ok
}

/// The file's contents, or None while it does not exist.
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// The file's contents as text, or "" when it does not exist.
pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// A supervise/status record as the tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStatus {
    pub secs: u64,
    pub nanos: u32,
    pub pid: u32,
    pub paused: u8,
    pub want: u8,
}

/// Decode DIR/supervise/status byte by byte (TAI64N big-endian, pid little-endian).
pub fn read_status(service: &Path) -> Option<RawStatus> {
    let b = fs::read(service.join("supervise/status")).ok()?;
    if b.len() != 18 {
        return None;
    }
    Some(RawStatus {
        secs: u64::from_be_bytes(b[0..8].try_into().ok()?),
        nanos: u32::from_be_bytes(b[8..12].try_into().ok()?),
        pid: u32::from_le_bytes(b[12..16].try_into().ok()?),
        paused: b[16],
        want: b[17],
    })
}

/// Wait until the status shows a live service pid other than `not`.
pub fn wait_service_pid(service: &Path, not: u32) -> Option<u32> {
    wait_for(DEADLINE, || {
        let st = read_status(service)?;
        (st.pid != 0 && st.pid != not && alive(st.pid)).then_some(st.pid)
    })
}

/// Wait until the status says the service is down.
pub fn wait_service_down(service: &Path) -> bool {
    wait_until(
        DEADLINE,
        || matches!(read_status(service), Some(s) if s.pid == 0),
    )
}

/// Make a service directory `name` under `base` with the given run script.
pub fn make_service(base: &Path, name: &str, run: &str) -> PathBuf {
    let dir = base.join(name);
    fs::create_dir_all(&dir).expect("service dir");
    write_script(&dir.join("run"), run);
    dir
}

/// Start `supervise` (a binary path) on `service`, stderr into `service`.err,
/// guarded.
pub fn start_supervise(supervise: &str, service: &Path) -> Guard {
    let err = fs::File::create(service.with_extension("err")).expect("stderr file");
    let mut cmd = Command::new(supervise);
    cmd.arg(service)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    Guard::spawn(&mut cmd)
}

/// What the supervise started by [`start_supervise`] printed on stderr so far.
pub fn supervise_stderr(service: &Path) -> String {
    read_text(&service.with_extension("err"))
}

/// User+system CPU time of `pid` in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(i) = s.rfind(')') else { return 0 };
    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
    let n = |k: usize| f.get(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// Service directories under `t` in the states svstat must describe without
/// a supervise: nostatus, short, zero, future, garbage, loop, notrunning,
/// plainfile (a file), nosupervise; "missing" does not exist.
pub fn make_broken_services(t: &Path) {
    let mk = |name: &str| {
        let d = t.join(name);
        fs::create_dir_all(d.join("supervise")).unwrap();
        d
    };
    // ok exists as a regular file: svstat goes on to read the status.
    let a = mk("nostatus");
    fs::write(a.join("supervise/ok"), "").unwrap();
    let b = mk("short");
    fs::write(b.join("supervise/ok"), "").unwrap();
    fs::write(b.join("supervise/status"), "abc").unwrap();
    let c = mk("zero");
    fs::write(c.join("supervise/ok"), "").unwrap();
    fs::write(c.join("supervise/status"), [0u8; 18]).unwrap();
    let d = mk("future");
    fs::write(d.join("supervise/ok"), "").unwrap();
    let mut fut = [0u8; 18];
    fut[0] = 0xff;
    fut[16] = 1;
    fut[17] = b'u';
    fs::write(d.join("supervise/status"), fut).unwrap();
    let e = mk("garbage");
    fs::write(e.join("supervise/ok"), "").unwrap();
    let g = *b"@\0\0\0\0\0\0\0\0\0\0\0\x01\x02\x03\x04\x01d";
    fs::write(e.join("supervise/status"), g).unwrap();
    fs::write(e.join("down"), "").unwrap();
    let f = mk("loop");
    std::os::unix::fs::symlink("down", f.join("down")).unwrap();
    let n = mk("notrunning");
    for fifo in ["supervise/ok", "supervise/control"] {
        nix::unistd::mkfifo(
            &n.join(fifo),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    fs::write(t.join("plainfile"), "").unwrap();
    fs::create_dir(t.join("nosupervise")).unwrap();
}
