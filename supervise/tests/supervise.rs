//! supervise as a user sees it: the files it keeps, the status record bit by
//! bit, how it starts, restarts, pauses and stops ./run on svc's letters, and
//! its messages and exit codes on bad input.

mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::*;

const SUPERVISE: &str = env!("CARGO_BIN_EXE_supervise");
const SVC: &str = env!("CARGO_BIN_EXE_svc");
const SVSTAT: &str = env!("CARGO_BIN_EXE_svstat");

/// A run script that records each start's pid and argv[0], then sleeps.
const RUN: &str = "#!/bin/sh\necho \"$$ $0\" >> starts\nexec sleep 1000\n";

fn svc(flags: &str, dir: &std::path::Path) {
    let o = run(Command::new(SVC).arg(flags).arg(dir));
    assert!(o.status.success(), "svc {flags}: {o:?}");
    assert!(o.stderr.is_empty(), "svc {flags}: {o:?}");
}

fn svstat(dir: &std::path::Path) -> String {
    let o = run(Command::new(SVSTAT).arg(dir));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn starts(dir: &std::path::Path) -> Vec<String> {
    read_text(&dir.join("starts"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// TAI64 label of now with daemontools' 2^62+10 epoch.
fn tai_now() -> (u64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    ((1u64 << 62) + 10 + d.as_secs(), d.subsec_nanos())
}

#[test]
fn usage_and_chdir_failure() {
    let o = run(&mut Command::new(SUPERVISE));
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(o.stderr, b"supervise: usage: supervise dir\n");
    let o = run(Command::new(SUPERVISE).args(["a", "b"]));
    assert_eq!(o.status.code(), Some(100));
    let o = run(Command::new(SUPERVISE).arg("/nonexistent/sv"));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "supervise: fatal: unable to chdir to /nonexistent/sv: file does not exist\n"
    );
}

#[test]
fn starts_run_and_keeps_its_files() {
    let t = TempDir::new("sv-files");
    let s = make_service(t.path(), "s", RUN);
    let before = tai_now();
    let _g = start_supervise(SUPERVISE, &s);
    let pid = wait_service_pid(&s, 0).expect("service started");
    let after = tai_now();
    let st = read_status(&s).unwrap();
    assert!(
        (before..=after).contains(&(st.secs, st.nanos)),
        "{st:?} not within {before:?}..{after:?}"
    );
    assert_eq!((st.paused, st.want), (0, b'u'));
    let raw = fs::read(s.join("supervise/status")).unwrap();
    assert_eq!(raw[12..16], pid.to_le_bytes());
    assert_eq!(raw[0..8], st.secs.to_be_bytes());
    let sup = s.join("supervise");
    let mode = |p: &str| fs::metadata(sup.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(""), 0o700);
    for fifo in ["control", "ok"] {
        assert!(fs::metadata(sup.join(fifo)).unwrap().file_type().is_fifo());
        assert_eq!(mode(fifo), 0o600);
    }
    assert_eq!(mode("lock"), 0o600);
    assert!(!sup.join("status.new").exists());
    assert!(wait_until(DEADLINE, || starts(&s).len() == 1));
    assert_eq!(starts(&s)[0], format!("{pid} ./run"));
    // The service gets SIGPIPE's default disposition, not Rust's "ignore".
    let sigign = read_text(std::path::Path::new(&format!("/proc/{pid}/status")));
    let line = sigign.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
    let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{line}");
}

#[test]
fn restarts_after_exit_and_on_kill() {
    let t = TempDir::new("sv-restart");
    let s = make_service(t.path(), "s", RUN);
    let _g = start_supervise(SUPERVISE, &s);
    let p1 = wait_service_pid(&s, 0).expect("first start");
    let stamp1 = read_status(&s).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    svc("-k", &s);
    let p2 = wait_service_pid(&s, p1).expect("restarted");
    assert!(!alive(p1));
    let stamp2 = read_status(&s).unwrap();
    assert!((stamp2.secs, stamp2.nanos) > (stamp1.secs, stamp1.nanos));
    assert!(wait_until(DEADLINE, || starts(&s).len() == 2));
    assert!(svstat(&s).starts_with(&format!("{}: up (pid {p2}) ", s.display())));
}

#[test]
fn down_file_once_and_exit() {
    let t = TempDir::new("sv-down");
    let s = make_service(t.path(), "s", RUN);
    fs::write(s.join("down"), "").unwrap();
    let mut g = start_supervise(SUPERVISE, &s);
    assert!(wait_until(DEADLINE, || read_status(&s).is_some()));
    let st = read_status(&s).unwrap();
    assert_eq!((st.pid, st.want), (0, b'd'));
    std::thread::sleep(Duration::from_millis(300));
    assert!(starts(&s).is_empty(), "started despite ./down");
    assert!(svstat(&s).ends_with(" seconds\n"));
    assert!(svstat(&s).starts_with(&format!("{}: down ", s.display())));

    svc("-o", &s);
    let p1 = wait_service_pid(&s, 0).expect("started once");
    assert_eq!(read_status(&s).unwrap().want, 0);
    let line = svstat(&s);
    assert!(line.ends_with(" seconds, normally down\n"), "{line}");
    std::thread::sleep(Duration::from_millis(1100));
    svc("-k", &s);
    assert!(wait_service_down(&s));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(starts(&s).len(), 1, "a once service was restarted");
    assert!(!alive(p1));

    svc("-u", &s);
    wait_service_pid(&s, 0).expect("up again");
    std::thread::sleep(Duration::from_millis(1100));
    svc("-x", &s);
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.try_status().is_none(), "exited while the service runs");
    svc("-d", &s);
    let st = g.wait_for(DEADLINE).expect("supervise exits after x and d");
    assert_eq!(st.code(), Some(0));
    let last = read_status(&s).unwrap();
    assert_eq!((last.pid, last.want), (0, b'd'));
    assert_eq!(starts(&s).len(), 2, "restarted after x");
}

fn proc_state(pid: u32) -> char {
    proc_stat(pid).map(|(_, s)| s).unwrap_or('?')
}

#[test]
fn pause_continue_and_down() {
    let t = TempDir::new("sv-pause");
    let s = make_service(t.path(), "s", RUN);
    let _g = start_supervise(SUPERVISE, &s);
    let pid = wait_service_pid(&s, 0).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    svc("-p", &s);
    assert!(wait_until(DEADLINE, || proc_state(pid) == 'T'));
    assert_eq!(read_status(&s).unwrap().paused, 1);
    assert!(svstat(&s).ends_with(" seconds, paused\n"));
    svc("-c", &s);
    assert!(wait_until(DEADLINE, || proc_state(pid) == 'S'));
    assert_eq!(read_status(&s).unwrap().paused, 0);
    // d on a paused service: TERM then CONT, so it really dies.
    svc("-p", &s);
    assert!(wait_until(DEADLINE, || proc_state(pid) == 'T'));
    svc("-d", &s);
    assert!(wait_service_down(&s));
    let st = read_status(&s).unwrap();
    assert_eq!((st.pid, st.paused, st.want), (0, 0, b'd'));
    assert!(svstat(&s).ends_with(" seconds, normally up\n"));
    svc("-u", &s);
    let p2 = wait_service_pid(&s, 0).unwrap();
    assert_ne!(p2, pid);
}

#[test]
fn signals_reach_the_service() {
    // The shell waits with the `wait` builtin, which a trapped signal
    // interrupts at once (a foreground child would make sh drop SIGINT).
    let t = TempDir::new("sv-signals");
    // TERM ends the service, so that no trapping shell outlives the test.
    let run = "#!/bin/sh\n\
        for s in HUP ALRM INT; do trap \"echo $s >> got\" $s; done\n\
        trap 'echo TERM >> got; kill $!; exit 0' TERM\n\
        sleep 1000 &\necho started >> got\nwhile :; do wait; done\n";
    let s = make_service(t.path(), "s", run);
    // supervise passes signal dispositions on as it got them (as the
    // original); a test runner started in the background may have SIGINT
    // ignored, so give supervise the defaults a boot script would.
    let err = fs::File::create(s.with_extension("err")).unwrap();
    let mut cmd = Command::new(SUPERVISE);
    cmd.arg(&s).stderr(err);
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let _g = Guard::spawn(&mut cmd);
    wait_service_pid(&s, 0).unwrap();
    assert!(wait_until(DEADLINE, || read_text(&s.join("got")) == "started\n"));
    std::thread::sleep(Duration::from_millis(1100));
    for (flag, name) in [("-h", "HUP"), ("-a", "ALRM"), ("-i", "INT"), ("-t", "TERM")] {
        svc(flag, &s);
        assert!(
            wait_until(DEADLINE, || read_text(&s.join("got")).contains(name)),
            "{name} not delivered"
        );
    }
}

#[test]
fn second_supervise_is_refused() {
    let t = TempDir::new("sv-lock");
    let s = make_service(t.path(), "s", RUN);
    let _g = start_supervise(SUPERVISE, &s);
    wait_service_pid(&s, 0).unwrap();
    let o = run(Command::new(SUPERVISE).arg(&s));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "supervise: fatal: unable to acquire {}/supervise/lock: temporary failure\n",
            s.display()
        )
    );
}

