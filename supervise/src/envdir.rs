//! envdir: run a program with environment variables taken from the files of
//! a directory (daemontools 0.76). Each file not starting with `.` names a
//! variable: its first line, with trailing spaces and tabs removed and NULs
//! turned into newlines, is the value; an empty file removes the variable.

use crate::setuidgid::run_failed;
use common::pathexec::{self, EnvEdits};
use common::{Error, Result};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;

/// `envdir dir child...`; `args` excludes argv[0]. The original exits 111 on
/// a usage error, unlike its siblings.
pub fn run(args: Vec<OsString>) -> Result<()> {
    if args.len() < 2 {
        return Err(Error::usage("envdir dir child").with_code(111));
    }
    let edits = read_dir(&args[0])?;
    Err(run_failed(
        &args[1..],
        pathexec::run_env(&args[1..], &edits),
    ))
}

/// The environment edits the directory `dir` asks for, in directory order.
/// Like the original it reads the files from inside the directory and then
/// returns to the starting directory, so relative program names still work.
pub fn read_dir(dir: &OsString) -> Result<EnvEdits> {
    let shown = dir.to_string_lossy();
    let orig = File::open(".").map_err(|e| Error::sys("unable to open current directory", e))?;
    nix::unistd::chdir(dir.as_os_str())
        .map_err(|e| Error::sys(format!("unable to switch to directory {shown}"), e))?;
    let rd = std::fs::read_dir(".")
        .map_err(|e| Error::sys(format!("unable to read directory {shown}"), e))?;
    let mut edits = EnvEdits::new();
    for entry in rd {
        let entry =
            entry.map_err(|e| Error::sys(format!("unable to read directory {shown}"), e))?;
        let name = entry.file_name();
        if name.as_bytes().first() == Some(&b'.') {
            continue;
        }
        let content = read_file(&name).map_err(|e| {
            Error::sys(
                format!("unable to read {shown}/{}", name.to_string_lossy()),
                e,
            )
        })?;
        edits.set(name.as_bytes(), value_of(&content).as_deref());
    }
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&orig))
        .map_err(|e| Error::sys("unable to switch to starting directory", e))?;
    Ok(edits)
}

/// A file's whole content; a file that vanished meanwhile reads as empty.
fn read_file(name: &OsString) -> std::io::Result<Vec<u8>> {
    match std::fs::read(name) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r,
    }
}

/// The variable's value for a file's content, None to remove it.
pub fn value_of(content: &[u8]) -> Option<Vec<u8>> {
    if content.is_empty() {
        return None;
    }
    let line = content.split(|&c| c == b'\n').next().unwrap_or_default();
    let mut len = line.len();
    while len > 0 && (line[len - 1] == b' ' || line[len - 1] == b'\t') {
        len -= 1;
    }
    Some(
        line[..len]
            .iter()
            .map(|&c| if c == 0 { b'\n' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::value_of;

    #[test]
    fn values_follow_the_original() {
        assert_eq!(value_of(b""), None);
        assert_eq!(value_of(b"\n"), Some(b"".to_vec()));
        assert_eq!(value_of(b"a b \t \nsecond\n"), Some(b"a b".to_vec()));
        assert_eq!(value_of(b"x\0y"), Some(b"x\ny".to_vec()));
        assert_eq!(value_of(b" \t"), Some(b"".to_vec()));
    }
}
