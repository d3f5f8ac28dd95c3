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
    // A port free a moment ago may be taken by a parallel test before nsd
    // binds it; nsd then exits, and the next port is tried.
    for _ in 0..5 {
        if let Some(ns) = nsd_on(free_port(), zones) {
            return Some(ns);
        }
    }
    panic!("nsd did not start");
}

/// nsd on `port`, once it answers over UDP for the first zone; None if it
/// exited (its port taken).
fn nsd_on(port: u16, zones: &[(&str, &str)]) -> Option<Nsd> {
    let dir = TempDir::new("nsd");
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
    let mut guard = Guard(child);
    let query = soa_query(zones.first().map_or("", |z| z.0));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        if guard.0.try_wait().unwrap().is_some() {
            return None;
        }
        let _ = sock.send_to(&query, ("127.0.0.1", port));
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            // Our id, a response, NOERROR: the zone is loaded and served.
            if n >= 12 && buf[..2] == query[..2] && buf[2] & 0x80 != 0 && buf[3] & 0x0f == 0 {
                return Some(Nsd {
                    guard,
                    port,
                    _dir: dir,
                });
            }
        }
        assert!(Instant::now() < end, "nsd did not answer");
    }
}

/// A DNS query for the SOA record of `zone`.
fn soa_query(zone: &str) -> Vec<u8> {
    let mut q = vec![0x4e, 0x53, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    q
}

pub const SOA: &str = "$TTL 60\n@ IN SOA ns.test. h.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n";
