//! Rotation and the processor protocol: every line exactly once across the
//! `@*.s` files and `current`, processors that compress, fail or hang, and
//! SIGALRM.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use support::*;

/// The numbers of the lines in `data`, checking each is a numbered line.
fn numbers(data: &[u8]) -> Vec<usize> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            assert_eq!(l.len(), 99, "mangled line {:?}", String::from_utf8_lossy(l));
            std::str::from_utf8(l).unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn two_hundred_rotations_keep_every_line_once() {
    let t = TempDir::new("rot200");
    let input = numbered(0, 4500);
    let out = run(
        Path::new(MULTILOG),
        &["s4096", "n1000", "./log"],
        t.path(),
        &input,
    );
    assert_eq!(out.code, Some(0));
    let log = t.join("log");
    let old = old_files(&log);
    assert!(old.len() >= 200, "only {} rotations", old.len());
    for n in &old {
        assert!(n.ends_with(".s") && n.len() == 27, "{n}");
        let data = std::fs::read(log.join(n)).unwrap();
        assert!(
            data.len() <= 4096 && data.ends_with(b"\n"),
            "{n}: {} bytes",
            data.len()
        );
        assert_eq!(mode(&log.join(n)), 0o744);
    }
    assert_eq!(mode(&log.join("current")), 0o744);
    assert_eq!(numbers(&all_logged(&log)), (0..4500).collect::<Vec<_>>());
}

#[test]
fn old_files_are_trimmed_to_fewer_than_n() {
    let t = TempDir::new("trim");
    let out = run(
        Path::new(MULTILOG),
        &["s4096", "n3", "./log"],
        t.path(),
        &numbered(0, 500),
    );
    assert_eq!(out.code, Some(0));
    let log = t.join("log");
    assert_eq!(old_files(&log).len(), 2);
    // What is kept is the newest tail of the input, in order.
    let kept = numbers(&all_logged(&log));
    assert_eq!(kept, (kept[0]..500).collect::<Vec<_>>());
}

