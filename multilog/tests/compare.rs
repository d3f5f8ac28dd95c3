//! Byte-for-byte comparison with Debian's multilog on the same input and
//! script: selection, `e`, `=file`, rotation naming, messages, exit codes.

mod support;

use std::path::Path;
use support::*;

/// A mix of lines exercising the 1000-byte head, `*` rules and odd bytes.
fn sample() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(b"qmail: fatal: disk on fire\nstatus: local 0/10\n");
    v.extend(vec![b'a'; 1500]);
    v.push(b'\n');
    v.extend(vec![b'x'; 999]);
    v.extend(b"b\n");
    v.extend(vec![b'x'; 1000]);
    v.extend(b"b\n");
    v.extend(vec![b'c'; 201]);
    v.push(b'\n');
    v.extend(vec![b'd'; 200]);
    v.push(b'\n');
    v.extend(b"with\0nul\nstar*line\n\nxbxb\ndelivery 1: success\nno newline at end");
    v
}

/// Run both implementations with `script` in fresh dirs; return
/// (theirs, ours) as (exit code, stderr, files of the run dir stripped of labels).
fn both(script: &[&str], input: &[u8]) -> Option<(Snapshot, Snapshot)> {
    let theirs = debian("multilog")?;
    let a = TempDir::new("cmp-a");
    let b = TempDir::new("cmp-b");
    let ra = run(&theirs, script, a.path(), input);
    let rb = run(Path::new(MULTILOG), script, b.path(), input);
    Some((snapshot(a.path(), ra), snapshot(b.path(), rb)))
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    code: Option<i32>,
    stderr: Vec<u8>,
    files: Vec<(String, u32, Vec<u8>)>,
}

/// Every file under `dir` (one level of subdirectories), with `@` names
/// reduced to their suffix, mode and contents with labels stripped.
fn snapshot(dir: &Path, out: Out) -> Snapshot {
    let mut files = Vec::new();
    let mut walk = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = walk.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let shown = if name.starts_with('@') {
                format!("{prefix}@LABEL{}", &name[25..])
            } else {
                format!("{prefix}{name}")
            };
            if e.file_type().unwrap().is_dir() {
                files.push((shown.clone() + "/", mode(&e.path()), Vec::new()));
                walk.push((e.path(), shown + "/"));
            } else {
                let data = strip_labels(&std::fs::read(e.path()).unwrap());
                files.push((shown, mode(&e.path()), data));
            }
        }
    }
    files.sort();
    Snapshot {
        code: out.code,
        stderr: strip_labels(&out.stderr),
        files,
    }
}

fn same(script: &[&str], input: &[u8]) {
    if let Some((theirs, ours)) = both(script, input) {
        // Show a readable difference, not kilobytes of numbers.
        assert_eq!(theirs.code, ours.code, "exit code, script {script:?}");
        assert_eq!(
            String::from_utf8_lossy(&theirs.stderr),
            String::from_utf8_lossy(&ours.stderr),
            "stderr, script {script:?}"
        );
        assert_eq!(layout(&theirs), layout(&ours), "files, script {script:?}");
        for (a, b) in theirs.files.iter().zip(&ours.files) {
            assert!(a.2 == b.2, "contents of {} differ, script {script:?}", a.0);
        }
    }
}

#[test]
fn selection_matches_the_original() {
    let input = sample();
    same(&["./main"], &input);
    same(&["-*", "+*b", "./sel"], &input);
    same(&["t", "-*", "+*b", "./sel"], &input);
    same(
        &["t", "-*", "+* fatal: *", "./fatal", "-* fatal: *", "./main"],
        &input,
    );
    same(
        &["-x*", "+xbxb", "-*: *", "./a", "+*", "-*nul", "./b"],
        &input,
    );
    same(&["-*nul", "./c"], &input);
    same(&["+star*line", "-star**", "./d"], &input);
}

#[test]
fn stderr_and_status_files_match_the_original() {
    let input = sample();
    same(&["e"], &input);
    same(&["t", "e", "=status"], &input);
    same(&["-*", "+delivery *", "=last", "e", "+*", "./main"], &input);
    same(&["=empty"], b"");
    same(&["-*", "=never"], &input);
}

#[test]
fn rotation_naming_matches_the_original() {
    let input = numbered(0, 300);
    // File sizes depend on how each implementation batches its writes;
    // compare what is kept: names' suffixes, modes, and the lines themselves.
    let Some((theirs, ours)) = both(&["s4096", "n4", "./r"], &input) else {
        return;
    };
    assert_eq!(layout(&theirs), layout(&ours));
    let lines = |s: &Snapshot| {
        s.files
            .iter()
            .flat_map(|f| f.2.clone())
            .collect::<Vec<u8>>()
    };
    // The old files keep the same lines in both (each holds whole lines).
    let kept_theirs = lines(&theirs);
    let kept_ours = lines(&ours);
    assert!(input.ends_with(&kept_ours[kept_ours.len() - 1000..]));
    assert!(input.ends_with(&kept_theirs[kept_theirs.len() - 1000..]));
    for f in &ours.files {
        assert!(f.2.len() <= 4096, "{} too big", f.0);
        assert!(f.2.is_empty() || f.2.ends_with(b"\n"));
    }
}

#[test]
fn unknown_words_and_no_script_are_ignored_as_the_original() {
    let input = sample();
    same(&[], &input);
    same(&["zz", "q", "X", "s", "n", "e", "t", "./w"], &input);
    // Where a file is cut depends on write batching: compare the layout.
    if let Some((theirs, ours)) = both(&["s100", "n0", "./small"], &numbered(0, 100)) {
        assert_eq!(layout(&theirs), layout(&ours));
    }
}

