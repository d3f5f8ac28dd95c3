//! Test support for the local-delivery tests (qloc): private temp
//! directories (on testkit's), running a binary with a deadline and killing it by pid on
//! drop, and a recording stand-in for qmail-queue.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A directory removed on drop (testkit's), readable by other users.
pub struct TempDir(testkit::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let t = testkit::TempDir::new(&format!("qloc-{tag}"));
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(t)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Write `name` (relative) with `text` and mode 0644.
    pub fn write(&self, name: &str, text: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Make a maildir `name` (tmp, new, cur).
    pub fn maildir(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(p.join(sub)).unwrap();
        }
        p
    }
}

/// A child killed by pid when dropped.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Wait for `g`'s child for at most `secs`, collecting its output files.
fn finish(mut g: Guard, out: &Path, err: &Path, secs: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let child = g.0.as_mut().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "child did not finish in {secs}s");
        std::thread::sleep(Duration::from_millis(20));
    };
    g.0 = None;
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: fs::read(out).unwrap_or_default(),
        stderr: fs::read(err).unwrap_or_default(),
    }
}

/// Run `cmd` with stdin from the file `input` (seekable, as qmail-lspawn
/// gives it) and a 60-second deadline.
pub fn run_with_file(mut cmd: Command, input: &Path) -> Outcome {
    let dir = TempDir::new("io");
    let out = dir.path().join("out");
    let err = dir.path().join("err");
    cmd.stdin(fs::File::open(input).unwrap())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let g = Guard(Some(cmd.spawn().unwrap()));
    finish(g, &out, &err, 60)
}

/// Run `cmd` with `input` on stdin (through a temporary file).
pub fn run_with(cmd: Command, input: &[u8]) -> Outcome {
    let dir = TempDir::new("in");
    let f = dir.write("input", input);
    run_with_file(cmd, &f)
}

/// Start `cmd` in the background with no stdin.
pub fn spawn(mut cmd: Command) -> Guard {
    cmd.stdin(Stdio::null());
    Guard(Some(cmd.spawn().unwrap()))
}

/// A script standing in for qmail-queue: it records the message and the
/// envelope into `dir/qq.msg` and `dir/qq.env` and exits with `code`.
pub fn fake_queue(dir: &TempDir, code: i32) -> PathBuf {
    let d = dir.path().display();
    let p = dir.write(
        "fakeqq",
        format!("#!/bin/sh\ncat > {d}/qq.msg\ncat <&1 > {d}/qq.env\nexit {code}\n").as_bytes(),
    );
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A command for one of the package's binaries, with a clean QMAILHOME.
pub fn bin(path: &str, qmailhome: &Path) -> Command {
    let mut c = Command::new(path);
    c.env("QMAILHOME", qmailhome);
    for v in [
        "QMAILQUEUE",
        "DTLINE",
        "RPLINE",
        "UFLINE",
        "SENDER",
        "NEWSENDER",
        "MAILDIR",
        "MAIL",
        "MAILTMP",
        "DEFAULT",
    ] {
        c.env_remove(v);
    }
    c
}

/// The files in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The only file in `dir`'s contents.
pub fn only_file(dir: &Path) -> Vec<u8> {
    let f = files(dir);
    assert_eq!(f.len(), 1, "files in {}: {f:?}", dir.display());
    fs::read(&f[0]).unwrap()
}

pub fn append(path: &Path, text: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text).unwrap();
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}
