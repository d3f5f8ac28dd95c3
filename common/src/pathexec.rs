//! Running a program the way djb's pathexec does: a name without `/` is
//! looked up in $PATH (default `/bin:/usr/bin`, an empty entry meaning the
//! current directory), the search goes on past "not found" and "permission
//! denied" and reports the most telling error; and an environment edited by
//! chain-loading tools (envdir, envuidgid) where a later entry replaces any
//! earlier variable of the same name and a bare `NAME` removes it.

use crate::error::Errno;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Edits to the inherited environment, applied in order at exec time.
#[derive(Debug, Default, Clone)]
pub struct EnvEdits {
    edits: Vec<Vec<u8>>,
}

impl EnvEdits {
    pub fn new() -> EnvEdits {
        EnvEdits::default()
    }

    /// Set `name` to `value`, or remove it when `value` is None.
    pub fn set(&mut self, name: &[u8], value: Option<&[u8]>) {
        let mut e = name.to_vec();
        if let Some(v) = value {
            e.push(b'=');
            e.extend_from_slice(v);
        }
        self.edits.push(e);
    }

    /// The environment `base` (entries `NAME=value`) with the edits applied.
    /// As in pathexec, an edit's name ends at its first `=`; every entry of that
    /// name is dropped, and the edit itself is kept when it contains a `=`.
    pub fn apply(&self, base: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut env = base;
        for e in &self.edits {
            let split = e.iter().position(|&c| c == b'=').unwrap_or(e.len());
            let key = &e[..split];
            env.retain(|x| !(x.len() > split && x[split] == b'=' && &x[..split] == key));
            if split < e.len() {
                env.push(e.clone());
            }
        }
        env
    }
}

/// The current process environment as raw `NAME=value` entries.
pub fn current_env() -> Vec<Vec<u8>> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect()
}

fn cstring(b: &[u8]) -> CString {
    // Arguments and environment entries come from C strings or from files
    // whose NULs were already replaced, so they hold no NUL; cut at one anyway.
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap_or_default()
}

/// Execute `argv` with the current environment; returns only on failure.
pub fn run(argv: &[OsString]) -> Errno {
    run_env(argv, &EnvEdits::new())
}

/// Execute `argv` with the current environment edited by `edits`; returns
/// only on failure, with the errno pathexec would report.
pub fn run_env(argv: &[OsString], edits: &EnvEdits) -> Errno {
    let Some(prog) = argv.first() else {
        return Errno(libc::ENOENT);
    };
    let args: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect();
    let env: Vec<CString> = edits
        .apply(current_env())
        .iter()
        .map(|e| cstring(e))
        .collect();
    let prog = prog.as_bytes();
    if prog.contains(&b'/') {
        return execve(&cstring(prog), &args, &env);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    search(path.as_os_str(), prog, &args, &env)
}

fn search(path: &OsStr, prog: &[u8], args: &[CString], env: &[CString]) -> Errno {
    let mut saved = None;
    for dir in path.as_bytes().split(|&c| c == b':') {
        let mut full = if dir.is_empty() {
            b".".to_vec()
        } else {
            dir.to_vec()
        };
        full.push(b'/');
        full.extend_from_slice(prog);
        let e = execve(&cstring(&full), args, env);
        if e.0 != libc::ENOENT {
            saved = Some(e);
            if ![libc::EACCES, libc::EPERM, libc::EISDIR].contains(&e.0) {
                return e;
            }
        }
    }
    saved.unwrap_or(Errno(libc::ENOENT))
}

fn execve(prog: &CString, args: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(prog, args, env) {
        Ok(never) => match never {},
        Err(e) => Errno::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn later_edits_replace_and_bare_names_remove() {
        let mut e = EnvEdits::new();
        e.set(b"A", Some(b"2"));
        e.set(b"B", None);
        e.set(b"C", Some(b""));
        let out = e.apply(env(&["A=1", "B=x", "AB=y"]));
        assert_eq!(out, env(&["AB=y", "A=2", "C="]));
    }

    #[test]
    fn missing_program_reports_not_found() {
        let argv = vec![OsString::from("/nonexistent/program")];
        assert_eq!(run(&argv).0, libc::ENOENT);
    }
}
