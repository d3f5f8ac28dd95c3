//! qmail-rspawn: the remote spawner. For each recipient it runs
//! `qmail-remote host sender recip` ($QMAILREMOTE overrides the program,
//! found through PATH) and turns qmail-remote's output (per-recipient
//! `r`/`h`/`s` report then `K`/`Z`/`D` message report) into the spawn
//! protocol's single report.

use crate::spawn::{self, Spawner};
use common::Error;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::os::fd::OwnedFd;

pub struct Remote {
    program: CString,
}

/// Translate qmail-remote's exit status and output.
pub fn report(status: WaitStatus, s: &[u8]) -> Vec<u8> {
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, 111) => return b"ZUnable to run qmail-remote.\n".to_vec(),
        WaitStatus::Exited(_, _) => return b"DUnable to run qmail-remote.\n".to_vec(),
        _ => return b"Zqmail-remote crashed.\n".to_vec(),
    }
    if s.is_empty() {
        return b"Zqmail-remote produced no output.\n".to_vec();
    }
    // The message-level result: the first K, Z or D record.
    let mut result = -1;
    let mut j = 0;
    for k in 0..s.len() {
        if s[k] == 0 {
            match s[j] {
                b'K' => {
                    result = 1;
                    break;
                }
                b'Z' => {
                    result = 0;
                    break;
                }
                b'D' => break,
                _ => j = k + 1,
            }
        }
    }
    let orr = match s[0] {
        b's' => 0,
        b'h' => -1,
        _ => result,
    };
    let mut out = vec![match orr {
        1 => b'K',
        0 => b'Z',
        _ => b'D',
    }];
    let cstr = |from: usize| {
        let end = s[from..]
            .iter()
            .position(|&b| b == 0)
            .map_or(s.len(), |e| from + e);
        &s[from..end]
    };
    if let Some(first_end) = s[1..].iter().position(|&b| b == 0).map(|e| e + 1) {
        out.extend_from_slice(cstr(1));
        let k = first_end + 1;
        if result <= orr && k < s.len() && matches!(s[k], b'Z' | b'D' | b'K') {
            out.extend_from_slice(cstr(k + 1));
        }
    }
    out
}

impl Spawner for Remote {
    fn spawn(
        &self,
        mess: OwnedFd,
        out: OwnedFd,
        sender: &str,
        recip: &str,
        at: usize,
    ) -> Option<Pid> {
        let args: Vec<CString> = [&recip[at + 1..], sender, recip]
            .iter()
            .map(|a| CString::new(a.replace('\0', "")).unwrap_or_default())
            .collect();
        // Safe: the spawner is single-threaded.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                if !spawn::child_fds(&mess, &out) {
                    unsafe { libc::_exit(111) }
                }
                let mut argv = vec![self.program.clone()];
                argv.extend(args);
                common::sig::reset_for_exec();
                let e = nix::unistd::execvp(&self.program, &argv).unwrap_err();
                unsafe { libc::_exit(if spawn::temp_errno(e) { 111 } else { 100 }) }
            }
            Ok(ForkResult::Parent { child }) => Some(child),
            Err(_) => None,
        }
    }

    fn report(&self, status: WaitStatus, output: &[u8]) -> Vec<u8> {
        report(status, output)
    }

    fn truncreport(&self) -> usize {
        0
    }
}

pub fn run() -> Result<(), Error> {
    let program = std::env::var("QMAILREMOTE").unwrap_or_else(|_| "qmail-remote".into());
    let r = Remote {
        program: CString::new(program).map_err(|_| Error::silent(111))?,
    };
    spawn::run(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_output_becomes_one_report() {
        let p = Pid::from_raw(1);
        let ok = report(
            WaitStatus::Exited(p, 0),
            b"r\0Kx.org accepted message./Remote host said: 250 ok\n\0",
        );
        assert_eq!(ok, b"Kx.org accepted message./Remote host said: 250 ok\n");
        let hard = report(
            WaitStatus::Exited(p, 0),
            b"hSorry, no host.\n\0DGiving up\n\0",
        );
        assert_eq!(hard, b"DSorry, no host.\nGiving up\n");
        let soft = report(WaitStatus::Exited(p, 0), b"sBusy.\n\0");
        assert_eq!(soft, b"ZBusy.\n");
        assert_eq!(
            report(WaitStatus::Exited(p, 0), b""),
            b"Zqmail-remote produced no output.\n"
        );
    }
}
