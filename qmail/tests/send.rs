//! qmail-start, qmail-send, qmail-lspawn, qmail-rspawn and qmail-clean
//! together on a private home: Maildir delivery through qmail-local, the
//! exact log lines, bounces, double and triple bounces, virtual domains,
//! the remote channel, retries on SIGALRM, SIGTERM and crash recovery.

mod support_qeng;
use std::time::Duration;
use support_qeng::*;

#[test]
fn delivers_to_maildir_with_qmail_send_log_lines() {
    let h = Home::new("deliver");
    let joe = add_joe(&h);
    let mut s = Stack::start(&h, &[]);
    assert!(s.log_text().starts_with("status: local 0/10 remote 0/20\n"));
    inject(
        &h,
        "Subject: one\n\nhello\n",
        "me@x.org",
        &["joe@example.org"],
    );
    let log = s.wait_log("end msg ");
    let id = log
        .split("new msg ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let uid = unsafe { libc::getuid() };
    assert!(log.contains(&format!("info msg {id}: bytes ")));
    assert!(log.contains(" from <me@x.org> qp "));
    assert!(log.contains(&format!(" uid {uid}\n")));
    assert!(log.contains(&format!(
        "starting delivery 1: msg {id} to local joe@example.org\nstatus: local 1/10 remote 0/20\n"
    )));
    assert!(log.contains("delivery 1: success: did_1+0+0/\nstatus: local 0/10 remote 0/20\n"));
    assert!(log.contains(&format!("end msg {id}\n")));
    let mail = maildir_new(&joe);
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Subject: one\n\nhello\n"));
    assert!(mail[0].contains("Delivered-To: joe@example.org\n"));
    assert!(wait_until(Duration::from_secs(30), || h
        .queue_files("mess")
        .is_empty()));
    assert!(h.queue_files("info").is_empty() && h.queue_files("todo").is_empty());
    assert_eq!(s.stop(), Some(0));
    assert!(s.log_text().ends_with("status: exiting\n"));
}

#[test]
fn deliveries_go_on_when_qmail_done_dies() {
    let h = Home::new("nodone");
    let joe = add_joe(&h);
    let mut s = Stack::start(&h, &[]);
    let done = wait_until(Duration::from_secs(10), || {
        s.child_named("qmail-done").is_some()
    });
    assert!(done, "qmail-send has no qmail-done child");
    let pid = s.child_named("qmail-done").unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    for i in 0..3 {
        let body = format!("Subject: {i}\n\nhello\n");
        inject(&h, &body, "me@x.org", &["joe@example.org"]);
    }
    let drained = wait_until(Duration::from_secs(60), || {
        maildir_new(&joe).len() == 3
            && ["mess", "info", "local", "todo"]
                .iter()
                .all(|d| h.queue_files(d).is_empty())
    });
    let log = s.log_text();
    assert!(drained, "not delivered and cleaned up:\n{log}");
    assert!(log.contains("warning: lost qmail-done, carrying on without it\n"));
    assert_eq!(log.matches("end msg ").count(), 3, "{log}");
    assert_eq!(s.stop(), Some(0));
}

#[test]
fn failures_bounce_in_qsbmf_and_double_and_triple_bounces() {
    let h = Home::new("bounce");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-bad"), "|echo No such luck.; exit 100\n").unwrap();
    h.control("doublebounceto", "joe\n");
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: b\n\nx\n",
        "joe@example.org",
        &["joe-bad@example.org"],
    );
    s.wait_log("bounce msg ");
    assert!(wait_until(Duration::from_secs(60), || maildir_new(&joe)
        .len()
        == 1));
    let b = &maildir_new(&joe)[0];
    assert!(b.contains("From: MAILER-DAEMON@example.org\n"), "{b}");
    assert!(b.contains("To: joe@example.org\nSubject: failure notice\n\nHi. This is the qmail-send program at example.org.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<joe-bad@example.org>:\nNo such luck.\n"), "{b}");
    assert!(
        b.contains(
            "--- Below this line is a copy of the message.\n\nReturn-Path: <joe@example.org>\n"
        ),
        "{b}"
    );
    assert!(b.contains("Subject: b\n\nx\n"));
    // A bounce that bounces goes to doublebounceto.
    inject(
        &h,
        "Subject: d\n\nx\n",
        "joe-bad@example.org",
        &["joe-bad@example.org"],
    );
    assert!(wait_until(Duration::from_secs(60), || maildir_new(&joe)
        .len()
        == 2));
    let all = maildir_new(&joe).join("\n====\n");
    assert!(all.contains("I tried to deliver a bounce message to this address, but the bounce bounced!\n\n<joe-bad@example.org>:\n"), "{all}");
    assert!(
        all.contains("--- Below this line is the original bounce.\n\nReturn-Path: <>\n"),
        "{all}"
    );
    // A double bounce that fails is discarded. qmail-send stops the
    // qmail way (TERM: deliveries in hand are finished and recorded), so
    // the restart redelivers nothing.
    h.control("doublebounceto", "joe-bad\n");
    let mut s = s;
    s.stop();
    drop(s);
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: t\n\nx\n",
        "joe-bad@example.org",
        &["joe-bad@example.org"],
    );
    s.wait_log("triple bounce: discarding bounce/");
    assert_eq!(maildir_new(&joe).len(), 2);
}

