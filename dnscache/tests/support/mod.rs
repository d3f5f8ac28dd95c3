//! Test support: a real authoritative server (nsd) on loopback serving zones
//! the test writes, killed by pid when the guard drops; temp directories; a
//! free port picked at run time.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use testkit::{free_port, is_root, TempDir};

/// Whether a program is on PATH.
pub fn have(prog: &str) -> bool {
    testkit::have_program(prog)
}

/// Whether the process `pid` is gone or a zombie (PID 1 here may not reap).
pub fn dead(pid: u32) -> bool {
    !testkit::alive(pid)
}

/// An nsd serving `zones` on one address and port, killed on drop.
pub struct Nsd {
    child: Child,
    pub addr: SocketAddr,
    _dir: TempDir,
}

/// The example zone most tests use.
pub const EXAMPLE_ZONE: &str = r#"$ORIGIN example.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 604800 300
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 10.1.2.3
multi IN A 10.0.0.1
multi IN A 10.0.0.2
alias IN CNAME www
alias2 IN CNAME alias
ext IN CNAME www.other.test.
loop1 IN CNAME loop2
loop2 IN CNAME loop1
@ IN MX 10 mail
@ IN MX 20 mail2.elsewhere.test.
mxalias IN CNAME example.test.
mail IN A 10.1.2.4
txt IN TXT "hello" "world"
txt IN TXT "second\001x"
v6 IN AAAA 2001:db8::1
v6 IN AAAA 2001:db8::2
both IN A 10.9.9.9
both IN AAAA 2001:db8::9
odd\.name IN A 10.7.7.7
short 1 IN A 10.3.3.3
"#;

/// Zone other.test, for CNAMEs that leave example.test.
pub const OTHER_ZONE: &str = r#"$ORIGIN other.test.
$TTL 3600
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@ IN NS ns1.example.test.
www IN A 10.5.5.5
"#;

/// Reverse zone for 127.0.0.0/24 and 2001:db8::/120-ish names.
pub const REVERSE_ZONE: &str = r#"$ORIGIN 0.0.127.in-addr.arpa.
$TTL 3600
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@ IN NS ns1.example.test.
1 IN PTR localhost.example.test.
"#;

pub const REVERSE6_ZONE: &str = r#"$ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.
$TTL 3600
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@ IN NS ns1.example.test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IN PTR six.example.test.
"#;

/// A zone with a TXT record too big for a 512-byte UDP answer.
pub fn big_zone() -> String {
    let mut z = String::from(
        "$ORIGIN big.test.\n$TTL 60\n@ IN SOA ns1.example.test. h.example.test. 1 3600 900 604800 300\n@ IN NS ns1.example.test.\n",
    );
    for i in 0..6 {
        z.push_str(&format!("@ IN TXT \"{}\"\n", format!("{i}").repeat(200)));
    }
    for i in 0..40 {
        z.push_str(&format!("@ IN A 10.20.0.{i}\n"));
    }
    z
}

/// The standard set of zones.
pub fn standard_zones() -> Vec<(&'static str, String)> {
    vec![
        ("example.test", EXAMPLE_ZONE.to_string()),
        ("other.test", OTHER_ZONE.to_string()),
        ("0.0.127.in-addr.arpa", REVERSE_ZONE.to_string()),
        ("8.b.d.0.1.0.0.2.ip6.arpa", REVERSE6_ZONE.to_string()),
        ("big.test", big_zone()),
    ]
}

