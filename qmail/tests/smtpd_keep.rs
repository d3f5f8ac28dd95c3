//! qmail-smtpd kept by `tcpserver -k`: one process serves connection after
//! connection (Python's smtplib as the client), each with its own
//! tcpserver environment (RELAYCLIENT from a rule for one address must not
//! stay for the next client), the -v lines naming the process that serves,
//! and processes that go away, or are run through a chain, handled.

mod smtpd_support;
use smtpd_support::*;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;
use testkit::{alive, kill_pid, wait_until};

/// One SMTP session from `source`: a local and a remote recipient.
const SESSION: &str = r#"
import smtplib, sys
port, src, n = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP('127.0.0.1', port, source_address=(src, 0), timeout=30)
s.helo('c' + n)
r = s.sendmail('a@b.test', ['u@example.org', 'x@far.test'],
               ('Subject: %s\r\n\r\nbody\r\n' % n).encode())
print('refused', sorted(r))
s.quit()
"#;

struct Kept {
    srv: Server,
    log: PathBuf,
    home: Home,
}

impl Kept {
    /// tcpserver -k -v in front of `prog`, or None (with the reason
    /// printed) when this cannot run here.
    fn start(tag: &str, rules: Option<&str>, prog: &[&str]) -> Option<Kept> {
        if !have("python3") {
            eprintln!("skipping: python3 not installed");
            return None;
        }
        if !bindir().join("tcpserver").exists() {
            eprintln!("skipping: our tcpserver is not built (cargo build -p tcpserver)");
            return None;
        }
        let home = Home::new(tag);
        home.control("rcpthosts", "example.org\n");
        let cdb = rules.map(|r| tcprules(&home, &bindir(), r));
        let log = home.tmp.join("tcpserver.log");
        let srv = Server::start_with(
            "127.0.0.1",
            &home,
            &bindir(),
            cdb.as_deref(),
            &["-k", "-v"],
            prog,
            Some(&log),
        );
        let k = Kept { srv, log, home };
        // The connection that found the server listening.
        k.wait_ends(0);
        Some(k)
    }

    /// The log lines starting with `head`, but for the first connection's.
    fn lines(&self, head: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(head))
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    /// The pids named by the `tcpserver: ok PID ...` lines.
    fn served_by(&self) -> Vec<u32> {
        self.lines("tcpserver: ok ")
            .iter()
            .filter_map(|l| l.split(' ').nth(2)?.parse().ok())
            .collect()
    }

    /// The pid that served the first connection.
    fn first(&self) -> Option<u32> {
        let all = std::fs::read_to_string(&self.log).unwrap_or_default();
        let l = all.lines().find(|l| l.starts_with("tcpserver: ok "))?;
        l.split(' ').nth(2)?.parse().ok()
    }

    /// Wait until `n` connections (and the first) have ended.
    fn wait_ends(&self, n: usize) {
        let ok = wait_until(Duration::from_secs(30), || {
            let all = std::fs::read_to_string(&self.log).unwrap_or_default();
            all.matches("tcpserver: end ").count() > n
        });
        assert!(ok, "{}", std::fs::read_to_string(&self.log).unwrap());
    }

