//! qmail-popup, checkpassword and qmail-pop3d as a user sees them: the
//! exact replies on the wire, the Maildir afterwards, exit codes; driven
//! through pipes and through tcpserver by Python's poplib, with a fake
//! checkpassword script, and with the real checkpassword against a test
//! account when running as root.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qmail-popup"))
        .parent()
        .unwrap()
        .join(name)
}

/// A temporary directory with a Maildir and a fake checkpassword that
/// accepts joe/secret (and execs its arguments), removed on drop.
struct Dir {
    path: PathBuf,
    _tmp: testkit::TempDir,
}

impl Dir {
    fn new(tag: &str) -> Dir {
        let tmp = testkit::TempDir::new(&format!("pop3-{tag}"));
        let path = tmp.path().to_path_buf();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(path.join("Maildir").join(sub)).unwrap();
        }
        let fake = path.join("fakecheck");
        std::fs::write(
            &fake,
            "#!/bin/bash\nIFS= read -r -d '' u <&3; IFS= read -r -d '' p <&3; IFS= read -r -d '' t <&3\n\
             printf '%s' \"$t\" > \"$(dirname \"$0\")/timestamp\"\n\
             [ \"$u\" = joe ] && [ \"$p\" = secret ] || exit 1\nexec \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir { path, _tmp: tmp }
    }

    fn maildir(&self) -> PathBuf {
        self.path.join("Maildir")
    }

    /// Put a message into new/ (or cur/) dated `age` seconds ago, so that
    /// the scan (which skips the current second) sees it in order.
    fn deliver(&self, sub: &str, name: &str, text: &[u8], age: u64) {
        let p = self.maildir().join(sub).join(name);
        std::fs::write(&p, text).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(age);
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(t).unwrap();
    }

    fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.maildir().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The FAQ's chain with the fake checkpassword.
    fn chain(&self) -> Vec<String> {
        vec![
            bin("qmail-popup").display().to_string(),
            "pop.example".into(),
            self.path.join("fakecheck").display().to_string(),
            bin("qmail-pop3d").display().to_string(),
            self.maildir().display().to_string(),
        ]
    }
}

