//! qmail-queue: put one message into the queue. The message comes on fd 0,
//! the envelope on fd 1 (`Fsender\0` then `Trecip\0` ... and a final `\0`).
//! The exit code tells the caller what happened (qmail-queue(8)); nothing
//! is printed.
//!
//! Crash safety, in this order: create pid/PID.TIME.SEQ (its inode number
//! is the message number), link it to mess/S/N, unlink the pid file, write
//! the Received line and the message; create intd/N with the envelope;
//! fsync both files and mess/S; link intd/N to todo/N last and fsync
//! todo. Until todo/N exists (durably) qmail-send does not
//! see the message; qmail-send and qmail-clean remove leftovers. None of
//! this starts before the message does: a qmail-queue started early and
//! never given a message leaves the queue untouched.

use crate::queue;
use common::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::Path;

/// An address longer than this is refused with exit 11.
const ADDR: usize = 1003;
/// Give up after a day: below qmail-send's 36 hours for stale files.
const DEATH: u32 = 86400;

pub const EXIT_ADDR_TOO_LONG: i32 = 11;
pub const EXIT_NOMEM: i32 = 51;
pub const EXIT_TIMEOUT: i32 = 52;
pub const EXIT_WRITE: i32 = 53;
pub const EXIT_READ: i32 = 54;
pub const EXIT_HOME: i32 = 61;
pub const EXIT_QUEUE: i32 = 62;
pub const EXIT_PID: i32 = 63;
pub const EXIT_MESS: i32 = 64;
pub const EXIT_INTD: i32 = 65;
pub const EXIT_TODO: i32 = 66;
pub const EXIT_BUG: i32 = 81;
pub const EXIT_ENVELOPE: i32 = 91;

fn fail(code: i32) -> Error {
    Error::silent(code)
}

/// `Received: (qmail PID invoked ...); DATE\n`, naming the caller as
/// qmail-queue does: the alias user, qmaild (network), qmails (bounce),
/// anyone else by uid.
pub fn received_line(pid: u32, uid: u32, when: i64) -> String {
    let by = match invoker(uid).as_deref() {
        Some("alias") => "by alias".to_string(),
        Some("qmaild") => "from network".to_string(),
        Some("qmails") => "for bounce".to_string(),
        _ => format!("by uid {uid}"),
    };
    format!(
        "Received: (qmail {pid} invoked {by}); {}\n",
        crate::date822::fmt(when)
    )
}

/// The name of the invoking uid. One lookup by uid, where asking for each
/// of the three qmail names would cost three passwd walks (through every
/// NSS module when those users are absent) on every message queued.
fn invoker(uid: u32) -> Option<String> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid));
    user.ok().flatten().map(|u| u.name)
}

/// Files made so far, removed again if queueing fails.
struct Made {
    mess: Option<String>,
    intd: Option<String>,
}

impl Made {
    fn cleanup(&self) {
        for f in [&self.intd, &self.mess].into_iter().flatten() {
            if let Ok(file) = OpenOptions::new().write(true).open(f) {
                let _ = file.set_len(0);
            }
            let _ = std::fs::remove_file(f);
        }
    }
}

extern "C" fn on_alarm(_: libc::c_int) {
    // The original does not clean up on timeout either: qmail-clean will.
    unsafe { libc::_exit(EXIT_TIMEOUT) }
}

/// qmail-queue as a program: the caller is the real uid.
pub fn run() -> Result<(), Error> {
    queue_for(nix::unistd::getuid().as_raw())
}

/// Queue the message on fd 0 with the envelope on fd 1 for the caller
/// `uid` (qmail-queued's children pass their client's).
pub fn queue_for(uid: u32) -> Result<(), Error> {
    unsafe {
        libc::umask(0o033);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(
            libc::SIGALRM,
            on_alarm as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::alarm(DEATH);
    }
    std::env::set_current_dir(crate::home::home()).map_err(|_| fail(EXIT_HOME))?;
    std::env::set_current_dir("queue").map_err(|_| fail(EXIT_QUEUE))?;
    let input = Input::wait()?;
    // SAFETY: restarting our own alarm: the day counts from the message.
    unsafe { libc::alarm(DEATH) };
    let pid = std::process::id();
    let start = crate::date822::now();
    let received = received_line(pid, uid, start);
    let (messfile, id) = open_pid(pid, start)?;
    let mut made = Made {
        mess: None,
        intd: None,
    };
    let r = enqueue(messfile, id, input, &received, pid, uid, &mut made);
    if r.is_err() {
        made.cleanup();
    }
    r
}

/// The first bytes of the message and of the envelope, read before
/// anything is made in the queue: a caller may start qmail-queue before it
/// has a message (qmail-smtpd does at MAIL, so that the start overlaps the
/// dialogue) and then close both inputs unused.
struct Input {
    message: Vec<u8>,
    envelope: Vec<u8>,
}

impl Input {
    /// Block until the message starts. An empty message with an empty
    /// envelope is the original's read error (54), reached here without
    /// making and removing files.
    fn wait() -> Result<Input, Error> {
        let mut message = vec![0u8; 65536];
        let n = read_some(0, &mut message)?;
        message.truncate(n);
        let mut envelope = Vec::new();
        if n == 0 {
            let mut b = [0u8];
            if read_some(1, &mut b)? == 0 {
                return Err(fail(EXIT_READ));
            }
            envelope.push(b[0]);
        }
        Ok(Input { message, envelope })
    }
}

/// read(2) on `fd`, retried after EINTR; a read error is exit 54.
fn read_some(fd: i32, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(fail(EXIT_READ)),
        }
    }
}

