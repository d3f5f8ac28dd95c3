//! Handing a message back to the queue, as qmail-local, forward and
//! condredirect do: run qmail-queue (or $QMAILQUEUE) in QMAILHOME with the
//! message on its fd 0 and the envelope on its fd 1, and turn its exit code
//! into qmail's texts. Also the `forward` program itself.

use common::Error;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

/// A running qmail-queue being fed one message.
pub struct QueueJob {
    child: Child,
    msg: Option<std::process::ChildStdin>,
    env: Option<File>,
    failed: bool,
}

/// qmail-queue's outcome: permanent (`D`) or temporary (`Z`) with qmail's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueError {
    pub permanent: bool,
    pub text: String,
}

impl QueueError {
    fn temp(text: &str) -> QueueError {
        QueueError {
            permanent: false,
            text: text.to_string(),
        }
    }
}

/// The program to run: $QMAILQUEUE, else bin/qmail-queue; a relative name
/// is taken below QMAILHOME, where qmail runs it.
fn queue_program(home: &std::path::Path) -> std::path::PathBuf {
    let prog = match std::env::var_os("QMAILQUEUE") {
        Some(q) if !q.is_empty() => q,
        _ => OsString::from("bin/qmail-queue"),
    };
    home.join(prog)
}

impl QueueJob {
    /// Start qmail-queue. Err only when no process could be started for a
    /// reason qmail reports as "unable to fork"; a missing program shows
    /// up at close as "unable to exec qq".
    pub fn open() -> std::io::Result<Result<QueueJob, QueueError>> {
        let home = crate::home::home();
        if !home.is_dir() {
            return Ok(Err(QueueError::temp(
                "qq trouble in home directory (#4.3.0)",
            )));
        }
        let (env_r, env_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let spawned = common::sig::default_signals(&mut Command::new(queue_program(&home)))
            .current_dir(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(env_r))
            .spawn();
        match spawned {
            Ok(mut child) => Ok(Ok(QueueJob {
                msg: child.stdin.take(),
                child,
                env: Some(File::from(env_w)),
                failed: false,
            })),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(e),
            Err(_) => Ok(Err(QueueError::temp("unable to exec qq (#4.3.0)"))),
        }
    }

    /// The queue process id, printed by qmail-local and forward as `qp`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Add message bytes; a write failure is remembered for close.
    pub fn put(&mut self, data: &[u8]) {
        if self.failed {
            return;
        }
        if let Some(m) = self.msg.as_mut() {
            if m.write_all(data).is_err() {
                self.failed = true;
            }
        }
    }

    /// Copy everything from `r` into the message; Err on a read error.
    pub fn copy_from(&mut self, r: &mut impl Read) -> std::io::Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.put(&buf[..n]);
        }
    }

    /// Mark the message as incomplete (a read error): qmail-queue gets no
    /// envelope terminator worth trusting and the result is an error.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Send the envelope and wait for qmail-queue's verdict.
    pub fn close(mut self, from: &[u8], to: &[&[u8]]) -> Result<(), QueueError> {
        drop(self.msg.take());
        let mut env = b"F".to_vec();
        env.extend(from);
        env.push(0);
        for t in to {
            env.push(b'T');
            env.extend(*t);
            env.push(0);
        }
        env.push(0);
        if let Some(mut e) = self.env.take() {
            if e.write_all(&env).is_err() {
                self.failed = true;
            }
        }
        let status = self
            .child
            .wait()
            .map_err(|_| QueueError::temp("qq waitpid surprise (#4.3.0)"))?;
        if status.signal().is_some() {
            return Err(QueueError::temp("qq crashed (#4.3.0)"));
        }
        interpret(status.code().unwrap_or(0), self.failed)
    }
}

/// qmail-queue's exit code as qmail_close reads it.
pub fn interpret(code: i32, failed: bool) -> Result<(), QueueError> {
    let (permanent, text) = match code {
        0 if !failed => return Ok(()),
        11 | 115 => (true, "envelope address too long for qq (#5.1.3)"),
        31 => (true, "mail server permanently rejected message (#5.3.0)"),
        51 => (false, "qq out of memory (#4.3.0)"),
        52 => (false, "qq timeout (#4.3.0)"),
        53 => (false, "qq write error or disk full (#4.3.0)"),
        0 | 54 => (false, "qq read error (#4.3.0)"),
        55 => (false, "qq unable to read configuration (#4.3.0)"),
        56 => (false, "qq trouble making network connection (#4.3.0)"),
        61 => (false, "qq trouble in home directory (#4.3.0)"),
        62..=66 => (false, "qq trouble creating files in queue (#4.3.0)"),
        71 => (false, "mail server temporarily rejected message (#4.3.0)"),
        72 => (false, "connection to mail server timed out (#4.4.1)"),
        73 => (false, "connection to mail server rejected (#4.4.1)"),
        74 => (false, "communication with mail server failed (#4.4.2)"),
        81 | 91 => (false, "qq internal bug (#4.3.0)"),
        120 => (false, "unable to exec qq (#4.3.0)"),
        11..=40 => (true, "qq permanent problem (#5.3.0)"),
        _ => (false, "qq temporary problem (#4.3.0)"),
    };
    Err(QueueError {
        permanent,
        text: text.to_string(),
    })
}

/// The fatal error of a helper (`forward: fatal: ...`) for a queue failure.
pub fn queue_fatal(e: QueueError) -> Error {
    if e.permanent {
        Error::perm(e.text)
    } else {
        Error::temp(e.text)
    }
}

/// Start qmail-queue for a helper program, with its `unable to fork` text.
pub fn open_for_helper() -> Result<QueueJob, Error> {
    QueueJob::open()
        .map_err(|e| Error::sys("unable to fork", e))?
        .map_err(queue_fatal)
}

/// forward ADDRESS...: send stdin to the addresses with $NEWSENDER as
/// envelope sender and $DTLINE on top; prints `forward: qp N` on stderr.
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let sender = std::env::var_os("NEWSENDER").ok_or_else(|| Error::perm("NEWSENDER not set"))?;
    let dtline = std::env::var_os("DTLINE").ok_or_else(|| Error::perm("DTLINE not set"))?;
    let mut job = open_for_helper()?;
    job.put(dtline.as_bytes());
    job.copy_from(&mut std::io::stdin().lock())
        .map_err(|e| Error::sys("unable to read message", e))?;
    let qp = job.pid();
    let to: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    job.close(sender.as_bytes(), &to).map_err(queue_fatal)?;
    eprintln!("forward: qp {qp}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn exit_codes_read_as_qmail_close() {
        assert_eq!(super::interpret(0, false), Ok(()));
        let e = super::interpret(31, false).unwrap_err();
        assert!(e.permanent);
        let e = super::interpret(0, true).unwrap_err();
        assert_eq!(e.text, "qq read error (#4.3.0)");
        assert!(super::interpret(25, false).unwrap_err().permanent);
        assert!(!super::interpret(82, false).unwrap_err().permanent);
    }
}