#[test]
fn gzip_processor_output_is_kept_with_state() {
    let t = TempDir::new("gzip");
    let script = ["s4096", "n100", "!gzip; echo run >&5", "./log"];
    let out = run(Path::new(MULTILOG), &script, t.path(), &numbered(0, 300));
    assert_eq!(
        out.code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = t.join("log");
    let old = old_files(&log);
    assert!(old.len() >= 10);
    let mut all = Vec::new();
    for n in &old {
        let z = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(log.join(n))
            .output()
            .unwrap();
        assert!(z.status.success(), "{n} is not gzip");
        all.extend(z.stdout);
    }
    all.extend(std::fs::read(log.join("current")).unwrap());
    assert_eq!(numbers(&all), (0..300).collect::<Vec<_>>());
    // fd 5 became `state`; `previous`, `processed`, `newstate` are gone.
    assert_eq!(std::fs::read(log.join("state")).unwrap(), b"run\n");
    for gone in ["previous", "processed", "newstate"] {
        assert!(!log.join(gone).exists(), "{gone} left behind");
    }
}

#[test]
fn failing_processor_is_retried_and_nothing_is_lost() {
    let t = TempDir::new("flaky");
    // Fails every other run; a success appends a line to the state it read.
    let proc_ = "if test -f failed; then rm failed; cat; cat <&4 >&5; echo ok >&5; else touch failed; exit 1; fi";
    let processor = format!("!{proc_}");
    let args = ["s4096", processor.as_str(), "./log"];
    let out = run_env(
        Path::new(MULTILOG),
        &args,
        t.path(),
        &numbered(0, 50),
        &[],
        120,
    );
    assert_eq!(out.code, Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("multilog: warning: processor failed in ./log, pausing\n"),
        "{err}"
    );
    let log = t.join("log");
    let old = old_files(&log);
    assert_eq!(old.len(), 2, "{old:?}");
    assert_eq!(numbers(&all_logged(&log)), (0..50).collect::<Vec<_>>());
    assert_eq!(std::fs::read(log.join("state")).unwrap(), b"ok\nok\n");
}

#[test]
fn hanging_processor_delays_but_loses_nothing() {
    let t = TempDir::new("hang");
    let mut ml = spawn(
        Path::new(MULTILOG),
        &["s4096", "!sleep 3; cat", "./log"],
        t.path(),
        Stdio::null(),
    );
    ml.stdin().write_all(&numbered(0, 30)).unwrap();
    wait_for(20, "previous", || t.join("log/previous").exists());
    // While the processor hangs, input waits in the pipe.
    ml.stdin().write_all(&numbered(30, 10)).unwrap();
    drop(ml.0.stdin.take());
    assert!(ml.wait(60).success());
    assert_eq!(
        numbers(&all_logged(&t.join("log"))),
        (0..40).collect::<Vec<_>>()
    );
}

#[test]
fn missing_or_corrupt_state_still_processes() {
    let t = TempDir::new("state");
    let log = t.join("log");
    let script = ["s4096", "!cat; cat <&4 >&5; echo ok >&5", "./log"];
    assert_eq!(
        run(Path::new(MULTILOG), &script, t.path(), b"first\n").code,
        Some(0)
    );
    std::fs::remove_file(log.join("state")).unwrap();
    assert_eq!(
        run(Path::new(MULTILOG), &script, t.path(), &numbered(0, 30)).code,
        Some(0)
    );
    assert_eq!(std::fs::read(log.join("state")).unwrap(), b"ok\n");
    std::fs::write(log.join("state"), b"\0\xff garbage").unwrap();
    assert_eq!(
        run(Path::new(MULTILOG), &script, t.path(), &numbered(30, 30)).code,
        Some(0)
    );
    assert_eq!(
        std::fs::read(log.join("state")).unwrap(),
        b"\0\xff garbageok\n"
    );
    let all = all_logged(&log);
    assert!(all.starts_with(b"first\n"));
    assert_eq!(numbers(&all[6..]), (0..60).collect::<Vec<_>>());
}

#[test]
fn sigalrm_rotates_at_once() {
    // As Debian's multilog: an empty current is not rotated, and a line
    // being read when SIGALRM comes goes whole into the new current.
    let t = TempDir::new("alrm");
    let log = t.join("log");
    let mut idle = spawn(Path::new(MULTILOG), &["./log"], t.path(), Stdio::null());
    wait_for(20, "current", || log.join("current").exists());
    // SIGALRM is delivered before SIGTERM: an empty current stays.
    idle.signal(libc::SIGALRM);
    idle.signal(libc::SIGTERM);
    assert!(idle.wait(20).success());
    assert!(old_files(&log).is_empty());
    let mut ml = spawn(Path::new(MULTILOG), &["./log"], t.path(), Stdio::null());
    ml.stdin()
        .write_all(
            b"one
two
part",
        )
        .unwrap();
    let current = log.join("current");
    wait_for(20, "lines in current", || {
        std::fs::read(&current)
            .map(|d| d.len() == 8)
            .unwrap_or(false)
    });
    assert!(old_files(&log).is_empty());
    ml.signal(libc::SIGALRM);
    wait_for(20, "rotation", || old_files(&log).len() == 1);
    let old = old_files(&log);
    assert!(old[0].ends_with(".s"));
    assert_eq!(std::fs::read(log.join(&old[0])).unwrap(), b"one\ntwo\n");
    ml.stdin().write_all(b"ial\nthree\n").unwrap();
    drop(ml.0.stdin.take());
    assert!(ml.wait(20).success());
    assert_eq!(std::fs::read(&current).unwrap(), b"partial\nthree\n");
}

#[test]
fn processor_runs_with_default_signals_in_the_log_directory() {
    let t = TempDir::new("procenv");
    let script = [
        "s4096",
        "!grep SigIgn /proc/self/status >&2; pwd >&2; cat",
        "./log",
    ];
    let out = run(Path::new(MULTILOG), &script, t.path(), &numbered(0, 30));
    assert_eq!(out.code, Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let ignored = err
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    let mask = u64::from_str_radix(ignored.trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored in the processor"
    );
    let log = std::fs::canonicalize(t.join("log")).unwrap();
    assert!(err.lines().any(|l| Path::new(l) == log), "{err}");
}