/// Run argv with `input` on stdin; its stdout and exit code.
fn session(argv: &[String], input: &[u8]) -> (String, i32) {
    // A QMAILHOME without control/servercert.pem: no STLS offered.
    let out = testkit::run_with_input(
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("QMAILHOME", std::env::temp_dir().join("pop3-no-qmailhome")),
        input,
        Duration::from_secs(60),
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

const MSG1: &[u8] =
    b"From: a@example.org\nSubject: one\n\nfirst body\n.starts with a dot\n..two dots\nlast\n";
const MSG2: &[u8] = b"From: b@example.org\nSubject: two\n\nl1\nl2\nl3\n";

#[test]
fn popup_before_authorization() {
    let d = Dir::new("pre");
    let input =
        b"STAT\r\nUSER\r\nPASS x\r\nNOOP\r\nApop joe\r\nfoo bar\r\nCAPA\r\nSTLS\r\nQUIT\r\nNOOP\r\n";
    let (out, code) = session(&d.chain(), input);
    let lines: Vec<&str> = out.split("\r\n").collect();
    let greet = lines[0];
    assert!(
        greet.starts_with("+OK <") && greet.ends_with("@pop.example>"),
        "{greet}"
    );
    let stamp = &greet[5..greet.len() - 1];
    let (pid, rest) = stamp.split_once('.').unwrap();
    assert!(pid.parse::<u32>().is_ok() && rest.split('@').next().unwrap().parse::<u64>().is_ok());
    assert_eq!(
        &lines[1..],
        [
            "-ERR authorization first",
            "-ERR syntax error",
            "-ERR USER first",
            "+OK ",
            "-ERR syntax error",
            "-ERR authorization first",
            "+OK capability list follows",
            "TOP",
            "UIDL",
            "USER",
            ".",
            // Without control/servercert.pem there is no STLS.
            "-ERR authorization first",
            "+OK ",
            ""
        ]
    );
    assert_eq!(code, 1);
}

#[test]
fn popup_usage() {
    let (out, code) = session(
        &[bin("qmail-popup").display().to_string(), "host".into()],
        b"",
    );
    assert_eq!(out, "-ERR usage: popup hostname subprogram\r\n");
    assert_eq!(code, 1);
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let d = Dir::new("bad");
    d.deliver("new", "1.1.host", MSG1, 10);
    let (a, ca) = session(&d.chain(), b"USER joe\r\nPASS wrong\r\nSTAT\r\n");
    let (b, cb) = session(&d.chain(), b"USER nobody-here\r\nPASS secret\r\nSTAT\r\n");
    let tail = |s: &str| s.split_once("\r\n").unwrap().1.to_string();
    assert_eq!(tail(&a), "+OK \r\n-ERR authorization failed\r\n");
    assert_eq!(tail(&a), tail(&b));
    assert_eq!((ca, cb), (1, 1));
    // The checker got the greeting's timestamp as its third field.
    let stamp = std::fs::read_to_string(d.path.join("timestamp")).unwrap();
    assert!(b.contains(&format!("<{stamp}>")), "{stamp} {b}");
    assert_eq!(d.names("new"), ["1.1.host"]);
}

#[test]
fn transaction_replies_and_quit_applies_deletions() {
    let d = Dir::new("tx");
    d.deliver("new", "100.1.host", MSG1, 20);
    d.deliver("cur", "200.2.host:2,S", MSG2, 10);
    let input = b"USER joe\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 1\r\n\
TOP 2 1\r\nTOP 1 0\r\nLAST\r\nDELE 2\r\nDELE 2\r\nRETR 2\r\nLIST 0\r\nLIST 3\r\nLIST x\r\n\
STAT\r\nLAST\r\nRSET\r\nSTAT\r\nDELE 1\r\nCAPA\r\nXTND\r\nNOOP\r\nQUIT\r\n";
    let (out, code) = session(&d.chain(), input);
    let (_, body) = out.split_once("\r\n").unwrap();
    let s1 = MSG1.len();
    let s2 = MSG2.len();
    let expect = format!(
        "+OK \r\n+OK \r\n+OK 2 {}\r\n+OK \r\n1 {s1}\r\n2 {s2}\r\n.\r\n\
+OK \r\n1 100.1.host\r\n2 200.2.host\r\n.\r\n+OK 2 {s2}\r\n+OK 1 100.1.host\r\n\
+OK \r\nFrom: b@example.org\r\nSubject: two\r\n\r\nl1\r\n\r\n.\r\n\
+OK \r\nFrom: a@example.org\r\nSubject: one\r\n\r\n\r\n.\r\n\
+OK 0\r\n+OK \r\n-ERR already deleted\r\n-ERR already deleted\r\n\
-ERR messages are counted from 1\r\n-ERR not that many messages\r\n-ERR syntax error\r\n\
+OK 2 {s1}\r\n+OK 2\r\n+OK \r\n+OK 2 {}\r\n+OK \r\n\
+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n-ERR unimplemented\r\n+OK \r\n+OK \r\n",
        s1 + s2,
        s1 + s2
    );
    assert_eq!(body, expect);
    // qmail-popup, whose status this is, always ends with 1.
    assert_eq!(code, 1);
    assert!(d.names("new").is_empty());
    assert_eq!(d.names("cur"), ["200.2.host:2,S"]);
}

#[test]
fn retr_dot_stuffs_and_crlfs() {
    let d = Dir::new("retr");
    d.deliver("new", "1.1.host", MSG1, 10);
    let (out, _) = session(&d.chain(), b"USER joe\r\nPASS secret\r\nRETR 1\r\nQUIT\r\n");
    let want = "+OK \r\nFrom: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n\
..starts with a dot\r\n...two dots\r\nlast\r\n\r\n.\r\n+OK \r\n";
    assert!(out.ends_with(want), "{out}");
    // Kept and seen: moved to cur/ with the info suffix.
    assert_eq!(d.names("cur"), ["1.1.host:2,"]);
}

#[test]
fn dropped_client_loses_nothing() {
    let d = Dir::new("drop");
    d.deliver("new", "1.1.host", MSG1, 20);
    d.deliver("new", "2.2.host", MSG2, 10);
    let (out, code) = session(
        &d.chain(),
        b"USER joe\r\nPASS secret\r\nDELE 1\r\nDELE 2\r\n",
    );
    assert!(out.ends_with("+OK \r\n+OK \r\n+OK \r\n"), "{out}");
    assert_eq!(code, 1);
    assert_eq!(d.names("new"), ["1.1.host", "2.2.host"]);
    assert!(d.names("cur").is_empty());
}

#[test]
fn overlong_lines_and_garbage_are_refused_and_the_session_goes_on() {
    let d = Dir::new("long");
    d.deliver("new", "1.1.host", MSG2, 10);
    let mut input = b"USER ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1 << 20));
    input.extend_from_slice(b"\r\n\0\x01\xff garbage\r\nUSER joe\r\nPASS secret\r\n");
    input.extend(std::iter::repeat_n(b'y', 1 << 20));
    input.extend_from_slice(b"\r\nSTAT\r\nQUIT\r\n");
    let (out, code) = session(&d.chain(), &input);
    let (_, rest) = out.split_once("\r\n").unwrap();
    let want = format!(
        "-ERR syntax error\r\n-ERR authorization first\r\n+OK \r\n+OK \r\n\
-ERR syntax error\r\n+OK 1 {}\r\n+OK \r\n",
        MSG2.len()
    );
    assert_eq!(rest, want);
    assert_eq!(code, 1);
}

#[test]
fn pop3d_without_maildir() {
    let d = Dir::new("nomd");
    let argv = [
        bin("qmail-pop3d").display().to_string(),
        d.path.join("none").display().to_string(),
    ];
    let (out, code) = session(&argv, b"STAT\r\n");
    assert_eq!(out, "-ERR this user has no $HOME/Maildir\r\n");
    assert_eq!(code, 0);
}

#[test]
fn checkpassword_misuse_and_refusal_codes() {
    let cp = bin("checkpassword").display().to_string();
    let run = |args: &[&str], fd3: &[u8]| -> i32 {
        let script = format!(
            "printf '{}' | \"$@\" 3<&0 </dev/null",
            fd3.iter().map(|b| format!("\\{b:03o}")).collect::<String>()
        );
        let st = Command::new("sh")
            .args(["-c", &script, "sh"])
            .args(args)
            .status()
            .unwrap();
        st.code().unwrap_or(-1)
    };
    assert_eq!(run(&[&cp], b"joe\0pw\0ts\0"), 2);
    assert_eq!(run(&[&cp, "true"], b"joe"), 2);
    assert_eq!(run(&[&cp, "true"], b"joe\0pw"), 2);
    assert_eq!(run(&[&cp, "true"], b"no-such-user-pop3\0pw\0ts\0"), 1);
    assert_eq!(run(&[&cp, "true"], &[b'x'; 600]), 1);
    // An account with no usable password (locked, or *) never logs in.
    assert_eq!(run(&[&cp, "true"], b"daemon\0\0ts\0"), 1);
    assert_eq!(run(&[&cp, "true"], b"daemon\0*\0ts\0"), 1);
}

/// tcpserver to use: ours beside the test binaries, else Debian's.
fn tcpserver() -> Option<PathBuf> {
    [bin("tcpserver"), PathBuf::from("/usr/bin/tcpserver")]
        .into_iter()
        .find(|p| p.exists())
}

/// tcpserver on a loopback port running `argv`.
struct Server {
    port: u16,
    _guard: testkit::Guard,
}

impl Server {
    /// `qmailhome` is where control/servercert.pem would be.
    fn start(tcpserver: &Path, argv: &[String], qmailhome: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let g = testkit::Guard::spawn(
            Command::new(tcpserver)
                .args([
                    "-R",
                    "-H",
                    "-l",
                    "localhost",
                    "127.0.0.1",
                    &port.to_string(),
                ])
                .args(argv)
                .env("QMAILHOME", qmailhome)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "tcpserver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { port, _guard: g }
    }
}

fn have(prog: &str) -> bool {
    testkit::have_program(prog)
}

/// Python's poplib: log in, list, fetch every message (printed as hex),
/// delete the first, quit. Output lines: `stat N S`, then `msg HEX`...
const POPLIB: &str = r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=60)
try:
    p.user(sys.argv[2]); p.pass_(sys.argv[3])
except poplib.error_proto as e:
    print("auth", e.args[0].decode()); sys.exit(0)
n, size = p.stat()
print("stat", n, size)
for i in range(1, n + 1):
    resp, lines, octets = p.retr(i)
    print("msg", b"\n".join(lines).hex())
p.dele(1)
print("quit", p.quit().decode())
"#;

fn poplib(port: u16, user: &str, pass: &str) -> String {
    let out = Command::new("timeout")
        .args(["60", "python3", "-c", POPLIB, &port.to_string(), user, pass])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What poplib gives back for a message: its lines joined by LF. With the
/// empty line netqmail's qmail-pop3d puts before the terminator, that is
/// the message file byte for byte.
fn as_fetched(msg: &[u8]) -> Vec<u8> {
    msg.to_vec()
}

fn check_fetch(out: &str, msgs: &[&[u8]]) {
    let lines: Vec<&str> = out.lines().collect();
    let total: usize = msgs.iter().map(|m| m.len()).sum();
    assert_eq!(lines[0], format!("stat {} {total}", msgs.len()));
    for (i, m) in msgs.iter().enumerate() {
        let hex = lines[1 + i].strip_prefix("msg ").unwrap();
        assert_eq!(unhex(hex), as_fetched(m));
    }
    assert_eq!(lines[1 + msgs.len()], "quit +OK ");
}

#[test]
fn poplib_fetches_through_tcpserver() {
    let Some(ts) = tcpserver() else {
        eprintln!(
            "skipping: no tcpserver (cargo test --workspace builds ours; or install ucspi-tcp)"
        );
        return;
    };
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let d = Dir::new("poplib");
    d.deliver("new", "1.1.host", MSG1, 20);
    d.deliver("new", "2.2.host", MSG2, 10);
    let srv = Server::start(&ts, &d.chain(), &d.path);
    let bad = poplib(srv.port, "joe", "wrong");
    assert_eq!(bad.trim(), "auth -ERR authorization failed");
    let out = poplib(srv.port, "joe", "secret");
    check_fetch(&out, &[MSG1, MSG2]);
    assert_eq!(d.names("cur"), ["2.2.host:2,"]);
    assert!(d.names("new").is_empty());
}

/// A system account made with useradd, removed (with its home) on drop.
struct TestUser {
    name: String,
    home: PathBuf,
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", &self.name]).status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn make_user(tag: &str, password: &str) -> Option<TestUser> {
    let name = format!("p3{tag}{}", std::process::id() % 100000);
    let home = std::env::temp_dir().join(format!("home-{name}"));
    let st = Command::new("useradd")
        .args(["-m", "-d"])
        .arg(&home)
        .args(["-s", "/bin/sh", &name])
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let user = TestUser { name, home };
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{}:{password}\n", user.name).as_bytes())
        .ok()?;
    if !c.wait().ok()?.success() {
        return None;
    }
    Some(user)
}

#[test]
fn real_checkpassword_logs_a_system_user_in() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: creating a test account with useradd needs root");
        return;
    }
    let Some(ts) = tcpserver() else {
        eprintln!(
            "skipping: no tcpserver (cargo test --workspace builds ours; or install ucspi-tcp)"
        );
        return;
    };
    if !have("useradd") || !have("python3") {
        eprintln!("skipping: useradd or python3 missing");
        return;
    }
    let Some(u) = make_user("a", "s3cret pass") else {
        eprintln!("skipping: useradd/chpasswd failed");
        return;
    };
    let acct = nix::unistd::User::from_name(&u.name).unwrap().unwrap();
    let md = u.home.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let p = md.join("new/1.1.host");
    std::fs::write(&p, MSG1).unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(10))
        .unwrap();
    drop(f);
    let chown = |p: &Path| nix::unistd::chown(p, Some(acct.uid), Some(acct.gid)).unwrap();
    for p in [
        md.clone(),
        md.join("new"),
        md.join("cur"),
        md.join("tmp"),
        p.clone(),
    ] {
        chown(&p);
    }
    // The subprogram records who it runs as, then serves the Maildir
    // named relative to the home directory checkpassword entered.
    let script = u.home.join("whoami.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nid -u > \"$HOME/id\"; echo \"$USER $HOME $SHELL\" >> \"$HOME/id\"; pwd >> \"$HOME/id\"\nexec {} ./Maildir\n",
            bin("qmail-pop3d").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let argv = vec![
        bin("qmail-popup").display().to_string(),
        "pop.example".into(),
        bin("checkpassword").display().to_string(),
        script.display().to_string(),
    ];
    let srv = Server::start(&ts, &argv, &u.home);
    assert_eq!(
        poplib(srv.port, &u.name, "wrong").trim(),
        "auth -ERR authorization failed"
    );
    assert_eq!(
        poplib(srv.port, "no-such-user-pop3", "s3cret pass").trim(),
        "auth -ERR authorization failed"
    );
    let out = poplib(srv.port, &u.name, "s3cret pass");
    check_fetch(&out, &[MSG1]);
    let id = std::fs::read_to_string(u.home.join("id")).unwrap();
    let home = u.home.display();
    assert_eq!(
        id,
        format!("{}\n{} {home} /bin/sh\n{home}\n", acct.uid, u.name)
    );
    assert!(std::fs::read_dir(md.join("new")).unwrap().next().is_none());
}

/// poplib over STLS: CAPA offers it, the handshake verifies against the
/// test certificate, CAPA no longer offers it, then a login (refused, and
/// accepted on a second connection) and a fetch, all encrypted.
const POPLIB_STLS: &str = r#"
import poplib, ssl, sys
def conn():
    p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=60)
    caps = p.capa()
    print("capa", " ".join(sorted(caps)))
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    p.stls(ctx)
    print("tls", p.sock.version() is not None)
    print("capa", " ".join(sorted(p.capa())))
    return p