impl Nsd {
    /// Start nsd on `ip`:`port` (a free port when 0), or None with the
    /// reason printed when nsd is not installed.
    pub fn start(ip: &str, port: u16, zones: &[(&str, String)]) -> Option<Nsd> {
        let nsd = ["/usr/sbin/nsd", "/usr/local/sbin/nsd"]
            .into_iter()
            .find(|p| Path::new(p).is_file());
        let Some(nsd) = nsd else {
            eprintln!("skipped: nsd is not installed");
            return None;
        };
        let dir = TempDir::new("nsd");
        let port = if port == 0 { free_port(ip) } else { port };
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        let d = dir.path().display();
        let mut conf = format!(
            "server:\n ip-address: {ip}\n port: {port}\n username: \"\"\n chroot: \"\"\n zonesdir: \"{d}\"\n database: \"\"\n pidfile: \"{d}/nsd.pid\"\n xfrdfile: \"{d}/xfrd.state\"\n xfrdir: \"{d}\"\n zonelistfile: \"{d}/zone.list\"\n logfile: \"{d}/log\"\n server-count: 1\n verbosity: 0\n hide-version: yes\n rrl-ratelimit: 0\nremote-control:\n control-enable: no\n"
        );
        for (name, text) in zones {
            let file = format!("{name}.zone");
            std::fs::write(dir.path().join(&file), text).unwrap();
            conf.push_str(&format!(
                "zone:\n name: \"{name}\"\n zonefile: \"{file}\"\n"
            ));
        }
        std::fs::write(dir.path().join("nsd.conf"), conf).unwrap();
        let child = Command::new(nsd)
            .arg("-d")
            .arg("-c")
            .arg(dir.path().join("nsd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = Nsd {
            child,
            addr,
            _dir: dir,
        };
        n.wait_ready();
        Some(n)
    }

    /// Poll with a SOA query until nsd answers (bounded).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let q = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01";
        let sock = UdpSocket::bind((self.addr.ip(), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let _ = sock.send_to(q, self.addr);
            if sock.recv(&mut buf).is_ok() {
                return;
            }
            if dead(self.child.id()) {
                panic!("nsd exited at start");
            }
        }
        panic!("nsd did not answer within 30 s");
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a program run printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Run `prog args` with `env` added (DNSCACHEIP, LOCALDOMAIN and
/// DNSREWRITEFILE cleared first), output to files, killed by pid if it
/// takes longer than two minutes.
pub fn run(prog: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let dir = TempDir::new("run");
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let err = std::fs::File::create(dir.path().join("err")).unwrap();
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env_remove("DNSCACHEIP")
        .env_remove("LOCALDOMAIN")
        .env_remove("DNSREWRITEFILE")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{prog} {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read =
        |f: &str| String::from_utf8_lossy(&std::fs::read(dir.path().join(f)).unwrap()).into_owned();
    Outcome {
        stdout: read("out"),
        stderr: read("err"),
        code: status.code().unwrap_or(-1),
    }
}

/// A loopback address whose port 53 is free, for a server the originals
/// (which always use port 53) can reach; None unless root.
pub fn free_port53_address() -> Option<String> {
    if !is_root() {
        return None;
    }
    // Addresses handed out in this process, so parallel tests differ.
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let base = std::process::id() % 200;
    for i in 0..200u32 {
        let n = SEQ.fetch_add(1, Ordering::SeqCst) as u32;
        let ip = format!("127.53.{}.{}", (base + i) % 250 + 1, n % 250 + 1);
        if UdpSocket::bind((ip.as_str(), 53)).is_ok()
            && TcpListener::bind((ip.as_str(), 53)).is_ok()
        {
            return Some(ip);
        }
    }
    None
}

/// A dnscache (ours or another) running on a loopback address, with its
/// root/ directory in a temp dir and its log in a file; killed on drop.
pub struct Cache {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Cache {
    /// Start `prog` listening on `listen` ("127.0.0.1:PORT" or an address
    /// for port 53), with `servers` as root/servers files, `allow` as
    /// root/ip files, and `env` added.
    pub fn start(
        prog: &str,
        listen: &str,
        servers: &[(&str, String)],
        allow: &[&str],
        env: &[(&str, &str)],
    ) -> Cache {
        let dir = TempDir::new("cache");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("ip")).unwrap();
        std::fs::create_dir_all(root.join("servers")).unwrap();
        for (name, text) in servers {
            std::fs::write(root.join("servers").join(name), text).unwrap();
        }
        for a in allow {
            std::fs::write(root.join("ip").join(a), "").unwrap();
        }
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = Command::new(prog);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("IP", listen)
            .env("IPSEND", "0.0.0.0")
            .env("CACHESIZE", "1000000")
            .env("ROOT", &root)
            .env("UID", "65534")
            .env("GID", "65534")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let addr = crate::support::listen_addr(listen);
        let c = Cache { child, addr, dir };
        c.wait_for("starting");
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory in kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Wait (bounded) until the log has a line containing `text`.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.log().lines().any(|l| l.contains(text)) {
                return;
            }
            if dead(self.child.id()) {
                panic!("dnscache exited: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line with {text:?} within 30 s: {}", self.log());
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The socket address an IP setting names (port 53 when none).
pub fn listen_addr(listen: &str) -> SocketAddr {
    listen
        .parse()
        .unwrap_or_else(|_| SocketAddr::new(listen.parse().unwrap(), 53))
}
