//! Helpers for the network servers' tests: a private QMAILHOME made by
//! qmail-install -p, sessions run with a deadline, the queue's contents
//! read back, and tcpserver in front of a server on a loopback port
//! (temporary directories, free ports and program checks from testkit).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bindir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qmail-smtpd"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    bindir().join(name)
}

/// Kills its child by pid when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for `child` at most `secs` seconds; None when it is still running.
pub fn wait_deadline(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A private QMAILHOME in a temporary directory, removed on drop.
pub struct Home {
    pub tmp: PathBuf,
    _dir: testkit::TempDir,
}

impl Home {
    pub fn new(tag: &str) -> Home {
        let dir = testkit::TempDir::new(&format!("smtpd-{tag}"));
        let tmp = dir.path().to_path_buf();
        let st = Command::new(bin("qmail-install"))
            .arg("-p")
            .env("QMAILHOME", tmp.join("qmail"))
            .status()
            .unwrap();
        assert!(st.success(), "qmail-install -p failed");
        let h = Home { tmp, _dir: dir };
        h.control("me", "mx.example.org\n");
        h
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.join("qmail")
    }

    pub fn control(&self, name: &str, text: &str) {
        std::fs::write(self.root().join("control").join(name), text).unwrap();
    }

    /// A command for `prog` in this home, with tcpserver's usual variables.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(bin(prog));
        c.env("QMAILHOME", self.root())
            .env_remove("QMAILQUEUE")
            .env_remove("RELAYCLIENT")
            .env_remove("DATABYTES")
            .env_remove("TCPREMOTEHOST")
            .env_remove("TCPREMOTEINFO")
            .env_remove("TCPLOCALHOST")
            .env("TCPREMOTEIP", "127.0.0.1")
            .env("TCPLOCALIP", "127.0.0.1");
        c
    }

    /// Every queued message: (message bytes, envelope bytes).
    pub fn queued(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let q = self.root().join("queue");
        let mut out = Vec::new();
        let Ok(todo) = std::fs::read_dir(q.join("todo")) else {
            return out;
        };
        let mut ids: Vec<u64> = todo
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort();
        for id in ids {
            let env = std::fs::read(q.join("todo").join(id.to_string())).unwrap();
            let mess = find_mess(&q.join("mess"), id);
            out.push((mess, env));
        }
        out
    }

    /// Files anywhere below queue/mess (to see that nothing half-made stays).
    pub fn mess_count(&self) -> usize {
        let mut n = 0;
        for d in std::fs::read_dir(self.root().join("queue/mess"))
            .unwrap()
            .flatten()
        {
            n += std::fs::read_dir(d.path()).unwrap().count();
        }
        n
    }
}

impl Home {
    /// Wait (bounded) until qmail-queue processes left behind have cleaned
    /// up after a refused message; true when queue/mess is empty.
    pub fn mess_empties(&self) -> bool {
        let end = Instant::now() + Duration::from_secs(30);
        while self.mess_count() != 0 {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

fn find_mess(mess: &Path, id: u64) -> Vec<u8> {
    for d in std::fs::read_dir(mess).unwrap().flatten() {
        let p = d.path().join(id.to_string());
        if p.exists() {
            return std::fs::read(p).unwrap();
        }
    }
    panic!("no mess file for {id}");
}

/// Run `cmd` with `input` on stdin; returns its output and exit code.
pub fn session(mut cmd: Command, input: &[u8]) -> (Vec<u8>, i32) {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut g = Guard(child);
    let mut stdin = g.0.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = g.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let st = wait_deadline(&mut g.0, 120).expect("server did not finish in time");
    let _ = writer.join();
    (reader.join().unwrap(), st.code().unwrap_or(-1))
}

/// The split of an output into lines, CRLF kept off.
pub fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// tcpserver to use: ours beside the test binaries, else Debian's.
pub fn tcpserver_dir() -> Option<PathBuf> {
    if bindir().join("tcpserver").exists() && bindir().join("tcprules").exists() {
        return Some(bindir());
    }
    if Path::new("/usr/bin/tcpserver").exists() && Path::new("/usr/bin/tcprules").exists() {
        return Some(PathBuf::from("/usr/bin"));
    }
    None
}

/// A free loopback port (bound and released; tcpserver binds it next).
pub fn free_port() -> u16 {
    testkit::free_tcp_port()
}

/// tcpserver running `prog` on a loopback port, with optional rules cdb.
pub struct Server {
    pub port: u16,
    _guard: Guard,
}

impl Server {
    pub fn start(home: &Home, dir: &Path, rules: Option<&Path>, prog: &[&str]) -> Server {
        Server::start_on("127.0.0.1", home, dir, rules, prog)
    }

    /// The same on another loopback address (`::1` for IPv6).
    pub fn start_on(
        host: &str,
        home: &Home,
        dir: &Path,
        rules: Option<&Path>,
        prog: &[&str],
    ) -> Server {
        Server::start_with(host, home, dir, rules, &[], prog, None)
    }

    /// With more options (`opts`) and tcpserver's log in a file.
    pub fn start_with(
        host: &str,
        home: &Home,
        dir: &Path,
        rules: Option<&Path>,
        opts: &[&str],
        prog: &[&str],
        log: Option<&Path>,
    ) -> Server {
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = home.cmd("qmail-smtpd");
        let mut c2 = Command::new(dir.join("tcpserver"));
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => c2.env(k, v),
                None => c2.env_remove(k),
            };
        }
        c = c2;
        if let Some(r) = rules {
            c.arg("-x").arg(r);
        }
        c.args(opts);
        c.args(["-R", "-H", "-l", "localhost", host, &port.to_string()]);
        c.arg(bin(prog[0])).args(&prog[1..]);
        c.stdout(Stdio::null());
        match log {
            Some(l) => c.stderr(std::fs::File::create(l).unwrap()),
            None => c.stderr(Stdio::null()),
        };
        let g = Guard(c.spawn().unwrap());
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < end, "tcpserver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { port, _guard: g }
    }

    /// tcpserver's pid.
    pub fn pid(&self) -> u32 {
        self._guard.0.id()
    }
}

/// A rules cdb made by tcprules (from `dir`) out of `text`.
pub fn tcprules(home: &Home, dir: &Path, text: &str) -> PathBuf {
    let cdb = home.tmp.join("tcp.smtp.cdb");
    let tmp = home.tmp.join("tcp.smtp.tmp");
    let mut c = Command::new(dir.join("tcprules"));
    c.arg(&cdb).arg(&tmp);
    let (_, code) = session(c, text.as_bytes());
    assert_eq!(code, 0, "tcprules failed");
    cdb
}

/// Run an external client with a deadline (coreutils timeout ends it).
pub fn client(args: &[&str], input: &[u8]) -> (String, i32) {
    let mut c = Command::new("timeout");
    c.arg("60").args(args);
    let (out, code) = session(c, input);
    (String::from_utf8_lossy(&out).into_owned(), code)
}

pub fn have(prog: &str) -> bool {
    testkit::have_program(prog)
}
