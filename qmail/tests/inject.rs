//! qmail-inject, sendmail, predate, datemail and mailsubj as users call
//! them: rewritten headers printed with -n, and messages that reach a
//! Maildir through the running queue.

mod support_qeng;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support_qeng::*;

fn run_with_input(c: Command, input: &str) -> Output {
    run_env(c, &[], input)
}

fn run_env(mut c: Command, env: &[(&str, &str)], input: &str) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in [
        "QMAILINJECT",
        "QMAILNAME",
        "MAILNAME",
        "NAME",
        "QMAILHOST",
        "MAILHOST",
        "QMAILUSER",
        "MAILUSER",
        "QMAILSUSER",
        "QMAILSHOST",
        "QMAILDEFAULTDOMAIN",
        "QMAILDEFAULTHOST",
        "QMAILPLUSDOMAIN",
        "QMAILIDHOST",
        "QMAILMFTFILE",
        "QMAILQUEUE",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

fn inject_n(h: &Home, env: &[(&str, &str)], args: &[&str], input: &str) -> (String, Option<i32>) {
    let mut c = h.cmd("qmail-inject");
    c.arg("-n").args(args).env("USER", "me");
    let out = run_env(c, env, input);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// The output without the Date and Message-ID lines, which vary.
fn stable(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("Date: ") && !l.starts_with("Message-ID: <"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn headers_are_completed_and_rewritten() {
    let h = Home::new("inj");
    h.control("defaultdomain", "example.org\n");
    h.control("plusdomain", "example.org\n");
    let env = [("MAILUSER", "joe"), ("MAILNAME", "Joe Q. User")];
    let (out, code) = inject_n(
        &h,
        &env,
        &[],
        "To: bob, carol@far (Carol), dave@host+\nBcc: secret\nContent-Length: 3\nSubject: hi\n\nbody\n",
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        stable(&out),
        "Return-Path: <joe@example.org>\n\
         From: \"Joe Q. User\" <joe@example.org>\n\
         To: bob@example.org, carol@far.example.org (Carol), dave@host.example.org\n\
         Subject: hi\n\nbody\n"
    );
    let date = out.lines().find(|l| l.starts_with("Date: ")).unwrap();
    assert!(date.ends_with(" -0000"), "{date}");
    let id = out
        .lines()
        .find(|l| l.starts_with("Message-ID: <"))
        .unwrap();
    assert!(id.ends_with(".qmail@example.org>"), "{id}");
}

#[test]
fn missing_recipients_and_options() {
    let h = Home::new("inj2");
    let (out, _) = inject_n(
        &h,
        &[("QMAILINJECT", "cf")],
        &["-f", "list-owner"],
        "From: x@y\nSubject: s\n\nb\n",
    );
    assert_eq!(
        stable(&out),
        "Return-Path: <list-owner@example.org>\nFrom: me@example.org\nCc: recipient list not shown: ;\nSubject: s\n\nb\n"
    );
    // Resent messages get Resent- fields; a body without a blank line gets one.
    let (out, _) = inject_n(&h, &[], &[], "Resent-To: ann\nSubject: s\nnot a header\n");
    assert!(out.contains("Resent-From: me@example.org\n"), "{out}");
    assert!(
        out.contains("Resent-To: ann@example.org\nSubject: s\n\nnot a header\n"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("Resent-Date: ")));
}

#[test]
fn injected_mail_reaches_the_maildir() {
    let h = Home::new("inj3");
    let joe = add_joe(&h);
    let s = Stack::start(&h, &[]);
    let out = run_with_input(
        h.cmd("qmail-inject"),
        "To: joe\nSubject: via inject\n\nhello\n",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut c = h.cmd("sendmail");
    c.args(["-t", "-i", "-oi", "-f", "boss@example.org"]);
    let out = run_with_input(c, "To: joe@example.org\nSubject: via sendmail\n\nhi\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut c = h.cmd("mailsubj");
    c.args(["via mailsubj", "joe"]);
    assert_eq!(run_with_input(c, "text\n").status.code(), Some(0));
    let mut c = h.cmd("predate");
    c.args([h.root().join("bin/qmail-inject").to_str().unwrap(), "joe"]);
    assert_eq!(
        run_with_input(c, "Subject: via predate\n\nx\n")
            .status
            .code(),
        Some(0)
    );
    assert!(
        wait_until(Duration::from_secs(60), || maildir_new(&joe).len() == 4),
        "{}",
        s.log_text()
    );
    let all = maildir_new(&joe).join("\n=====\n");
    assert!(all.contains("Subject: via inject\n"));
    assert!(all.contains("Return-Path: <boss@example.org>\n"), "{all}");
    assert!(all.contains("From: boss@example.org\n"), "{all}");
    assert!(
        all.contains("Subject: via mailsubj\nTo: joe@example.org\n"),
        "{all}"
    );
    let pre = maildir_new(&joe)
        .into_iter()
        .find(|m| m.contains("via predate"))
        .unwrap();
    let date = pre
        .lines()
        .find(|l| l.starts_with("Date: "))
        .unwrap()
        .to_string();
    let zone = &date[date.len() - 5..];
    assert!(
        zone.starts_with(['+', '-']) && zone[1..].bytes().all(|c| c.is_ascii_digit()),
        "{date}"
    );
}

#[test]
fn queue_failure_is_reported_with_qmail_texts() {
    let h = Home::new("inj4");
    let mut c = h.cmd("qmail-inject");
    c.arg("joe");
    let out = run_env(c, &[("QMAILQUEUE", "/bin/false")], "Subject: x\n\n");
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-inject: fatal: qq temporary problem (#4.3.0)\n"
    );
    let script = h.dir.path().join("refuse");
    std::fs::write(&script, "#!/bin/sh\ncat >/dev/null\nexit 31\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = h.cmd("qmail-inject");
    c.arg("joe");
    let out = run_env(
        c,
        &[("QMAILQUEUE", script.to_str().unwrap())],
        "Subject: x\n\n",
    );
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-inject: fatal: mail server permanently rejected message (#5.3.0)\n"
    );
    let mut c = h.cmd("qmail-inject");
    c.arg("-z");
    assert_eq!(run_with_input(c, "").status.code(), Some(100));
}

#[test]
fn long_header_lines_and_nul_bytes_pass_through() {
    let h = Home::new("inj5");
    let long = "x".repeat(100 * 1024);
    let input = format!("X-Long: {long}\nSubject: s\n\nbody\0with nul\n");
    let (out, code) = inject_n(&h, &[], &["joe"], &input);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("X-Long: {long}\nSubject: s\n\nbody\0with nul\n")));
}

#[test]
fn sendmail_bp_runs_qmail_qread() {
    let h = Home::new("inj6");
    inject(&h, "Subject: a\n\n", "me@x.org", &["joe@example.org"]);
    let out = h.cmd("sendmail").arg("-bp").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Not yet preprocessed: qmail-qread lists only messages with info files.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = h.cmd("sendmail").arg("-bx").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n"
    );
}

#[test]
fn bad_option_is_reported_like_sgetopt() {
    let h = Home::new("inj7");
    let out = h.cmd("qmail-inject").arg("-z").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-inject: illegal option -- z\n"
    );
}