#[test]
fn virtual_domains_and_remote_channel() {
    let h = Home::new("virt");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-v-default"), "./Maildir/\n").unwrap();
    h.control("virtualdomains", "virt.org:joe-v\n");
    let remote = h.dir.path().join("fake-remote");
    std::fs::write(
        &remote,
        "#!/bin/sh\ncat >/dev/null\nprintf 'r\\0K%s accepted message./Remote host said: 250 ok\\n\\0' \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Stack::start(&h, &[("QMAILREMOTE", remote.to_str().unwrap())]);
    inject(
        &h,
        "Subject: v\n\nx\n",
        "me@x.org",
        &["anne@virt.org", "bob@far.net"],
    );
    let log = s.wait_log("end msg ");
    assert!(log.contains(" to local joe-v-anne@virt.org\n"), "{log}");
    assert!(log.contains(" to remote bob@far.net\n"), "{log}");
    assert!(
        log.contains(": success: far.net_accepted_message./Remote_host_said:_250_ok/\n"),
        "{log}"
    );
    let mail = maildir_new(&joe);
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].contains("Delivered-To: joe-v-anne@virt.org\n"),
        "{}",
        mail[0]
    );
}

#[test]
fn deferral_then_retry_on_sigalrm() {
    let h = Home::new("retry");
    let joe = add_joe(&h);
    let flag = h.dir.path().join("open");
    std::fs::write(
        joe.join(".qmail-later"),
        format!(
            "|test -e {} || {{ echo Not yet.; exit 111; }}\n./Maildir/\n",
            flag.display()
        ),
    )
    .unwrap();
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: r\n\nx\n",
        "me@x.org",
        &["joe-later@example.org"],
    );
    s.wait_log("delivery 1: deferral: Not_yet./\n");
    std::fs::write(&flag, "").unwrap();
    s.signal(libc::SIGALRM);
    s.wait_log("delivery 2: success: ");
    s.wait_log("end msg ");
    assert_eq!(maildir_new(&joe).len(), 1);
}

/// qmail-send and its daemons killed -9 while messages are being delivered,
/// then restarted: every message delivered at least once and none
/// half-written. crash.rs does the same at the size (2,000
/// messages, the whole process group killed).
#[test]
fn crash_of_qmail_send_loses_nothing() {
    let h = Home::new("crash");
    let joe = add_joe(&h);
    let n = 300;
    // Four injectors at once: the queue is built for concurrent writers.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let h = &h;
            scope.spawn(move || {
                for i in (t..n).step_by(4) {
                    inject(
                        h,
                        &format!("Subject: m{i}\n\nbody {i}\n"),
                        "me@x.org",
                        &["joe@example.org"],
                    );
                }
            });
        }
    });
    let started = std::time::Instant::now();
    let mut s = Stack::start(&h, &[]);
    assert!(wait_until(Duration::from_secs(120), || maildir_new(&joe)
        .len()
        > 5));
    s.crash();
    let before = maildir_new(&joe).len();
    assert!(before < n, "the crash came after every delivery");
    eprintln!("crashed after {before} deliveries, {:?}", started.elapsed());
    let s = Stack::start(&h, &[]);
    // Done when nothing is left to preprocess or deliver. A crash between
    // removing info/N and qmail-clean's removal of mess/N leaves mess/N
    // behind until qmail-send's 36-hour cleanup, as in qmail.
    assert!(
        wait_until(Duration::from_secs(600), || ["todo", "info", "local"]
            .iter()
            .all(|d| h.queue_files(d).is_empty())),
        "{}",
        s.log_text()
    );
    let mail = maildir_new(&joe);
    for i in 0..n {
        let subj = format!("Subject: m{i}\n\nbody {i}\n");
        assert!(mail.iter().any(|m| m.ends_with(&subj)), "m{i} lost");
    }
    assert!(
        mail.iter().all(|m| m.contains("\n\nbody ")),
        "half-written message"
    );
}

