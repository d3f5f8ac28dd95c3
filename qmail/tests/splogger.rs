//! splogger: exit codes, and (as root, in a private mount namespace whose
//! /dev/log is a test socket) the syslog datagrams it sends.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_splogger");

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qfin-splogger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `cmd` with `input` on stdin; its exit code (bounded wait).
fn run(mut cmd: Command, input: &[u8]) -> Option<i32> {
    let mut child = cmd.stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("splogger did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exits_zero_at_end_of_input() {
    // Without a syslog socket the messages are lost, as with the original.
    let mut c = Command::new(BIN);
    c.arg("qfin-test");
    assert_eq!(run(c, b"hello\npartial"), Some(0));
}

#[test]
fn sends_stamped_lines_to_dev_log() {
    if !nix::unistd::geteuid().is_root() || Command::new("unshare").arg("--help").output().is_err()
    {
        eprintln!("skipped: needs root and unshare(1) to give splogger a private /dev/log");
        return;
    }
    let d = tmpdir("devlog");
    let sock_path = d.join("log");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let script = format!(
        "mount -t tmpfs none /dev && ln -s {} /dev/log && exec {BIN} qtag 3",
        sock_path.display()
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    assert_eq!(run(c, b"hello world\nwarning: \x01odd\n"), Some(0));
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 2048];
        let n = sock.recv(&mut buf).expect("a datagram from splogger");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // <facility 3 (daemon) * 8 + priority>, then syslog's date, the tag.
    assert!(got[0].starts_with("<30>"), "{got:?}");
    assert!(got[1].starts_with("<28>"), "{got:?}");
    for (g, text) in got.iter().zip([" hello world", " warning: ?odd"]) {
        let (_, msg) = g.split_once(" qtag: ").expect("tag");
        let (stamp, rest) = msg.split_at(msg.find(' ').unwrap());
        let (secs, micros) = stamp.split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_000_000_000, "{g}");
        assert_eq!(micros.len(), 6, "{g}");
        assert_eq!(rest, text);
    }
    let _ = std::fs::remove_dir_all(&d);
}
