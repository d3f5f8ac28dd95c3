//! svscan's log pipe loses nothing: a writer prints numbered lines every few
//! milliseconds through the pipe to a logger, while the writer (svc -t and
//! svc -k) and the logger (svc -t) are restarted 50 times in random order.
//! Every number of every incarnation of the writer must arrive exactly once
//! and in order. The logger reads one byte at a time and finishes the line
//! in hand on SIGTERM, so any loss could only come from the pipe.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const SVSCAN: &str = env!("CARGO_BIN_EXE_svscan");
const SVC: &str = env!("CARGO_BIN_EXE_svc");

const WRITER: &str = r#"
import os, time
pid = str(os.getpid()).encode()
side = os.open("written", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
i = 0
while True:
    line = pid + b" " + str(i).encode() + b"\n"
    os.write(1, line)
    os.write(side, line)
    i += 1
    time.sleep(0.003)
"#;

const LOGGER: &str = r#"
import os, signal, sys
stop = False
def term(sig, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
out = os.open("../got", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
buf = b""
while True:
    if stop and not buf:
        sys.exit(0)
    b = os.read(0, 1)
    if not b:
        break
    buf += b
    if b == b"\n":
        os.write(out, buf)
        buf = b""
"#;

fn svc(flag: &str, dir: &Path) {
    let out = run(Command::new(SVC).arg(flag).arg(dir));
    assert!(out.status.success(), "svc {flag}: {:?}", out);
}

/// Per writer pid, its numbers in arrival order, and the order of pids.
fn parse(text: &str) -> (Vec<String>, HashMap<String, Vec<u64>>) {
    let mut order = Vec::new();
    let mut nums: HashMap<String, Vec<u64>> = HashMap::new();
    for line in text.lines() {
        let (pid, n) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        if order.last().map(String::as_str) != Some(pid) {
            assert!(!order.iter().any(|p| p == pid), "{pid}'s lines interleaved");
            order.push(pid.to_string());
        }
        nums.entry(pid.to_string())
            .or_default()
            .push(n.parse().unwrap());
    }
    (order, nums)
}

/// A small xorshift generator: the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn no_line_lost_while_writer_and_logger_restart() {
    if !have_peer(
        "/usr/bin/python3",
        "no_line_lost_while_writer_and_logger_restart",
    ) {
        return;
    }
    let t = TempDir::new("logpipe");
    let sv = t.join("service");
    let w = sv.join("w");
    let log = w.join("log");
    fs::create_dir_all(&log).unwrap();
    fs::write(w.join("writer.py"), WRITER).unwrap();
    fs::write(log.join("logger.py"), LOGGER).unwrap();
    write_script(&w.join("run"), "#!/bin/sh\nexec python3 writer.py\n");
    write_script(&log.join("run"), "#!/bin/sh\nexec python3 logger.py\n");
    let mut g = Guard::spawn(
        Command::new(SVSCAN)
            .arg(&sv)
            .env("PATH", path_with(&dir_of(SVSCAN)))
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let mut wpid = wait_service_pid(&w, 0).expect("writer runs");
    let mut lpid = wait_service_pid(&log, 0).expect("logger runs");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("logpipe seed {seed}");
    let mut rng = Rng(seed);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 200));
        match rng.next() % 3 {
            0 => svc("-t", &w),
            1 => svc("-k", &w),
            _ => svc("-t", &log),
        }
        // Wait for whichever was hit to come back before the next blow.
        assert!(wait_until(DEADLINE, || {
            let nw = read_status(&w).map(|s| s.pid).unwrap_or(0);
            let nl = read_status(&log).map(|s| s.pid).unwrap_or(0);
            nw != 0 && nl != 0 && alive(nw) && alive(nl) && (nw != wpid || nl != lpid)
        }));
        wpid = read_status(&w).unwrap().pid;
        lpid = read_status(&log).unwrap().pid;
    }
    svc("-d", &w);
    assert!(wait_service_down(&w));
    // Everything the writers wrote reaches the logger's output.
    let written = || parse(&read_text(&w.join("written"))).1;
    let complete = || {
        let got = parse(&read_text(&w.join("got"))).1;
        written()
            .iter()
            .all(|(p, ns)| got.get(p).map(|g| g.len()) >= Some(ns.len()))
    };
    assert!(
        wait_until(DEADLINE, complete),
        "lines missing at the logger"
    );
    let (order, got) = parse(&read_text(&w.join("got")));
    let written = written();
    assert!(order.len() > 10, "only {} writer incarnations", order.len());
    for pid in &order {
        let ns = &got[pid];
        let want: Vec<u64> = (0..ns.len() as u64).collect();
        assert_eq!(
            ns, &want,
            "writer {pid}: numbers lost, repeated or out of order"
        );
        // A writer killed between the pipe and its record has one more line.
        let w = written.get(pid).map_or(0, Vec::len);
        assert!(
            ns.len() == w || ns.len() == w + 1,
            "writer {pid}: {} vs {w}",
            ns.len()
        );
    }
    g.kill_all();
}
