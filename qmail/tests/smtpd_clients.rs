//! qmail-smtpd behind tcpserver, driven by real clients: swaks (with
//! pipelining) and Python's smtplib (EHLO features, 8BITMIME, SIZE), and
//! relay control through a tcprules entry setting RELAYCLIENT.

mod smtpd_support;
use smtpd_support::*;

fn setup(tag: &str) -> Option<(Home, std::path::PathBuf)> {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver (build the tcpserver package or install ucspi-tcp)");
        return None;
    };
    let h = Home::new(tag);
    h.control("rcpthosts", "example.org\n");
    Some((h, dir))
}

#[test]
fn swaks_pipelines_a_message_into_the_queue() {
    if !have("swaks") {
        eprintln!("skipping: swaks not installed");
        return;
    }
    let Some((h, dir)) = setup("swaks") else {
        return;
    };
    let srv = Server::start(&h, &dir, None, &["qmail-smtpd"]);
    let port = srv.port.to_string();
    let (out, code) = client(
        &[
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--pipeline",
            "--helo",
            "client.test",
            "--from",
            "a@b.test",
            "--to",
            "u@example.org,v@example.org",
            "--header",
            "Subject: piped",
            "--body",
            "line one\n.leading dot\n",
        ],
        b"",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("<-  250-PIPELINING"), "{out}");
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let m = String::from_utf8_lossy(&q[0].0);
    assert!(m.contains("Subject: piped\n"), "{m}");
    assert!(m.contains("\nline one\n.leading dot\n"), "{m}");
    assert!(
        m.contains("(HELO client.test) (127.0.0.1)\n  by localhost with SMTP;"),
        "{m}"
    );
    assert!(q[0]
        .1
        .ends_with(b"Fa@b.test\0Tu@example.org\0Tv@example.org\0"));
}

const SMTPLIB: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
code, _ = s.ehlo('py.test')
print(code, sorted(s.esmtp_features.keys()), s.esmtp_features.get('size'))
msg = 'Subject: caf\u00e9\r\n\r\nna\u00efve 8-bit body\r\n'.encode('utf-8')
r = s.sendmail('a@b.test', ['u@example.org'], msg, mail_options=['BODY=8BITMIME', 'SIZE=%d' % len(msg)])
print('refused', r)
try:
    s.sendmail('a@b.test', ['x@far.test'], b'x\r\n')
except smtplib.SMTPRecipientsRefused as e:
    print('relay', e.recipients['x@far.test'][0], e.recipients['x@far.test'][1].decode())
s.quit()
"#;

#[test]
fn python_smtplib_sees_the_extensions_and_sends_8bit() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let Some((h, dir)) = setup("smtplib") else {
        return;
    };
    h.control("databytes", "100000\n");
    let srv = Server::start(&h, &dir, None, &["qmail-smtpd"]);
    let port = srv.port.to_string();
    let (out, code) = client(&["python3", "-c", SMTPLIB, &port], b"");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("250 ['8bitmime', 'pipelining', 'size'] 100000"),
        "{out}"
    );
    assert!(out.contains("refused {}"), "{out}");
    assert!(
        out.contains("relay 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
        "{out}"
    );
    let q = h.queued();
    assert_eq!(q.len(), 1);
    assert!(q[0]
        .0
        .ends_with("Subject: café\n\nnaïve 8-bit body\n".as_bytes()));
}

fn relay_attempt(port: u16) -> String {
    let mut c = std::process::Command::new("timeout");
    c.args([
        "30",
        "python3",
        "-c",
        &format!(
            "import socket\ns=socket.create_connection(('127.0.0.1',{port}))\n\
         s.sendall(b'MAIL FROM:<a@b>\\r\\nRCPT TO:<x@far.test>\\r\\nQUIT\\r\\n')\n\
         d=b''\nwhile True:\n  b=s.recv(4096)\n  if not b: break\n  d+=b\nprint(d.decode())"
        ),
    ]);
    let (out, _) = session(c, b"");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn tcprules_entry_allows_relaying_and_its_absence_refuses() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let Some((h, dir)) = setup("rules") else {
        return;
    };
    let cdb = tcprules(&h, &dir, "127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n");
    let srv = Server::start(&h, &dir, Some(&cdb), &["qmail-smtpd"]);
    let out = relay_attempt(srv.port);
    assert!(out.contains("250 ok\r\n250 ok\r\n221 "), "{out}");
    drop(srv);
    let cdb = tcprules(&h, &dir, "127.0.0.2:allow,RELAYCLIENT=\"\"\n:allow\n");
    let srv = Server::start(&h, &dir, Some(&cdb), &["qmail-smtpd"]);
    let out = relay_attempt(srv.port);
    assert!(
        out.contains(
            "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n"
        ),
        "{out}"
    );
}

#[test]
fn ipv6_peer_in_the_received_line() {
    if std::net::TcpListener::bind("[::1]:0").is_err() || !have("python3") {
        eprintln!("skipping: no IPv6 loopback or no python3");
        return;
    }
    // Debian's tcpserver has no IPv6: only ours will do.
    if !bindir().join("tcpserver").exists() {
        eprintln!("skipping: our tcpserver is not built (cargo build -p tcpserver)");
        return;
    }
    let h = Home::new("ipv6");
    h.control("rcpthosts", "example.org\n");
    let srv = Server::start_on("::1", &h, &bindir(), None, &["qmail-smtpd"]);
    let script = format!(
        "import smtplib\ns=smtplib.SMTP('::1',{},timeout=30)\ns.helo('v6.client')\n\
         s.sendmail('a@b',['u@example.org'],b'x\\r\\n')\ns.quit()",
        srv.port
    );
    let (out, code) = client(&["python3", "-c", &script], b"");
    assert_eq!(code, 0, "{out}");
    let q = h.queued();
    let m = String::from_utf8_lossy(&q[0].0);
    assert!(
        m.contains("Received: from unknown (HELO v6.client) (::1)\n  by localhost with SMTP; "),
        "{m}"
    );
}
