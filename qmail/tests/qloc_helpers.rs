//! The dot-qmail helpers as a .qmail line runs them: preline, bouncesaying,
//! except, condredirect and forward (through a recording qmail-queue), and
//! the maildir tools maildirmake, maildir2mbox and maildirwatch.

mod qloc_support;

use qloc_support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MSG: &[u8] = b"Subject: s\n\nFrom here\nbody\n";
const DT: &str = "Delivered-To: joe@example.com\n";

fn helper(name: &str, q: &TempDir, args: &[&str]) -> Command {
    let path = match name {
        "preline" => env!("CARGO_BIN_EXE_preline"),
        "bouncesaying" => env!("CARGO_BIN_EXE_bouncesaying"),
        "except" => env!("CARGO_BIN_EXE_except"),
        "condredirect" => env!("CARGO_BIN_EXE_condredirect"),
        "forward" => env!("CARGO_BIN_EXE_forward"),
        "maildirmake" => env!("CARGO_BIN_EXE_maildirmake"),
        "maildir2mbox" => env!("CARGO_BIN_EXE_maildir2mbox"),
        _ => env!("CARGO_BIN_EXE_maildirwatch"),
    };
    let mut c = bin(path, q.path());
    c.args(args);
    c
}

#[test]
fn preline_puts_the_lines_in_front() {
    let q = TempDir::new("pre");
    let with_env = |args: &[&str]| {
        let mut c = helper("preline", &q, args);
        c.env("UFLINE", "From a Thu Jan 01 00:00:00 1970\n")
            .env("RPLINE", "Return-Path: <a>\n")
            .env("DTLINE", DT);
        run_with(c, MSG)
    };
    let o = with_env(&["cat"]);
    let want = [
        &b"From a Thu Jan 01 00:00:00 1970\nReturn-Path: <a>\n"[..],
        DT.as_bytes(),
        MSG,
    ]
    .concat();
    assert_eq!((o.code, o.stdout), (0, want));
    let o = with_env(&["-fd", "cat"]);
    assert_eq!(o.stdout, [&b"Return-Path: <a>\n"[..], MSG].concat());
    assert_eq!(with_env(&["sh", "-c", "cat >/dev/null; exit 7"]).code, 7);
    let usage = "preline: usage: preline cmd [ arg ... ]\n";
    let o = with_env(&[]);
    assert_eq!((o.code, o.err().as_str()), (100, usage));
    let o = run_with(helper("preline", &q, &["cat"]), MSG);
    assert_eq!((o.code, o.err().as_str()), (100, usage));
    let o = with_env(&["/nonexistent/prog"]);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            100,
            "preline: fatal: unable to run /nonexistent/prog: file does not exist\n"
        )
    );
}

#[test]
fn bouncesaying_and_except() {
    let q = TempDir::new("bs");
    let o = run_with(helper("bouncesaying", &q, &["go away"]), MSG);
    assert_eq!((o.code, o.err().as_str()), (100, "go away\n"));
    let o = run_with(helper("bouncesaying", &q, &["go away", "false"]), MSG);
    assert_eq!((o.code, o.err().as_str()), (0, ""));
    let o = run_with(helper("bouncesaying", &q, &["go away", "true"]), MSG);
    assert_eq!((o.code, o.err().as_str()), (100, "go away\n"));
    let o = run_with(
        helper("bouncesaying", &q, &["x", "sh", "-c", "exit 111"]),
        MSG,
    );
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "bouncesaying: fatal: temporary child error\n")
    );
    let o = run_with(helper("bouncesaying", &q, &[]), MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            100,
            "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]\n"
        )
    );
    assert_eq!(run_with(helper("except", &q, &["true"]), MSG).code, 100);
    assert_eq!(run_with(helper("except", &q, &["false"]), MSG).code, 0);
    let o = run_with(helper("except", &q, &["sh", "-c", "exit 111"]), MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "except: fatal: temporary child error\n")
    );
    let o = run_with(helper("except", &q, &[]), MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (100, "except: usage: except program [ arg ... ]\n")
    );
}

