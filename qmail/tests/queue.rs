//! qmail-queue and the installer as a user sees them: exit codes, the files
//! left in the queue, the Received line, and crash safety under kill -9.

mod support_qeng;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;
use support_qeng::*;

#[test]
fn installer_builds_a_home_that_instcheck_accepts() {
    let h = Home::new("inst");
    for d in [
        "queue/mess/22",
        "queue/info/0",
        "queue/todo",
        "queue/intd",
        "bin",
    ] {
        assert!(h.root().join(d).is_dir(), "{d}");
    }
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(h.root().join("queue/lock/trigger")).unwrap();
    assert!(md.file_type().is_fifo());
    assert_eq!(
        std::fs::metadata(h.root().join("queue/lock/tcpto"))
            .unwrap()
            .len(),
        1024
    );
    let out = h.cmd("qmail-instcheck").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    std::fs::remove_dir(h.root().join("queue/bounce")).unwrap();
    let out = h.cmd("qmail-instcheck").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("queue/bounce does not exist"), "{err}");
}

#[test]
fn queues_message_and_envelope() {
    let h = Home::new("q");
    let out = h.qmail_queue(b"Subject: hi\n\nbody\n", b"Fme@x.org\0Tyou@y.org\0Tb@z\0\0");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let todo = h.queue_files("todo");
    assert_eq!(todo.len(), 1);
    let id: u64 = todo[0].strip_prefix("todo/").unwrap().parse().unwrap();
    let mess = std::fs::read(h.root().join(format!("queue/mess/{}/{id}", id % 23))).unwrap();
    let mess = String::from_utf8(mess).unwrap();
    let uid = unsafe { libc::getuid() };
    assert!(mess.starts_with("Received: (qmail "), "{mess}");
    assert!(
        mess.contains(&format!(" invoked by uid {uid}); ")),
        "{mess}"
    );
    assert!(mess.ends_with(" -0000\nSubject: hi\n\nbody\n"), "{mess}");
    let env = std::fs::read(h.root().join("queue").join(&todo[0])).unwrap();
    let expect_tail = b"\0Fme@x.org\0Tyou@y.org\0Tb@z\0";
    assert!(env.starts_with(format!("u{uid}\0p").as_bytes()));
    assert!(env.ends_with(expect_tail), "{env:?}");
    assert_eq!(h.queue_files("pid"), Vec::<String>::new());
}

#[test]
fn malformed_envelopes_exit_91_and_leave_nothing() {
    let h = Home::new("bad");
    for env in [&b"Xme\0\0"[..], b"Fme\0Xyou\0\0"] {
        let out = h.qmail_queue(b"x\n", env);
        assert_eq!(out.status.code(), Some(91));
    }
    let out = h.qmail_queue(b"x\n", b"Fme\0Tyou");
    assert_eq!(out.status.code(), Some(54));
    let mut long = b"F".to_vec();
    long.extend(vec![b'a'; 2000]);
    long.extend_from_slice(b"\0\0");
    let out = h.qmail_queue(b"x\n", &long);
    assert_eq!(out.status.code(), Some(11));
    for d in ["todo", "mess", "intd", "pid"] {
        assert_eq!(h.queue_files(d), Vec::<String>::new(), "{d}");
    }
}

#[test]
fn missing_home_and_queue_exit_61_62() {
    let t = TempDir::new("nohome");
    let out = std::process::Command::new(bin("qmail-queue"))
        .env("QMAILHOME", t.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(61));
    let out = std::process::Command::new(bin("qmail-queue"))
        .env("QMAILHOME", t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(62));
}

#[test]
fn nul_bytes_and_a_large_message_are_kept_exactly() {
    let h = Home::new("big");
    let mut msg = b"Subject: x\n\n".to_vec();
    msg.extend((0..50u32 << 20).map(|i| (i % 251) as u8));
    let out = h.qmail_queue(&msg, b"F\0Ta@b\0\0");
    assert_eq!(out.status.code(), Some(0));
    let mess = h.queue_files("mess");
    let got = std::fs::read(h.root().join("queue").join(&mess[0])).unwrap();
    assert!(got.ends_with(&msg));
}

