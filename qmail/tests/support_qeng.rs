//! Test helpers of the queue side: a private QMAILHOME made by our
//! installer, a guard that kills child processes by pid, bounded waits
//! (temporary directories, liveness and polling come from testkit).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub use testkit::{alive, wait_until, TempDir};

/// Kills its child by pid when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The directory of this package's binaries.
pub fn bindir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qmail-queue"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    bindir().join(name)
}

/// A private home laid out by `qmail-install -p`, with control/me set.
pub struct Home {
    pub dir: TempDir,
}

impl Home {
    pub fn new(tag: &str) -> Home {
        let dir = TempDir::new(&format!("qeng-{tag}"));
        let home = dir.path().join("qmail");
        let st = Command::new(bin("qmail-install"))
            .arg("-p")
            .env("QMAILHOME", &home)
            .status()
            .unwrap();
        assert!(st.success(), "qmail-install -p failed");
        let h = Home { dir };
        h.control("me", "example.org\n");
        h.control("locals", "example.org\nlocalhost\n");
        h
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("qmail")
    }

    pub fn control(&self, name: &str, text: &str) {
        std::fs::write(self.root().join("control").join(name), text).unwrap();
    }

    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.env("QMAILHOME", self.root());
        c.env("PATH", path_with_bins());
        c
    }

    /// Files (relative to queue/) under `dir`, sorted.
    pub fn queue_files(&self, dir: &str) -> Vec<String> {
        let base = self.root().join("queue");
        let mut out = Vec::new();
        walk(&base, &base.join(dir), &mut out);
        out.sort();
        out
    }

    /// Run qmail-queue with `message` and raw `envelope`.
    pub fn qmail_queue(&self, message: &[u8], envelope: &[u8]) -> Output {
        // One file per call: tests may queue from several threads at once.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let envfile = self.dir.path().join(format!("envelope.{n}"));
        std::fs::write(&envfile, envelope).unwrap();
        let mut c = self.cmd("qmail-queue");
        c.stdin(Stdio::piped())
            .stdout(std::fs::File::open(&envfile).unwrap())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            let _ = i.write_all(message);
        }
        let out = wait_output(child, Duration::from_secs(60));
        let _ = std::fs::remove_file(&envfile);
        out
    }
}

fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
}

/// PATH with our binaries first (qmail-start execs through PATH).
pub fn path_with_bins() -> String {
    format!(
        "{}:{}",
        bindir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Wait for a child with a deadline; kill it when the deadline passes.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let start = Instant::now();
    let killer = std::thread::spawn(move || {
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(100));
            if !alive(pid) {
                return;
            }
        }
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = killer.join();
    out
}

/// A user of the private home: users/assign maps `joe` and `joe-*` to the
/// invoking uid with a home directory holding ./Maildir/.
pub fn add_joe(h: &Home) -> PathBuf {
    let home = h.dir.path().join("joe");
    for d in ["Maildir/new", "Maildir/cur", "Maildir/tmp"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let assign = format!(
        "=joe:joe:{uid}:{gid}:{}:::\n+joe-:joe:{uid}:{gid}:{}:-::\n.\n",
        home.display(),
        home.display()
    );
    std::fs::write(h.root().join("users/assign"), assign).unwrap();
    let st = h.cmd("qmail-newu").current_dir(h.root()).status().unwrap();
    assert!(st.success(), "qmail-newu failed");
    home
}

/// Messages in a Maildir's new/.
pub fn maildir_new(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home.join("Maildir/new"))
        .map(|rd| {
            rd.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// qmail-start and its daemons, logging to a file; stopped by pid on drop.
pub struct Stack {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Stack {
    pub fn start(h: &Home, extra_env: &[(&str, &str)]) -> Stack {
        let log = h.dir.path().join(format!(
            "send.log.{}",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let mut c = h.cmd("qmail-start");
        c.arg("./Maildir/")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(format!("{}.err", log.display())).unwrap())
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let s = Stack {
            child: Some(child),
            log,
        };
        assert!(
            wait_until(Duration::from_secs(30), || s
                .log_text()
                .contains("status: local 0/")),
            "qmail-send did not start: {}",
            s.log_text()
        );
        s
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str) -> String {
        let ok = wait_until(Duration::from_secs(60), || self.log_text().contains(needle));
        let text = self.log_text();
        assert!(ok, "log lacks {needle:?}:\n{text}");
        text
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// The daemons qmail-send started (its children).
    fn children(&self) -> Vec<i32> {
        let p = self.pid();
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The pid of qmail-send's child that calls itself `name`.
    pub fn child_named(&self, name: &str) -> Option<i32> {
        self.children().into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
    }

    /// SIGTERM and wait for exit; returns the exit status.
    pub fn stop(&mut self) -> Option<i32> {
        let kids = self.children();
        self.signal(libc::SIGTERM);
        let mut child = self.child.take()?;
        let pid = child.id();
        wait_until(Duration::from_secs(60), || !alive(pid));
        let _ = child.kill();
        let st = child.wait().ok()?;
        kill_all(&kids);
        st.code()
    }

    /// SIGKILL qmail-send (a crash) and its daemons.
    pub fn crash(&mut self) {
        let kids = self.children();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_all(&kids);
    }
}

fn kill_all(pids: &[i32]) {
    for &p in pids {
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
        let mut st = 0;
        unsafe {
            libc::waitpid(p, &mut st, libc::WNOHANG);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.crash();
        }
    }
}

/// Queue a message through qmail-queue; asserts success.
pub fn inject(h: &Home, body: &str, sender: &str, recips: &[&str]) {
    let mut env = format!("F{sender}\0").into_bytes();
    for r in recips {
        env.extend_from_slice(format!("T{r}\0").as_bytes());
    }
    env.push(0);
    let out = h.qmail_queue(body.as_bytes(), &env);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