#[test]
fn condredirect_and_forward_go_through_qmail_queue() {
    let q = TempDir::new("cr");
    let qq = fake_queue(&q, 0);
    let cond = |prog: &str| {
        let mut c = helper("condredirect", &q, &["new@x.example", prog]);
        c.env("QMAILQUEUE", &qq)
            .env("SENDER", "s@y.example")
            .env("DTLINE", DT);
        run_with(c, MSG)
    };
    let o = cond("false");
    assert_eq!((o.code, o.err().as_str()), (0, ""));
    assert!(!q.path().join("qq.msg").exists());
    let o = cond("true");
    assert_eq!(o.code, 99);
    assert!(o.err().starts_with("condredirect: qp "), "{}", o.err());
    assert_eq!(
        fs::read(q.path().join("qq.msg")).unwrap(),
        [DT.as_bytes(), MSG].concat()
    );
    assert_eq!(
        fs::read(q.path().join("qq.env")).unwrap(),
        b"Fs@y.example\0Tnew@x.example\0\0"
    );
    let mut c = helper("forward", &q, &["a@b", "c@d"]);
    c.env("QMAILQUEUE", &qq)
        .env("NEWSENDER", "owner@z")
        .env("DTLINE", DT);
    let o = run_with(c, MSG);
    assert_eq!(o.code, 0);
    assert!(o.err().starts_with("forward: qp "), "{}", o.err());
    assert_eq!(
        fs::read(q.path().join("qq.env")).unwrap(),
        b"Fowner@z\0Ta@b\0Tc@d\0\0"
    );
    let o = run_with(helper("forward", &q, &["a@b"]), MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (100, "forward: fatal: NEWSENDER not set\n")
    );
    let bad = fake_queue(&q, 71);
    let mut c = helper("forward", &q, &["a@b"]);
    c.env("QMAILQUEUE", &bad)
        .env("NEWSENDER", "o")
        .env("DTLINE", DT);
    let o = run_with(c, MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "forward: fatal: mail server temporarily rejected message (#4.3.0)\n"
        )
    );
}

#[test]
fn maildirmake_makes_a_private_maildir() {
    let q = TempDir::new("mm");
    let md = q.path().join("Maildir");
    let o = run_with(helper("maildirmake", &q, &[md.to_str().unwrap()]), b"");
    assert_eq!(o.code, 0);
    for sub in ["", "tmp", "new", "cur"] {
        let m = fs::metadata(md.join(sub)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{sub}");
    }
    let o = run_with(helper("maildirmake", &q, &[md.to_str().unwrap()]), b"");
    assert_eq!(
        (o.code, o.err()),
        (
            111,
            format!(
                "maildirmake: fatal: unable to mkdir {}: file already exists\n",
                md.display()
            )
        )
    );
    let o = run_with(helper("maildirmake", &q, &[]), b"");
    assert_eq!(
        (o.code, o.err().as_str()),
        (100, "maildirmake: usage: maildirmake name\n")
    );
}

/// Put `text` into maildir `md`/`sub` as `name`, last modified at `when`.
fn old_message(md: &std::path::Path, sub: &str, name: &str, text: &[u8], when: i64) {
    let p = md.join(sub).join(name);
    fs::write(&p, text).unwrap();
    let ok = Command::new("touch")
        .arg("-d")
        .arg(format!("@{when}"))
        .arg(&p)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn maildir2mbox_appends_oldest_first_and_empties_the_maildir() {
    let q = TempDir::new("m2m");
    let md = q.maildir("Maildir");
    old_message(
        &md,
        "cur",
        "2.x",
        b"Return-Path: <>\n\nsecond\n",
        1_000_000_100,
    );
    old_message(
        &md,
        "new",
        "1.x",
        b"Return-Path: <a b@c>\nSubject: s\n\nFrom x\nfirst",
        1_000_000_000,
    );
    let mbox = q.write("mbox", b"From old Thu Jan 01 00:00:00 1970\n\nold\n\n");
    let mut c = helper("maildir2mbox", &q, &[]);
    c.env("MAILDIR", &md)
        .env("MAIL", &mbox)
        .env("MAILTMP", q.path().join("mbox.tmp"));
    let o = run_with(c, b"");
    assert_eq!((o.code, o.err().as_str()), (0, ""));
    let got = String::from_utf8(fs::read(&mbox).unwrap()).unwrap();
    assert_eq!(
        got,
        "From old Thu Jan 01 00:00:00 1970\n\nold\n\nFrom a-b@c Sun Sep 09 01:46:40 2001\nReturn-Path: <a b@c>\nSubject: s\n\n>From x\nfirst\n\nFrom MAILER-DAEMON Sun Sep 09 01:48:20 2001\nReturn-Path: <>\n\nsecond\n\n"
    );
    assert!(files(&md.join("new")).is_empty() && files(&md.join("cur")).is_empty());
    let o = run_with(helper("maildir2mbox", &q, &[]), b"");
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "maildir2mbox: fatal: MAIL not set\n")
    );
}

#[test]
fn maildirwatch_shows_a_summary() {
    let q = TempDir::new("mw");
    let md = q.maildir("Maildir");
    old_message(
        &md,
        "new",
        "1.x",
        b"Return-Path: <s@x>\nDelivered-To: joe@y\nFrom: Sam <s@x>\nSubject: Hi\n\nbody\n",
        1_000_000_000,
    );
    let out = q.path().join("screen");
    let mut c = helper("maildirwatch", &q, &[]);
    c.env("MAILDIR", &md)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(Stdio::null());
    let _g = spawn(c);
    let want = b"\x1b[;H\x1b[;JFROM <s@x> TO <joe@y>\n\x1b[1mFrom: Sam <s@x>\x1b[0m\nHi/body/\n\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = fs::read(&out).unwrap_or_default();
        if got.len() >= want.len() {
            assert_eq!(got, want);
            break;
        }
        assert!(Instant::now() < deadline, "no screen: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
