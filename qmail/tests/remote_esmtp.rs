//! qmail-remote against a real ESMTP server: our qmail-smtpd under
//! tcpserver, which offers PIPELINING and SIZE, and STARTTLS with a
//! certificate made by openssl. Several recipients go over one connection
//! and land in one queued message; a message bigger than the server's
//! databytes is refused at MAIL (SIZE=) without being sent; TLS is used
//! whenever offered, required and verified for hosts with a
//! control/tlshosts/HOST.pem, never used for control/notlshosts/HOST.

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

/// A home whose qmail-smtpd under tcpserver accepts mail for x.test, with
/// the controls given written first; None (and why) without tcpserver.
fn smtpd(tag: &str, controls: &[(&str, &str)]) -> Option<(Home, Server)> {
    let Some(dir) = tcpserver_dir() else {
        eprintln!("skipping: no tcpserver");
        return None;
    };
    let h = Home::new(tag);
    h.control("rcpthosts", "x.test\n");
    for (name, text) in controls {
        h.control(name, text);
    }
    let server = Server::start(&h, &dir, None, &["qmail-smtpd"]);
    Some((h, server))
}

#[test]
fn several_recipients_in_one_pipelined_session() {
    let Some((h, server)) = smtpd("esmtp", &[]) else {
        return;
    };
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
    let Some((h, server)) = smtpd("esmtpsize", &[("databytes", "100\n")]) else {
        return;
    };
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

/// openssl with arguments, in `dir`; panics when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let st = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and a server certificate it signed for IP 127.0.0.1, made in
/// `dir`: returns (ca.pem, server key+chain pem).
fn certificates(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
        ],
    );
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "srv.pem",
        ],
    );
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    (read("ca.pem"), [read("srv.key"), read("srv.pem")].concat())
}

/// A home whose qmail-smtpd offers STARTTLS with a certificate for
/// 127.0.0.1 signed by a test CA; None (and why) when a peer is missing.
fn tls_setup(tag: &str) -> Option<(Home, Server, Vec<u8>)> {
    if !have("openssl") {
        eprintln!("skipping: openssl not installed");
        return None;
    }
    let certs = TempDirOf::scratch(tag);
    let (ca, server) = certificates(&certs.0);
    let pem = String::from_utf8(server).unwrap();
    let (h, s) = smtpd(tag, &[("servercert.pem", &pem)])?;
    Some((h, s, ca))
}

#[test]
fn starttls_is_used_whenever_offered() {
    let Some((h, server, _)) = tls_setup("rtls") else {
        return;
    };
    let out = remote(&h, server.port, &["one@x.test"], b"Subject: s\n\nsecret\n");
    assert!(
        out.starts_with("r\0K127.0.0.1 accepted message."),
        "{out:?}"
    );
    let q = h.queued();
    let m = String::from_utf8_lossy(&q[0].0).into_owned();
    assert!(m.contains(" encrypted) SMTP; "), "{m}");
}

#[test]
fn tlshosts_pem_makes_tls_required_and_verified() {
    let Some((h, server, ca)) = tls_setup("rtlsv") else {
        return;
    };
    std::fs::create_dir_all(h.root().join("control/tlshosts")).unwrap();
    // The right CA: delivered, encrypted.
    std::fs::write(h.root().join("control/tlshosts/127.0.0.1.pem"), &ca).unwrap();
    let out = remote(&h, server.port, &["one@x.test"], b"Subject: v\n\nok\n");
    assert!(
        out.starts_with("r\0K127.0.0.1 accepted message."),
        "{out:?}"
    );
    assert_eq!(h.queued().len(), 1);
    // Another CA: the server's certificate does not verify, deferral.
    let other = TempDirOf::new(&h, "otherca");
    openssl(
        &other.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=other CA",
            "-keyout",
            "o.key",
            "-out",
            "o.pem",
        ],
    );
    std::fs::copy(
        other.0.join("o.pem"),
        h.root().join("control/tlshosts/127.0.0.1.pem"),
    )
    .unwrap();
    let out = remote(&h, server.port, &["two@x.test"], b"Subject: v\n\nno\n");
    assert!(out.starts_with("ZTLS connect failed: "), "{out:?}");
    assert_eq!(h.queued().len(), 1);
    // A server without STARTTLS: "No TLS achieved", deferral.
    std::fs::remove_file(h.root().join("control/servercert.pem")).unwrap();
    let out = remote(&h, server.port, &["three@x.test"], b"Subject: v\n\nno\n");
    assert_eq!(
        out,
        "ZNo TLS achieved while control/tlshosts/127.0.0.1.pem exists.\n\0"
    );
    assert_eq!(h.queued().len(), 1);
}

#[test]
fn notlshosts_keeps_the_session_plain() {
    let Some((h, server, _)) = tls_setup("rtlsn") else {
        return;
    };
    std::fs::create_dir_all(h.root().join("control/notlshosts")).unwrap();
    std::fs::write(h.root().join("control/notlshosts/127.0.0.1"), "").unwrap();
    let out = remote(&h, server.port, &["one@x.test"], b"Subject: n\n\nplain\n");
    assert!(
        out.starts_with("r\0K127.0.0.1 accepted message."),
        "{out:?}"
    );
    let m = String::from_utf8_lossy(&h.queued()[0].0).into_owned();
    assert!(!m.contains("encrypted"), "{m}");
}

/// A scratch directory for openssl's files, removed on drop.
struct TempDirOf(std::path::PathBuf);

impl TempDirOf {
    fn new(h: &Home, name: &str) -> TempDirOf {
        let p = h.tmp.join(name);
        std::fs::create_dir_all(&p).unwrap();
        TempDirOf(p)
    }

    fn scratch(tag: &str) -> TempDirOf {
        let p = std::env::temp_dir().join(format!("certs-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDirOf(p)
    }
}

impl Drop for TempDirOf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
