//! qmail-smtpd as a client sees it: replies byte for byte, the bytes that
//! reach the queue (real qmail-queue in a private home), relay control,
//! and hostile input.

mod smtpd_support;
use smtpd_support::*;

fn home_with_rcpthosts(tag: &str) -> Home {
    let h = Home::new(tag);
    h.control("rcpthosts", "example.org\n.sub.example.net\n");
    h
}

fn date_free(s: &[u8]) -> String {
    // Drop the date after the last "; " of each Received line.
    String::from_utf8_lossy(s)
        .lines()
        .map(|l| match l.rfind("; ") {
            Some(p) if l.starts_with("  by ") || l.starts_with("Received: (qmail") => {
                format!("{}; DATE", &l[..p])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_whole_session_with_the_original_replies() {
    let h = home_with_rcpthosts("session");
    let input = b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n\
RCPT TO:<v@x.sub.example.net>\r\nRCPT TO:<w@elsewhere.example>\r\nDATA\r\nSubject: hi\r\n\r\n\
..dot\r\nbody\r\n.\r\nHELP\r\nVRFY x\r\nNOOP\r\nRSET\r\nFOO bar\r\nHELO h\r\nQUIT\r\n";
    let (out, code) = session(h.cmd("qmail-smtpd"), input);
    assert_eq!(code, 0);
    let l = lines(&out);
    assert_eq!(l[0], "220 mx.example.org ESMTP");
    assert_eq!(
        l[1..5],
        [
            "250-mx.example.org",
            "250-PIPELINING",
            "250-8BITMIME",
            "250 SIZE 0"
        ]
    );
    assert_eq!(l[5..8], ["250 ok", "250 ok", "250 ok"]);
    assert_eq!(
        l[8],
        "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    assert_eq!(l[9], "354 go ahead");
    assert!(
        l[10].starts_with("250 ok ") && l[10].contains(" qp "),
        "{}",
        l[10]
    );
    assert_eq!(
        l[11..],
        [
            "214 qmail home page: http://pobox.com/~djb/qmail.html",
            "252 send some mail, i'll try my best",
            "250 ok",
            "250 flushed",
            "502 unimplemented (#5.5.1)",
            "250 mx.example.org",
            "221 mx.example.org"
        ]
    );
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let qp = l[10].rsplit(' ').next().unwrap();
    assert_eq!(
        date_free(&q[0].0),
        format!(
            "Received: (qmail {qp} invoked by uid {}); DATE\nReceived: from unknown (HELO client.example) (127.0.0.1)\n  by 127.0.0.1 with SMTP; DATE\nSubject: hi\n\n.dot\nbody",
            nix::unistd::getuid()
        )
    );
    assert!(q[0]
        .1
        .ends_with(b"Fa@b.example\0Tu@example.org\0Tv@x.sub.example.net\0"));
}

#[test]
fn sequence_and_syntax_errors() {
    let h = home_with_rcpthosts("seq");
    let long = format!("MAIL FROM:<{}@x>\r\n", "a".repeat(900));
    let input =
        format!("RCPT TO:<u@example.org>\r\nDATA\r\nMAIL FROM:<a@b>\r\nDATA\r\n{long}QUIT\r\n");
    let (out, _) = session(h.cmd("qmail-smtpd"), input.as_bytes());
    assert_eq!(
        lines(&out)[1..],
        [
            "503 MAIL first (#5.5.1)",
            "503 MAIL first (#5.5.1)",
            "250 ok",
            "503 RCPT first (#5.5.1)",
            "555 syntax error (#5.5.4)",
            "221 mx.example.org"
        ]
    );
}

#[test]
fn greeting_controls_and_received_variants() {
    let h = home_with_rcpthosts("greet");
    h.control("smtpgreeting", "mail.example.org NO UCE\n");
    let mut c = h.cmd("qmail-smtpd");
    c.env("TCPREMOTEIP", "2001:db8::5")
        .env("TCPREMOTEHOST", "peer.example")
        .env("TCPREMOTEINFO", "joe")
        .env("TCPLOCALHOST", "mx.example.org");
    let input = b"HELO PEER.example\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (out, _) = session(c, input);
    let l = lines(&out);
    assert_eq!(l[0], "220 mail.example.org NO UCE ESMTP");
    assert_eq!(l[1], "250 mail.example.org NO UCE");
    let q = h.queued();
    let text = date_free(&q[0].0);
    // HELO equal to the host name (any case) is not repeated.
    assert!(
        text.contains(
            "Received: from peer.example (joe@2001:db8::5)\n  by mx.example.org with SMTP; DATE\nx"
        ),
        "{text}"
    );
}

#[test]
fn missing_me_answers_421() {
    let h = Home::new("nome");
    std::fs::remove_file(h.root().join("control/me")).unwrap();
    let (out, code) = session(h.cmd("qmail-smtpd"), b"QUIT\r\n");
    assert_eq!(out, b"421 unable to read controls (#4.3.0)\r\n");
    assert_eq!(code, 1);
}

#[test]
fn no_rcpthosts_means_no_relaying_and_relayclient_opens_it() {
    let h = Home::new("norh");
    let input =
        b"MAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example.org>\r\nRCPT TO:<postmaster>\r\nQUIT\r\n";
    let (out, _) = session(h.cmd("qmail-smtpd"), input);
    assert_eq!(
        lines(&out)[1..3],
        [
            "250 ok",
            "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
        ]
    );
    let mut c = h.cmd("qmail-smtpd");
    c.env("RELAYCLIENT", "@relay.example");
    let input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (out, _) = session(c, input);
    assert_eq!(lines(&out)[2], "250 ok");
    assert!(h.queued()[0].1.ends_with(b"Tu@far.example@relay.example\0"));
}

#[test]
fn morercpthosts_cdb_from_qmail_newmrh() {
    let h = Home::new("mrh");
    h.control("morercpthosts", "Big.Example\n.wild.example\n");
    let st = h.cmd("qmail-newmrh").status().unwrap();
    assert!(st.success());
    assert!(h.root().join("control/morercpthosts.cdb").exists());
    assert!(!h.root().join("control/morercpthosts.tmp").exists());
    let input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@big.example>\r\nRCPT TO:<u@a.wild.example>\r\nRCPT TO:<u@small.example>\r\nQUIT\r\n";
    let (out, _) = session(h.cmd("qmail-smtpd"), input);
    let l = lines(&out);
    assert_eq!(l[2..4], ["250 ok", "250 ok"]);
    assert!(l[4].starts_with("553 "));
    std::fs::remove_file(h.root().join("control/morercpthosts")).unwrap();
    let out = h.cmd("qmail-newmrh").output().unwrap();
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-newmrh: fatal: unable to read control/morercpthosts: file does not exist\n"
    );
}

#[test]
fn badmailfrom_address_and_at_host() {
    let h = home_with_rcpthosts("bmf");
    h.control("badmailfrom", "spam@bad.example\n@worse.example\n");
    for from in ["SPAM@bad.example", "x@Worse.Example"] {
        let input = format!("MAIL FROM:<{from}>\r\nRCPT TO:<u@example.org>\r\nQUIT\r\n");
        let (out, _) = session(h.cmd("qmail-smtpd"), input.as_bytes());
        assert_eq!(
            lines(&out)[2],
            "553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)"
        );
    }
}

#[test]
fn localiphost_rewrites_own_literals() {
    let h = home_with_rcpthosts("liph");
    h.control("localiphost", "example.org\n");
    let input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@[127.0.0.1]>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (out, _) = session(h.cmd("qmail-smtpd"), input);
    assert_eq!(lines(&out)[2], "250 ok");
    assert!(h.queued()[0].1.ends_with(b"Tu@example.org\0"));
}

#[test]
fn bare_lf_and_bare_cr_are_refused_and_nothing_is_queued() {
    let h = home_with_rcpthosts("barelf");
    for body in [
        &b"a\nb\r\n.\r\n"[..],
        b"a\rb\r\n.\r\n",
        b"x\r\n\n.\r\n",
        b"x\r\n.\n",
    ] {
        let mut input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n".to_vec();
        input.extend_from_slice(body);
        input.extend_from_slice(b"QUIT\r\n");
        let (out, code) = session(h.cmd("qmail-smtpd"), &input);
        let l = lines(&out);
        assert_eq!(
            l.last().unwrap(),
            "451 See http://pobox.com/~djb/docs/smtplf.html."
        );
        assert_eq!(code, 1);
    }
    assert!(h.queued().is_empty());
    assert!(h.mess_empties());
}

#[test]
fn nul_bytes_and_8bit_data_are_kept() {
    let h = home_with_rcpthosts("nul");
    let input = b"MAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<u@example.org>\r\nDATA\r\n\xe9t\xe9\0zero\r\n.\r\nQUIT\r\n";
    let (out, _) = session(h.cmd("qmail-smtpd"), input);
    assert!(lines(&out)[4].starts_with("250 ok "));
    assert!(h.queued()[0].0.ends_with(b"\n\xe9t\xe9\0zero\n"));
    // A NUL in a command ends the command there, as in the C original.
    let (out, _) = session(h.cmd("qmail-smtpd"), b"NOOP\0junk\r\nMA\0IL FROM:<a@b>\r\n");
    assert_eq!(lines(&out)[1..], ["250 ok", "502 unimplemented (#5.5.1)"]);
}

#[test]
fn a_one_mib_command_line_is_refused_and_the_session_goes_on() {
    let h = home_with_rcpthosts("longcmd");
    let mut input = b"NOOP ".to_vec();
    input.extend(vec![b'x'; 1 << 20]);
    input.extend_from_slice(b"\r\nNOOP\r\nQUIT\r\n");
    let (out, code) = session(h.cmd("qmail-smtpd"), &input);
    assert_eq!(
        lines(&out)[1..],
        [
            "500 sorry, that command line is too long (#5.5.2)",
            "250 ok",
            "221 mx.example.org"
        ]
    );
    assert_eq!(code, 0);
}

#[test]
fn databytes_limit_from_control_and_environment() {
    let h = home_with_rcpthosts("databytes");
    h.control("databytes", "100\n");
    let big = "x".repeat(200);
    let input = format!(
        "EHLO c\r\nMAIL FROM:<a@b> SIZE=500\r\nMAIL FROM:<a@b> SIZE=50\r\nRCPT TO:<u@example.org>\r\nDATA\r\n{big}\r\n.\r\nQUIT\r\n"
    );
    let (out, _) = session(h.cmd("qmail-smtpd"), input.as_bytes());
    let l = lines(&out);
    assert_eq!(l[4], "250 SIZE 100");
    let exceed = "552 sorry, that message size exceeds my databytes limit (#5.3.4)";
    assert_eq!(l[5], exceed);
    assert_eq!(l[9], exceed);
    assert!(h.queued().is_empty());
    // DATABYTES overrides the control file.
    let mut c = h.cmd("qmail-smtpd");
    c.env("DATABYTES", "1000");
    let (out, _) = session(c, input.as_bytes());
    assert!(lines(&out)[9].starts_with("250 ok "), "{:?}", lines(&out));
    assert_eq!(h.queued().len(), 1);
}

#[test]
fn ten_thousand_recipients() {
    let h = home_with_rcpthosts("rcpts");
    let mut input = b"MAIL FROM:<a@b>\r\n".to_vec();
    for i in 0..10_000 {
        input.extend_from_slice(format!("RCPT TO:<u{i}@example.org>\r\n").as_bytes());
    }
    input.extend_from_slice(b"DATA\r\nx\r\n.\r\nQUIT\r\n");
    let (out, code) = session(h.cmd("qmail-smtpd"), &input);
    let l = lines(&out);
    assert_eq!(l.iter().filter(|x| *x == "250 ok").count(), 10_001);
    assert!(l[l.len() - 2].starts_with("250 ok "));
    assert_eq!(code, 0);
    let env = &h.queued()[0].1;
    assert_eq!(
        env.split(|&b| b == 0)
            .filter(|r| r.first() == Some(&b'T'))
            .count(),
        10_000
    );
}

#[test]
fn looping_message_is_refused_after_100_hops() {
    let h = home_with_rcpthosts("hops");
    let mut input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n".to_vec();
    for i in 0..100 {
        let f = if i % 2 == 0 {
            "Received: x\r\n"
        } else {
            "Delivered-To: y\r\n"
        };
        input.extend_from_slice(f.as_bytes());
    }
    input.extend_from_slice(b"\r\nbody\r\n.\r\nQUIT\r\n");
    let (out, _) = session(h.cmd("qmail-smtpd"), &input);
    assert_eq!(
        lines(&out)[4],
        "554 too many hops, this message is looping (#5.4.6)"
    );
    assert!(h.queued().is_empty());
    assert!(h.mess_empties());
}

#[test]
fn qmail_queue_failures_are_reported() {
    let h = home_with_rcpthosts("qqfail");
    let script = h.tmp.join("qq");
    std::fs::write(&script, "#!/bin/sh\ncat >/dev/null\nexit 31\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = h.cmd("qmail-smtpd");
    c.env("QMAILQUEUE", &script);
    let input = b"MAIL FROM:<a@b>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (out, _) = session(c, input);
    assert_eq!(
        lines(&out)[4],
        "554 mail server permanently rejected message (#5.3.0)"
    );
    let mut c = h.cmd("qmail-smtpd");
    c.env("QMAILQUEUE", h.tmp.join("missing"));
    let (out, _) = session(c, input);
    assert_eq!(lines(&out)[3], "451 qqt failure (#4.3.0)");
}

#[test]
fn a_stalled_client_gets_the_timeout_reply() {
    let h = home_with_rcpthosts("timeout");
    h.control("timeoutsmtpd", "1\n");
    let mut child = h
        .cmd("qmail-smtpd")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let mut g = Guard(child);
    let st = wait_deadline(&mut g.0, 60).expect("no timeout");
    let mut out = Vec::new();
    std::io::Read::read_to_end(g.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    drop(stdin);
    assert_eq!(out, b"220 mx.example.org ESMTP\r\n451 timeout (#4.4.2)\r\n");
    assert_eq!(st.code(), Some(1));
}

#[test]
fn a_connection_dropped_mid_data_queues_nothing() {
    let h = home_with_rcpthosts("drop");
    let input =
        b"MAIL FROM:<a@b>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nSubject: half\r\n\r\nsome text\r\n";
    let (out, code) = session(h.cmd("qmail-smtpd"), input);
    assert_eq!(lines(&out).last().unwrap(), "354 go ahead");
    assert_eq!(code, 1);
    // qmail-queue sees its input end early and leaves nothing behind.
    assert!(h.mess_empties());
    assert!(h.queued().is_empty());
}

/// A dialogue with qmail-smtpd one command at a time, as a client that
/// waits for each reply (no pipelining) talks to it.
struct Dialogue {
    g: Guard,
    stdin: Option<std::process::ChildStdin>,
    replies: std::sync::mpsc::Receiver<String>,
}

impl Dialogue {
    fn start(cmd: &mut std::process::Command) -> Dialogue {
        let child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut g = Guard(child);
        let stdin = g.0.stdin.take();
        let stdout = g.0.stdout.take().unwrap();
        let (tx, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                if tx.send(l.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        Dialogue { g, stdin, replies }
    }

    fn reply(&self) -> String {
        self.replies
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("no reply in time")
    }

    fn say(&mut self, line: &str) -> String {
        let w = self.stdin.as_mut().unwrap();
        std::io::Write::write_all(w, format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// The pids of qmail-smtpd's children named `comm`.
    fn children(&self, comm: &str) -> Vec<u32> {
        let pid = self.g.0.id();
        let list =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        list.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == comm)
            })
            .collect()
    }

    /// Wait (bounded) for a child named `comm`; its pid.
    fn child(&self, comm: &str) -> u32 {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(&p) = self.children(comm).first() {
                return p;
            }
            assert!(std::time::Instant::now() < end, "no {comm} started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> Option<i32> {
        self.stdin = None;
        wait_deadline(&mut self.g.0, 60)
            .expect("qmail-smtpd did not end")
            .code()
    }
}

#[test]
fn qmail_queue_starts_at_mail_and_takes_the_message_at_data() {
    let h = home_with_rcpthosts("early");
    let mut d = Dialogue::start(&mut h.cmd("qmail-smtpd"));
    assert_eq!(d.reply(), "220 mx.example.org ESMTP");
    assert!(d.children("qmail-queue").is_empty());
    assert_eq!(d.say("MAIL FROM:<a@b>"), "250 ok");
    let qp = d.child("qmail-queue");
    // Started, it makes nothing in the queue before its message comes.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(h.mess_count(), 0);
    assert_eq!(
        std::fs::read_dir(h.root().join("queue/pid"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(d.say("RCPT TO:<u@example.org>"), "250 ok");
    assert_eq!(d.say("DATA"), "354 go ahead");
    let ok = d.say("Subject: early\r\n\r\nbody\r\n.");
    assert!(
        ok.starts_with("250 ok ") && ok.ends_with(&format!(" qp {qp}")),
        "{ok}"
    );
    assert_eq!(d.say("QUIT"), "221 mx.example.org");
    assert_eq!(d.finish(), Some(0));
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let mess = String::from_utf8_lossy(&q[0].0);
    assert!(
        mess.starts_with(&format!("Received: (qmail {qp} invoked")),
        "{mess}"
    );
    assert!(mess.ends_with("Subject: early\n\nbody\n"), "{mess}");
}

#[test]
fn a_session_that_never_sends_data_leaves_no_trace() {
    let h = home_with_rcpthosts("nodata");
    let mut d = Dialogue::start(&mut h.cmd("qmail-smtpd"));
    d.reply();
    assert_eq!(d.say("MAIL FROM:<a@b>"), "250 ok");
    assert_eq!(d.say("RCPT TO:<u@example.org>"), "250 ok");
    let qp = d.child("qmail-queue");
    // RSET and a new MAIL keep the one waiting qmail-queue.
    assert_eq!(d.say("RSET"), "250 flushed");
    assert_eq!(d.say("MAIL FROM:<c@d>"), "250 ok");
    assert_eq!(d.children("qmail-queue"), vec![qp]);
    assert_eq!(d.say("QUIT"), "221 mx.example.org");
    assert_eq!(d.finish(), Some(0));
    // qmail-smtpd reaped it on the way out (a reused pid is someone else).
    let comm = std::fs::read_to_string(format!("/proc/{qp}/comm"));
    assert!(!comm.is_ok_and(|c| c.trim_end() == "qmail-queue"));
    assert_eq!(h.mess_count(), 0);
    assert!(h.queued().is_empty());
    for dir in ["pid", "intd", "todo"] {
        let n = std::fs::read_dir(h.root().join("queue").join(dir))
            .unwrap()
            .count();
        assert_eq!(n, 0, "{dir}");
    }
}

#[test]
fn a_qmailqueue_replacement_starts_only_at_data() {
    let h = home_with_rcpthosts("qqlate");
    let script = h.tmp.join("qq");
    let started = h.tmp.join("started");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {}\nexec {}\n",
            started.display(),
            bin("qmail-queue").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = h.cmd("qmail-smtpd");
    c.env("QMAILQUEUE", &script);
    let mut d = Dialogue::start(&mut c);
    d.reply();
    assert_eq!(d.say("MAIL FROM:<a@b>"), "250 ok");
    assert_eq!(d.say("RCPT TO:<u@example.org>"), "250 ok");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!started.exists(), "QMAILQUEUE ran before DATA");
    assert_eq!(d.say("DATA"), "354 go ahead");
    assert!(d.say("x\r\n.").starts_with("250 ok "));
    assert!(started.exists());
    assert_eq!(d.say("QUIT"), "221 mx.example.org");
    assert_eq!(d.finish(), Some(0));
    assert_eq!(h.queued().len(), 1);
}
