//! Test support of the supervise package: the generic plumbing (temporary
//! directories, process guards, bounded waits) comes from `testkit`; what is
//! here is daemontools' own: run scripts, service directories, the 18-byte
//! status file, supervise started under a guard.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use testkit::*;

/// Run `cmd` to completion with the default deadline.
pub fn run(cmd: &mut Command) -> Output {
    run_bounded(cmd, DEADLINE)
}

/// Write `body` to `path` with mode 0755 (through a temporary name, so a
/// supervisor never executes a half-written script).
pub fn write_script(path: &Path, body: &str) {
    let tmp = path.with_extension("tmp-script");
    fs::write(&tmp, body).expect("write script");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod script");
    fs::rename(&tmp, path).expect("rename script");
}

/// The file's contents, or None while it does not exist.
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// The file's contents as text, or "" when it does not exist.
pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// A supervise/status record as the tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStatus {
    pub secs: u64,
    pub nanos: u32,
    pub pid: u32,
    pub paused: u8,
    pub want: u8,
}

/// Decode DIR/supervise/status byte by byte (TAI64N big-endian, pid little-endian).
pub fn read_status(service: &Path) -> Option<RawStatus> {
    let b = fs::read(service.join("supervise/status")).ok()?;
    if b.len() != 18 {
        return None;
    }
    Some(RawStatus {
        secs: u64::from_be_bytes(b[0..8].try_into().ok()?),
        nanos: u32::from_be_bytes(b[8..12].try_into().ok()?),
        pid: u32::from_le_bytes(b[12..16].try_into().ok()?),
        paused: b[16],
        want: b[17],
    })
}

/// Wait until the status shows a live service pid other than `not`.
pub fn wait_service_pid(service: &Path, not: u32) -> Option<u32> {
    wait_for(DEADLINE, || {
        let st = read_status(service)?;
        (st.pid != 0 && st.pid != not && alive(st.pid)).then_some(st.pid)
    })
}

/// Wait until the status says the service is down.
pub fn wait_service_down(service: &Path) -> bool {
    wait_until(
        DEADLINE,
        || matches!(read_status(service), Some(s) if s.pid == 0),
    )
}

/// Make a service directory `name` under `base` with the given run script.
pub fn make_service(base: &Path, name: &str, run: &str) -> PathBuf {
    let dir = base.join(name);
    fs::create_dir_all(&dir).expect("service dir");
    write_script(&dir.join("run"), run);
    dir
}

/// Start `supervise` (a binary path) on `service`, stderr into `service`.err,
/// guarded.
pub fn start_supervise(supervise: &str, service: &Path) -> Guard {
    let err = fs::File::create(service.with_extension("err")).expect("stderr file");
    let mut cmd = Command::new(supervise);
    cmd.arg(service)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    Guard::spawn(&mut cmd)
}

/// What the supervise started by [`start_supervise`] printed on stderr so far.
pub fn supervise_stderr(service: &Path) -> String {
    read_text(&service.with_extension("err"))
}

/// User+system CPU time of `pid` in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(i) = s.rfind(')') else { return 0 };
    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
    let n = |k: usize| f.get(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// Service directories under `t` in the states svstat must describe without
/// a supervise: nostatus, short, zero, future, garbage, loop, notrunning,
/// plainfile (a file), nosupervise; "missing" does not exist.
pub fn make_broken_services(t: &Path) {
    let mk = |name: &str| {
        let d = t.join(name);
        fs::create_dir_all(d.join("supervise")).unwrap();
        d
    };
    // ok exists as a regular file: svstat goes on to read the status.
    let a = mk("nostatus");
    fs::write(a.join("supervise/ok"), "").unwrap();
    let b = mk("short");
    fs::write(b.join("supervise/ok"), "").unwrap();
    fs::write(b.join("supervise/status"), "abc").unwrap();
    let c = mk("zero");
    fs::write(c.join("supervise/ok"), "").unwrap();
    fs::write(c.join("supervise/status"), [0u8; 18]).unwrap();
    let d = mk("future");
    fs::write(d.join("supervise/ok"), "").unwrap();
    let mut fut = [0u8; 18];
    fut[0] = 0xff;
    fut[16] = 1;
    fut[17] = b'u';
    fs::write(d.join("supervise/status"), fut).unwrap();
    let e = mk("garbage");
    fs::write(e.join("supervise/ok"), "").unwrap();
    let g = *b"@\0\0\0\0\0\0\0\0\0\0\0\x01\x02\x03\x04\x01d";
    fs::write(e.join("supervise/status"), g).unwrap();
    fs::write(e.join("down"), "").unwrap();
    let f = mk("loop");
    std::os::unix::fs::symlink("down", f.join("down")).unwrap();
    let n = mk("notrunning");
    for fifo in ["supervise/ok", "supervise/control"] {
        nix::unistd::mkfifo(
            &n.join(fifo),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    fs::write(t.join("plainfile"), "").unwrap();
    fs::create_dir(t.join("nosupervise")).unwrap();
}
