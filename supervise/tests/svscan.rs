//! svscan driving our supervise (found through PATH, our build directory
//! first): many services, a killed supervise restarted, a new directory
//! picked up, a removed one forgotten without killing anything, dot entries
//! ignored, the original's messages, and the PID-1 mode's reaping and clean
//! shutdown.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const SVSCAN: &str = env!("CARGO_BIN_EXE_svscan");

/// A scan period plus slack for a loaded machine.
const SCAN: Duration = Duration::from_secs(15);

/// Start svscan on `dir` with our binaries first in PATH, stderr to a file.
fn start_svscan(dir: &Path, extra_env: &[(&str, &str)]) -> Guard {
    let err = fs::File::create(dir.with_extension("err")).unwrap();
    let mut cmd = Command::new(SVSCAN);
    cmd.arg(dir)
        .env("PATH", path_with(&dir_of(SVSCAN)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Guard::spawn(&mut cmd)
}

fn svscan_stderr(dir: &Path) -> String {
    read_text(&dir.with_extension("err"))
}

/// The pid of the live `supervise ARG` among svscan's children.
fn supervise_of(svscan: u32, arg: &str) -> Option<u32> {
    let want = format!("supervise\0{arg}\0");
    descendants(svscan).into_iter().find(|&p| {
        proc_stat(p).map(|(pp, _)| pp) == Some(svscan)
            && fs::read(format!("/proc/{p}/cmdline")).ok().as_deref() == Some(want.as_bytes())
    })
}

fn sleeper(base: &Path, name: &str) -> std::path::PathBuf {
    make_service(base, name, "#!/bin/sh\nexec sleep 1000\n")
}

#[test]
fn fifty_services_all_start() {
    let t = TempDir::new("svscan-50");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    let dirs: Vec<_> = (0..50).map(|i| sleeper(&sv, &format!("s{i:02}"))).collect();
    let mut g = start_svscan(&sv, &[]);
    for d in &dirs {
        let pid = wait_service_pid(d, 0);
        assert!(
            pid.is_some(),
            "{} never started: {}",
            d.display(),
            svscan_stderr(&sv)
        );
    }
    assert!(
        supervise_of(g.pid(), "s00").is_some(),
        "supervise is svscan's child"
    );
    assert_eq!(svscan_stderr(&sv), "");
    g.kill_all();
}

#[test]
fn killed_supervise_is_restarted_within_a_scan() {
    let t = TempDir::new("svscan-kill");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    let a = sleeper(&sv, "a");
    let mut g = start_svscan(&sv, &[]);
    let service = wait_service_pid(&a, 0).expect("service a runs");
    g.also(service);
    let old = supervise_of(g.pid(), "a").expect("supervise a");
    kill_pid(old, libc::SIGKILL);
    let new = wait_for(SCAN, || supervise_of(g.pid(), "a").filter(|&p| p != old));
    assert!(new.is_some(), "supervise a not restarted");
    // The new supervise starts a fresh service (the old one was orphaned).
    let again = wait_service_pid(&a, service);
    assert!(again.is_some());
    g.also(again.unwrap());
    g.kill_all();
}

#[test]
fn new_directory_is_picked_up_and_dot_entries_ignored() {
    let t = TempDir::new("svscan-new");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    sleeper(&sv, ".hidden");
    fs::write(sv.join("plainfile"), "").unwrap();
    let mut g = start_svscan(&sv, &[]);
    // Build the service outside, then move it in at once.
    let b = sleeper(t.path(), "b");
    fs::rename(&b, sv.join("b")).unwrap();
    assert!(
        wait_service_pid(&sv.join("b"), 0).is_some(),
        "b not started"
    );
    assert!(supervise_of(g.pid(), ".hidden").is_none());
    assert!(!sv.join(".hidden/supervise").exists());
    assert_eq!(svscan_stderr(&sv), "");
    g.kill_all();
}

#[test]
fn removed_directory_is_forgotten_without_killing() {
    let t = TempDir::new("svscan-gone");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    sleeper(&sv, "c");
    let mut g = start_svscan(&sv, &[]);
    let service = wait_service_pid(&sv.join("c"), 0).expect("c runs");
    let sup = supervise_of(g.pid(), "c").expect("supervise c");
    g.also(service);
    let moved = t.join("c-moved");
    fs::rename(sv.join("c"), &moved).unwrap();
    // Two scans later nothing has been killed.
    std::thread::sleep(Duration::from_secs(11));
    assert!(
        alive(sup) && alive(service),
        "svscan killed a removed service"
    );
    // Once its supervise exits, svscan does not start it again.
    kill_pid(sup, libc::SIGKILL);
    std::thread::sleep(Duration::from_secs(11));
    assert!(supervise_of(g.pid(), "c").is_none());
    g.kill_all();
}

#[test]
fn missing_supervise_is_a_warning() {
    let t = TempDir::new("svscan-nosup");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    sleeper(&sv, "d");
    let empty = t.join("emptybin");
    fs::create_dir(&empty).unwrap();
    let err = fs::File::create(t.join("err")).unwrap();
    let mut g = Guard::spawn(
        Command::new(SVSCAN)
            .arg(&sv)
            .env("PATH", &empty)
            .stdin(Stdio::null())
            .stderr(err),
    );
    let line = "svscan: warning: unable to start supervise d: file does not exist\n";
    assert!(wait_until(DEADLINE, || read_text(&t.join("err")).contains(line)));
    assert!(g.try_status().is_none(), "svscan keeps running");
    g.kill_all();
}

#[test]
fn unusable_directory_is_fatal_like_the_original() {
    let ours = run(Command::new(SVSCAN).arg("/nonexistent/svscan-dir"));
    assert_eq!(ours.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        "svscan: fatal: unable to chdir to /nonexistent/svscan-dir: file does not exist\n"
    );
    if have_peer(
        "/usr/bin/svscan",
        "unusable_directory_is_fatal_like_the_original",
    ) {
        let theirs = run(Command::new("/usr/bin/svscan").arg("/nonexistent/svscan-dir"));
        assert_eq!(theirs.status.code(), ours.status.code());
        assert_eq!(theirs.stderr, ours.stderr);
    }
}

#[test]
fn services_outlive_an_ordinary_svscan() {
    let t = TempDir::new("svscan-term");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    sleeper(&sv, "e");
    let mut g = start_svscan(&sv, &[]);
    let service = wait_service_pid(&sv.join("e"), 0).expect("e runs");
    let sup = supervise_of(g.pid(), "e").expect("supervise e");
    g.also(sup);
    g.also(service);
    kill_pid(g.pid(), libc::SIGTERM);
    assert!(g.wait_for(DEADLINE).is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(sup) && alive(service));
    g.kill_all();
}

#[test]
fn pid1_mode_reaps_orphans_and_stops_everything_on_term() {
    let t = TempDir::new("svscan-pid1");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    // The backgrounded sleep is orphaned at once and comes to svscan.
    make_service(&sv, "f", "#!/bin/sh\n( sleep 2 & ) ; exec sleep 1000\n");
    let log = sv.join("f/log");
    fs::create_dir(&log).unwrap();
    write_script(&log.join("run"), "#!/bin/sh\nexec cat > out\n");
    let mut g = start_svscan(&sv, &[("SVSCAN_PID1", "1")]);
    let service = wait_service_pid(&sv.join("f"), 0).expect("f runs");
    let logger = wait_service_pid(&log, 0).expect("f/log runs");
    let sups = [
        supervise_of(g.pid(), "f").unwrap(),
        supervise_of(g.pid(), "log").unwrap(),
    ];
    let me = g.pid();
    // The orphaned `sleep 2` becomes svscan's child, and once it exits
    // svscan reaps it: it must not linger as a zombie.
    let orphan = wait_for(DEADLINE, || {
        fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|&p| {
                proc_stat(p).is_some_and(|(pp, _)| pp == me)
                    && fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x002\0")
            })
    })
    .expect("orphan adopted by svscan");
    assert!(
        wait_until(DEADLINE, || proc_stat(orphan).is_none()),
        "orphan not reaped"
    );
    kill_pid(me, libc::SIGTERM);
    let st = g.wait_for(Duration::from_secs(40)).expect("svscan exits");
    assert_eq!(st.code(), Some(0));
    for p in [service, logger, sups[0], sups[1]] {
        assert!(!alive(p), "{p} still running after shutdown");
    }
    assert_eq!(svscan_stderr(&sv), "");
}

const READPROCTITLE: &str = env!("CARGO_BIN_EXE_readproctitle");

/// Feed `input` to `bin service errors: ....................` and wait
/// until its command line ends with the window `want`, while its stdin is
/// still open; then check it exits 0 at the end of its input.
fn title_shows(bin: &str, input: &[u8], want: &[u8]) -> bool {
    use std::io::Write;
    let mut g = Guard::spawn(
        Command::new(bin)
            .args(["service", "errors:", "...................."])
            .stdin(Stdio::piped()),
    );
    let mut stdin = g.child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    let pid = g.pid();
    let full = [b"service\0errors:\0", want, b"\0"].concat();
    let shown = wait_until(DEADLINE, || {
        fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(&full))
    });
    drop(stdin);
    let st = g
        .wait_for(DEADLINE)
        .expect("readproctitle exits at end of input");
    assert_eq!(st.code(), Some(0));
    shown
}

