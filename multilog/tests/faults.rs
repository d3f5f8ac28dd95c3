//! Faults: SIGTERM and kill -9 mid-stream followed by a restart, a full
//! filesystem that frees up, an unwritable directory, and hostile input
//! (NUL bytes, a 10 MiB line without a newline).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

fn numbers(data: &[u8]) -> Vec<usize> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap().parse().unwrap())
        .collect()
}

fn len_of(p: &Path) -> usize {
    std::fs::metadata(p).map(|m| m.len() as usize).unwrap_or(0)
}

#[test]
fn sigterm_finishes_the_line_in_hand_then_restart_appends() {
    let t = TempDir::new("term");
    let current = t.join("log/current");
    let mut ml = spawn(Path::new(MULTILOG), &["./log"], t.path(), Stdio::null());
    ml.stdin().write_all(&numbered(0, 100)).unwrap();
    ml.stdin().write_all(b"par").unwrap();
    wait_for(20, "lines on disk", || len_of(&current) >= 10_000);
    ml.signal(libc::SIGTERM);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(ml.0.try_wait().unwrap().is_none(), "exited inside a line");
    ml.stdin().write_all(b"tial\n").unwrap();
    assert!(ml.wait(20).success());
    let mut want = numbered(0, 100);
    want.extend(b"partial\n");
    assert_eq!(std::fs::read(&current).unwrap(), want);
    assert_eq!(mode(&current), 0o744);
    // A restart continues the complete current file.
    let out = run(Path::new(MULTILOG), &["./log"], t.path(), b"after\n");
    assert_eq!(out.code, Some(0));
    want.extend(b"after\n");
    assert_eq!(std::fs::read(&current).unwrap(), want);
    assert!(old_files(&t.join("log")).is_empty());
}

#[test]
fn sigterm_between_lines_exits_at_once() {
    let t = TempDir::new("term2");
    let mut ml = spawn(Path::new(MULTILOG), &["./log"], t.path(), Stdio::null());
    ml.stdin().write_all(b"one\n").unwrap();
    wait_for(20, "line on disk", || len_of(&t.join("log/current")) == 4);
    ml.signal(libc::SIGTERM);
    assert!(ml.wait(20).success());
    assert_eq!(mode(&t.join("log/current")), 0o744);
}

#[test]
fn kill_9_mid_stream_then_restart_keeps_every_written_line() {
    let t = TempDir::new("kill9");
    let log = t.join("log");
    let mut ml = spawn(
        Path::new(MULTILOG),
        &["s4096", "n1000", "./log"],
        t.path(),
        Stdio::null(),
    );
    ml.stdin().write_all(&numbered(0, 200)).unwrap();
    wait_for(20, "all lines written", || {
        numbers(&all_logged(&log)).last() == Some(&199)
    });
    ml.signal(libc::SIGKILL);
    ml.wait(20);
    assert_eq!(
        mode(&log.join("current")),
        0o644,
        "current looks complete after a crash"
    );
    let out = run(
        Path::new(MULTILOG),
        &["s4096", "n1000", "./log"],
        t.path(),
        &numbered(200, 100),
    );
    assert_eq!(out.code, Some(0));
    let old = old_files(&log);
    assert!(old.iter().any(|n| n.ends_with(".u")), "{old:?}");
    assert_eq!(numbers(&all_logged(&log)), (0..300).collect::<Vec<_>>());
}

#[test]
fn lines_with_nul_bytes_pass_unchanged() {
    let t = TempDir::new("nul");
    let input = b"a\0b\n\0\0\n\0\nplain\n";
    let out = run(Path::new(MULTILOG), &["./log"], t.path(), input);
    assert_eq!(out.code, Some(0));
    assert_eq!(std::fs::read(t.join("log/current")).unwrap(), input);
}

