//! svc, svstat and svok driven as a user would: their exact lines, warnings
//! and exit codes, against our supervise and against hand-made status files.

mod support;

use std::fs;
use std::process::Command;
use support::*;

const SVC: &str = env!("CARGO_BIN_EXE_svc");
const SVSTAT: &str = env!("CARGO_BIN_EXE_svstat");
const SVOK: &str = env!("CARGO_BIN_EXE_svok");

fn out(cmd: &mut Command) -> (Option<i32>, String, String) {
    let o = run(cmd);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn usage_and_options() {
    let (code, _, err) = out(Command::new(SVC).arg("-z").arg("x"));
    assert_eq!(code, Some(100));
    assert_eq!(
        err,
        "svc: illegal option -- z\nsvc options: u up, d down, o once, x exit, p pause, \
         c continue, h hup, a alarm, i interrupt, t term, k kill\n"
    );
    let (code, _, err) = out(&mut Command::new(SVOK));
    assert_eq!((code, err.as_str()), (Some(100), "svok: usage: svok dir\n"));
    let (code, o, err) = out(&mut Command::new(SVSTAT));
    assert_eq!((code, o.as_str(), err.as_str()), (Some(0), "", ""));
}

const SUPERVISE: &str = env!("CARGO_BIN_EXE_supervise");

fn lines(cmd: &mut Command) -> String {
    let (code, o, _) = out(cmd);
    assert_eq!(code, Some(0));
    o
}

#[test]
fn svstat_on_broken_services() {
    let t = TempDir::new("svstat-broken");
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
    ];
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // A zero stamp is 2^62+10+now seconds old, printed through a double.
    let zero_line = |u: u64| {
        let age = ((1u64 << 62) + 10 + u) as f64 as u64;
        format!("zero: down {age} seconds, normally up")
    };
    let before = unix();
    let o = lines(Command::new(SVSTAT).args(names).current_dir(t.path()));
    let after = unix();
    let got: Vec<&str> = o.lines().collect();
    assert_eq!(
        got[0],
        "nostatus: unable to open supervise/status: file does not exist"
    );
    assert_eq!(got[1], "short: unable to read supervise/status: bad format");
    assert!(
        got[2] == zero_line(before) || got[2] == zero_line(after),
        "{}",
        got[2]
    );
    assert_eq!(got[3], "future: down 0 seconds, normally up, want up");
    let g = got[4];
    let secs: u64 = g
        .strip_prefix("garbage: up (pid 67305985) ")
        .and_then(|r| r.strip_suffix(" seconds, normally down, paused, want down"))
        .unwrap_or_else(|| panic!("{g}"))
        .parse()
        .unwrap();
    assert!((before + 10..=after + 10).contains(&secs), "{g}");
    assert_eq!(got[5], "loop: unable to stat down: symbolic link loop");
    assert_eq!(got[6], "notrunning: supervise not running");
    assert_eq!(got[7], "plainfile: unable to chdir: not a directory");
    assert_eq!(
        got[8],
        "nosupervise: unable to open supervise/ok: file does not exist"
    );
    assert_eq!(got[9], "missing: unable to chdir: file does not exist");
    assert_eq!(got.len(), 10);
}

#[test]
fn svc_without_supervise_warns_and_goes_on() {
    let t = TempDir::new("svc-none");
    make_broken_services(t.path());
    let (code, o, err) = out(Command::new(SVC)
        .args(["-u", "missing", "nosupervise", "notrunning", "plainfile"])
        .current_dir(t.path()));
    assert_eq!((code, o.as_str()), (Some(0), ""));
    assert_eq!(
        err,
        "svc: warning: unable to chdir to missing: file does not exist\n\
         svc: warning: unable to control nosupervise: file does not exist\n\
         svc: warning: unable to control notrunning: supervise not running\n\
         svc: warning: unable to chdir to plainfile: not a directory\n"
    );
}

#[test]
fn svok_exit_codes() {
    let t = TempDir::new("svok");
    make_broken_services(t.path());
    let code = |dir: &str| out(Command::new(SVOK).arg(dir).current_dir(t.path()));
    assert_eq!(code("notrunning").0, Some(100));
    assert_eq!(code("nosupervise").0, Some(100));
    // A regular file named ok opens fine: "running", as for the original.
    assert_eq!(code("nostatus").0, Some(0));
    let (c, _, err) = code("missing");
    assert_eq!(c, Some(111));
    assert_eq!(
        err,
        "svok: fatal: unable to chdir to missing: file does not exist\n"
    );
    fs::write(t.join("nosupervise/supervise"), "").ok();
    let sub = t.join("filesup");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("supervise"), "").unwrap();
    let (c, _, err) = code("filesup");
    assert_eq!(c, Some(111));
    assert_eq!(
        err,
        "svok: fatal: unable to open filesup/supervise/ok: not a directory\n"
    );
}

#[test]
fn svc_svstat_svok_with_our_supervise() {
    let t = TempDir::new("svc-ours");
    let s = make_service(t.path(), "s", "#!/bin/sh\nexec sleep 1000\n");
    let mut g = start_supervise(SUPERVISE, &s);
    let pid = wait_service_pid(&s, 0).unwrap();
    assert_eq!(out(Command::new(SVOK).arg(&s)).0, Some(0));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Repeated letters are sent once; all of them in order.
    let (code, _, err) = out(Command::new(SVC).args(["-pp", "-d"]).arg(&s));
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(wait_service_down(&s));
    assert!(!alive(pid));
    let line = lines(Command::new(SVSTAT).arg("s").current_dir(t.path()));
    assert!(
        line.starts_with("s: down ") && line.ends_with(" seconds, normally up\n"),
        "{line}"
    );
    out(Command::new(SVC).arg("-x").arg(&s));
    assert_eq!(g.wait_for(DEADLINE).and_then(|st| st.code()), Some(0));
    assert_eq!(out(Command::new(SVOK).arg(&s)).0, Some(100));
    let line = lines(Command::new(SVSTAT).arg("s").current_dir(t.path()));
    assert_eq!(line, "s: supervise not running\n");
}
