//! svc, svstat and svok driven as a user would: their exact lines, warnings
//! and exit codes, against our supervise and against hand-made status files.

mod support;

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