/// A run that cannot start: the child reports it, supervise retries once a
/// second, never faster, and keeps running.
fn retries_without_spinning(prepare: impl Fn(&std::path::Path), why: &str) {
    let t = TempDir::new("sv-norun");
    let s = t.join("s");
    fs::create_dir(&s).unwrap();
    prepare(&s);
    let mut g = start_supervise(SUPERVISE, &s);
    let line = format!(
        "supervise: fatal: unable to start {}/run: {why}\n",
        s.display()
    );
    assert!(wait_until(DEADLINE, || supervise_stderr(&s).contains(&line)));
    let first = std::time::Instant::now();
    let n0 = supervise_stderr(&s).matches(&line).count();
    std::thread::sleep(Duration::from_millis(3500));
    let n = supervise_stderr(&s).matches(&line).count() - n0;
    let secs = first.elapsed().as_secs_f64();
    assert!(n >= 2, "only {n} retries in {secs:.1} s");
    assert!(
        n as f64 <= secs + 1.0,
        "{n} retries in {secs:.1} s: spinning"
    );
    assert!(g.try_status().is_none(), "supervise gave up");
    assert!(cpu_ticks(g.pid()) < 100, "supervise burns CPU");
    let err = supervise_stderr(&s);
    assert!(err.lines().all(|l| format!("{l}\n") == line), "{err}");
}