/// Create pid/PID.TIME.SEQ exclusively; returns it and its inode number.
fn open_pid(pid: u32, start: i64) -> Result<(File, u64), Error> {
    for seq in 1..10 {
        let name = format!("pid/{pid}.{start}.{seq}");
        if let Ok(f) = create_excl(&name) {
            let ino = f.metadata().map_err(|_| fail(EXIT_PID))?.ino();
            std::fs::hard_link(&name, queue::mess(ino)).map_err(|_| fail(EXIT_MESS))?;
            std::fs::remove_file(&name).map_err(|_| fail(EXIT_PID))?;
            return Ok((f, ino));
        }
    }
    Err(fail(EXIT_PID))
}

fn create_excl(name: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(name)
}

/// link(2) then fsync the new entry's directory.
fn link_sync(from: &str, to: &str) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    queue::sync_dir(Path::new(to))
}

fn enqueue(
    mess: File,
    id: u64,
    input: Input,
    received: &str,
    pid: u32,
    uid: u32,
    made: &mut Made,
) -> Result<(), Error> {
    made.mess = Some(queue::mess(id));
    write_message(&mess, received, &input.message)?;
    let intdname = queue::intd(id);
    let intd = create_excl(&intdname).map_err(|_| fail(EXIT_INTD))?;
    made.intd = Some(intdname.clone());
    // fd 1 is the envelope, read as a file descriptor we own from here on.
    let envelope = unsafe { File::from_raw_fd(1) };
    let envelope = (&input.envelope[..]).chain(envelope);
    write_envelope(&intd, envelope, pid, uid)?;
    make_durable(&mess, &intd, id)?;
    link_sync(&intdname, &queue::todo(id)).map_err(|_| fail(EXIT_TODO))?;
    queue::pull_trigger();
    Ok(())
}

/// Everything todo/N will point at reaches the disk before todo/N exists:
/// the message and envelope contents and the message's directory entry.
/// Both files' writeback is started first, so that a journaling filesystem
/// allocates their blocks in one transaction and the first fsync commits
/// it for both (the second finds nothing left to commit). intd/N's own
/// entry is not synced: todo/N, synced after the link, names the same
/// inode, and nothing reads intd/N before todo/N exists.
fn make_durable(mess: &File, intd: &File, id: u64) -> Result<(), Error> {
    for f in [mess, intd] {
        // SAFETY: a hint on our own descriptor; failure only costs speed.
        unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    mess.sync_all().map_err(|_| fail(EXIT_WRITE))?;
    intd.sync_all().map_err(|_| fail(EXIT_WRITE))?;
    queue::sync_dir(Path::new(&queue::mess(id))).map_err(|_| fail(EXIT_WRITE))
}

fn write_message(mess: &File, received: &str, first: &[u8]) -> Result<(), Error> {
    let mut out = BufWriter::with_capacity(65536, mess);
    out.write_all(received.as_bytes())
        .map_err(|_| fail(EXIT_WRITE))?;
    out.write_all(first).map_err(|_| fail(EXIT_WRITE))?;
    if first.is_empty() {
        return out.flush().map_err(|_| fail(EXIT_WRITE));
    }
    // Read from fd 0 itself: a buffer of the process's (stdin's) could
    // keep bytes of this message for the next one qmail-queued's child
    // queues.
    let mut buf = vec![0u8; 65536];
    loop {
        let n = read_some(0, &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|_| fail(EXIT_WRITE))?;
    }
    out.flush().map_err(|_| fail(EXIT_WRITE))
}

/// Copy the envelope into intd: `uUID\0pPID\0Fsender\0Trecip\0...`.
fn write_envelope(intd: &File, envelope: impl Read, pid: u32, uid: u32) -> Result<(), Error> {
    let mut out = BufWriter::new(intd);
    let mut input = BufReader::new(envelope);
    let w = |out: &mut BufWriter<&File>, b: &[u8]| out.write_all(b).map_err(|_| fail(EXIT_WRITE));
    w(&mut out, format!("u{uid}\0p{pid}\0").as_bytes())?;
    let first = read_byte(&mut input)?;
    if first != b'F' {
        return Err(fail(EXIT_ENVELOPE));
    }
    w(&mut out, b"F")?;
    w(&mut out, &read_addr(&mut input)?)?;
    loop {
        match read_byte(&mut input)? {
            0 => break,
            b'T' => {
                w(&mut out, b"T")?;
                w(&mut out, &read_addr(&mut input)?)?;
            }
            _ => return Err(fail(EXIT_ENVELOPE)),
        }
    }
    out.flush().map_err(|_| fail(EXIT_WRITE))
}

fn read_byte(input: &mut impl BufRead) -> Result<u8, Error> {
    let mut b = [0u8];
    match input.read_exact(&mut b) {
        Ok(()) => Ok(b[0]),
        Err(_) => Err(fail(EXIT_READ)),
    }
}

/// One address up to and including its `\0`; exit 11 beyond ADDR bytes.
fn read_addr(input: &mut impl BufRead) -> Result<Vec<u8>, Error> {
    let mut addr = Vec::new();
    loop {
        let b = read_byte(input)?;
        addr.push(b);
        if b == 0 {
            return Ok(addr);
        }
        if addr.len() >= ADDR {
            return Err(fail(EXIT_ADDR_TOO_LONG));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_names_the_uid() {
        let l = received_line(12345, 4242, 811_140_414);
        assert_eq!(
            l,
            "Received: (qmail 12345 invoked by uid 4242); 15 Sep 1995 04:46:54 -0000\n"
        );
    }

    #[test]
    fn address_limit_is_1003() {
        let mut long = vec![b'a'; 1002];
        long.push(0);
        assert!(read_addr(&mut &long[..]).is_ok());
        let long = vec![b'a'; 1003];
        assert_eq!(read_addr(&mut &long[..]).unwrap_err().code, 11);
    }
}