#[test]
fn second_qmail_send_refuses_to_start() {
    let h = Home::new("mutex");
    let _s = Stack::start(&h, &[]);
    let log = h.dir.path().join("second.log");
    let st = h
        .cmd("qmail-start")
        .arg("./Maildir/")
        .stdout(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let _ = st;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "alert: cannot start: qmail-send is already running\n");
}

#[test]
fn queuelifetime_turns_deferral_into_bounce() {
    let h = Home::new("lifetime");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-later"), "|echo Busy.; exit 111\n").unwrap();
    h.control("queuelifetime", "0\n");
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: old\n\nx\n",
        "joe@example.org",
        &["joe-later@example.org"],
    );
    // The message's birth is when qmail-send took it from todo/; once a
    // second older than queuelifetime (0), the next deferral is final.
    s.wait_log("delivery 1: deferral: Busy./\n");
    std::thread::sleep(Duration::from_millis(1100));
    s.signal(libc::SIGALRM);
    s.wait_log("delivery 2: failure: Busy./I'm_not_going_to_try_again;_this_message_has_been_in_the_queue_too_long./\n");
    s.wait_log("bounce msg ");
    assert!(wait_until(Duration::from_secs(60), || maildir_new(&joe)
        .len()
        == 1));
    assert!(maildir_new(&joe)[0].contains("<joe-later@example.org>:\nBusy.\nI'm not going to try again; this message has been in the queue too long.\n"));
}

#[test]
fn a_queue_of_waiting_messages_is_taken_in_batches_without_losing_order() {
    // 100 messages queued while qmail-send is down: its qmail-todo child takes
    // them in batches, and each is still announced before its delivery.
    let h = Home::new("batch");
    let joe = add_joe(&h);
    for i in 0..100 {
        inject(
            &h,
            &format!("Subject: {i}\n\nx\n"),
            "me@x.org",
            &["joe@example.org"],
        );
    }
    assert_eq!(h.queue_files("todo").len(), 100);
    let s = Stack::start(&h, &[]);
    assert!(wait_until(Duration::from_secs(60), || maildir_new(&joe)
        .len()
        == 100));
    assert!(wait_until(Duration::from_secs(30), || s
        .log_text()
        .matches("end msg ")
        .count()
        == 100));
    let log = s.log_text();
    for line in log.lines().filter(|l| l.starts_with("new msg ")) {
        let id = &line["new msg ".len()..];
        let new = log.find(&format!("{line}\n")).unwrap();
        let start = log.find(&format!(": msg {id} to local ")).unwrap();
        let end = log.find(&format!("end msg {id}\n")).unwrap();
        assert!(new < start && start < end, "msg {id} out of order:\n{log}");
    }
    assert_eq!(log.matches("new msg ").count(), 100);
    // "end msg" is logged before info/N goes, as in qmail.
    assert!(wait_until(Duration::from_secs(30), || h
        .queue_files("todo")
        .is_empty()
        && h.queue_files("info").is_empty()));
}

