//! tcpclient, tcpcat, mconnect, rblsmtpd and the stream tools, with real
//! peers: our tcpserver, Debian's programs for comparison, nsd for DNS.

mod support;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

fn run(exe: &Path, args: &[&str], envs: &[(&str, &str)], input: &[u8]) -> std::process::Output {
    let mut c = Command::new(exe);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_output(child);
    w.join().unwrap();
    out
}

#[test]
fn tcpclient_gives_descriptors_6_and_7_and_the_environment() {
    let dir = TempDir::new("client");
    let s = start(
        &bin("tcpserver"),
        &[
            "-1",
            "-HRl0",
            "127.0.0.1",
            "0",
            "/bin/sh",
            "-c",
            "read x; echo \"got $x\"",
        ],
        &[],
    );
    let port = s.port.to_string();
    let prog = script(&dir, "c.sh", "echo hello >&7; cat <&6; echo \"$PROTO $TCPREMOTEIP $TCPREMOTEPORT $TCPLOCALHOST ${TCPREMOTEHOST-unset}\"");
    let out = run(
        &bin("tcpclient"),
        &["-RHl0", "127.0.0.1", &port, &prog],
        &[],
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("got hello\nTCP 127.0.0.1 {port} 0 unset\n")
    );
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let out = run(
        &bin("tcpclient"),
        &["-RHl0", "127.0.0.1", &refused, "true"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("tcpclient: unable to connect to 127.0.0.1 port {refused}: connection refused\n")
    );
    let out = run(&bin("tcpclient"), &["-RHl0", "127.0.0.1"], &[], b"");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("tcpclient: usage: tcpclient [ -46hHrRdDqQv ]"));
}

#[test]
fn tcpcat_and_mconnect() {
    let t = start(
        &bin("tcpserver"),
        &[
            "-1",
            "-HRl0",
            "127.0.0.1",
            "0",
            "/bin/sh",
            "-c",
            "printf 'a\\0b\\n'",
        ],
        &[],
    );
    let out = run(
        &bin("tcpcat"),
        &["127.0.0.1", &t.port.to_string()],
        &[],
        b"",
    );
    assert_eq!(out.stdout, b"a\0b\n");
    let s = start(
        &bin("tcpserver"),
        &[
            "-1",
            "-HRl0",
            "127.0.0.1",
            "0",
            "/bin/sh",
            "-c",
            "printf 'a\\0b\\n'; cat",
        ],
        &[],
    );
    let port = s.port.to_string();
    let out = run(
        &bin("mconnect"),
        &["127.0.0.1", &port],
        &[],
        b"HELO x\nQUIT\n",
    );
    assert_eq!(
        out.stdout, b"a\0b\nHELO x\r\nQUIT\r\n",
        "mconnect adds CR to what it sends"
    );
}

fn compare(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let ours = run(&bin(tool), args, &[], input);
    let theirs_path = format!("/usr/bin/{tool}");
    if have(&theirs_path) {
        let theirs = run(Path::new(&theirs_path), args, &[], input);
        assert_eq!(ours.stdout, theirs.stdout, "{tool} stdout");
        assert_eq!(ours.status.code(), theirs.status.code(), "{tool} exit");
    }
    ours.stdout
}

#[test]
fn stream_tools_as_debian() {
    let input = b"a\nb\r\nc\r\r\nd\re\r";
    assert_eq!(compare("addcr", &[], input), b"a\r\nb\r\r\nc\r\r\r\nd\re\r");
    assert_eq!(compare("delcr", &[], input), b"a\nb\nc\r\nd\re\r");
    assert_eq!(
        compare("fixcrio", &["cat"], input),
        b"a\r\nb\r\nc\r\r\nd\re\r"
    );
    assert_eq!(
        compare("argv0", &["/bin/sh", "zork", "-c", "echo $0"], b""),
        b"zork\n"
    );
    let out = run(
        &bin("recordio"),
        &["sh", "-c", "cat >/dev/null; printf 'in\\nx\\ny'"],
        &[],
        b"in\n",
    );
    assert_eq!(out.stdout, b"in\nx\ny");
    // One packet each way (printf writes once); the program's output comes
    // only after its input ended, so the order of the lines is fixed.
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let pid = err.split(' ').next().unwrap();
    assert_eq!(
        err,
        format!("{pid} < in \n{pid} < [EOF]\n{pid} > in \n{pid} > x \n{pid} > y+\n{pid} > [EOF]\n")
    );
    let out = run(&bin("argv0"), &["x"], &[], b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "argv0: usage: argv0 realname program [ arg ... ]\n"
    );
}

