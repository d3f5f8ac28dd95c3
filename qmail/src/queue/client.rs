//! Calling qmail-queue as qmail's programs do (qmail.c): run $QMAILQUEUE or
//! QMAILHOME/bin/qmail-queue from QMAILHOME, feed the message on its fd 0
//! and the envelope on its fd 1, and turn its exit code into the standard
//! `Z...`/`D...` texts that qmail-inject, qmail-send and the SMTP server show.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// One message on its way into the queue.
pub struct Qmail {
    pid: libc::pid_t,
    waited: bool,
    message: Option<File>,
    envelope: Option<File>,
    flagerr: bool,
}

/// The qmail-queue program to run.
fn program() -> PathBuf {
    let home = crate::home::home();
    match std::env::var_os("QMAILQUEUE") {
        Some(q) if !q.is_empty() => home.join(q),
        _ => home.join("bin/qmail-queue"),
    }
}

impl Qmail {
    /// Start qmail-queue (posix_spawn: no copy of the caller, however
    /// large); Err when it cannot be started.
    pub fn open() -> std::io::Result<Qmail> {
        let (mess_r, mess_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (env_r, env_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let prog = program();
        let pid = common::spawn::spawn(
            &prog,
            &[prog.as_os_str()],
            Some(&crate::home::home()),
            &[(mess_r.as_raw_fd(), 0), (env_r.as_raw_fd(), 1)],
        )?;
        Ok(Qmail {
            pid,
            waited: false,
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
        std::env::var_os("QMAILQUEUE").is_none_or(|q| q.is_empty())
    }

    /// qmail-queue's pid: the `qp` in qmail-send's logs.
    pub fn qp(&self) -> u32 {
        self.pid as u32
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
        self.waited = true;
        let code = match common::spawn::wait(self.pid) {
            Ok(c) => c,
            Err(_) => return Err("Zqq waitpid surprise (#4.3.0)".into()),
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
        if !self.waited {
            self.message = None;
            self.envelope = None;
            let _ = common::spawn::wait(self.pid);
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
