//! Helpers shared by the integration tests: processes killed by pid on
//! drop, tcpserver started on a port it picks itself (-1), its stderr lines
//! collected, clients with deadlines, and nsd as a loopback DNS server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn bin(name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tcpserver"));
    exe.parent().unwrap().join(name)
}

pub fn have(path: &str) -> bool {
    Path::new(path).exists()
}

/// A temporary directory removed on drop (testkit's), with a join helper.
pub struct TempDir(pub testkit::TempDir);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(testkit::TempDir::new(&format!("tcpserver-test-{tag}")))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// A child process killed by pid and reaped on drop.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running tcpserver (ours or Debian's) and what it logged.
pub struct Server {
    pub guard: Guard,
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Start `exe` with `args` (which must include -1 and port 0); waits for
/// the port it prints.
pub fn start(exe: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tcpserver");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log2.lock().unwrap().push(line);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let guard = Guard(child);
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("tcpserver printed its port");
    let port = line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "no port from {exe:?}: {line:?} log {:?}",
            log.lock().unwrap()
        )
    });
    Server { guard, port, log }
}

impl Server {
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Wait until the log has a line satisfying `f`.
    pub fn wait_log(&self, f: impl Fn(&str) -> bool) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        loop {
            let l = self.lines();
            if l.iter().any(|x| f(x)) {
                return l;
            }
            assert!(Instant::now() < end, "log line never came: {l:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }
}

/// Connect, send `input`, half-close, read to EOF.
pub fn talk(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(input).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}

pub fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// An unprivileged UDP+TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A shell script in `dir`.
pub fn script(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.path(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_string_lossy().into_owned()
}

/// Compile rules with a tcprules binary.
pub fn tcprules(exe: &Path, dir: &TempDir, name: &str, text: &str) -> std::process::Output {
    let mut c = Command::new(exe)
        .arg(dir.path(&format!("{name}.cdb")))
        .arg(dir.path(&format!("{name}.tmp")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let text = text.as_bytes().to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&text);
    });
    let out = wait_output(c);
    w.join().unwrap();
    out
}

/// Wait for a child with the deadline (reading its output meanwhile),
/// killing it by pid if it overruns.
pub fn wait_output(c: Child) -> std::process::Output {
    let pid = c.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r.unwrap(),
        Err(_) => {
            // SAFETY: our own child, not yet reaped (its waiter is still blocked).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("process {pid} overran its deadline");
        }
    }
}

/// nsd serving `zones` (name, zone file text) on 127.0.0.1:port.
pub struct Nsd {
    pub guard: Guard,
    pub port: u16,
    _dir: TempDir,
}

pub fn nsd(zones: &[(&str, &str)]) -> Option<Nsd> {
    if !have("/usr/sbin/nsd") {
        eprintln!("skipping: nsd is not installed (apt-get install nsd)");
        return None;
    }
    let dir = TempDir::new("nsd");
    let port = free_port();
    let d = dir.0.path().display();
    let mut conf = format!(
        "server:\n  ip-address: 127.0.0.1\n  port: {port}\n  username: \"\"\n  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  chroot: \"\"\n  logfile: \"{d}/log\"\nremote-control:\n  control-enable: no\n"
    );
    for (i, (name, text)) in zones.iter().enumerate() {
        std::fs::write(dir.path(&format!("z{i}")), text).unwrap();
        conf.push_str(&format!("zone:\n  name: {name}\n  zonefile: z{i}\n"));
    }
    std::fs::write(dir.path("nsd.conf"), conf).unwrap();
    let child = Command::new("/usr/sbin/nsd")
        .arg("-d")
        .arg("-c")
        .arg(dir.path("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    // Ready when it answers over TCP.
    let end = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Nsd {
        guard,
        port,
        _dir: dir,
    })
}

pub const SOA: &str = "$TTL 60\n@ IN SOA ns.test. h.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n";
