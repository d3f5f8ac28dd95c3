//! SMTP AUTH in qmail-smtpd (`qmail-smtpd checkprogram subprogram`): the
//! announcement, PLAIN/LOGIN with swaks, CRAM-MD5 with Python's smtplib,
//! relaying after AUTH, and garbage in the exchange.

mod smtpd_support;
use smtpd_support::*;

/// A checkpassword stand-in: joe's password is "s3cret"; reads fd 3 and
/// runs the subprogram on success, as checkpassword does.
const CHECK: &str = r#"#!/usr/bin/env python3
import os, sys, hmac, hashlib
data = b''
while True:
    b = os.read(3, 4096)
    if not b: break
    data += b
user, secret, challenge = data.split(b'\0')[:3]
pw = {b'joe': b's3cret'}.get(user)
if pw is None:
    sys.exit(1)
if challenge:
    ok = hmac.compare_digest(hmac.new(pw, challenge, hashlib.md5).hexdigest().encode(), secret)
else:
    ok = hmac.compare_digest(pw, secret)
if not ok:
    sys.exit(1)
os.execvp(sys.argv[1], sys.argv[1:])
"#;

fn auth_home(tag: &str) -> (Home, std::path::PathBuf) {
    let h = Home::new(tag);
    h.control("rcpthosts", "example.org\n");
    let check = h.tmp.join("checkpw");
    std::fs::write(&check, CHECK).unwrap();
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (h, check)
}

fn smtpd_auth(h: &Home, check: &std::path::Path) -> std::process::Command {
    let mut c = h.cmd("qmail-smtpd");
    c.arg(check).arg("true");
    c
}

#[test]
fn auth_is_announced_only_when_configured() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let (h, check) = auth_home("announce");
    let (out, _) = session(smtpd_auth(&h, &check), b"EHLO x\r\nQUIT\r\n");
    assert_eq!(
        lines(&out)[1..7],
        [
            "250-mx.example.org",
            "250-AUTH LOGIN CRAM-MD5 PLAIN",
            "250-AUTH=LOGIN CRAM-MD5 PLAIN",
            "250-PIPELINING",
            "250-8BITMIME",
            "250 SIZE 0"
        ]
    );
    let (out, _) = session(
        h.cmd("qmail-smtpd"),
        b"EHLO x\r\nAUTH PLAIN AGpvZQBzM2NyZXQ=\r\n",
    );
    assert!(!String::from_utf8_lossy(&out).contains("AUTH"));
    assert_eq!(lines(&out).last().unwrap(), "502 unimplemented (#5.5.1)");
    let mut c = smtpd_auth(&h, &check);
    c.env("SMTPAUTH", "-");
    let (out, _) = session(c, b"EHLO x\r\nQUIT\r\n");
    assert!(!String::from_utf8_lossy(&out).contains("AUTH"));
}

#[test]
fn plain_and_login_by_hand_and_garbage() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let (h, check) = auth_home("byhand");
    // \0joe\0s3cret, then joe / s3cret for LOGIN.
    let input = b"EHLO x\r\nAUTH FOO\r\nAUTH PLAIN !!!\r\nAUTH LOGIN\r\n*\r\n\
AUTH PLAIN AGpvZQB3cm9uZw==\r\nAUTH PLAIN AG5vYm9keQBzM2NyZXQ=\r\nAUTH PLAIN AGpvZQA=\r\n\
MAIL FROM:<a@b>\r\nAUTH LOGIN\r\nRSET\r\nAUTH LOGIN\r\nam9l\r\nczNjcmV0\r\nAUTH PLAIN AGpvZQBzM2NyZXQ=\r\n\
MAIL FROM:<joe@b>\r\nRCPT TO:<x@far.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    let (out, code) = session(smtpd_auth(&h, &check), input);
    assert_eq!(code, 0);
    let l = lines(&out);
    assert_eq!(
        l[7..],
        [
            "504 auth type unimplemented (#5.5.1)",
            "501 malformed auth input (#5.5.4)",
            "334 VXNlcm5hbWU6",
            "501 auth exchange canceled (#5.0.0)",
            "535 authentication failed (#5.7.1)",
            "535 authentication failed (#5.7.1)",
            "501 malformed auth input (#5.5.4)",
            "250 ok",
            "503 no auth during mail transaction (#5.5.0)",
            "250 flushed",
            "334 VXNlcm5hbWU6",
            "334 UGFzc3dvcmQ6",
            "235 ok, go ahead (#2.0.0)",
            "503 you're already authenticated (#5.5.0)",
            "250 ok",
            "250 ok",
            "354 go ahead",
            l[24].as_str(),
            "221 mx.example.org"
        ]
    );
    assert!(l[24].starts_with("250 ok "));
    let q = h.queued();
    let m = String::from_utf8_lossy(&q[0].0);
    assert!(
        m.contains("Received: from unknown (HELO x) (joe@127.0.0.1)\n"),
        "{m}"
    );
    assert!(q[0].1.ends_with(b"Tx@far.test\0"));
}