#[test]
fn missing_run_warns_and_retries() {
    retries_without_spinning(|_| {}, "file does not exist");
}

#[test]
fn non_executable_run_warns_and_retries() {
    retries_without_spinning(
        |s| fs::write(s.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap(),
        "access denied",
    );
}

#[test]
fn unwritable_service_directory() {
    let t = TempDir::new("sv-ro");
    let s = make_service(t.path(), "s", RUN);
    let mut cmd = Command::new(SUPERVISE);
    cmd.arg(&s);
    if is_root() {
        // root writes anywhere: be nobody in a root-owned 0755 directory.
        cmd.uid(65534).gid(65534);
    } else {
        fs::set_permissions(&s, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "supervise: fatal: unable to acquire {}/supervise/lock: file does not exist\n",
            s.display()
        )
    );
    assert!(!s.join("supervise").exists());
}

#[test]
fn supervise_is_a_file() {
    let t = TempDir::new("sv-file");
    let s = make_service(t.path(), "s", RUN);
    fs::write(s.join("supervise"), "").unwrap();
    let o = run(Command::new(SUPERVISE).arg(&s));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "supervise: fatal: unable to acquire {}/supervise/lock: not a directory\n",
            s.display()
        )
    );
}

#[test]
fn dangling_supervise_symlink_gets_its_target() {
    let t = TempDir::new("sv-link");
    let s = make_service(t.path(), "s", RUN);
    std::os::unix::fs::symlink(t.join("elsewhere"), s.join("supervise")).unwrap();
    let _g = start_supervise(SUPERVISE, &s);
    wait_service_pid(&s, 0).expect("started through the symlink");
    assert!(t.join("elsewhere/status").exists());
}

