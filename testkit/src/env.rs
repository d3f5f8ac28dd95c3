//! What the test machine offers: root or not, which peers are installed, and
//! PATH arranged so programs that exec others through PATH find ours first
//! (Debian's daemontools and ucspi-tcp sit in /usr/bin).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `prog` is an executable file in PATH (or a path to one).
pub fn have_program(prog: &str) -> bool {
    let exec = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if prog.contains('/') {
        return exec(Path::new(prog));
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| exec(&d.join(prog))))
        .unwrap_or(false)
}

/// True when `prog` is installed; otherwise prints why the calling test
/// skips, as the project's skip rule asks.
pub fn have_peer(prog: &str, test: &str) -> bool {
    let ok = have_program(prog);
    if !ok {
        eprintln!("SKIP {test}: {prog} is not installed");
    }
    ok
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> OsString {
    let mut p = OsString::from(dir);
    if let Some(old) = std::env::var_os("PATH") {
        p.push(":");
        p.push(old);
    }
    p
}

/// The directory holding a binary given by env!("CARGO_BIN_EXE_...").
pub fn dir_of(bin: &str) -> PathBuf {
    Path::new(bin).parent().expect("bin dir").to_path_buf()
}
