//! qmail-queued as its callers see it: messages reach the queue through it
//! with the same Received line, envelope and qp as through a started
//! qmail-queue; QMAILQUEUE and an untrusted server still mean starting a
//! program; qmail-start runs it beside qmail-send and it ends with it.

mod smtpd_support;
use smtpd_support::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Whether a qmail-queued listens for `h`'s queue.
fn listening(h: &Home) -> bool {
    let name = format!("@qmail-queue:{}", h.root().display());
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .any(|l| l.ends_with(&name))
}

/// qmail-queued for `h`, listening.
fn queued(h: &Home) -> Guard {
    let g = Guard(h.cmd("qmail-queued").spawn().unwrap());
    assert!(
        testkit::wait_until(Duration::from_secs(30), || listening(h)),
        "qmail-queued does not listen"
    );
    g
}

/// bin/qmail-queue replaced by a script that leaves `marker` and exits
/// `code`: a message queued anyway did not go through it.
fn replace_qmail_queue(h: &Home, marker: &str, code: i32) {
    let p = h.root().join("bin/qmail-queue");
    let _ = std::fs::remove_file(&p);
    std::fs::write(&p, format!("#!/bin/sh\ntouch {marker}\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const SESSION: &[u8] = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n\
DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";

fn home(tag: &str) -> Home {
    let h = Home::new(tag);
    h.control("rcpthosts", "example.org\n");
    h
}

/// The qp of the 250 after DATA.
fn qp(out: &[u8]) -> String {
    let l = lines(out);
    let ok = l
        .iter()
        .find(|l| l.contains(" qp "))
        .expect("no 250 with qp");
    ok.rsplit(' ').next().unwrap().to_string()
}

#[test]
fn a_message_goes_through_the_resident_writer_as_through_qmail_queue() {
    let h = home("resident");
    let _q = queued(&h);
    let marker = h.tmp.join("started");
    replace_qmail_queue(&h, &marker.display().to_string(), 81);
    let (out, code) = session(h.cmd("qmail-smtpd"), SESSION);
    assert_eq!(code, 0);
    let qp = qp(&out);
    assert!(!marker.exists(), "qmail-queue was started");
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let (mess, env) = &q[0];
    let uid = unsafe { libc::getuid() };
    let mess = String::from_utf8_lossy(mess);
    assert!(
        mess.starts_with(&format!("Received: (qmail {qp} invoked by uid {uid}); ")),
        "{mess}"
    );
    assert!(mess.ends_with("Subject: hi\n\nbody\n"), "{mess}");
    let expect = format!("u{uid}\0p{qp}\0Fa@b.example\0Tu@example.org\0");
    assert_eq!(String::from_utf8_lossy(env), expect);
}

#[test]
fn qmail_inject_uses_it_too_and_a_qmailqueue_replacement_still_runs() {
    let h = home("inject");
    let _q = queued(&h);
    let marker = h.tmp.join("started");
    replace_qmail_queue(&h, &marker.display().to_string(), 0);
    let mut inject = h.cmd("qmail-inject");
    inject.args(["-f", "a@b.example", "u@example.org"]);
    let (_, code) = session(inject, b"Subject: x\n\nbody\n");
    assert_eq!(code, 0);
    assert!(!marker.exists());
    assert_eq!(h.queued().len(), 1);
    let mut inject = h.cmd("qmail-inject");
    inject
        .args(["-f", "a@b.example", "u@example.org"])
        .env("QMAILQUEUE", "bin/qmail-queue");
    let (_, code) = session(inject, b"Subject: x\n\nbody\n");
    assert_eq!(code, 0);
    assert!(marker.exists(), "QMAILQUEUE was not run");
    assert_eq!(h.queued().len(), 1);
}

/// The children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_client_gone_mid_data_leaves_nothing_and_the_writer_goes_on() {
    let h = home("gone");
    let q = queued(&h);
    let input = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n\
DATA\r\nSubject: hi\r\n\r\nhalf a bo";
    let (_, code) = session(h.cmd("qmail-smtpd"), input);
    assert_ne!(code, 0);
    assert!(h.mess_empties());
    assert!(h.queued().is_empty());
    for d in ["pid", "intd", "todo"] {
        let n = std::fs::read_dir(h.root().join("queue").join(d))
            .unwrap()
            .count();
        assert_eq!(n, 0, "{d}");
    }
    // The child that had the half message queues the next ones whole.
    let pid = q.0.id();
    let first = children(pid);
    assert_eq!(first.len(), 1);
    // Waiting, it holds what the server inherited and its own socket to
    // the server, where the server holds its listener and its socket to
    // the child: one descriptor less. Nothing of a message stays open.
    let fds = |p: u32| std::fs::read_dir(format!("/proc/{p}/fd")).map_or(0, |d| d.count());
    let idle = || fds(first[0]) + 1 == fds(pid);
    let mut qps = Vec::new();
    for _ in 0..3 {
        let (out, code) = session(h.cmd("qmail-smtpd"), SESSION);
        assert_eq!(code, 0);
        qps.push(qp(&out));
        let ok = testkit::wait_until(Duration::from_secs(20), idle);
        assert!(ok, "{} {}", fds(first[0]), fds(pid));
    }
    assert_eq!(qps, vec![first[0].to_string(); 3]);
    assert_eq!(children(pid), first);
    let q = h.queued();
    assert_eq!(q.len(), 3);
    assert!(q.iter().all(|(m, _)| m.ends_with(b"Subject: hi\n\nbody\n")));
}

#[test]
fn a_second_server_for_the_same_queue_gives_up() {
    let h = home("second");
    let _q = queued(&h);
    let out = testkit::run_bounded(&mut h.cmd("qmail-queued"), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-queued: fatal: unable to bind socket: address already used\n"
    );
}

#[test]
fn a_server_of_another_user_is_not_trusted() {
    if !testkit::is_root() {
        eprintln!("skipped: needs root to make qmail-queue setuid to another user");
        return;
    }
    let h = home("untrusted");
    let _q = queued(&h);
    let marker = h.tmp.join("started");
    replace_qmail_queue(&h, &marker.display().to_string(), 0);
    // A setuid qmail-queue runs as its owner: a server running as
    // anyone else (root here) must not be handed messages.
    let p = h.root().join("bin/qmail-queue");
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (out, code) = session(h.cmd("qmail-smtpd"), SESSION);
    assert_eq!(code, 0);
    assert!(marker.exists(), "qmail-queue was not started");
    assert!(lines(&out).iter().any(|l| l.starts_with("250 ok ")));
    assert!(h.queued().is_empty());
}

#[test]
fn qmail_start_runs_it_and_it_ends_with_qmail_send() {
    let h = home("start");
    let log = h.tmp.join("send.log");
    let mut start = h.cmd("qmail-start");
    start
        .arg("./Maildir/")
        .env("PATH", testkit::path_with(&bindir()))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap());
    let mut g = Guard(start.spawn().unwrap());
    assert!(
        testkit::wait_until(Duration::from_secs(30), || listening(&h)),
        "qmail-start did not start qmail-queued"
    );
    let pid = g.0.id();
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(wait_deadline(&mut g.0, 60).is_some());
    assert!(
        testkit::wait_until(Duration::from_secs(30), || !listening(&h)),
        "qmail-queued outlived qmail-send"
    );
    for k in kids.split_whitespace() {
        testkit::kill_pid(k.parse().unwrap(), libc::SIGKILL);
    }
}
