//! Interoperability both ways with Debian's daemontools 0.76: our svc, svstat
//! and svok drive and read their supervise, theirs drive and read ours, and
//! the two svstat print byte-identical lines. Skips (saying why) when
//! /usr/bin/supervise is not installed.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const OURS: Tools = Tools {
    supervise: env!("CARGO_BIN_EXE_supervise"),
    svc: env!("CARGO_BIN_EXE_svc"),
    svstat: env!("CARGO_BIN_EXE_svstat"),
    svok: env!("CARGO_BIN_EXE_svok"),
};

const THEIRS: Tools = Tools {
    supervise: "/usr/bin/supervise",
    svc: "/usr/bin/svc",
    svstat: "/usr/bin/svstat",
    svok: "/usr/bin/svok",
};

#[derive(Clone, Copy)]
struct Tools {
    supervise: &'static str,
    svc: &'static str,
    svstat: &'static str,
    svok: &'static str,
}

impl Tools {
    fn svc(&self, flags: &str, dir: &Path) {
        let o = run(Command::new(self.svc).arg(flags).arg(dir));
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{}: {o:?}",
            self.svc
        );
    }

    fn svstat(&self, cwd: &Path, dirs: &[&str]) -> String {
        let o = run(Command::new(self.svstat).args(dirs).current_dir(cwd));
        assert_eq!(o.status.code(), Some(0));
        String::from_utf8(o.stdout).expect("ascii")
    }

    fn svok(&self, dir: &Path) -> Option<i32> {
        run(Command::new(self.svok).arg(dir)).status.code()
    }
}

fn installed(test: &str) -> bool {
    [
        "/usr/bin/supervise",
        "/usr/bin/svc",
        "/usr/bin/svstat",
        "/usr/bin/svok",
    ]
    .iter()
    .all(|p| have_peer(p, test))
}

/// Both svstat agree byte for byte; the seconds may tick between two runs,
/// so one of ours just before or just after theirs must equal theirs.
fn same_svstat(cwd: &Path, dirs: &[&str]) -> String {
    for _ in 0..5 {
        let a = OURS.svstat(cwd, dirs);
        let b = THEIRS.svstat(cwd, dirs);
        let c = OURS.svstat(cwd, dirs);
        if a == b || b == c {
            return b;
        }
    }
    panic!(
        "svstat differ:\nours:   {}theirs: {}",
        OURS.svstat(cwd, dirs),
        THEIRS.svstat(cwd, dirs)
    );
}

const RUN: &str = "#!/bin/sh\nexec sleep 1000\n";

/// Drive `sup`'s supervise with `ctl`'s svc and svok through every state,
/// checking the two svstat agree at each step.
fn drive(sup: Tools, ctl: Tools, tag: &str) {
    let t = TempDir::new(tag);
    let s = make_service(t.path(), "s", RUN);
    let down = make_service(t.path(), "d", RUN);
    std::fs::write(down.join("down"), "").unwrap();
    let mut g = start_supervise(sup.supervise, &s);
    let _gd = start_supervise(sup.supervise, &down);
    let pid = wait_service_pid(&s, 0).expect("up");
    assert!(wait_until(DEADLINE, || read_status(&down).is_some()));
    assert_eq!(ctl.svok(&s), Some(0));
    let both = ["s", "d"];
    let l = same_svstat(t.path(), &both);
    assert!(l.starts_with(&format!("s: up (pid {pid}) ")), "{l}");
    assert!(l.contains("\nd: down "), "{l}");
    std::thread::sleep(Duration::from_millis(1100));

    ctl.svc("-p", &s);
    assert!(wait_until(DEADLINE, || read_status(&s).unwrap().paused == 1));
    assert!(same_svstat(t.path(), &both).contains(" seconds, paused\n"));
    ctl.svc("-c", &s);
    assert!(wait_until(DEADLINE, || read_status(&s).unwrap().paused == 0));
    ctl.svc("-d", &s);
    assert!(wait_service_down(&s));
    assert!(same_svstat(t.path(), &["s"]).ends_with(" seconds, normally up\n"));
    ctl.svc("-o", &down);
    let dp = wait_service_pid(&down, 0).expect("once");
    let l = same_svstat(t.path(), &["d"]);
    assert!(l.starts_with(&format!("d: up (pid {dp}) ")), "{l}");
    assert!(l.ends_with(" seconds, normally down\n"), "{l}");
    ctl.svc("-u", &s);
    let p2 = wait_service_pid(&s, 0).expect("up again");
    assert_ne!(p2, pid);
    std::thread::sleep(Duration::from_millis(1100));
    ctl.svc("-t", &s);
    let p3 = wait_service_pid(&s, p2).expect("restarted after t");
    std::thread::sleep(Duration::from_millis(1100));
    ctl.svc("-dx", &s);
    assert_eq!(g.wait_for(DEADLINE).and_then(|st| st.code()), Some(0));
    assert!(!alive(p3));
    assert_eq!(ctl.svok(&s), Some(100));
    assert_eq!(same_svstat(t.path(), &["s"]), "s: supervise not running\n");
}

#[test]
fn our_tools_drive_their_supervise() {
    if installed("our_tools_drive_their_supervise") {
        drive(THEIRS, OURS, "interop-theirs");
    }
}

#[test]
fn their_tools_drive_our_supervise() {
    if installed("their_tools_drive_our_supervise") {
        drive(OURS, THEIRS, "interop-ours");
    }
}