p = conn()
p.user("joe")
try:
    p.pass_("wrong")
except poplib.error_proto as e:
    print("auth", e.args[0].decode())
p = conn()
p.user("joe"); p.pass_("secret")
n, size = p.stat()
print("stat", n, size)
resp, lines, octets = p.retr(1)
print("msg", b"\n".join(lines).hex())
print("quit", p.quit().decode())
"#;

#[test]
fn stls_with_poplib() {
    let Some(ts) = tcpserver() else {
        eprintln!(
            "skipping: no tcpserver (cargo test --workspace builds ours; or install ucspi-tcp)"
        );
        return;
    };
    if !have("python3") || !have("openssl") {
        eprintln!("skipping: python3 or openssl not installed");
        return;
    }
    let d = Dir::new("stls");
    d.deliver("new", "1.1.host", MSG1, 10);
    let cert = make_cert(&d);
    let srv = Server::start(&ts, &d.chain(), &d.path);
    let out = Command::new("timeout")
        .args(["60", "python3", "-c", POPLIB_STLS, &srv.port.to_string()])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "capa STLS TOP UIDL USER");
    assert_eq!(lines[1], "tls True");
    assert_eq!(lines[2], "capa TOP UIDL USER");
    assert_eq!(lines[3], "auth -ERR authorization failed");
    assert_eq!(lines[4..7], lines[0..3]);
    check_fetch(&lines[7..].join("\n"), &[MSG1]);
    assert_eq!(d.names("cur"), ["1.1.host:2,"]);
}

