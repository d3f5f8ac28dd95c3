//! Process and file plumbing shared by every end-to-end test. Tests run
//! programs of several packages, so binaries are found in the target
//! directory that holds this test executable, after one
//! `cargo build --workspace --bins`; processes are tracked both by parentage
//! and by a marker variable in their environment, because supervise and
//! qmail-send restart children whose parents died and a tree walk alone
//! would miss the reparented ones.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static BUILD: Once = Once::new();

/// The environment variable every started process carries; its value is
/// unique per guard so one test's cleanup never touches another's.
pub const MARKER: &str = "E2E_GUARD";

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// target/debug (or target/release): the parent of the `deps` directory
/// holding the running test executable.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a directory");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// The directory of the workspace's binaries, built once per test process
/// so that `cargo test -p e2e` alone never runs stale or missing programs.
pub fn bindir() -> PathBuf {
    let dir = target_profile_dir();
    BUILD.call_once(|| build_workspace(&dir));
    dir
}

fn build_workspace(profile_dir: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["build", "--workspace", "--bins", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        c.arg("--release");
    }
    let st = c.status().expect("running cargo build --workspace --bins");
    assert!(st.success(), "cargo build --workspace --bins failed");
}

/// The path of one of the workspace's programs; fails with advice if the
/// build did not produce it.
pub fn bin(name: &str) -> PathBuf {
    let p = bindir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// PATH with our binaries first: svscan, qmail-start and tcpserver exec
/// their helpers through PATH, and Debian's daemontools sit in /usr/bin.
pub fn path_with_bins() -> String {
    format!(
        "{}:{}",
        bindir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Whether `pid` is a live process; zombies count as dead because PID 1
/// does not reap orphans here.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Poll `f` until it holds or `limit` passes; returns its last answer.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The live children of `pid`, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let procs = processes();
    let kids = procs.iter().filter(|(p, pp)| *pp == pid && alive(*p));
    kids.map(|(p, _)| *p).collect()
}

/// The program `pid` runs (/proc/PID/exe).
pub fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Every live process with its parent pid, from /proc.
fn processes() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = stat.rsplit(')').next().unwrap_or("");
        let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if let Some(ppid) = ppid {
            out.push((pid, ppid));
        }
    }
    out
}

fn carries_marker(pid: i32, tag: &str) -> bool {
    let want = format!("{MARKER}={tag}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        .unwrap_or(false)
}

/// `root`'s descendants plus every process carrying the guard's marker.
fn tree(root: i32, tag: &str) -> BTreeSet<i32> {
    let procs = processes();
    let mut set: BTreeSet<i32> = procs
        .iter()
        .filter(|(p, _)| carries_marker(*p, tag))
        .map(|(p, _)| *p)
        .collect();
    set.insert(root);
    loop {
        let before = set.len();
        for (p, pp) in &procs {
            if set.contains(pp) {
                set.insert(*p);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// A started process; on drop it and everything it started are stopped
/// (SIGSTOP first so nothing forks behind the walk) and killed, by pid.
pub struct Guard {
    child: Child,
    tag: String,
    // Set once the child is reaped: its pid may then belong to a stranger,
    // so only marked processes are still ours.
    reaped: bool,
}

impl Guard {
    /// Spawn `c` marked with a fresh tag.
    pub fn spawn(mut c: Command) -> Guard {
        let tag = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        c.env(MARKER, &tag);
        let child = c.spawn().expect("spawn");
        Guard {
            child,
            tag,
            reaped: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send `sig` to the guarded process only.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    fn members(&self) -> BTreeSet<i32> {
        if self.reaped {
            let tag = &self.tag;
            let procs = processes();
            let marked = procs.iter().filter(|(p, _)| carries_marker(*p, tag));
            marked.map(|(p, _)| *p).collect()
        } else {
            tree(self.pid(), &self.tag)
        }
    }

    fn kill_tree(&mut self) {
        for sig in [libc::SIGSTOP, libc::SIGKILL] {
            for p in self.members() {
                if p != std::process::id() as i32 {
                    unsafe {
                        libc::kill(p, sig);
                    }
                }
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_tree();
    }
}

/// Run `c` to completion with stdin `input`, killing it after `limit`.
pub fn run_with_input(mut c: Command, input: &[u8], limit: Duration) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Guard::spawn(c);
    let mut stdin = g.child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let pid = g.pid();
    let tag = g.tag.clone();
    let killer = std::thread::spawn(move || {
        let done = wait_until(limit, || !alive(pid));
        if !done {
            for p in tree(pid, &tag) {
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
        }
    });
    let stdout = g.child.stdout.take().unwrap();
    let stderr = g.child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || read_all(stderr));
    let out = read_all(stdout);
    let err = err_reader.join().unwrap();
    let status = g.child.wait().unwrap();
    g.reaped = true;
    let _ = writer.join();
    let _ = killer.join();
    Output {
        status,
        stdout: out,
        stderr: err,
    }
}

fn read_all(mut r: impl std::io::Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

/// Run `c` with empty stdin and a deadline of `limit`.
pub fn run(c: Command, limit: Duration) -> Output {
    run_with_input(c, b"", limit)
}

/// Whether `prog` can be found in PATH (third-party peers).
pub fn have_program(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}