#[test]
fn same_lines_on_broken_services() {
    if !installed("same_lines_on_broken_services") {
        return;
    }
    let t = TempDir::new("interop-broken");
    make_broken_services(t.path());
    let names = [
        "nostatus",
        "short",
        "zero",
        "future",
        "garbage",
        "loop",
        "notrunning",
        "plainfile",
        "nosupervise",
        "missing",
        "",
    ];
    same_svstat(t.path(), &names);
    for n in ["notrunning", "nosupervise", "missing", "plainfile"] {
        let o = run(Command::new(OURS.svc)
            .arg("-u")
            .arg(n)
            .current_dir(t.path()));
        let th = run(Command::new(THEIRS.svc)
            .arg("-u")
            .arg(n)
            .current_dir(t.path()));
        assert_eq!(o.stderr, th.stderr, "svc -u {n}");
        assert_eq!(o.status.code(), th.status.code());
        let o = run(Command::new(OURS.svok).arg(n).current_dir(t.path()));
        let th = run(Command::new(THEIRS.svok).arg(n).current_dir(t.path()));
        assert_eq!(
            (o.status.code(), o.stderr),
            (th.status.code(), th.stderr),
            "svok {n}"
        );
    }
}

#[test]
fn same_messages_for_bad_command_lines() {
    if !installed("same_messages_for_bad_command_lines") {
        return;
    }
    let t = TempDir::new("interop-usage");
    let cases: [(&str, &[&str]); 6] = [
        ("supervise", &[]),
        ("supervise", &["a", "b"]),
        ("supervise", &["missing"]),
        ("svc", &["-z", "x"]),
        ("svok", &[]),
        ("svc", &["-q"]),
    ];
    for (prog, args) in cases {
        let ours = dir_of(OURS.svc).join(prog);
        let o = run(Command::new(ours).args(args).current_dir(t.path()));
        let th = run(Command::new(format!("/usr/bin/{prog}"))
            .args(args)
            .current_dir(t.path()));
        assert_eq!(
            (o.status.code(), o.stderr, o.stdout),
            (th.status.code(), th.stderr, th.stdout),
            "{prog} {args:?}"
        );
    }
}

#[test]
fn their_svstat_ignores_our_readiness() {
    if !installed("their_svstat_ignores_our_readiness") {
        return;
    }
    let t = TempDir::new("interop-ready");
    let s = make_service(t.path(), "s", "#!/bin/sh\necho >&4\nexec sleep 1000\n");
    std::fs::write(s.join("notification-fd"), "4").unwrap();
    let _g = start_supervise(OURS.supervise, &s);
    wait_service_pid(&s, 0).unwrap();
    assert!(wait_until(DEADLINE, || s.join("supervise/ready").exists()));
    for _ in 0..5 {
        let ours = OURS.svstat(t.path(), &["s"]);
        let theirs = THEIRS.svstat(t.path(), &["s"]);
        let (head, tail) = ours.split_once(", ready ").expect("ready shown");
        assert!(tail.ends_with(" seconds\n"), "{ours}");
        assert!(!theirs.contains("ready"), "{theirs}");
        if format!("{head}\n") == theirs {
            return;
        }
    }
    panic!("their svstat does not print our line without the readiness part");
}

#[test]
fn same_messages_for_unusable_service_dirs() {
    if !installed("same_messages_for_unusable_service_dirs") {
        return;
    }
    let mut results = Vec::new();
    for tools in [OURS, THEIRS] {
        let t = TempDir::new("interop-unusable");
        let p = t.path();
        for name in ["loop", "ctldir", "supfile"] {
            make_service(p, name, RUN);
        }
        std::os::unix::fs::symlink("down", p.join("loop/down")).unwrap();
        std::fs::create_dir_all(p.join("ctldir/supervise/control")).unwrap();
        std::fs::write(p.join("supfile/supervise"), "").unwrap();
        let mut got = Vec::new();
        for name in ["loop", "ctldir", "supfile", "missing"] {
            let o = run(Command::new(tools.supervise).arg(name).current_dir(p));
            got.push((
                name,
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ));
        }
        results.push(got);
    }
    assert_eq!(results[0], results[1]);
    assert!(results[0].iter().all(|(_, code, _)| *code == Some(111)));
}

#[test]
fn stale_readiness_is_not_shown_under_their_supervise() {
    if !installed("stale_readiness_is_not_shown_under_their_supervise") {
        return;
    }
    let t = TempDir::new("interop-stale");
    let s = make_service(t.path(), "s", "#!/bin/sh\necho >&4\nexec sleep 1000\n");
    std::fs::write(s.join("notification-fd"), "4").unwrap();
    let mut ours = start_supervise(OURS.supervise, &s);
    wait_service_pid(&s, 0).unwrap();
    assert!(wait_until(DEADLINE, || s.join("supervise/ready").exists()));
    // supervise killed outright leaves supervise/ready behind.
    ours.kill_all();
    std::thread::sleep(Duration::from_millis(1100));
    let _theirs = start_supervise(THEIRS.supervise, &s);
    let pid = wait_service_pid(&s, 0).unwrap();
    assert!(s.join("supervise/ready").exists());
    let l = same_svstat(t.path(), &["s"]);
    assert!(l.starts_with(&format!("s: up (pid {pid}) ")), "{l}");
    assert!(!l.contains("ready"), "{l}");
}
