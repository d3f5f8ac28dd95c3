//! qmail-remote and qmail-send against a real authoritative DNS server (nsd
//! on loopback, DNSCACHEIP pointing at it): delivery to the best MX, CNAME
//! rewriting of recipient domains, the permanent failure for a name that
//! does not exist or has no address, the deferrals when DNS fails
//! temporarily, and the own-MX rule with its alias exception. MX hosts are
//! reached on port 25, so the tests that deliver need root.

mod support_qeng;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support_qeng::*;

/// nsd serving one zone on 127.0.0.1 at a free port, killed by pid on drop.
struct Nsd {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Nsd {
    fn start(zone: &str, text: &str) -> Option<Nsd> {
        let Some(nsd) = ["/usr/sbin/nsd", "/usr/local/sbin/nsd"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
        else {
            eprintln!("skipped: nsd is not installed");
            return None;
        };
        let dir = TempDir::new("nsd");
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = format!(
            "server:\n ip-address: 127.0.0.1\n port: {port}\n username: \"\"\n chroot: \"\"\n zonesdir: \"{d}\"\n database: \"\"\n pidfile: \"{d}/nsd.pid\"\n xfrdfile: \"{d}/xfrd.state\"\n xfrdir: \"{d}\"\n zonelistfile: \"{d}/zone.list\"\n logfile: \"{d}/log\"\n server-count: 1\n verbosity: 0\n rrl-ratelimit: 0\nremote-control:\n control-enable: no\nzone:\n name: \"{zone}\"\n zonefile: \"z.zone\"\n"
        );
        std::fs::write(dir.path().join("z.zone"), text).unwrap();
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
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        n.wait_ready();
        Some(n)
    }

    /// Poll with a query until nsd answers (bounded).
    fn wait_ready(&self) {
        let q = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01";
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let _ = sock.send_to(q, self.addr);
            if sock.recv(&mut buf).is_ok() {
                return;
            }
        }
        panic!("nsd did not answer within 30 s");
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A loopback address of its own for test `k`'s MX host in this run (the
/// tests run in parallel, each with its own sink on port 25).
fn mx_ip(k: u32) -> String {
    let p = std::process::id() * 4 + k;
    format!(
        "127.{}.{}.{}",
        100 + (p >> 16) % 100,
        (p >> 8) & 255,
        1 + (p & 127)
    )
}

fn zone(mx: &str) -> String {
    format!(
        "$ORIGIN x.test.\n$TTL 60\n@ IN SOA ns.x.test. h.x.test. 1 3600 900 604800 300\n@ IN NS ns.x.test.\nns IN A 127.0.0.1\n@ IN MX 10 mx.x.test.\n@ IN MX 20 dead.x.test.\nmx IN A {mx}\ndead IN A 127.0.0.1\nalias IN CNAME x.test.\nalias2 IN CNAME alias.x.test.\nloop1 IN CNAME loop2.x.test.\nloop2 IN CNAME loop1.x.test.\nnoaddr IN TXT \"nothing here\"\nself IN MX 10 me.x.test.\nme IN A 127.0.0.1\nselfalias IN CNAME self.x.test.\nv6 IN MX 10 mx6.x.test.\nmx6 IN AAAA ::1\nv6alias IN CNAME v6.x.test.\n"
    )
}

/// A one-connection SMTP server on `l`; the receiver gets the session.
fn sink(l: TcpListener) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut seen = String::new();
        let _ = w.write_all(b"220 sink\r\n");
        let mut in_data = false;
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            seen.push_str(&line);
            let reply: &[u8] = if in_data {
                in_data = line != ".\r\n";
                if in_data {
                    b""
                } else {
                    b"250 ok\r\n"
                }
            } else if line.starts_with("DATA") {
                in_data = true;
                b"354 go\r\n"
            } else if line.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n");
                break;
            } else {
                b"250 ok\r\n"
            };
            let _ = w.write_all(reply);
            line.clear();
        }
        let _ = tx.send(seen);
    });
    rx
}