#[test]
fn rblsmtpd_from_the_environment() {
    let session = b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nQUIT\r\n";
    let env = [("TCPREMOTEIP", "1.2.3.4"), ("RBLSMTPD", "-go away")];
    let out = run(
        &bin("rblsmtpd"),
        &["-t", "5", "/bin/echo", "ran"],
        &env,
        session,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n553 go away\r\n553 go away\r\n221 rblsmtpd.local\r\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("rblsmtpd: 1.2.3.4 pid ") && err.ends_with(": 553 go away\n"),
        "{err}"
    );
    if have("/usr/bin/rblsmtpd") {
        let theirs = run(
            Path::new("/usr/bin/rblsmtpd"),
            &["-t", "5", "/bin/echo", "ran"],
            &env,
            session,
        );
        assert_eq!(out.stdout, theirs.stdout);
    }
    let out = run(
        &bin("rblsmtpd"),
        &["/bin/echo", "ran"],
        &[("RBLSMTPD", "")],
        b"",
    );
    assert_eq!(
        out.stdout, b"ran\n",
        "empty RBLSMTPD: no lookups, run smtpd"
    );
    let out = run(
        &bin("rblsmtpd"),
        &["/bin/echo", "ran"],
        &[("TCPREMOTEIP", "1.2.3.4"), ("RBLSMTPD", "busy")],
        b"QUIT\r\n",
    );
    assert_eq!(out.stdout, b"220 rblsmtpd.local\r\n221 rblsmtpd.local\r\n");
}

#[test]
fn rblsmtpd_against_a_block_list_in_nsd() {
    let zone = format!("$ORIGIN rbl.test.\n{SOA}2.0.0.127 IN TXT \"listed, see http://rbl.test/\"\n2.0.0.127 IN A 127.0.0.2\n");
    let anti = format!("$ORIGIN ok.test.\n{SOA}2.0.0.127 IN A 127.0.0.2\n");
    let Some(ns) = nsd(&[("rbl.test", &zone), ("ok.test", &anti)]) else {
        return;
    };
    let dns = format!("127.0.0.1:{}", ns.port);
    let env = |ip: &'static str| [("TCPREMOTEIP", ip), ("DNSCACHEIP", "")];
    let mut listed = env("127.0.0.2");
    listed[1].1 = &dns;
    let out = run(
        &bin("rblsmtpd"),
        &["-r", "rbl.test", "/bin/echo", "ran"],
        &listed,
        b"RCPT TO:<x@y>\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "220 rblsmtpd.local\r\n451 listed, see http://rbl.test/\r\n221 rblsmtpd.local\r\n"
    );
    let out = run(
        &bin("rblsmtpd"),
        &["-b", "-r", "rbl.test", "/bin/echo", "ran"],
        &listed,
        b"RCPT TO:<x@y>\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "220 rblsmtpd.local\r\n553 listed, see http://rbl.test/\r\n"
    );
    let out = run(
        &bin("rblsmtpd"),
        &["-a", "ok.test", "-r", "rbl.test", "/bin/echo", "ran"],
        &listed,
        b"",
    );
    assert_eq!(out.stdout, b"ran\n", "-a vouches before -r is asked");
    let mut clean = env("127.0.0.3");
    clean[1].1 = &dns;
    let out = run(
        &bin("rblsmtpd"),
        &["-r", "rbl.test", "/bin/echo", "ran"],
        &clean,
        b"",
    );
    assert_eq!(out.stdout, b"ran\n");
}

#[test]
fn tcpserver_with_rblsmtpd_over_the_network() {
    let s = start(
        &bin("tcpserver"),
        &[
            "-1",
            "-HRl0",
            "127.0.0.1",
            "0",
            bin("rblsmtpd").to_str().unwrap(),
            "/bin/echo",
            "ran",
        ],
        &[("RBLSMTPD", "no mail for you")],
    );
    let mut c = std::net::TcpStream::connect(v4(s.port)).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(b"EHLO me\r\nRCPT TO:<a@b>\r\nQUIT\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(
        out,
        "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n451 no mail for you\r\n221 rblsmtpd.local\r\n"
    );
}

#[test]
fn tcpclient_over_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let s = start(
        &bin("tcpserver"),
        &["-1", "-HRl0", "::1", "0", "/bin/echo", "six"],
        &[],
    );
    let dir = TempDir::new("client6");
    let prog = script(
        &dir,
        "c.sh",
        "cat <&6; echo \"$PROTO $TCPREMOTEIP $TCP6REMOTEIP\"",
    );
    let out = run(
        &bin("tcpclient"),
        &["-RHl0", "::1", &s.port.to_string(), &prog],
        &[],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "six\nTCP6 ::1 ::1\n");
}
