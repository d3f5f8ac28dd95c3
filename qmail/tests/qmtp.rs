//! qmail-qmtpd: QMTP netstrings in, one reply netstring per recipient out,
//! messages in the real queue of a private home.

mod smtpd_support;
use smtpd_support::*;

fn ns(s: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.push(b',');
    v
}

/// One QMTP message: body (first byte says LF or CRLF), sender, recipients.
fn qmtp(body: &[u8], sender: &[u8], rcpts: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for r in rcpts {
        list.extend(ns(r));
    }
    [ns(body), ns(sender), ns(&list)].concat()
}

/// The texts of a run of netstrings, checking each length.
fn netstrings(mut s: &str) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(colon) = s.find(':') {
        let n: usize = s[..colon].parse().unwrap();
        v.push(s[colon + 1..colon + 1 + n].to_string());
        assert_eq!(&s[colon + 1 + n..colon + 2 + n], ",");
        s = &s[colon + 2 + n..];
    }
    assert!(s.is_empty());
    v
}

fn home() -> Home {
    let h = Home::new("qmtp");
    h.control("rcpthosts", "example.org\n");
    h
}

#[test]
fn messages_in_lf_and_crlf_form_are_queued() {
    let h = home();
    let mut input = qmtp(
        b"\nSubject: one\n\nbody\n",
        b"a@b",
        &[b"u@example.org", b"v@far.test"],
    );
    input.extend(qmtp(
        b"\rSubject: two\r\n\r\nx\ry\r\n",
        b"",
        &[b"w@example.org"],
    ));
    let (out, code) = session(h.cmd("qmail-qmtpd"), &input);
    assert_eq!(code, 0);
    let out = String::from_utf8_lossy(&out).into_owned();
    let parts = netstrings(&out);
    assert_eq!(parts.len(), 3, "{out}");
    assert!(
        parts[0].starts_with("Kok ") && parts[0].contains(" qp "),
        "{out}"
    );
    assert_eq!(
        parts[1],
        "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    assert!(parts[2].starts_with("Kok "), "{out}");
    let mut q = h.queued();
    assert_eq!(q.len(), 2);
    // Queue order is inode order: put the first message first.
    q.sort_by_key(|(m, _)| !m.ends_with(b"body\n"));
    let m0 = String::from_utf8_lossy(&q[0].0);
    assert!(m0.contains("Received: from unknown (127.0.0.1)\n  by 127.0.0.1 with QMTP; "));
    assert!(m0.ends_with("\nSubject: one\n\nbody\n"), "{m0}");
    assert!(q[0].1.ends_with(b"Fa@b\0Tu@example.org\0"));
    assert!(q[1].0.ends_with(b"\nSubject: two\n\nx\ry\n"));
    assert!(q[1].1.ends_with(b"F\0Tw@example.org\0"));
}

#[test]
fn bad_senders_recipients_and_sizes_are_refused() {
    let h = home();
    h.control("databytes", "50\n");
    let long = vec![b'a'; 1200];
    let mut input = qmtp(b"\nx\n", b"a\0b", &[b"u@example.org"]);
    input.extend(qmtp(b"\nx\n", b"a@b", &[b"u\0@example.org", &long]));
    input.extend(qmtp(&[b'\n'; 100], b"a@b", &[b"u@example.org"]));
    let mut c = h.cmd("qmail-qmtpd");
    c.env("RELAYCLIENT", "");
    let (out, code) = session(c, &input);
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "29:Dunacceptable sender (#5.1.7),\
         46:Dsorry, I can't handle that recipient (#5.1.3),\
         46:Dsorry, I can't handle that recipient (#5.1.3),\
         61:Dsorry, that message size exceeds my databytes limit (#5.3.4),"
    );
    assert!(h.queued().is_empty());
    assert!(h.mess_empties());
}

#[test]
fn protocol_violations_exit_100() {
    let h = home();
    for bad in [&b"x:"[..], b"3:\nab;", b"0:,"] {
        let (_, code) = session(h.cmd("qmail-qmtpd"), bad);
        assert_eq!(code, 100, "{bad:?}");
    }
    let (_, code) = session(h.cmd("qmail-qmtpd"), b"3:\nab,");
    assert_eq!(code, 0, "end of input mid-message is a hang-up");
    assert!(h.mess_empties());
}