#[test]
fn deliveries_run_as_qmail_local_with_default_signals() {
    // qmail-lspawn runs qmail-local's code in its child without an exec:
    // the process still looks like qmail-local and gives its programs the
    // signal state an exec'd qmail-local would.
    let h = Home::new("asqloc");
    let joe = add_joe(&h);
    std::fs::write(
        joe.join(".qmail-sig"),
        "|cat /proc/$PPID/comm > comm; grep ^SigIgn /proc/self/status > sigign\n",
    )
    .unwrap();
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: s\n\nx\n",
        "me@x.org",
        &["joe-sig@example.org"],
    );
    let log = s.wait_log("end msg ");
    assert!(log.contains("delivery 1: success: did_0+0+1/\n"), "{log}");
    assert_eq!(
        std::fs::read_to_string(joe.join("comm")).unwrap(),
        "qmail-local\n"
    );
    let sigign = std::fs::read_to_string(joe.join("sigign")).unwrap();
    let mask = u64::from_str_radix(sigign.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{sigign}");
}

#[test]
fn a_users_deliveries_share_a_process_but_never_an_environment() {
    // qmail-lspawn keeps a resident qmail-local per user: the second
    // delivery runs in the same process as the first, yet sees only its
    // own variables (no DEFAULT left over from joe-x-y's delivery).
    let h = Home::new("resident");
    let joe = add_joe(&h);
    std::fs::write(
        joe.join(".qmail-x-default"),
        "|echo $PPID > ppid1; env > env1\n",
    )
    .unwrap();
    std::fs::write(joe.join(".qmail-z"), "|echo $PPID > ppid2; env > env2\n").unwrap();
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: 1\n\nx\n",
        "me@x.org",
        &["joe-x-y@example.org"],
    );
    s.wait_log("end msg ");
    inject(&h, "Subject: 2\n\nx\n", "me@x.org", &["joe-z@example.org"]);
    let log = s.wait_log("delivery 2: success");
    assert!(log.contains("delivery 1: success: did_0+0+1/\n"), "{log}");
    let env1 = std::fs::read_to_string(joe.join("env1")).unwrap();
    let env2 = std::fs::read_to_string(joe.join("env2")).unwrap();
    assert!(env1.lines().any(|l| l == "DEFAULT=y"), "{env1}");
    assert!(env1.lines().any(|l| l == "EXT=x-y"), "{env1}");
    assert!(!env2.lines().any(|l| l.starts_with("DEFAULT=")), "{env2}");
    assert!(env2.lines().any(|l| l == "EXT=z"), "{env2}");
    assert!(env2.lines().any(|l| l == "LOCAL=joe-z"), "{env2}");
    assert_eq!(
        std::fs::read_to_string(joe.join("ppid1")).unwrap(),
        std::fs::read_to_string(joe.join("ppid2")).unwrap()
    );
}

#[test]
fn a_resident_qmail_local_killed_mid_delivery_is_a_deferral() {
    // The program kills the resident process running it: that delivery is
    // a crash (tried again later), and the user's next message gets a
    // fresh process.
    let h = Home::new("resident-kill");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-kill"), "|kill -9 $PPID; sleep 1\n").unwrap();
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: k\n\nx\n",
        "me@x.org",
        &["joe-kill@example.org"],
    );
    s.wait_log("delivery 1: deferral: qmail-local_crashed./\n");
    inject(&h, "Subject: j\n\nx\n", "me@x.org", &["joe@example.org"]);
    s.wait_log(": success: did_1+0+0/\n");
    assert_eq!(maildir_new(&joe).len(), 1);
}

#[test]
fn sighup_rereads_virtualdomains() {
    let h = Home::new("hup");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-v-default"), "./Maildir/\n").unwrap();
    let remote = h.dir.path().join("fake-remote");
    std::fs::write(
        &remote,
        "#!/bin/sh\ncat >/dev/null\nprintf 's\\0Zno route\\n\\0'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Stack::start(&h, &[("QMAILREMOTE", remote.to_str().unwrap())]);
    h.control("virtualdomains", "new.org:joe-v\n");
    s.signal(libc::SIGHUP);
    // Give qmail-send a moment to act on the signal before the message.
    std::thread::sleep(Duration::from_millis(500));
    inject(&h, "Subject: v\n\nx\n", "me@x.org", &["ann@new.org"]);
    let log = s.wait_log("end msg ");
    assert!(log.contains(" to local joe-v-ann@new.org\n"), "{log}");
    assert_eq!(maildir_new(&joe).len(), 1);
}

#[test]
fn qmail_start_feeds_a_logger() {
    let h = Home::new("logger");
    let logfile = h.dir.path().join("logger.out");
    let mut child = h
        .cmd("qmail-start")
        .arg("./Maildir/")
        .arg("sh")
        .arg("-c")
        .arg(format!("exec cat > {}", logfile.display()))
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ok = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&logfile)
            .is_ok_and(|t| t.starts_with("status: local 0/10 remote 0/20\n"))
    });
    let pid = child.id() as i32;
    let kids: Vec<i32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_until(Duration::from_secs(30), || !alive(pid as u32));
    let _ = child.kill();
    let _ = child.wait();
    for k in kids {
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
    assert!(ok, "logger saw nothing");
    assert!(wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&logfile).is_ok_and(|t| t.ends_with("status: exiting\n"))
    }));
}