#[test]
fn readproctitle_shows_the_latest_bytes() {
    let cases: [(&[u8], &[u8]); 2] = [
        (b"oops\nbad!\n", b"..........oops\nbad!\n"),
        (
            b"0123456789abcdefghijKLMNOPQRSTUVWXYZ",
            b"...jKLMNOPQRSTUVWXYZ",
        ),
    ];
    for (input, want) in cases {
        assert!(title_shows(READPROCTITLE, input, want), "{want:?}");
        if have_peer(
            "/usr/bin/readproctitle",
            "readproctitle_shows_the_latest_bytes",
        ) {
            assert!(title_shows("/usr/bin/readproctitle", input, want));
        }
    }
    // Too short a window: exit 100 without a word, as the original.
    let out = run(Command::new(READPROCTITLE).args(["a", "b"]));
    assert_eq!((out.status.code(), out.stderr.len()), (Some(100), 0));
}

#[test]
fn svscanboot_runs_svscan_into_readproctitle() {
    // svscanboot sets the original's fixed PATH, so it runs whichever
    // svscan, supervise and readproctitle are installed there.
    let installed = ["/usr/local/bin", "/usr/bin"]
        .iter()
        .any(|d| Path::new(d).join("svscan").exists());
    if !installed {
        eprintln!("SKIP svscanboot: no svscan installed in the original's PATH");
        return;
    }
    let t = TempDir::new("svscanboot");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    make_service(&sv, "a", "#!/bin/sh\nenv > env.out\nexec sleep 1000\n");
    fs::create_dir(sv.join("norun")).unwrap();
    let mut g = Guard::spawn(
        Command::new(env!("CARGO_BIN_EXE_svscanboot"))
            .arg(&sv)
            .env("SVSCANBOOT_TEST_MARK", "1")
            .stdin(Stdio::null()),
    );
    let a = wait_service_pid(&sv.join("a"), 0);
    assert!(a.is_some(), "service a not started");
    let path_line = format!("PATH={}\n", supervise::svscanboot::PATH);
    let env_out = wait_for(DEADLINE, || {
        let t = read_text(&sv.join("a/env.out"));
        t.contains(&path_line).then_some(t)
    })
    .expect("service a sees the original's PATH");
    assert!(!env_out.contains("SVSCANBOOT_TEST_MARK"), "{env_out}");
    // supervise's complaint about norun/run shows in readproctitle's title.
    let me = g.pid();
    let shown = wait_until(DEADLINE, || {
        descendants(me).iter().any(|p| {
            let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            c.starts_with(b"readproctitle\0service\0errors:\0...")
                && String::from_utf8_lossy(&c).contains("unable to start norun/run")
        })
    });
    assert!(shown, "svscan's errors not in readproctitle's title");
    g.kill_all();
}