#[test]
fn ten_mib_line_without_newline() {
    let t = TempDir::new("huge");
    let input = vec![b'x'; 10 << 20];
    let args = ["t", "-*", "+@* x*", "=status", "s16777215", "./log"];
    let out = run_env(Path::new(MULTILOG), &args, t.path(), &input, &[], 120);
    assert_eq!(out.code, Some(0));
    let current = std::fs::read(t.join("log/current")).unwrap();
    assert_eq!(current.len(), 26 + (10 << 20) + 1);
    assert!(current[26..current.len() - 1].iter().all(|&b| b == b'x'));
    assert_eq!(current.last(), Some(&b'\n'));
    let status = std::fs::read(t.join("status")).unwrap();
    assert_eq!(status.len(), 1001);
    assert_eq!(&status[..26], &current[..26]);
    assert!(status[26..1000].iter().all(|&b| b == b'x'));
    // With a small size the line is cut at the size, across files.
    let out = run_env(
        Path::new(MULTILOG),
        &["s4096", "n5000", "./small"],
        t.path(),
        &input,
        &[],
        120,
    );
    assert_eq!(out.code, Some(0));
    let small = t.join("small");
    for n in old_files(&small) {
        assert_eq!(len_of(&small.join(n)), 4096);
    }
    assert_eq!(all_logged(&small).len(), (10 << 20) + 1);
}

#[test]
fn unwritable_directory_fails_like_the_original() {
    let t = TempDir::new("unwritable");
    if is_root() {
        let Some(m) = Mount::tmpfs(&t.join("ro"), "ro,size=64k") else {
            return;
        };
        for prog in [debian("multilog"), Some(MULTILOG.into())]
            .into_iter()
            .flatten()
        {
            let out = run(&prog, &["./ro/log"], t.path(), b"x\n");
            assert_eq!(out.code, Some(111));
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "multilog: fatal: unable to open directory ./ro/log: file does not exist\n"
            );
        }
        drop(m);
    } else {
        std::fs::create_dir(t.join("log")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.join("log"), std::fs::Permissions::from_mode(0o500)).unwrap();
        let out = run(Path::new(MULTILOG), &["./log"], t.path(), b"x\n");
        assert_eq!(out.code, Some(111));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "multilog: fatal: unable to lock directory ./log: access denied\n"
        );
    }
}

#[test]
fn full_filesystem_pauses_and_loses_nothing() {
    if !is_root() {
        eprintln!("skipping full-filesystem test: mounting a tmpfs needs root");
        return;
    }
    let t = TempDir::new("full");
    let Some(m) = Mount::tmpfs(&t.join("fs"), "size=256k") else {
        return;
    };
    let mut ml = spawn(Path::new(MULTILOG), &["./fs/log"], t.path(), Stdio::piped());
    wait_for(20, "current", || t.join("fs/log/current").exists());
    // Fill the filesystem, then log more than fits.
    let filler = t.join("fs/filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    while f.write_all(&[0u8; 4096]).is_ok() {}
    drop(f);
    ml.stdin().write_all(&numbered(0, 500)).unwrap();
    let mut err = ml.0.stderr.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') && std::io::Read::read(&mut err, &mut byte).unwrap() == 1 {
        line.push(byte[0]);
    }
    assert_eq!(
        String::from_utf8_lossy(&line),
        "multilog: warning: unable to write to ./fs/log/current, pausing: out of disk space\n"
    );
    std::fs::remove_file(&filler).unwrap();
    drop(ml.0.stdin.take());
    assert!(ml.wait(60).success());
    assert_eq!(
        numbers(&all_logged(&t.join("fs/log"))),
        (0..500).collect::<Vec<_>>()
    );
    drop(m);
}

/// A tmpfs mounted for one test and unmounted (by path) on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, opts: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("skipping: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn sigterm_loses_nothing_that_was_read() {
    // stdin is a file whose offset we share: after exit, everything before
    // the offset (all input consumed) must be in the log, and nothing more.
    let t = TempDir::new("termread");
    let input = numbered(0, 300_000);
    std::fs::write(t.join("in"), &input).unwrap();
    let f = std::fs::File::open(t.join("in")).unwrap();
    let shared = f.try_clone().unwrap();
    let child = Command::new(MULTILOG)
        .args(["s16777215", "n1000", "./log"])
        .current_dir(t.path())
        .stdin(f)
        .spawn()
        .unwrap();
    let mut ml = Guard(child);
    wait_for(20, "some lines", || len_of(&t.join("log/current")) > 0);
    ml.signal(libc::SIGTERM);
    assert!(ml.wait(60).success());
    let consumed = std::io::Seek::stream_position(&mut &shared).unwrap() as usize;
    let logged = all_logged(&t.join("log"));
    eprintln!(
        "consumed {consumed} of {} bytes before SIGTERM took effect",
        input.len()
    );
    assert_eq!(logged.len(), consumed);
    assert!(
        logged == input[..consumed],
        "log differs from the input consumed"
    );
}
