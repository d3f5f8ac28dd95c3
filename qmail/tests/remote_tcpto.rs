//! qmail-remote and queue/lock/tcpto: connection timeouts are recorded,
//! hosts with recent timeouts are skipped, a good connection clears them;
//! qmail-tcpto shows the records qmail-remote wrote.

mod qloc_support;

use qloc_support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

const REMOTE: &str = env!("CARGO_BIN_EXE_qmail-remote");
const TCPTO: &str = env!("CARGO_BIN_EXE_qmail-tcpto");

/// A one-connection SMTP server that accepts everything; the receiver
/// gets what the client sent, or nothing if nobody connected.
fn sink() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut seen = Vec::new();
        let _ = w.write_all(b"220 sink\r\n");
        let mut in_data = false;
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.extend(&line);
            let reply: &[u8] = if in_data {
                if line != b".\r\n" {
                    continue;
                }
                in_data = false;
                b"250 ok\r\n"
            } else if line.starts_with(b"DATA") {
                in_data = true;
                b"354 go\r\n"
            } else if line.starts_with(b"QUIT") {
                let _ = w.write_all(b"221 bye\r\n");
                break;
            } else {
                b"250 ok\r\n"
            };
            let _ = w.write_all(reply);
        }
        let _ = tx.send(seen);
    });
    (port, rx)
}

fn qhome(routes: &str) -> TempDir {
    let q = TempDir::new("tcpto");
    q.write("control/me", b"me.example\n");
    q.write("control/smtproutes", routes.as_bytes());
    q.write("control/timeoutconnect", b"1\n");
    q.write("queue/lock/tcpto", &[0u8; 1024]);
    q
}

fn remote(q: &TempDir) -> Outcome {
    let mut c: Command = bin(REMOTE, q.path());
    c.args(["x.test", "s@a.example", "r@x.test"])
        .env("DNSCACHEIP", "127.0.0.1");
    run_with(c, b"hi\n")
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn record(ip: [u8; 4], n: u8, when: u32) -> Vec<u8> {
    let mut r = vec![0u8; 1024];
    r[..4].copy_from_slice(&ip);
    r[4] = n;
    r[8..12].copy_from_slice(&when.to_le_bytes());
    r
}

fn tcpto_file(q: &TempDir) -> Vec<u8> {
    std::fs::read(q.path().join("queue/lock/tcpto")).unwrap()
}

const NOCONN: &str = "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0";

#[test]
fn a_host_with_recent_timeouts_is_skipped() {
    let (port, rx) = sink();
    let q = qhome(&format!(":127.0.0.1:{port}\n"));
    q.write("queue/lock/tcpto", &record([127, 0, 0, 1], 2, now() - 10));
    let o = remote(&q);
    assert_eq!(o.out(), NOCONN);
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    let shown = bin(TCPTO, q.path()).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.starts_with("127.0.0.1 timed out ")
            && text.ends_with(" seconds ago; # recent timeouts: 2\n"),
        "{text}"
    );
}

#[test]
fn a_good_connection_clears_the_count() {
    let (port, rx) = sink();
    let q = qhome(&format!(":127.0.0.1:{port}\n"));
    // One timeout does not make a host skipped; an old pair no longer does.
    q.write("queue/lock/tcpto", &record([127, 0, 0, 1], 1, now() - 10));
    let o = remote(&q);
    assert_eq!(
        o.out(),
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok\n\0"
    );
    assert!(rx.recv_timeout(Duration::from_secs(60)).is_ok());
    assert_eq!(tcpto_file(&q)[4], 0);
    let shown = bin(TCPTO, q.path()).output().unwrap();
    assert_eq!(shown.stdout, b"");

    let (port, _rx) = sink();
    let q = qhome(&format!(":127.0.0.1:{port}\n"));
    q.write("queue/lock/tcpto", &record([127, 0, 0, 1], 5, now() - 7200));
    assert_eq!(
        remote(&q).out(),
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok\n\0"
    );
    assert_eq!(tcpto_file(&q)[4], 0);
}

/// A listener whose accept queue is full, so that further connection
/// attempts get no answer and time out.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid listening socket; shrink its queue to the minimum.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            held.push(s);
        }
    }
    (l, held)
}

#[test]
fn a_connection_timeout_is_recorded() {
    let (l, _held) = black_hole();
    let port = l.local_addr().unwrap().port();
    // Make sure the queue is really full before relying on it.
    if TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_millis(500)).is_ok() {
        eprintln!("skipped: this kernel accepts connections beyond the listen queue");
        return;
    }
    let q = qhome(&format!(":127.0.0.1:{port}\n"));
    let o = remote(&q);
    assert_eq!(o.out(), NOCONN);
    let f = tcpto_file(&q);
    assert_eq!(&f[..5], &[127, 0, 0, 1, 1]);
    let when = u32::from_le_bytes([f[8], f[9], f[10], f[11]]);
    assert!(now().abs_diff(when) < 300, "{when}");
    // A second timeout within two minutes is not counted again.
    assert_eq!(remote(&q).out(), NOCONN);
    assert_eq!(tcpto_file(&q)[4], 1);
    // A refused connection clears the record.
    drop(l);
    assert_eq!(remote(&q).out(), NOCONN);
    assert_eq!(tcpto_file(&q)[4], 0);
}