    fn session(&self, src: &str, n: usize) -> String {
        let port = self.srv.port.to_string();
        let (out, code) = client(&["python3", "-c", SESSION, &port, src, &n.to_string()], b"");
        assert_eq!(code, 0, "{out}");
        out
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        for pid in self.served_by().into_iter().chain(self.first()) {
            kill_pid(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn one_process_serves_each_connection_with_its_own_environment() {
    let rules = "127.0.0.2:allow,RELAYCLIENT=\"\"\n:allow\n";
    let Some(k) = Kept::start("keep-env", Some(rules), &["qmail-smtpd"]) else {
        return;
    };
    let sources = ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"];
    let mut fds = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let out = k.session(src, i);
        let want = if src.ends_with('2') {
            "refused []"
        } else {
            "refused ['x@far.test']"
        };
        assert!(out.contains(want), "session {i} from {src}: {out}");
        k.wait_ends(i + 1);
        let dir = format!("/proc/{}/fd", k.served_by()[i]);
        fds.push(std::fs::read_dir(dir).unwrap().count());
    }
    // Nothing of a connection stays open for the next.
    assert!(fds.iter().all(|&n| n == fds[0]), "{fds:?}");
    let pids = k.served_by();
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|&p| p == pids[0]), "{pids:?}");
    let from = k.lines("tcpserver: pid ");
    for (l, src) in from.iter().zip(sources) {
        assert_eq!(*l, format!("tcpserver: pid {} from {src}", pids[0]));
    }
    assert_eq!(
        k.lines("tcpserver: end "),
        vec![format!("tcpserver: end {} status 0", pids[0]); 4]
    );
    let mut q = k.home.queued();
    assert_eq!(q.len(), 4);
    q.sort_by_key(|(m, _)| {
        m.windows(9)
            .position(|w| w == b"Subject: ")
            .map(|p| m[p + 9])
    });
    for (i, (m, env)) in q.iter().enumerate() {
        let m = String::from_utf8_lossy(m);
        let src = sources[i];
        assert!(m.contains(&format!("Subject: {i}\n")), "{m}");
        assert!(
            m.contains(&format!("(HELO c{i}) ({src})\n  by localhost with SMTP")),
            "{m}"
        );
        let relayed = env.windows(11).any(|w| w == b"Tx@far.test");
        assert_eq!(relayed, src.ends_with('2'), "{i} {src}");
    }
}

#[test]
fn a_chain_is_run_whole_for_every_connection() {
    // env(1) runs qmail-smtpd: a process tcpserver did not start as
    // qmail-smtpd, which must not take the next connection over.
    let smtpd = bin("qmail-smtpd");
    let Some(k) = Kept::start(
        "keep-chain",
        None,
        &["/usr/bin/env", smtpd.to_str().unwrap()],
    ) else {
        return;
    };
    for i in 0..2 {
        assert!(k.session("127.0.0.1", i).contains("refused ['x@far.test']"));
        k.wait_ends(i + 1);
    }
    let pids = k.served_by();
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0], pids[1]);
    assert_eq!(k.home.queued().len(), 2);
}

/// Connect, read the greeting, and return the stream.
fn greeted(port: u16) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut b = [0u8; 512];
    let n = s.read(&mut b).unwrap();
    assert!(b[..n].starts_with(b"220 "));
    s
}

#[test]
fn processes_that_go_away_are_replaced() {
    let Some(k) = Kept::start("keep-gone", None, &["qmail-smtpd"]) else {
        return;
    };
    k.session("127.0.0.1", 0);
    k.wait_ends(1);
    // Killed while waiting for a connection: nothing more is logged for
    // it, and the next client gets a new process.
    let first = k.served_by()[0];
    kill_pid(first, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(20), || !alive(first)));
    k.session("127.0.0.1", 1);
    k.wait_ends(2);
    let second = k.served_by()[1];
    assert_ne!(second, first);
    // Killed while serving: its end is logged with the signal.
    let mut s = greeted(k.srv.port);
    assert_eq!(k.served_by()[2], second);
    kill_pid(second, libc::SIGKILL);
    k.wait_ends(3);
    assert_eq!(
        k.lines("tcpserver: end ")[2],
        format!("tcpserver: end {second} status 9")
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    k.session("127.0.0.1", 3);
    k.wait_ends(4);
    assert_eq!(k.home.queued().len(), 3);
}

#[test]
fn a_process_is_let_go_after_a_hundred_connections_and_with_the_server() {
    let Some(k) = Kept::start("keep-uses", None, &["qmail-smtpd"]) else {
        return;
    };
    // The connection that found the server listening was the first use.
    for i in 0..100 {
        let mut s = greeted(k.srv.port);
        s.write_all(b"QUIT\r\n").unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.starts_with(b"221 "), "{rest:?}");
        k.wait_ends(i + 1);
    }
    let (first, pids) = (k.first().unwrap(), k.served_by());
    assert!(pids[..99].iter().all(|&p| p == first));
    assert_ne!(pids[99], first);
    assert!(wait_until(Duration::from_secs(20), || !alive(first)));
    // A waiting process ends with tcpserver.
    kill_pid(k.srv.pid(), libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(20), || !alive(pids[99])));
}