#[test]
fn kill_9_mid_message_leaves_nothing_visible() {
    let h = Home::new("kill");
    for cut in [0usize, 10, 100_000] {
        let envfile = h.dir.path().join("env");
        std::fs::write(&envfile, b"Fa@b\0Tc@d\0\0").unwrap();
        let mut child = h
            .cmd("qmail-queue")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::open(&envfile).unwrap())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(&vec![b'x'; cut]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(input);
        assert_eq!(h.queue_files("todo"), Vec::<String>::new());
    }
}

#[test]
fn full_disk_leaves_nothing_half_written() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping full_disk_leaves_nothing_half_written: needs root to mount a tmpfs");
        return;
    }
    let t = TempDir::new("full");
    let mnt = t.path().join("fs");
    std::fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status();
    if !matches!(st, Ok(s) if s.success()) {
        eprintln!("skipping full_disk_leaves_nothing_half_written: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let home = mnt.join("qmail");
    let st = std::process::Command::new(bin("qmail-install"))
        .arg("-p")
        .env("QMAILHOME", &home)
        .status()
        .unwrap();
    assert!(st.success());
    let envfile = t.path().join("env");
    std::fs::write(&envfile, b"Fa@b\0Tc@d\0\0").unwrap();
    let mut child = std::process::Command::new(bin("qmail-queue"))
        .env("QMAILHOME", &home)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::open(&envfile).unwrap())
        .spawn()
        .unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        let _ = i.write_all(&vec![b'x'; 3 << 20]);
    }
    let out = wait_output(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(53));
    for d in ["todo", "intd", "mess", "pid"] {
        let mut n = 0;
        for e in walkdir(&home.join("queue").join(d)) {
            n += usize::from(e.is_file());
        }
        assert_eq!(n, 0, "{d}");
    }
}

fn walkdir(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walkdir(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// qmail-queue with its message on a pipe (child.stdin) and its envelope
/// on another, whose writing end is returned.
fn with_envelope_pipe(h: &Home) -> (std::process::Child, std::os::fd::OwnedFd) {
    let (env_r, env_w) = nix::unistd::pipe().unwrap();
    let child = h
        .cmd("qmail-queue")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(env_r))
        .spawn()
        .unwrap();
    (child, env_w)
}

#[test]
fn kill_9_while_reading_the_envelope_leaves_nothing_visible() {
    let h = Home::new("killenv");
    let (mut child, env_w) = with_envelope_pipe(&h);
    {
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"Subject: x\n\nbody\n").unwrap();
    }
    let mut env = std::fs::File::from(env_w);
    env.write_all(b"Fa@b\0Tc@").unwrap();
    // The message is written and intd/N exists: qmail-queue waits for the rest.
    assert!(wait_until(Duration::from_secs(30), || !h
        .queue_files("intd")
        .is_empty()));
    assert_eq!(h.queue_files("mess").len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(env);
    assert_eq!(h.queue_files("todo"), Vec::<String>::new());
}

#[test]
fn nothing_is_made_until_the_message_starts() {
    let h = Home::new("waits");
    let (mut child, env_w) = with_envelope_pipe(&h);
    std::thread::sleep(Duration::from_millis(300));
    for d in ["pid", "mess", "intd", "todo"] {
        assert_eq!(h.queue_files(d), Vec::<String>::new(), "{d}");
    }
    child.stdin.take().unwrap().write_all(b"late\n").unwrap();
    std::fs::File::from(env_w)
        .write_all(b"Fa@b\0Tc@d\0\0")
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(h.queue_files("todo").len(), 1);
    // Both inputs ending empty is the original's read error, and leaves nothing.
    let out = h.qmail_queue(b"", b"");
    assert_eq!(out.status.code(), Some(54));
    assert_eq!(h.queue_files("todo").len(), 1);
    assert_eq!(h.queue_files("intd").len(), 1);
    assert_eq!(h.queue_files("pid"), Vec::<String>::new());
    // An empty message with an envelope is still queued.
    let out = h.qmail_queue(b"", b"Fa@b\0Tc@d\0\0");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(h.queue_files("todo").len(), 2);
}
