//! Process and file plumbing of the end-to-end tests. Tests run programs of
//! several packages, so binaries are found in the target directory that
//! holds this test executable, after one `cargo build --workspace --bins`;
//! the generic pieces (temporary directories, guards that kill by pid,
//! bounded waits) are `testkit`'s.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::Duration;

pub use testkit::{
    alive, descendants, free_tcp_port as free_port, have_program, proc_stat, wait_until, Guard,
    TempDir,
};

static BUILD: Once = Once::new();

/// target/debug (or target/release): the parent of the `deps` directory
/// holding the running test executable.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a directory");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// The directory of the workspace's binaries, built once per test process
/// so that `cargo test -p e2e` alone never runs stale or missing programs.
pub fn bindir() -> PathBuf {
    let dir = target_profile_dir();
    BUILD.call_once(|| build_workspace(&dir));
    dir
}

fn build_workspace(profile_dir: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["build", "--workspace", "--bins", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        c.arg("--release");
    }
    let st = c.status().expect("running cargo build --workspace --bins");
    assert!(st.success(), "cargo build --workspace --bins failed");
}

/// The path of one of the workspace's programs; fails with advice if the
/// build did not produce it.
pub fn bin(name: &str) -> PathBuf {
    let p = bindir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// PATH with our binaries first: svscan, qmail-start and tcpserver exec
/// their helpers through PATH, and Debian's daemontools sit in /usr/bin.
pub fn path_with_bins() -> String {
    format!(
        "{}:{}",
        bindir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The live children of `pid`, from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    let kids = descendants(pid).into_iter();
    kids.filter(|&p| matches!(proc_stat(p), Some((pp, _)) if pp == pid))
        .collect()
}

/// The program `pid` runs (/proc/PID/exe).
pub fn exe_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Run `c` to completion with stdin `input`, killing it after `limit`.
pub fn run_with_input(mut c: Command, input: &[u8], limit: Duration) -> Output {
    testkit::run_with_input(&mut c, input, limit)
}

/// Run `c` with empty stdin and a deadline of `limit`.
pub fn run(mut c: Command, limit: Duration) -> Output {
    testkit::run_bounded(&mut c, limit)
}
