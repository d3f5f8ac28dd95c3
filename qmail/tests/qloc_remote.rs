//! qmail-remote against a scripted SMTP server on loopback: the result
//! records on stdout, the bytes on the wire (EHLO and the HELO fallback,
//! PIPELINING and SIZE, quoting, CRLF and dot-stuffing), smtproutes with
//! ports, refused and dying connections.

mod qloc_support;

use qloc_support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

const REMOTE: &str = env!("CARGO_BIN_EXE_qmail-remote");

/// How the server answers each command.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    rcpt: fn(&str) -> &'static str,
    data: &'static str,
    after: &'static str,
    /// The reply to EHLO (HELO always gets 250).
    ehlo: &'static str,
    /// Stop answering after the greeting (to exercise timeouts).
    stall: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            greeting: "220 sink ESMTP\r\n",
            rcpt: |_| "250 ok\r\n",
            data: "354 go ahead\r\n",
            after: "250 ok 12345\r\n",
            ehlo: "250 sink\r\n",
            stall: false,
        }
    }
}

/// A one-connection SMTP server; the receiver gets everything the client
/// sent, each command line marked `+` when the next one had already arrived
/// before this one's reply went out (the client pipelined it).
fn sink(script: Script) -> (u16, mpsc::Receiver<Vec<u8>>) {
    sink_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
}

/// The same server on a listener of the caller's choice.
fn sink_on(l: TcpListener, script: Script) -> (u16, mpsc::Receiver<Vec<u8>>) {
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut seen = Vec::new();
        let _ = w.write_all(script.greeting.as_bytes());
        if script.stall {
            let mut line = Vec::new();
            let _ = r.read_until(b'\n', &mut line);
            seen.extend(line);
            std::thread::sleep(Duration::from_secs(5));
            let _ = tx.send(seen);
            return;
        }
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.extend(&line);
            if !r.buffer().is_empty() {
                seen.insert(seen.len() - line.len(), b'+');
            }
            let cmd = String::from_utf8_lossy(&line).to_string();
            let reply = if cmd.starts_with("EHLO") {
                script.ehlo
            } else if cmd.starts_with("RCPT") {
                (script.rcpt)(&cmd)
            } else if cmd.starts_with("DATA") {
                script.data
            } else if cmd.starts_with("QUIT") {
                "221 bye\r\n"
            } else {
                "250 fine\r\n"
            };
            let _ = w.write_all(reply.as_bytes());
            if cmd.starts_with("QUIT") {
                break;
            }
            if cmd.starts_with("DATA") && reply.starts_with('3') {
                loop {
                    let mut l = Vec::new();
                    if r.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                        break;
                    }
                    seen.extend(&l);
                    if l == b".\r\n" {
                        break;
                    }
                }
                let _ = w.write_all(script.after.as_bytes());
            }
        }
        let _ = tx.send(seen);
    });
    (port, rx)
}

fn qhome(routes: &str, extra: &[(&str, &str)]) -> TempDir {
    let q = TempDir::new("rq");
    q.write("control/me", b"me.example\n");
    q.write("control/smtproutes", routes.as_bytes());
    for (k, v) in extra {
        q.write(&format!("control/{k}"), v.as_bytes());
    }
    q
}

fn remote(q: &TempDir, args: &[&str], msg: &[u8]) -> Outcome {
    let mut c: Command = bin(REMOTE, q.path());
    c.args(args).env("DNSCACHEIP", "127.0.0.1");
    run_with(c, msg)
}