#[test]
fn concurrency_limit_is_respected() {
    let h = Home::new("conc");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-slow"), "|sleep 0.3\n./Maildir/\n").unwrap();
    h.control("concurrencylocal", "1\n");
    let s = Stack::start(&h, &[]);
    for i in 0..3 {
        inject(
            &h,
            &format!("Subject: {i}\n\nx\n"),
            "me@x.org",
            &["joe-slow@example.org"],
        );
    }
    assert!(wait_until(Duration::from_secs(60), || maildir_new(&joe)
        .len()
        == 3));
    let log = s.log_text();
    assert!(log.starts_with("status: local 0/1 remote 0/20\n"), "{log}");
    assert!(!log.contains("status: local 2/1"), "{log}");
}

#[test]
fn unreadable_controls_stop_qmail_send_from_starting() {
    let h = Home::new("badctl");
    std::fs::remove_file(h.root().join("control/locals")).unwrap();
    std::fs::create_dir(h.root().join("control/locals")).unwrap();
    let log = h.dir.path().join("bad.log");
    let mut c = h.cmd("qmail-start");
    c.arg("./Maildir/")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null());
    let child = c.spawn().unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "alert: cannot start: unable to read controls\n"
    );
}

/// What the sink saw of one accepted message: the MAIL and RCPT commands
/// of its transaction, the connection's number, and the DATA.
struct Received {
    conn: usize,
    envelope: Vec<String>,
    data: String,
}

/// A minimal SMTP sink on loopback offering PIPELINING: accepts every
/// message, refuses recipients whose address holds "nobody" with a 550.
fn smtp_sink() -> (u16, std::sync::mpsc::Receiver<Received>) {
    smtp_sink_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
}

fn smtp_sink_on(l: std::net::TcpListener) -> (u16, std::sync::mpsc::Receiver<Received>) {
    use std::io::{BufRead, BufReader, Write};
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (conn, w) in l.incoming().enumerate() {
            let Ok(mut w) = w else { return };
            w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut r = BufReader::new(w.try_clone().unwrap());
            let _ = w.write_all(b"220 sink ESMTP\r\n");
            let mut line = String::new();
            let mut envelope = Vec::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let cmd = line.to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("DATA") {
                    let _ = w.write_all(b"354 go\r\n");
                    let mut data = String::new();
                    let mut l2 = String::new();
                    while r.read_line(&mut l2).unwrap_or(0) > 0 && l2 != ".\r\n" {
                        data.push_str(&l2);
                        l2.clear();
                    }
                    let envelope = std::mem::take(&mut envelope);
                    let _ = tx.send(Received {
                        conn,
                        envelope,
                        data,
                    });
                    b"250 ok\r\n"
                } else if cmd.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else if cmd.starts_with("EHLO") {
                    b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                } else if cmd.starts_with("RCPT") && cmd.contains("NOBODY") {
                    envelope.push(line.trim_end().to_string());
                    b"550 no such user\r\n"
                } else {
                    if cmd.starts_with("MAIL") || cmd.starts_with("RCPT") {
                        envelope.push(line.trim_end().to_string());
                    }
                    b"250 ok\r\n"
                };
                let _ = w.write_all(reply);
                line.clear();
            }
        }
    });
    (port, rx)
}

