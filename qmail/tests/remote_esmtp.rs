//! qmail-remote against a real ESMTP server: our qmail-smtpd under
//! tcpserver, which offers PIPELINING and SIZE. Several recipients go over
//! one connection and land in one queued message; a message bigger than the
//! server's databytes is refused at MAIL (SIZE=) without being sent.

mod smtpd_support;
use smtpd_support::*;

/// qmail-remote from `h` to the server on `port`, the message on stdin.
fn remote(h: &Home, port: u16, recips: &[&str], msg: &[u8]) -> String {
    h.control("smtproutes", &format!(":127.0.0.1:{port}\n"));
    let mut c = h.cmd("qmail-remote");
    c.arg("x.test").arg("sender@b.test").args(recips);
    c.env("DNSCACHEIP", "127.0.0.1");
    let (out, code) = session(c, msg);
    assert_eq!(code, 0);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn several_recipients_in_one_pipelined_session() {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return;
    };
    let h = Home::new("esmtp");
    h.control("rcpthosts", "x.test\n");
    let server = Server::start(&h, &dir, None, &["qmail-smtpd"]);
    let out = remote(
        &h,
        server.port,
        &[
            "one@x.test",
            "two@x.test",
            "far@elsewhere.test",
            "three@x.test",
        ],
        b"Subject: many\n\nhello\n",
    );
    let records: Vec<&str> = out.split('\0').collect();
    assert_eq!(records[0], "r");
    assert_eq!(records[1], "r");
    assert_eq!(
        records[2],
        "h127.0.0.1 does not like recipient.\nRemote host said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\n"
    );
    assert_eq!(records[3], "r");
    assert!(records[4].starts_with("K127.0.0.1 accepted message.\nRemote host said: 250 ok "));
    // One message, three recipients: one SMTP transaction carried them all.
    let q = h.queued();
    assert_eq!(q.len(), 1);
    let env = String::from_utf8_lossy(&q[0].1).into_owned();
    assert!(env.contains("Fsender@b.test\0"), "{env:?}");
    for r in ["one", "two", "three"] {
        assert!(env.contains(&format!("T{r}@x.test\0")), "{env:?}");
    }
    assert!(String::from_utf8_lossy(&q[0].0).ends_with("Subject: many\n\nhello\n"));
}

#[test]
fn size_over_databytes_is_refused_before_the_message_is_sent() {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return;
    };
    let h = Home::new("esmtpsize");
    h.control("rcpthosts", "x.test\n");
    h.control("databytes", "100\n");
    let server = Server::start(&h, &dir, None, &["qmail-smtpd"]);
    // SIZE= needs a message qmail-remote can fstat: a file, as qmail-rspawn
    // gives it.
    let msgfile = h.root().join("bigmsg");
    std::fs::write(
        &msgfile,
        vec![b'x'; 150]
            .into_iter()
            .chain(*b"\n")
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    h.control("smtproutes", &format!(":127.0.0.1:{}\n", server.port));
    let mut c = h.cmd("qmail-remote");
    let outfile = h.root().join("remote.out");
    c.args(["x.test", "sender@b.test", "one@x.test"])
        .env("DNSCACHEIP", "127.0.0.1")
        .stdin(std::fs::File::open(&msgfile).unwrap())
        .stdout(std::fs::File::create(&outfile).unwrap());
    let mut g = Guard(c.spawn().unwrap());
    assert!(wait_deadline(&mut g.0, 60).is_some(), "qmail-remote hung");
    assert_eq!(
        std::fs::read_to_string(&outfile).unwrap(),
        "DConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 552 sorry, that message size exceeds my databytes limit (#5.3.4)\n\0"
    );
    assert!(h.queued().is_empty());
}