#[test]
fn control_replaced_by_a_regular_file() {
    let t = TempDir::new("sv-ctlfile");
    let s = make_service(t.path(), "s", RUN);
    fs::create_dir(s.join("supervise")).unwrap();
    fs::write(s.join("supervise/control"), "").unwrap();
    let g = start_supervise(SUPERVISE, &s);
    let pid = wait_service_pid(&s, 0).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    // The original accepts it silently (and spins); we accept it without spinning.
    assert!(
        cpu_ticks(g.pid()) < 50,
        "supervise spins on a regular control file"
    );
    assert_eq!(supervise_stderr(&s), "");
    svc("-d", &s);
    assert!(wait_service_down(&s));
    assert!(!alive(pid));
    assert!(svstat(&s).ends_with(" seconds, normally up\n"));
}

#[test]
fn status_write_failure_is_a_warning() {
    let t = TempDir::new("sv-statusdir");
    let s = make_service(t.path(), "s", RUN);
    fs::create_dir_all(s.join("supervise/status.new")).unwrap();
    let _g = start_supervise(SUPERVISE, &s);
    let line = format!(
        "supervise: warning: unable to open {}/supervise/status.new: is a directory\n",
        s.display()
    );
    assert!(wait_until(DEADLINE, || supervise_stderr(&s).contains(&line)));
    assert!(wait_until(DEADLINE, || starts(&s).len() == 1));
}

#[test]
fn readiness_is_recorded_apart_from_status() {
    let t = TempDir::new("sv-ready");
    let run = "#!/bin/sh\nsleep 0.3\necho >&5\nexec sleep 1000\n";
    let s = make_service(t.path(), "s", run);
    fs::write(s.join("notification-fd"), "5\n").unwrap();
    let _g = start_supervise(SUPERVISE, &s);
    let p1 = wait_service_pid(&s, 0).unwrap();
    let ready = s.join("supervise/ready");
    assert!(wait_until(DEADLINE, || fs::metadata(&ready).is_ok()));
    let stamp = fs::read(&ready).unwrap();
    assert_eq!(stamp.len(), 12);
    let st = read_status(&s).unwrap();
    let secs = u64::from_be_bytes(stamp[..8].try_into().unwrap());
    assert!(secs >= st.secs && secs <= tai_now().0);
    assert_eq!(fs::read(s.join("supervise/status")).unwrap().len(), 18);
    let line = svstat(&s);
    assert!(
        line.starts_with(&format!("{}: up (pid {p1}) ", s.display()))
            && line.contains(" seconds, ready ")
            && line.ends_with(" seconds\n"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    svc("-k", &s);
    let _p2 = wait_service_pid(&s, p1).unwrap();
    // Readiness of the old process is gone: whatever is recorded is newer.
    let st2 = read_status(&s).unwrap();
    if let Some(b) = read_opt(&ready) {
        assert!(u64::from_be_bytes(b[..8].try_into().unwrap()) >= st2.secs);
    }
    assert!(wait_until(DEADLINE, || svstat(&s).contains(", ready ")));
}

#[test]
fn no_readiness_without_notification_fd() {
    let t = TempDir::new("sv-noready");
    let s = make_service(t.path(), "s", RUN);
    let _g = start_supervise(SUPERVISE, &s);
    wait_service_pid(&s, 0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.join("supervise/ready").exists());
    assert!(!svstat(&s).contains(", ready "));
}