#[test]
fn remote_delivery_through_smtproutes_with_qmail_remote() {
    if !bin("qmail-remote").exists() {
        eprintln!(
            "skipping remote_delivery_through_smtproutes_with_qmail_remote: no qmail-remote built"
        );
        return;
    }
    let h = Home::new("remote");
    let (port, rx) = smtp_sink();
    h.control("smtproutes", &format!("far.net:127.0.0.1:{port}\n"));
    h.control("helohost", "example.org\n");
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: out\n\nline\n.dot\n",
        "me@example.org",
        &["bob@far.net"],
    );
    let log = s.wait_log("end msg ");
    assert!(log.contains(" to remote bob@far.net\n"), "{log}");
    assert!(
        log.contains(": success: 127.0.0.1_accepted_message./"),
        "{log}"
    );
    let data = rx.recv_timeout(Duration::from_secs(30)).unwrap().data;
    assert!(
        data.contains("Subject: out\r\n\r\nline\r\n..dot\r\n"),
        "{data}"
    );
}

#[test]
fn remote_recipients_at_one_domain_share_one_connection() {
    if !bin("qmail-remote").exists() {
        eprintln!("skipping remote_recipients_at_one_domain_share_one_connection: no qmail-remote");
        return;
    }
    let h = Home::new("group");
    let joe = add_joe(&h);
    let (port, rx) = smtp_sink();
    h.control(
        "smtproutes",
        &format!("far.net:127.0.0.1:{port}\nother.net:127.0.0.1:{port}\n"),
    );
    h.control("helohost", "example.org\n");
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: many\n\nx\n",
        "joe@example.org",
        &["a@far.net", "c@other.net", "b@FAR.net", "nobody@far.net"],
    );
    let log = s.wait_log("end msg ");
    let mut got: Vec<Received> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    got.sort_by_key(|r| r.envelope.len());
    assert_ne!(got[0].conn, got[1].conn);
    assert_eq!(
        got[0].envelope,
        ["MAIL FROM:<joe@example.org>", "RCPT TO:<c@other.net>"]
    );
    assert_eq!(
        got[1].envelope,
        [
            "MAIL FROM:<joe@example.org>",
            "RCPT TO:<a@far.net>",
            "RCPT TO:<b@FAR.net>",
            "RCPT TO:<nobody@far.net>"
        ]
    );
    // Each recipient keeps its own delivery number, report and log lines;
    // the one refused bounces alone.
    for (n, r) in ["a@far.net", "c@other.net", "b@FAR.net", "nobody@far.net"]
        .iter()
        .enumerate()
    {
        let line = log
            .lines()
            .find(|l| {
                l.starts_with("starting delivery ") && l.ends_with(&format!(" to remote {r}"))
            })
            .unwrap_or_else(|| panic!("no delivery for {r}: {log}"));
        let delid = line.split([' ', ':']).nth(2).unwrap().to_string();
        let outcome = if n == 3 {
            "failure: 127.0.0.1_does_not_like_recipient./Remote_host_said:_550_no_such_user/"
        } else {
            "success: 127.0.0.1_accepted_message./Remote_host_said:_250_ok/"
        };
        assert!(
            log.contains(&format!("delivery {delid}: {outcome}\n")),
            "{r}: {log}"
        );
    }
    assert_eq!(
        log.matches("status: local 0/10 remote 1/20\n").count(),
        2,
        "{log}"
    );
    assert!(wait_until(Duration::from_secs(30), || maildir_new(&joe)
        .len()
        == 1));
    let bounce = &maildir_new(&joe)[0];
    assert!(bounce.contains("<nobody@far.net>:\n"), "{bounce}");
    assert!(!bounce.contains("<a@far.net>"), "{bounce}");
}

#[test]
fn remote_deferral_while_the_server_is_down_then_retry() {
    if !bin("qmail-remote").exists() {
        eprintln!(
            "skipping remote_deferral_while_the_server_is_down_then_retry: no qmail-remote built"
        );
        return;
    }
    let h = Home::new("remote2");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    h.control("smtproutes", &format!("far.net:127.0.0.1:{port}\n"));
    h.control("helohost", "example.org\n");
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: later\n\nx\n",
        "me@example.org",
        &["bob@far.net"],
    );
    s.wait_log("delivery 1: deferral: ");
    let (_, rx) = smtp_sink_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    s.signal(libc::SIGALRM);
    s.wait_log("delivery 2: success: ");
    assert!(rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .data
        .contains("Subject: later\r\n"));
}