#[test]
fn delivery_records_and_wire_bytes() {
    let script = Script {
        rcpt: |c| {
            if c.contains("bad@") {
                "550 no such user\r\n"
            } else if c.contains("later@") {
                "451 try later\r\n"
            } else {
                "250 ok\r\n"
            }
        },
        ..Script::default()
    };
    let (port, rx) = sink(script);
    let q = qhome(
        &format!("example.com:127.0.0.1:{port}\n"),
        &[("helohost", "helo.example\n")],
    );
    let msg = b"Subject: t\n.dot\nlone\r.cr\nend\n";
    let o = remote(
        &q,
        &[
            "Example.com",
            "a b@s.example",
            "ok@example.com",
            "bad@example.com",
            "later@example.com",
        ],
        msg,
    );
    assert_eq!(o.code, 0);
    assert_eq!(
        o.out(),
        "r\0h127.0.0.1 does not like recipient.\nRemote host said: 550 no such user\n\0s127.0.0.1 does not like recipient.\nRemote host said: 451 try later\n\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 12345\n\0"
    );
    let wire = String::from_utf8(rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(
        wire,
        "EHLO helo.example\r\nMAIL FROM:<\"a b\"@s.example>\r\nRCPT TO:<ok@example.com>\r\nRCPT TO:<bad@example.com>\r\nRCPT TO:<later@example.com>\r\nDATA\r\nSubject: t\r\n..dot\r\nlone\r\n..cr\r\nend\r\n.\r\nQUIT\r\n"
    );
}

#[test]
fn refusals_end_the_conversation() {
    let (port, _rx) = sink(Script {
        greeting: "554 go away\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "s@a", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "ZConnected to 127.0.0.1 but greeting failed.\nRemote host said: 554 go away\n\0"
    );
    let (port, _rx) = sink(Script {
        rcpt: |_| "550 no\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 127.0.0.1.\n\0"
    );
    let (port, _rx) = sink(Script {
        data: "451 busy\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "r\0Z127.0.0.1 failed on DATA command.\nRemote host said: 451 busy\n\0"
    );
    let (port, _rx) = sink(Script {
        after: "554 spam\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "r\0D127.0.0.1 failed after I sent the message.\nRemote host said: 554 spam\n\0"
    );
}

#[test]
fn partial_lines_usage_and_no_connection() {
    let (port, _rx) = sink(Script::default());
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"no newline");
    assert_eq!(
        o.out(),
        "r\0DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n\0"
    );
    let o = remote(&q, &["x.test", ""], b"");
    assert_eq!(
        (o.code, o.out().as_str()),
        (0, "DI (qmail-remote) was invoked improperly. (#5.3.5)\n\0")
    );
    // A port nobody listens on.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().port();
    drop(l);
    let q = qhome(&format!(":127.0.0.1:{dead}\n"), &[]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0"
    );
}

#[test]
fn a_silent_server_times_out() {
    let (port, _rx) = sink(Script {
        stall: true,
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[("timeoutremote", "1\n")]);
    let o = remote(&q, &["x.test", "", "r@x.test"], b"a\n");
    assert_eq!(
        o.out(),
        "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n\0"
    );
}

#[test]
fn ipv6_relay() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    };
    let (port, rx) = sink_on(l, Script::default());
    let q = qhome(&format!("x.test:[::1]:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "s@a", "r@x.test"], b"hi\n");
    assert_eq!(
        o.out(),
        "r\0K::1 accepted message.\nRemote host said: 250 ok 12345\n\0"
    );
    let wire = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(wire.ends_with(b"DATA\r\nhi\r\n.\r\nQUIT\r\n"));
}

/// A server that refuses EHLO gets HELO, as qmail always sent.
#[test]
fn ehlo_refused_falls_back_to_helo() {
    let (port, rx) = sink(Script {
        ehlo: "502 unimplemented\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "a@b.test", "c@x.test"], b"hi\n");
    assert_eq!(
        o.out(),
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 12345\n\0"
    );
    let wire = String::from_utf8(rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(
        wire,
        "EHLO me.example\r\nHELO me.example\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
    );
}

/// PIPELINING offered: MAIL, every RCPT and DATA leave in one group
/// (RFC 2920), the replies are matched in order, the records are the same
/// as without it; SIZE offered: MAIL says how big the message is.
#[test]
fn pipelining_and_size_when_offered() {
    let (port, rx) = sink(Script {
        ehlo: "250-sink\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n",
        rcpt: |c| {
            if c.contains("bad@") {
                "550 no such user\r\n"
            } else {
                "250 ok\r\n"
            }
        },
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let dir = TempDir::new("rqmsg");
    let msg = dir.write("msg", b"Subject: p\n\nbody\n");
    let mut c: Command = bin(REMOTE, q.path());
    c.args(["x.test", "a@b.test", "c@x.test", "bad@x.test", "d@x.test"])
        .env("DNSCACHEIP", "127.0.0.1");
    let o = run_with_file(c, &msg);
    assert_eq!(
        o.out(),
        "r\0h127.0.0.1 does not like recipient.\nRemote host said: 550 no such user\n\0r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 12345\n\0"
    );
    let wire = String::from_utf8(rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(
        wire,
        "EHLO me.example\r\n+MAIL FROM:<a@b.test> SIZE=17\r\n+RCPT TO:<c@x.test>\r\n+RCPT TO:<bad@x.test>\r\n+RCPT TO:<d@x.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    );
}

/// Pipelined, with every recipient refused: the server's refusal of DATA
/// is read, nothing is sent, and the message is given up on.
#[test]
fn pipelining_with_no_recipient_accepted() {
    let (port, rx) = sink(Script {
        ehlo: "250-sink\r\n250 PIPELINING\r\n",
        rcpt: |_| "550 no\r\n",
        data: "554 no valid recipients\r\n",
        ..Script::default()
    });
    let q = qhome(&format!(":127.0.0.1:{port}\n"), &[]);
    let o = remote(&q, &["x.test", "a@b.test", "c@x.test"], b"hi\n");
    assert_eq!(
        o.out(),
        "h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 127.0.0.1.\n\0"
    );
    let wire = String::from_utf8(rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(
        wire,
        "EHLO me.example\r\n+MAIL FROM:<a@b.test>\r\n+RCPT TO:<c@x.test>\r\nDATA\r\nQUIT\r\n"
    );
}