fn remote(h: &Home, dns: &str, args: &[&str]) -> String {
    let mut c = h.cmd("qmail-remote");
    c.args(args)
        .env("DNSCACHEIP", dns)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // qmail-remote may give up before it reads the message.
    let _ = child.stdin.take().unwrap().write_all(b"Subject: t\n\nhi\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A DNS "server" address where nobody listens: every query fails at once.
fn dead_dns() -> String {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = u.local_addr().unwrap();
    drop(u);
    a.to_string()
}

#[test]
fn names_without_addresses_fail_permanently_and_dns_trouble_defers() {
    let Some(nsd) = Nsd::start("x.test", &zone(&mx_ip(0))) else {
        return;
    };
    let h = Home::new("rdns1");
    let dns = nsd.addr.to_string();
    for name in ["nosuch.x.test", "noaddr.x.test"] {
        let r = format!("joe@{name}");
        assert_eq!(
            remote(&h, &dns, &[name, "s@a.example", &r]),
            format!("DSorry, I couldn't find any host named {name}. (#5.1.2)\n\0")
        );
    }
    let dead = dead_dns();
    assert_eq!(
        remote(&h, &dead, &["x.test", "s@a.example", "joe@x.test"]),
        "ZCNAME lookup failed temporarily. (#4.4.3)\n\0"
    );
    // Through smtproutes no CNAME is asked: the relay's lookup fails.
    h.control("smtproutes", "x.test:relay.x.test\n");
    assert_eq!(
        remote(&h, &dead, &["x.test", "s@a.example", "joe@x.test"]),
        "ZSorry, I couldn't find any host by that name. (#4.1.2)\n\0"
    );
    assert_eq!(
        remote(&h, &dns, &["x.test", "s@a.example", "joe@x.test"]),
        "DSorry, I couldn't find any host named relay.x.test. (#5.1.2)\n\0"
    );
    h.control("smtproutes", "");
    // This machine as the best MX of a domain it does not treat as local.
    assert_eq!(
        remote(&h, &dns, &["self.x.test", "s@a.example", "joe@self.x.test"]),
        "DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n\0"
    );
}

#[test]
fn delivery_to_the_best_mx_with_canonical_recipients() {
    if !root() {
        eprintln!("skipped: MX hosts are reached on port 25, which needs root");
        return;
    }
    let ip = mx_ip(1);
    let Some(nsd) = Nsd::start("x.test", &zone(&ip)) else {
        return;
    };
    let h = Home::new("rdns2");
    let rx = sink(TcpListener::bind((ip.as_str(), 25)).unwrap());
    let out = remote(
        &h,
        &nsd.addr.to_string(),
        &[
            "x.test",
            "s@a.example",
            "a@x.test",
            "b@alias2.x.test",
            "c@loop1.x.test",
            "d@nosuch.x.test",
        ],
    );
    assert_eq!(
        out,
        format!("r\0r\0r\0r\0K{ip} accepted message.\nRemote host said: 250 ok\n\0")
    );
    let wire = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let rcpts: Vec<&str> = wire.lines().filter(|l| l.starts_with("RCPT")).collect();
    // An alias loop is left as the lookups left it ("not our problem").
    assert_eq!(
        rcpts,
        [
            "RCPT TO:<a@x.test>",
            "RCPT TO:<b@x.test>",
            "RCPT TO:<c@loop1.x.test>",
            "RCPT TO:<d@nosuch.x.test>"
        ]
    );
}

#[test]
fn an_own_mx_is_used_when_every_recipient_domain_is_an_alias() {
    if !root() {
        eprintln!("skipped: MX hosts are reached on port 25, which needs root");
        return;
    }
    let Some(nsd) = Nsd::start("x.test", &zone(&mx_ip(0))) else {
        return;
    };
    let Ok(l) = TcpListener::bind("127.0.0.1:25") else {
        eprintln!("skipped: 127.0.0.1:25 is in use here");
        return;
    };
    let rx = sink(l);
    let h = Home::new("rdns3");
    let out = remote(
        &h,
        &nsd.addr.to_string(),
        &["self.x.test", "s@a.example", "joe@selfalias.x.test"],
    );
    assert_eq!(
        out,
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok\n\0"
    );
    assert!(rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .contains("RCPT TO:<joe@self.x.test>\r\n"));
}

#[test]
fn qmail_send_delivers_through_mx_records() {
    if !root() {
        eprintln!("skipped: MX hosts are reached on port 25, which needs root");
        return;
    }
    let ip = mx_ip(2);
    let Some(nsd) = Nsd::start("x.test", &zone(&ip)) else {
        return;
    };
    let rx = sink(TcpListener::bind((ip.as_str(), 25)).unwrap());
    let h = Home::new("rdns4");
    h.control("helohost", "example.org\n");
    let dns = nsd.addr.to_string();
    let s = Stack::start(&h, &[("DNSCACHEIP", dns.as_str())]);
    inject(
        &h,
        "Subject: by mx\n\nline\n",
        "me@example.org",
        &["bob@alias.x.test"],
    );
    let log = s.wait_log("end msg ");
    assert!(log.contains(" to remote bob@alias.x.test\n"), "{log}");
    assert!(
        log.contains(&format!(": success: {ip}_accepted_message./")),
        "{log}"
    );
    let wire = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(wire.contains("EHLO example.org\r\n"), "{wire}");
    assert!(wire.contains("RCPT TO:<bob@x.test>\r\n"), "{wire}");
    assert!(
        wire.contains("Subject: by mx\r\n\r\nline\r\n.\r\n"),
        "{wire}"
    );
}

/// An MX host with only an AAAA record is reached over IPv6. The only IPv6
/// address a test can listen on is ::1, one of this machine's own, so the
/// recipient's domain is an alias (CNAME) of the MX'd domain: then qmail
/// uses its own MX hosts too, as the test above shows for IPv4.
#[test]
fn an_aaaa_only_mx_host_is_reached_over_ipv6() {
    if !root() {
        eprintln!("skipped: MX hosts are reached on port 25, which needs root");
        return;
    }
    let Ok(l) = TcpListener::bind("[::1]:25") else {
        eprintln!("skipped: cannot listen on [::1]:25 (no IPv6 loopback, or busy)");
        return;
    };
    let Some(nsd) = Nsd::start("x.test", &zone(&mx_ip(3))) else {
        return;
    };
    let h = Home::new("rdns6");
    let rx = sink(l);
    let out = remote(
        &h,
        &nsd.addr.to_string(),
        &["v6.x.test", "s@a.example", "z@v6alias.x.test"],
    );
    assert_eq!(
        out,
        "r\0K::1 accepted message.\nRemote host said: 250 ok\n\0"
    );
    let wire = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(wire.contains("RCPT TO:<z@v6.x.test>\r\n"), "{wire}");
}