/// SMTPAUTH=`!` (set per client by tcprules in the SMTP-AUTH patch): no
/// MAIL before a successful AUTH, not even to a local recipient; after AUTH
/// the session goes on as usual.
#[test]
fn auth_required_refuses_mail_until_authenticated() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let (h, check) = auth_home("required");
    let input = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<joe@example.org>\r\n\
AUTH PLAIN AGpvZQB3cm9uZw==\r\nMAIL FROM:<a@b>\r\nAUTH PLAIN AGpvZQBzM2NyZXQ=\r\n\
MAIL FROM:<joe@b>\r\nRCPT TO:<x@far.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    let mut c = smtpd_auth(&h, &check);
    c.env("SMTPAUTH", "!");
    let (out, code) = session(c, input);
    assert_eq!(code, 0);
    let l = lines(&out);
    assert!(l[..8].contains(&"250-AUTH LOGIN CRAM-MD5 PLAIN".to_string()));
    assert_eq!(
        l[7..13],
        [
            "530 authentication required (#5.7.1)",
            "503 MAIL first (#5.5.1)",
            "535 authentication failed (#5.7.1)",
            "530 authentication required (#5.7.1)",
            "235 ok, go ahead (#2.0.0)",
            "250 ok",
        ]
    );
    assert!(l[15].starts_with("250 ok "), "{l:?}");
    assert_eq!(h.queued().len(), 1);
    // Without a checkprogram there is nothing to authenticate against, so
    // `!` cannot lock every client out: the original session applies.
    let mut c = h.cmd("qmail-smtpd");
    c.env("SMTPAUTH", "!");
    let (out, _) = session(c, b"HELO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
    assert_eq!(lines(&out)[2], "250 ok");
}

#[test]
fn swaks_plain_and_login_relay_after_auth() {
    if !have("swaks") || !have("python3") {
        eprintln!("skipping: swaks or python3 not installed");
        return;
    }
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return;
    };
    let (h, check) = auth_home("swaksauth");
    let check_s = check.to_str().unwrap().to_string();
    let srv = Server::start(&h, &dir, None, &["qmail-smtpd", &check_s, "true"]);
    let port = srv.port.to_string();
    for mech in ["PLAIN", "LOGIN"] {
        let (out, code) = client(
            &[
                "swaks",
                "--server",
                "127.0.0.1",
                "--port",
                &port,
                "--auth",
                mech,
                "--auth-user",
                "joe",
                "--auth-password",
                "s3cret",
                "--from",
                "joe@b.test",
                "--to",
                "x@far.test",
            ],
            b"",
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("<-  235 ok, go ahead (#2.0.0)"), "{out}");
    }
    let (out, code) = client(
        &[
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--auth",
            "PLAIN",
            "--auth-user",
            "joe",
            "--auth-password",
            "wrong",
            "--from",
            "joe@b.test",
            "--to",
            "x@far.test",
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(out.contains("535 authentication failed (#5.7.1)"), "{out}");
    assert_eq!(h.queued().len(), 2);
}

const CRAM: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.ehlo('py')
for user, pw in (('nobody', 's3cret'), ('joe', 'bad')):
    try:
        s.login(user, pw)
    except smtplib.SMTPAuthenticationError as e:
        print('refused', e.smtp_code, e.smtp_error.decode())
s.user, s.password = 'joe', 's3cret'
code, msg = s.auth('CRAM-MD5', s.auth_cram_md5)
print('cram', code, msg.decode())
s.sendmail('joe@b.test', ['x@far.test'], b'Subject: c\r\n\r\nx\r\n')
s.quit()
"#;

#[test]
fn smtplib_cram_md5() {
    if !have("python3") {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return;
    };
    let (h, check) = auth_home("cram");
    let check_s = check.to_str().unwrap().to_string();
    let srv = Server::start(&h, &dir, None, &["qmail-smtpd", &check_s, "true"]);
    let (out, code) = client(&["python3", "-c", CRAM, &srv.port.to_string()], b"");
    assert_eq!(code, 0, "{out}");
    // Unknown user and wrong password get the same answer.
    assert_eq!(
        out.matches("refused 535 authentication failed (#5.7.1)")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("cram 235 ok, go ahead (#2.0.0)"), "{out}");
    assert_eq!(h.queued().len(), 1);
}