fn layout(s: &Snapshot) -> Vec<(String, u32)> {
    s.files.iter().map(|f| (f.0.clone(), f.1)).collect()
}

#[test]
fn startup_failures_match_the_original() {
    same(&["./missing/deep"], b"x\n");
    same(&["/dev/null/x"], b"x\n");
    same(&["=/nonexistent/status"], b"x\n");
}

#[test]
fn crash_leftovers_are_recovered_as_the_original() {
    let Some(theirs) = debian("multilog") else {
        return;
    };
    type Setup = &'static [(&'static str, &'static [u8], u32)];
    let cases: &[Setup] = &[
        &[("current", b"old\n", 0o644)],
        &[("current", b"old\n", 0o744)],
        &[("previous", b"x\n", 0o644), ("state", b"st\n", 0o644)],
        &[
            ("previous", b"x\n", 0o644),
            ("processed", b"p\n", 0o744),
            ("newstate", b"n\n", 0o644),
        ],
        &[
            ("previous", b"x\n", 0o644),
            ("processed", b"p\n", 0o644),
            ("newstate", b"n\n", 0o644),
        ],
        &[("current", b"old\n", 0o744), ("previous", b"x\n", 0o644)],
    ];
    for setup in cases {
        let mut snaps = Vec::new();
        for prog in [theirs.as_path(), Path::new(MULTILOG)] {
            let t = TempDir::new("crash");
            let d = t.join("log");
            std::fs::create_dir(&d).unwrap();
            for (name, data, m) in setup.iter() {
                std::fs::write(d.join(name), data).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(*m))
                    .unwrap();
            }
            let out = run(prog, &["!cat", "./log"], t.path(), b"new\n");
            snaps.push(snapshot(t.path(), out));
        }
        assert_eq!(layout(&snaps[0]), layout(&snaps[1]), "leftovers {setup:?}");
        assert!(snaps[0] == snaps[1], "contents differ, leftovers {setup:?}");
    }
}

#[test]
fn second_multilog_on_a_locked_directory() {
    for prog in [debian("multilog"), Some(MULTILOG.into())]
        .into_iter()
        .flatten()
    {
        for holder in [debian("multilog"), Some(MULTILOG.into())]
            .into_iter()
            .flatten()
        {
            let t = TempDir::new("lock");
            let mut first = spawn(&holder, &["./main"], t.path(), std::process::Stdio::null());
            wait_for(20, "lock file", || t.join("main/current").exists());
            let out = run(&prog, &["./main"], t.path(), b"x\n");
            assert_eq!(out.code, Some(111));
            assert_eq!(
                out.stderr,
                b"multilog: fatal: unable to lock directory ./main: temporary failure\n"
            );
            drop(first.0.stdin.take());
            assert!(first.wait(20).success());
        }
    }
}

#[test]
fn unreadable_input_ends_the_log_as_the_original() {
    for prog in [debian("multilog"), Some(MULTILOG.into())]
        .into_iter()
        .flatten()
    {
        let t = TempDir::new("readerr");
        let child = std::process::Command::new(&prog)
            .arg("./log")
            .current_dir(t.path())
            .stdin(std::fs::File::open(t.path()).unwrap())
            .stderr(std::fs::File::create(t.join("err")).unwrap())
            .spawn()
            .unwrap();
        let st = Guard(child).wait(20);
        assert_eq!(st.code(), Some(0), "{}", prog.display());
        assert!(std::fs::read(t.join("err")).unwrap().is_empty());
        assert_eq!(mode(&t.join("log/current")), 0o744);
    }
}

#[test]
fn ours_and_the_original_take_turns_on_one_directory() {
    let Some(theirs) = debian("multilog") else {
        return;
    };
    let t = TempDir::new("turns");
    let log = t.join("log");
    let progs = [
        theirs.as_path(),
        Path::new(MULTILOG),
        theirs.as_path(),
        Path::new(MULTILOG),
    ];
    for (i, prog) in progs.iter().enumerate() {
        let out = run(
            prog,
            &["s4096", "n1000", "./log"],
            t.path(),
            &numbered(i * 100, 100),
        );
        assert_eq!(out.code, Some(0), "{}", prog.display());
    }
    // Then each recovers after the other is killed mid-stream.
    for (i, prog) in [theirs.as_path(), Path::new(MULTILOG)].iter().enumerate() {
        let first = 400 + i * 200;
        let mut ml = spawn(
            prog,
            &["s4096", "n1000", "./log"],
            t.path(),
            std::process::Stdio::null(),
        );
        std::io::Write::write_all(ml.stdin(), &numbered(first, 100)).unwrap();
        let last = format!("{:099}\n", first + 99);
        wait_for(20, "lines on disk", || {
            std::fs::read(log.join("current"))
                .map(|c| c.ends_with(last.as_bytes()))
                .unwrap_or(false)
        });
        ml.signal(libc::SIGKILL);
        ml.wait(20);
        let next = if i == 0 {
            Path::new(MULTILOG)
        } else {
            theirs.as_path()
        };
        assert_eq!(
            run(
                next,
                &["s4096", "n1000", "./log"],
                t.path(),
                &numbered(first + 100, 100)
            )
            .code,
            Some(0)
        );
    }
    let old = old_files(&log);
    assert_eq!(
        old.iter().filter(|n| n.ends_with(".u")).count(),
        2,
        "{old:?}"
    );
    assert_eq!(all_logged(&log), numbered(0, 800));
}
