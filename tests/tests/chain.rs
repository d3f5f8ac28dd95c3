//! Whole chains: svscan -> supervise -> tcpserver -> qmail-smtpd ->
//! qmail-queue -> qmail-send -> qmail-lspawn -> qmail-local -> Maildir, and
//! back out through tcpserver -> qmail-popup -> checkpassword ->
//! qmail-pop3d, driven by real clients (Python's smtplib and poplib, swaks),
//! every service logging through multilog.

use e2e::stack::{is_sent_plus_trace, strip_label, MailStack, Options, DEADLINE, POP3_PASSWORD};
use e2e::{bin, have_program, run, run_with_input, wait_until, Guard};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends stdin as one message; prints `sent` or the refused RCPT's reply.
const SMTP_SEND: &str = r#"
import smtplib, sys
port, src, frm, to = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msg = sys.stdin.buffer.read()
s = smtplib.SMTP('127.0.0.1', port, local_hostname='e2e.test',
                 source_address=(src, 0), timeout=60)
try:
    s.sendmail(frm, [to], msg)
    print('sent')
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients[to]
    print(code, text.decode())
s.quit()
"#;

/// Sends argv[2] messages, one connection each, numbered in Subject.
const SMTP_LOOP: &str = r#"
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s = smtplib.SMTP('127.0.0.1', port, local_hostname='e2e.test', timeout=60)
    msg = ('From: a@example.com\r\nTo: joe@localhost\r\nSubject: flow %d\r\n'
           '\r\nmessage number %d\r\n' % (i, i))
    s.sendmail('a@example.com', ['joe@localhost'], msg.encode())
    s.quit()
    print('sent', i, flush=True)
    time.sleep(0.2)
"#;

/// Logs in as joe, prints message 1 as retrieved, deletes it, quits.
const POP3_FETCH: &str = r#"
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=60)
p.user('joe')
p.pass_(sys.argv[2])
count, size = p.stat()
resp, lines, octets = p.retr(1)
sys.stdout.buffer.write(b''.join(l + b'\n' for l in lines))
p.dele(1)
p.quit()
"#;

/// Python's smtplib and poplib are the clients of every test here.
fn have_python() -> bool {
    let ok = have_program("python3");
    if !ok {
        println!("skip: python3 (smtplib, poplib) not installed");
    }
    ok
}

fn unix_now() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.unwrap().as_secs()
}

fn python(script: &str, args: &[String], input: &[u8]) -> std::process::Output {
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).args(args);
    run_with_input(c, input, DEADLINE)
}

/// A message with CRLF line ends, a dot-leading line (stuffed on the wire)
/// and an empty line in the body.
fn message(n: u32) -> Vec<u8> {
    format!(
        "From: a@example.com\r\nTo: joe@localhost\r\nSubject: e2e {n}\r\n\
         Message-ID: <{n}@e2e.test>\r\n\r\nfirst line\r\n.leading dot\r\n\r\nlast line\r\n"
    )
    .into_bytes()
}

fn lf(msg: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(msg)
        .replace("\r\n", "\n")
        .into_bytes()
}

