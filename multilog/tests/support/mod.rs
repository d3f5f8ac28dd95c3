//! Helpers for the tests that run the binaries: temp directories removed on
//! drop, children killed by pid on drop, bounded waits, and the paths of our
//! binaries and Debian's originals.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use testkit::{is_root, TempDir};

pub const MULTILOG: &str = env!("CARGO_BIN_EXE_multilog");
pub const TAI64N: &str = env!("CARGO_BIN_EXE_tai64n");
pub const TAI64NLOCAL: &str = env!("CARGO_BIN_EXE_tai64nlocal");

/// Debian's original of `name`, or None (the caller prints why it skips).
pub fn debian(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: Debian's {name} is not installed (apt-get install daemontools)");
        None
    }
}

/// A child killed (by pid) and reaped when dropped.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }
    /// Wait for exit at most `secs`; panics on timeout.
    pub fn wait(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit in {secs}s",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub fn stdin(&mut self) -> &mut std::process::ChildStdin {
        self.0.stdin.as_mut().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

/// Start `prog args` in `dir` with piped stdin and the given stderr.
pub fn spawn(prog: &Path, args: &[&str], dir: &Path, stderr: Stdio) -> Guard {
    let child = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Guard(child)
}

pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run `prog args` in `dir` with `input` on stdin and `env`, at most `secs`.
pub fn run_env(
    prog: &Path,
    args: &[&str],
    dir: &Path,
    input: &[u8],
    env: &[(&str, &str)],
    secs: u64,
) -> Out {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut g = Guard(cmd.spawn().unwrap());
    let mut stdin = g.0.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut stdout = g.0.stdout.take().unwrap();
    let mut stderr = g.0.stderr.take().unwrap();
    let r_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    let r_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut v);
        v
    });
    let st = g.wait(secs);
    writer.join().unwrap();
    Out {
        code: st.code(),
        stdout: r_out.join().unwrap(),
        stderr: r_err.join().unwrap(),
    }
}

pub fn run(prog: &Path, args: &[&str], dir: &Path, input: &[u8]) -> Out {
    run_env(prog, args, dir, input, &[], 60)
}

/// Numbered 100-byte lines `first..first+count`.
pub fn numbered(first: usize, count: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(count * 100);
    for i in first..first + count {
        v.extend_from_slice(format!("{i:099}\n").as_bytes());
    }
    v
}

/// The sorted names in `dir` starting with `@` (none while `dir` is missing).
pub fn old_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    v.sort();
    v
}

/// All logged bytes of `dir` in order: old files, then current.
pub fn all_logged(dir: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    for n in old_files(dir) {
        v.extend(std::fs::read(dir.join(n)).unwrap_or_default());
    }
    if let Ok(c) = std::fs::read(dir.join("current")) {
        v.extend(c);
    }
    v
}

/// Poll `cond` every 20 ms for at most `secs`.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Remove the 25-byte TAI64N label from the start of each line, and from
/// `@...` file names, so outputs taken at different moments compare.
pub fn strip_labels(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'@') && line.len() >= 25 {
            out.extend_from_slice(b"@LABEL");
            out.extend_from_slice(&line[25..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}
