//! qmail-rspawn: the remote spawner. For each delivery it runs
//! `qmail-remote host sender recip...` ($QMAILREMOTE overrides the program,
//! found through PATH) and turns qmail-remote's output (per-recipient
//! `r`/`h`/`s` report then `K`/`Z`/`D` message report) into the spawn
//! protocol's report for each recipient.

use crate::spawn::{self, Spawner};
use common::Error;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::os::fd::OwnedFd;

pub struct Remote {
    program: CString,
}

/// Translate qmail-remote's exit status and output into one report per
/// recipient. qmail-remote writes a record per recipient (`r` accepted, `h`
/// refused for good, `s` refused for now) and then the message's record
/// (`K`, `Z` or `D`); a recipient's report joins the two as qmail-rspawn
/// does, and a recipient with no record of its own (the connection failed
/// first) gets the message's.
pub fn report(status: WaitStatus, s: &[u8], n: usize) -> Vec<Vec<u8>> {
    let all = |text: &[u8]| vec![text.to_vec(); n];
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, 111) => return all(b"ZUnable to run qmail-remote.\n"),
        WaitStatus::Exited(_, _) => return all(b"DUnable to run qmail-remote.\n"),
        _ => return all(b"Zqmail-remote crashed.\n"),
    }
    if s.is_empty() {
        return all(b"Zqmail-remote produced no output.\n");
    }
    let records: Vec<&[u8]> = s.split(|&b| b == 0).filter(|r| !r.is_empty()).collect();
    let per_recip = records
        .iter()
        .take_while(|r| matches!(r[0], b'r' | b'h' | b's'))
        .take(n)
        .count();
    let message = records.iter().find(|r| matches!(r[0], b'K' | b'Z' | b'D'));
    let result = match message.map(|r| r[0]) {
        Some(b'K') => 1,
        Some(b'Z') => 0,
        _ => -1,
    };
    let letter = |v: i32| match v {
        1 => b'K',
        0 => b'Z',
        _ => b'D',
    };
    (0..n)
        .map(|i| {
            let (orr, text) = match records.get(i).filter(|_| i < per_recip) {
                Some(r) => (
                    match r[0] {
                        b's' => 0,
                        b'h' => -1,
                        _ => result,
                    },
                    &r[1..],
                ),
                None => (result, &b""[..]),
            };
            let mut out = vec![letter(orr)];
            out.extend_from_slice(text);
            if result <= orr {
                if let Some(m) = message {
                    out.extend_from_slice(&m[1..]);
                }
            }
            out
        })
        .collect()
}

impl Spawner for Remote {
    fn spawn(
        &self,
        mess: OwnedFd,
        out: OwnedFd,
        sender: &str,
        recips: &[String],
        at: usize,
    ) -> Option<Pid> {
        let host = &recips[0][at + 1..];
        let args: Vec<CString> = [host, sender]
            .into_iter()
            .chain(recips.iter().map(String::as_str))
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

    fn groups(&self) -> bool {
        true
    }

    fn report(&self, status: WaitStatus, output: &[u8], n: usize) -> Vec<Vec<u8>> {
        report(status, output, n)
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

    fn one(s: &[u8]) -> Vec<u8> {
        let mut r = report(WaitStatus::Exited(Pid::from_raw(1), 0), s, 1);
        assert_eq!(r.len(), 1);
        r.pop().unwrap()
    }

    #[test]
    fn remote_output_becomes_one_report() {
        let ok = one(b"r\0Kx.org accepted message./Remote host said: 250 ok\n\0");
        assert_eq!(ok, b"Kx.org accepted message./Remote host said: 250 ok\n");
        let hard = one(b"hSorry, no host.\n\0DGiving up\n\0");
        assert_eq!(hard, b"DSorry, no host.\nGiving up\n");
        assert_eq!(one(b"sBusy.\n\0"), b"ZBusy.\n");
        assert_eq!(one(b""), b"Zqmail-remote produced no output.\n");
        assert_eq!(one(b"ZNo host.\n\0"), b"ZNo host.\n");
    }

    #[test]
    fn several_recipients_get_a_report_each() {
        let p = Pid::from_raw(1);
        let out = report(
            WaitStatus::Exited(p, 0),
            b"r\0hx does not like recipient.\n\0sBusy.\n\0Kx accepted message.\n\0",
            3,
        );
        assert_eq!(
            out,
            [
                &b"Kx accepted message.\n"[..],
                b"Dx does not like recipient.\n",
                b"ZBusy.\n",
            ]
        );
        let failed = report(WaitStatus::Exited(p, 0), b"ZNo connection.\n\0", 2);
        assert_eq!(
            failed,
            [b"ZNo connection.\n".to_vec(), b"ZNo connection.\n".to_vec()]
        );
        let crashed = report(
            WaitStatus::Signaled(p, nix::sys::signal::SIGSEGV, false),
            b"",
            2,
        );
        assert_eq!(crashed.len(), 2);
        assert!(crashed.iter().all(|r| r == b"Zqmail-remote crashed.\n"));
    }
}