fn smtplib_send(s: &MailStack, src: &str, to: &str, msg: &[u8]) -> String {
    let args = [
        s.smtp_port.to_string(),
        src.into(),
        "a@example.com".into(),
        to.into(),
    ];
    let out = python(SMTP_SEND, &args, msg);
    assert!(out.status.success(), "smtplib client: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Index of the first line at or after `from` containing `needle`.
fn find_from(lines: &[String], from: usize, needle: &str) -> usize {
    lines[from..]
        .iter()
        .position(|l| l.contains(needle))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {needle:?} after line {from} in:\n{}", lines.join("\n")))
}

/// qmail-send's log of one local delivery, in the original's order.
fn check_send_log(s: &MailStack, sender: &str) {
    s.wait_log("qmail-send", "end msg ");
    let lines = s.log_lines("qmail-send");
    let new = find_from(&lines, 0, "new msg ");
    let id = lines[new].trim_start_matches("new msg ").to_string();
    let info = find_from(&lines, new, &format!("info msg {id}: bytes "));
    assert!(
        lines[info].contains(&format!(" from <{sender}> qp ")),
        "{}",
        lines[info]
    );
    let start = find_from(&lines, info, "starting delivery ");
    let want = format!(": msg {id} to local joe@localhost");
    assert!(lines[start].ends_with(&want), "{}", lines[start]);
    let d = lines[start]["starting delivery ".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let ok = find_from(&lines, start, &format!("delivery {d}: success: "));
    find_from(&lines, ok, &format!("end msg {id}"));
}

/// tcpserver -v's lines for one connection from `remote` to our port,
/// ending with the child's wait status `status`.
fn check_tcpserver_log(s: &MailStack, service: &str, port: u16, remote: &str, status: u32) {
    s.wait_log(service, "tcpserver: end ");
    let lines = s.log_lines(service);
    let pid_line = find_from(&lines, 0, &format!(" from {remote}"));
    let pid = lines[pid_line]
        .strip_prefix("tcpserver: pid ")
        .and_then(|r| r.strip_suffix(&format!(" from {remote}")))
        .unwrap_or_else(|| panic!("bad pid line {:?}", lines[pid_line]))
        .to_string();
    let okl = find_from(&lines, pid_line, &format!("tcpserver: ok {pid} "));
    let want = format!("tcpserver: ok {pid} 0:127.0.0.1:{port} :{remote}::");
    assert!(
        lines[okl].starts_with(&want),
        "{:?} !~ {want:?}",
        lines[okl]
    );
    find_from(
        &lines,
        okl,
        &format!("tcpserver: end {pid} status {status}"),
    );
}

/// svscan found our supervise through PATH, not Debian's in /usr/bin: one
/// per service and one per logger.
fn check_our_supervise(s: &MailStack) {
    let ours = e2e::bindir().join("supervise");
    let kids = e2e::children(s.svscan_pid());
    let exes: Vec<_> = kids.iter().filter_map(|&p| e2e::exe_of(p)).collect();
    assert_eq!(exes.len(), 4, "svscan's children: {exes:?}");
    for e in &exes {
        assert_eq!(e, &ours, "svscan started {}", e.display());
    }
}

/// Our tai64nlocal and Debian's turn the log's labels into the same text.
fn check_tai64nlocal(s: &MailStack, service: &str) {
    let raw = s.log_raw(service);
    let ours = run_with_input(Command::new(bin("tai64nlocal")), raw.as_bytes(), DEADLINE);
    assert!(ours.status.success(), "{ours:?}");
    let text = String::from_utf8_lossy(&ours.stdout);
    for (l, r) in text.lines().zip(raw.lines()) {
        // "YYYY-MM-DD HH:MM:SS.nnnnnnnnn " then the line as logged.
        assert_eq!(l.as_bytes().get(10), Some(&b' '), "{l:?}");
        assert_eq!(&l[30..], strip_label(r), "{l:?}");
    }
    if !std::path::Path::new("/usr/bin/tai64nlocal").exists() {
        println!("skip Debian tai64nlocal comparison: /usr/bin/tai64nlocal absent");
        return;
    }
    let cmd = Command::new("/usr/bin/tai64nlocal");
    let theirs = run_with_input(cmd, raw.as_bytes(), DEADLINE);
    assert_eq!(
        String::from_utf8_lossy(&theirs.stdout),
        text,
        "tai64nlocal output differs"
    );
}

#[test]
fn smtp_to_maildir_through_the_supervised_stack() {
    if !have_python() {
        return;
    }
    let s = MailStack::start(&Options::default());
    check_our_supervise(&s);
    let sent = message(1);
    assert_eq!(
        smtplib_send(&s, "127.0.0.1", "joe@localhost", &sent),
        "sent"
    );
    let got = s.wait_messages(1);
    assert!(
        is_sent_plus_trace(&got[0], &lf(&sent)),
        "delivered:\n{}",
        String::from_utf8_lossy(&got[0])
    );
    check_send_log(&s, "a@example.com");
    check_tcpserver_log(&s, "qmail-smtpd", s.smtp_port, "127.0.0.1", 0);
    check_tai64nlocal(&s, "qmail-send");
    check_tai64nlocal(&s, "qmail-smtpd");
    swaks_delivery(&s);
}

fn swaks_delivery(s: &MailStack) {
    if !have_program("swaks") {
        println!("skip swaks delivery: swaks not installed");
        return;
    }
    // swaks ends DATA with CRLF . CRLF after the text it is given, so the
    // file's last line carries no line end of its own.
    let sent_lf = b"From: b@example.com\nTo: joe@localhost\nSubject: by swaks\n\nswaks body\n";
    let file = s.dir.path().join("swaks.msg");
    std::fs::write(&file, &sent_lf[..sent_lf.len() - 1]).unwrap();
    let mut c = Command::new("swaks");
    c.args(["--server", "127.0.0.1", "--port", &s.smtp_port.to_string()])
        .args(["--helo", "e2e.test", "--from", "b@example.com"])
        .args(["--to", "joe@localhost", "--data"])
        .arg(format!("@{}", file.display()));
    let out = run(c, DEADLINE);
    assert!(out.status.success(), "swaks: {out:?}");
    let got = s.wait_messages(2);
    assert!(
        got.iter().any(|m| is_sent_plus_trace(m, sent_lf)),
        "swaks message not delivered intact: {got:?}"
    );
}

#[test]
fn relay_attempt_without_relayclient_is_refused_and_nothing_queued() {
    if !have_python() {
        return;
    }
    let opts = Options {
        smtp_rules: "127.0.0.1:allow,RELAYCLIENT=\"\"\n127.:allow\n".into(),
        pop3: false,
    };
    let s = MailStack::start(&opts);
    let reply = smtplib_send(&s, "127.0.0.2", "x@elsewhere.example", &message(2));
    assert_eq!(
        reply,
        "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    check_tcpserver_log(&s, "qmail-smtpd", s.smtp_port, "127.0.0.2", 0);
    if have_program("swaks") {
        let mut c = Command::new("swaks");
        c.args(["--server", "127.0.0.1", "--port", &s.smtp_port.to_string()])
            .args(["--local-interface", "127.0.0.2", "--helo", "e2e.test"])
            .args(["--from", "a@example.com", "--to", "y@elsewhere.example"]);
        let out = run(c, DEADLINE);
        let text = String::from_utf8_lossy(&out.stdout);
        let want = "<** 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)";
        assert!(text.contains(want), "swaks said:\n{text}");
        assert!(!out.status.success());
    } else {
        println!("skip swaks relay attempt: swaks not installed");
    }
    assert!(
        s.queued_files().is_empty(),
        "queued: {:?}",
        s.queued_files()
    );
    assert!(s.maildir_messages().is_empty());
    let lines = s.log_lines("qmail-send");
    assert!(!lines.iter().any(|l| l.contains("new msg")), "{lines:?}");
    // The same client may still mail a local recipient.
    let sent = message(3);
    assert_eq!(
        smtplib_send(&s, "127.0.0.2", "joe@localhost", &sent),
        "sent"
    );
    let got = s.wait_messages(1);
    assert!(is_sent_plus_trace(&got[0], &lf(&sent)));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains("Received: from unknown (HELO e2e.test) (127.0.0.2)\n"),
        "{text}"
    );
}

#[test]
fn restarting_the_smtpd_logger_and_qmail_send_loses_no_message() {
    if !have_python() {
        return;
    }
    const N: usize = 30;
    let s = MailStack::start(&Options::default());
    let out_file = s.dir.path().join("loop.out");
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg(SMTP_LOOP)
        .arg(s.smtp_port.to_string())
        .arg(N.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap());
    let client = Guard::spawn(&mut c);
    let sent = || {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(wait_until(DEADLINE, || sent() >= 5), "client stalled");
    s.svc("-t", "qmail-smtpd/log");
    assert!(wait_until(DEADLINE, || sent() >= 12), "client stalled");
    s.svc("-t", "qmail-send");
    assert!(wait_until(DEADLINE * 2, || sent() >= N), "client stalled");
    assert!(wait_until(DEADLINE, || !e2e::alive(client.pid())));
    let got = s.wait_messages(N);
    for i in 0..N {
        let needle = format!("\nSubject: flow {i}\n");
        let found = got
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains(&needle));
        assert!(found, "message {i} lost");
    }
    let lines = s.log_lines("qmail-send");
    assert!(
        lines.iter().any(|l| l.contains("status: exiting")),
        "{lines:?}"
    );
    // Every connection's line survived the logger's restart.
    let oks = || {
        let lines = s.log_lines("qmail-smtpd");
        lines
            .iter()
            .filter(|l| l.starts_with("tcpserver: ok "))
            .count()
    };
    wait_until(DEADLINE, || oks() >= N);
    assert_eq!(oks(), N, "smtpd log:\n{}", s.log_raw("qmail-smtpd"));
}

#[test]
fn pop3_fetches_the_delivered_message_byte_for_byte() {
    if !have_python() {
        return;
    }
    let bindir = e2e::bindir();
    for prog in ["qmail-popup", "qmail-pop3d"] {
        if !bindir.join(prog).exists() {
            println!("skip POP3 test: {prog} not built in this workspace");
            return;
        }
    }
    let s = MailStack::start(&Options {
        pop3: true,
        ..Options::default()
    });
    let sent = message(4);
    assert_eq!(
        smtplib_send(&s, "127.0.0.1", "joe@localhost", &sent),
        "sent"
    );
    let stored = s.wait_messages(1).remove(0);
    // Like the original, qmail-pop3d lists only messages older than the
    // current second (Maildir order must not mix up): let one pass.
    let newest = s.newest_mtime();
    assert!(wait_until(Duration::from_secs(10), || unix_now() > newest));
    let args = [s.pop3_port.to_string(), POP3_PASSWORD.to_string()];
    let out = python(POP3_FETCH, &args, b"");
    assert!(out.status.success(), "poplib client: {out:?}");
    // qmail-pop3d, like the original, ends every message with an extra
    // CRLF before the closing dot: the stored file plus one empty line.
    let mut want = stored.clone();
    want.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&want)
    );
    assert!(is_sent_plus_trace(&stored, &lf(&sent)));
    assert!(
        wait_until(Duration::from_secs(30), || s.maildir_messages().is_empty()),
        "DELE + QUIT left the message"
    );
    // qmail-popup exits 1 once the session it handed on is over, as the
    // original's does: tcpserver logs wait status 256.
    check_tcpserver_log(&s, "qmail-pop3d", s.pop3_port, "127.0.0.1", 256);
}