#[test]
fn real_pid1_in_a_pid_namespace_stops_services_cleanly() {
    let name = "real_pid1_in_a_pid_namespace_stops_services_cleanly";
    if !is_root() {
        eprintln!("SKIP {name}: needs root for unshare --pid");
        return;
    }
    if !have_peer("/usr/bin/unshare", name) {
        return;
    }
    let probe = run(Command::new("unshare").args(["--pid", "--fork", "true"]));
    if !probe.status.success() {
        eprintln!("SKIP {name}: unshare --pid fails here: {probe:?}");
        return;
    }
    let t = TempDir::new("svscan-ns");
    let sv = t.join("service");
    fs::create_dir(&sv).unwrap();
    make_service(
        &sv,
        "g",
        "#!/bin/sh\ntrap 'echo term > got-term; exit 0' TERM\necho up > up\nwhile :; do sleep 0.1; done\n",
    );
    fs::create_dir(sv.join("g/log")).unwrap();
    write_script(&sv.join("g/log/run"), "#!/bin/sh\nexec cat > out\n");
    let mut g = Guard::spawn(
        Command::new("unshare")
            .args(["--pid", "--fork"])
            .arg(SVSCAN)
            .arg(&sv)
            .env("PATH", path_with(&dir_of(SVSCAN)))
            .env_remove("SVSCAN_PID1")
            .stdin(Stdio::null()),
    );
    assert!(
        wait_until(DEADLINE, || sv.join("g/up").exists()),
        "g never ran"
    );
    let outer = g.pid();
    let svscan = wait_for(DEADLINE, || {
        descendants(outer).into_iter().find(|&p| {
            fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(SVSCAN.as_bytes()))
        })
    })
    .expect("svscan inside the namespace");
    kill_pid(svscan, libc::SIGTERM);
    let st = g.wait_for(Duration::from_secs(40)).expect("svscan exits");
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        read_text(&sv.join("g/got-term")),
        "term\n",
        "service not stopped cleanly"
    );
}