/// A self-signed certificate for localhost and 127.0.0.1, installed as
/// control/servercert.pem under the directory (the tests' QMAILHOME);
/// returns the certificate's path for the clients to trust.
fn make_cert(d: &Dir) -> PathBuf {
    std::fs::create_dir_all(d.path.join("control")).unwrap();
    let (key, cert) = (d.path.join("key.pem"), d.path.join("cert.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut pem = std::fs::read(&key).unwrap();
    pem.extend(std::fs::read(&cert).unwrap());
    std::fs::write(d.path.join("control/servercert.pem"), pem).unwrap();
    cert
}

/// fetchmail with a temporary rc file, delivering each message through an
/// MDA into `out`; `tls` adds STLS with certificate checking. Killed by
/// pid if it outlives its deadline.
fn fetchmail(d: &Dir, port: u16, tls: Option<&Path>) {
    let out = d.path.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let ssl = match tls {
        Some(cert) => format!(
            "sslproto 'tls1.2+' sslcertck sslcommonname localhost sslcertfile {}",
            cert.display()
        ),
        None => "sslproto ''".to_string(),
    };
    let rc = d.path.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set invisible\npoll 127.0.0.1 port {port} protocol pop3 auth password \
             user \"joe\" password \"secret\" {ssl} \
             mda \"/bin/sh -c 'cat > {}/m$$'\" no keep\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = testkit::run_with_input(
        Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .args(["--nosyslog", "-v"])
            .env("FETCHMAILHOME", &d.path)
            .env("HOME", &d.path),
        b"",
        Duration::from_secs(90),
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    if tls.is_some() {
        assert!(log.contains("POP3> STLS"), "{log}");
    }
}

#[test]
fn fetchmail_fetches_plain_and_over_stls() {
    let Some(ts) = tcpserver() else {
        eprintln!(
            "skipping: no tcpserver (cargo test --workspace builds ours; or install ucspi-tcp)"
        );
        return;
    };
    if !have("fetchmail") || !have("openssl") {
        eprintln!("skipping: fetchmail or openssl not installed (apt-get install fetchmail)");
        return;
    }
    for tls in [false, true] {
        let d = Dir::new("fetchmail");
        d.deliver("new", "1.1.host", MSG1, 10);
        let cert = tls.then(|| make_cert(&d));
        let srv = Server::start(&ts, &d.chain(), &d.path);
        fetchmail(&d, srv.port, cert.as_deref());
        let got: Vec<_> = std::fs::read_dir(d.path.join("out")).unwrap().collect();
        assert_eq!(got.len(), 1);
        let body = std::fs::read(got[0].as_ref().unwrap().path()).unwrap();
        // The message as delivered, plus the empty line netqmail's
        // qmail-pop3d sends before the terminator.
        let mut want = MSG1.to_vec();
        want.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want)
        );
        assert!(d.names("new").is_empty() && d.names("cur").is_empty());
    }
}

