//! qmail-qmqpd alone, and qmail-qmqpc handing messages to it through
//! tcpserver (mini-qmail): exit codes, the reply netstring, queued bytes.

mod smtpd_support;
use smtpd_support::*;
use std::process::Stdio;

fn ns(s: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.push(b',');
    v
}

fn qmqp(body: &[u8], sender: &[u8], rcpts: &[&[u8]]) -> Vec<u8> {
    let mut inner = [ns(body), ns(sender)].concat();
    for r in rcpts {
        inner.extend(ns(r));
    }
    ns(&inner)
}

#[test]
fn qmqpd_queues_one_message_and_answers_k() {
    let h = Home::new("qmqpd");
    let input = qmqp(
        b"Subject: q\n\nbody\n",
        b"a@b",
        &[b"u@far.test", b"v@x.test"],
    );
    let (out, code) = session(h.cmd("qmail-qmqpd"), &input);
    assert_eq!(code, 0);
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.contains(":Kok ") && out.ends_with(','), "{out}");
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let m = String::from_utf8_lossy(&q[0].0);
    assert!(m.contains("Received: from unknown (127.0.0.1)\n  by 127.0.0.1 with QMQP; "));
    assert!(m.ends_with("\nSubject: q\n\nbody\n"));
    assert!(q[0].1.ends_with(b"Fa@b\0Tu@far.test\0Tv@x.test\0"));
}

#[test]
fn qmqpd_refuses_bad_addresses_and_bad_framing() {
    let h = Home::new("qmqpdbad");
    let input = qmqp(b"x\n", b"a@b", &[b"u\0v@far.test"]);
    let (out, code) = session(h.cmd("qmail-qmqpd"), &input);
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "51:Dsorry, I can't accept addresses like that (#5.1.3),"
    );
    // An inner netstring running past the outer one.
    let (_, code) = session(h.cmd("qmail-qmqpd"), b"5:9:abc,");
    assert_eq!(code, 100);
    let (_, code) = session(h.cmd("qmail-qmqpd"), b"12:2:x\n,1:a,;");
    assert_eq!(code, 100);
    assert!(h.queued().is_empty());
    assert!(h.mess_empties());
}

/// Run qmail-qmqpc in `home` with the message on fd 0 and the envelope on fd 1.
fn qmqpc(home: &Home, message: &[u8], envelope: &[u8]) -> i32 {
    let m = home.tmp.join("message");
    let e = home.tmp.join("envelope");
    std::fs::write(&m, message).unwrap();
    std::fs::write(&e, envelope).unwrap();
    let mut child = home
        .cmd("qmail-qmqpc")
        .stdin(Stdio::from(std::fs::File::open(&m).unwrap()))
        .stdout(Stdio::from(std::fs::File::open(&e).unwrap()))
        .spawn()
        .unwrap();
    let st = wait_deadline(&mut child, 60);
    let _g = Guard(child);
    st.expect("qmail-qmqpc hung").code().unwrap_or(-1)
}

#[test]
fn qmqpc_hands_the_message_to_qmqpd_through_tcpserver() {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver (build the tcpserver package or install ucspi-tcp)");
        return;
    };
    let hub = Home::new("hub");
    let srv = Server::start(&hub, &dir, None, &["qmail-qmqpd"]);
    let mini = Home::new("mini");
    let dead = free_port();
    mini.control(
        "qmqpservers",
        &format!("127.0.0.1:{dead}\n127.0.0.1:{}\n", srv.port),
    );
    let code = qmqpc(&mini, b"Subject: mini\n\nhi\n", b"Fme@mini\0Tyou@hub\0\0");
    assert_eq!(code, 0);
    let q = hub.queued();
    assert_eq!(q.len(), 1);
    assert!(q[0].0.ends_with(b"\nSubject: mini\n\nhi\n"));
    assert!(q[0].1.ends_with(b"Fme@mini\0Tyou@hub\0"));
    // Bad envelope, then no server left.
    assert_eq!(qmqpc(&mini, b"x\n", b"Xme\0\0"), 91);
    mini.control("qmqpservers", &format!("127.0.0.1:{dead}\n"));
    assert_eq!(qmqpc(&mini, b"x\n", b"Fme\0Tyou@hub\0\0"), 73);
    std::fs::remove_file(mini.root().join("control/qmqpservers")).unwrap();
    assert_eq!(qmqpc(&mini, b"x\n", b"Fme\0Tyou@hub\0\0"), 55);
}

#[test]
fn qmqpc_reports_a_permanent_refusal() {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return;
    };
    let hub = Home::new("hubd");
    let srv = Server::start(&hub, &dir, None, &["qmail-qmqpd"]);
    let mini = Home::new("minid");
    mini.control("qmqpservers", &format!("127.0.0.1:{}\n", srv.port));
    assert_eq!(qmqpc(&mini, b"x\n", b"Fme\0Ta\x01\0\0"), 0);
    let long = [b"Fme\0T".to_vec(), vec![b'a'; 1500], b"\0\0".to_vec()].concat();
    assert_eq!(qmqpc(&mini, b"x\n", &long), 31);
}
