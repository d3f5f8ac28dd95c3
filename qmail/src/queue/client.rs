//! Calling qmail-queue as qmail's programs do (qmail.c): run $QMAILQUEUE or
//! QMAILHOME/bin/qmail-queue from QMAILHOME, feed the message on its fd 0
//! and the envelope on its fd 1, and turn its exit code into the standard
//! `Z...`/`D...` texts that qmail-inject, qmail-send and the SMTP server show.
//! Without $QMAILQUEUE the same two pipes go to a resident qmail-queued
//! when one serves this queue, which saves starting a program per message.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// One message on its way into the queue.
pub struct Qmail {
    runner: Runner,
    message: Option<File>,
    envelope: Option<File>,
    flagerr: bool,
}

/// Who queues the message: a qmail-queue started for it, or a child of
/// qmail-queued (which is not ours to wait for; it reports on the socket).
enum Runner {
    Started { pid: libc::pid_t, waited: bool },
    Resident { sock: OwnedFd, pid: Option<u32> },
}

/// The qmail-queue program to run, when $QMAILQUEUE names none.
fn program() -> Option<PathBuf> {
    match std::env::var_os("QMAILQUEUE") {
        Some(q) if !q.is_empty() => Some(crate::home::home().join(q)),
        _ => None,
    }
}

impl Qmail {
    /// Hand the message to qmail-queued when it runs and nothing replaces
    /// qmail-queue, else start qmail-queue (posix_spawn: no copy of the
    /// caller, however large); Err when it cannot be started.
    pub fn open() -> std::io::Result<Qmail> {
        let (mess_r, mess_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (env_r, env_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let home = crate::home::home();
        let fds = [mess_r.as_raw_fd(), env_r.as_raw_fd()];
        let resident = match program() {
            None => crate::queued::hand_over(&home, fds),
            Some(_) => None,
        };
        let runner = match resident {
            Some(sock) => Runner::Resident { sock, pid: None },
            None => {
                let prog = program().unwrap_or_else(|| home.join("bin/qmail-queue"));
                let pid = common::spawn::spawn(
                    &prog,
                    &[prog.as_os_str()],
                    Some(&home),
                    &[(fds[0], 0), (fds[1], 1)],
                )?;
                Runner::Started { pid, waited: false }
            }
        };
        Ok(Qmail {
            runner,
            message: Some(File::from(mess_w)),
            envelope: Some(File::from(env_w)),
            flagerr: false,
        })
    }

    /// Whether qmail-queue may be started before its message exists: ours
    /// makes nothing in the queue until the message starts and leaves
    /// quietly when both inputs end empty. A QMAILQUEUE replacement might
    /// act on an empty message, so it starts when the message does.
    pub fn early() -> bool {
        program().is_none()
    }

    /// qmail-queue's pid: the `qp` in qmail-send's logs (0 if a resident
    /// one died before saying it).
    pub fn qp(&mut self) -> u32 {
        match &mut self.runner {
            Runner::Started { pid, .. } => *pid as u32,
            Runner::Resident { sock, pid } => {
                *pid.get_or_insert_with(|| crate::queued::word(sock).unwrap_or(0))
            }
        }
    }

    /// Append message bytes; a failure is remembered and reported by close.
    pub fn put(&mut self, b: &[u8]) {
        if self.flagerr {
            return;
        }
        if let Some(m) = self.message.as_mut() {
            if m.write_all(b).is_err() {
                self.flagerr = true;
            }
        }
    }

    /// Mark the message as failed (a read error on the caller's side).
    pub fn fail(&mut self) {
        self.flagerr = true;
    }

    /// End the message and give the envelope sender.
    pub fn from(&mut self, sender: &str) {
        self.message = None;
        self.env(b"F", sender);
    }

    /// Add a recipient.
    pub fn to(&mut self, recip: &str) {
        self.env(b"T", recip);
    }

    fn env(&mut self, kind: &[u8], addr: &str) {
        if let Some(e) = self.envelope.as_mut() {
            let mut rec = kind.to_vec();
            rec.extend_from_slice(addr.as_bytes());
            rec.push(0);
            if e.write_all(&rec).is_err() {
                self.flagerr = true;
            }
        }
    }

    /// Finish the envelope and wait: Ok on success, else qmail's `Z`/`D` text.
    pub fn close(mut self) -> Result<(), String> {
        if let Some(e) = self.envelope.as_mut() {
            if e.write_all(b"\0").is_err() {
                self.flagerr = true;
            }
        }
        self.message = None;
        self.envelope = None;
        let code = match &mut self.runner {
            Runner::Started { pid, waited } => {
                *waited = true;
                match common::spawn::wait(*pid) {
                    Ok(c) => c,
                    Err(_) => return Err("Zqq waitpid surprise (#4.3.0)".into()),
                }
            }
            Runner::Resident { sock, pid } => {
                if pid.is_none() {
                    *pid = crate::queued::word(sock);
                }
                pid.and_then(|_| crate::queued::word(sock))
                    .map(|c| c as i32)
            }
        };
        match code {
            None => Err("Zqq crashed (#4.3.0)".into()),
            Some(0) if !self.flagerr => Ok(()),
            Some(c) => Err(exit_text(c).into()),
        }
    }
}

/// A message given up on: qmail-queue sees its input end, gives up too,
/// and is reaped rather than left a zombie.
impl Drop for Qmail {
    fn drop(&mut self) {
        if let Runner::Started { pid, waited: false } = self.runner {
            self.message = None;
            self.envelope = None;
            let _ = common::spawn::wait(pid);
        }
    }
}

/// qmail's text for qmail-queue exit code `c` (0 here means a write error).
pub fn exit_text(c: i32) -> &'static str {
    match c {
        11 | 115 => "Denvelope address too long for qq (#5.1.3)",
        31 => "Dmail server permanently rejected message (#5.3.0)",
        51 => "Zqq out of memory (#4.3.0)",
        52 => "Zqq timeout (#4.3.0)",
        53 => "Zqq write error or disk full (#4.3.0)",
        0 | 54 => "Zqq read error (#4.3.0)",
        55 => "Zqq unable to read configuration (#4.3.0)",
        56 => "Zqq trouble making network connection (#4.3.0)",
        61 => "Zqq trouble in home directory (#4.3.0)",
        62..=66 => "Zqq trouble creating files in queue (#4.3.0)",
        71 => "Zmail server temporarily rejected message (#4.3.0)",
        72 => "Zconnection to mail server timed out (#4.4.1)",
        73 => "Zconnection to mail server rejected (#4.4.1)",
        74 => "Zcommunication with mail server failed (#4.4.2)",
        81 | 91 => "Zqq internal bug (#4.3.0)",
        120 => "Zunable to exec qq (#4.3.0)",
        12..=40 => "Dqq permanent problem (#5.3.0)",
        _ => "Zqq temporary problem (#4.3.0)",
    }
}