/// Commands pipelined in plaintext behind STLS are never acted upon
/// (the CVE-2011-0411 class of injection): here they reach the TLS layer
/// as garbage, the handshake fails and nobody is logged in.
const STLS_INJECT: &str = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
f = s.makefile("rb", buffering=0)
print(f.readline().decode().strip().split(" ")[0])
s.sendall(b"STLS\r\nUSER joe\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n")
print(f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=sys.argv[2])
try:
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.sendall(b"STAT\r\n")
    print("reply", t.recv(100))
except (ssl.SSLError, OSError):
    print("handshake failed")
"#;

#[test]
fn plaintext_pipelined_after_stls_is_not_executed() {
    let Some(ts) = tcpserver() else {
        eprintln!(
            "skipping: no tcpserver (cargo test --workspace builds ours; or install ucspi-tcp)"
        );
        return;
    };
    if !have("python3") || !have("openssl") {
        eprintln!("skipping: python3 or openssl not installed");
        return;
    }
    let d = Dir::new("inject");
    d.deliver("new", "1.1.host", MSG1, 10);
    let cert = make_cert(&d);
    let srv = Server::start(&ts, &d.chain(), &d.path);
    let out = testkit::run_with_input(
        Command::new("python3")
            .args(["-c", STLS_INJECT, &srv.port.to_string()])
            .arg(&cert),
        b"",
        Duration::from_secs(60),
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out, "+OK\n+OK begin TLS negotiation\nhandshake failed\n");
    assert!(!d.path.join("timestamp").exists(), "checkpassword ran");
    assert_eq!(d.names("new"), ["1.1.host"]);
}
