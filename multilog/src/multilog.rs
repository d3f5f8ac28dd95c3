//! multilog's main loop: read stdin in large chunks, run each line through
//! the script (select, `e`, `=file`, log directories), write each chunk's
//! lines to every `current` before reading more, rotate on SIGALRM, and on
//! SIGTERM stop at the first line boundary after handling all input read.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Error, Result};

use crate::logdir::LogDir;
use crate::matcher::matches;
use crate::script::{Action, Script};
use crate::tai64n::arrival_label;

/// Bytes of a line (timestamp included) that patterns, `e` and `=file` see.
const HEAD: usize = 1000;
/// Bytes of a line `e` copies to stderr before cutting it with `...`.
const ECHO: usize = 200;
const CHUNK: usize = 128 * 1024;

pub fn run() -> Result<()> {
    let words: Vec<OsString> = std::env::args_os().skip(1).collect();
    let script = Script::parse(&words);
    // The original creates files with mode 644 and directories with 700.
    unsafe { libc::umask(0o022) };
    let signals = Signals::install()?;
    let mut logger = Logger::start(script)?;
    logger.serve(&signals)
}

/// SIGTERM and SIGALRM as flags, with a self-pipe to wake poll.
struct Signals {
    term: Arc<AtomicBool>,
    alarm: Arc<AtomicBool>,
    wake: UnixStream,
}

impl Signals {
    fn install() -> Result<Signals> {
        let fail = |e: io::Error| Error::sys("unable to set up signals", e);
        let (wake, notify) = UnixStream::pair().map_err(fail)?;
        wake.set_nonblocking(true).map_err(fail)?;
        notify.set_nonblocking(true).map_err(fail)?;
        let term = Arc::new(AtomicBool::new(false));
        let alarm = Arc::new(AtomicBool::new(false));
        use signal_hook::consts::{SIGALRM, SIGTERM};
        signal_hook::flag::register(SIGTERM, term.clone()).map_err(fail)?;
        signal_hook::flag::register(SIGALRM, alarm.clone()).map_err(fail)?;
        signal_hook::low_level::pipe::register(SIGTERM, notify.try_clone().map_err(fail)?)
            .map_err(fail)?;
        signal_hook::low_level::pipe::register(SIGALRM, notify).map_err(fail)?;
        Ok(Signals { term, alarm, wake })
    }

    fn drain(&self) {
        let mut b = [0u8; 64];
        while matches!((&self.wake).read(&mut b), Ok(n) if n > 0) {}
    }

    /// Wait until stdin is readable or a signal came; true when stdin is.
    fn wait_input(&self) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[1].revents != 0 {
            self.drain();
        }
        r > 0 && fds[0].revents != 0
    }
}

/// The script with its open outputs, and the line being read.
struct Logger {
    timestamp: bool,
    filters: bool,
    actions: Vec<Action>,
    dirs: Vec<LogDir>,
    files: Vec<File>,
    /// Which directories take the current line.
    chosen: Vec<bool>,
    /// The first HEAD bytes of the current line, until it is decided.
    head: Vec<u8>,
    in_line: bool,
    decided: bool,
    echo: Vec<u8>,
}

impl Logger {
    fn start(script: Script) -> Result<Logger> {
        let mut files = Vec::new();
        for f in &script.files {
            let shown = String::from_utf8_lossy(f);
            let flags = libc::O_WRONLY | libc::O_CREAT;
            let file = crate::sys::open_at(None, f, flags, 0o600)
                .map_err(|e| Error::sys(format!("unable to create {shown}"), e))?;
            files.push(file);
        }
        let mut dirs = Vec::new();
        for d in &script.dirs {
            dirs.push(LogDir::open(d)?);
        }
        Ok(Logger {
            timestamp: script.timestamp,
            filters: script.filters(),
            chosen: vec![true; dirs.len()],
            actions: script.actions,
            dirs,
            files,
            head: Vec::with_capacity(HEAD + 1),
            in_line: false,
            decided: false,
            echo: Vec::new(),
        })
    }

    /// The loop: wait, rotate on SIGALRM, read a chunk, handle all of it.
    fn serve(&mut self, signals: &Signals) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if signals.alarm.swap(false, Ordering::SeqCst) {
                self.rotate_all();
            }
            if signals.term.load(Ordering::SeqCst) && !self.in_line {
                break;
            }
            if !signals.wait_input() {
                continue;
            }
            let n = match read_stdin(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // The original ends the log on a read error as at end of input.
                Err(_) => 0,
            };
            if n == 0 {
                if self.in_line {
                    self.feed(b"\n", &[0u8; 25]);
                }
                self.flush();
                break;
            }
            self.feed_chunk(&buf[..n]);
            self.flush();
        }
        self.flush();
        for d in &mut self.dirs {
            d.close();
        }
        Ok(())
    }

    fn rotate_all(&mut self) {
        for d in &mut self.dirs {
            d.rotate_now();
        }
    }

    /// Every line of one read gets the label of that read.
    fn feed_chunk(&mut self, chunk: &[u8]) {
        let label = if self.timestamp {
            arrival_label()
        } else {
            [0u8; 25]
        };
        let mut rest = chunk;
        while !rest.is_empty() {
            let end = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            self.feed(&rest[..end], &label);
            rest = &rest[end..];
        }
    }

    /// Handle one piece of a line (ending with `\n` when it ends the line).
    fn feed(&mut self, piece: &[u8], label: &[u8; 25]) {
        let ends = piece.last() == Some(&b'\n');
        if !self.in_line {
            self.in_line = true;
            self.decided = !self.filters;
            self.head.clear();
            if self.timestamp {
                self.head.extend_from_slice(label);
                self.head.push(b' ');
                if self.decided {
                    let mut stamp = [b' '; 26];
                    stamp[..25].copy_from_slice(label);
                    self.send(&stamp, false);
                }
            }
        }
        let mut rest = piece;
        if !self.decided {
            let text = &piece[..piece.len() - usize::from(ends)];
            let take = text.len().min(HEAD - self.head.len());
            self.head.extend_from_slice(&text[..take]);
            rest = &piece[take..];
            if ends || self.head.len() == HEAD {
                self.decide();
            }
        }
        if self.decided {
            self.send(rest, ends);
        }
        if ends {
            self.in_line = false;
        }
    }

    /// Run the script over the line's head; echo, record status, and send
    /// the head to the directories that take the line.
    fn decide(&mut self) {
        let mut selected = true;
        for a in &self.actions {
            match a {
                Action::Deselect(p) if matches(p, &self.head) => selected = false,
                Action::Select(p) if matches(p, &self.head) => selected = true,
                Action::Deselect(_) | Action::Select(_) => {}
                Action::Stderr if selected => echo(&mut self.echo, &self.head),
                Action::Status(i) if selected => status(&self.files[*i], &self.head),
                Action::Dir(i) => self.chosen[*i] = selected,
                Action::Stderr | Action::Status(_) => {}
            }
        }
        self.decided = true;
        let head = std::mem::take(&mut self.head);
        self.send(&head, false);
        self.head = head;
    }

    fn send(&mut self, data: &[u8], ends: bool) {
        if data.is_empty() && !ends {
            return;
        }
        for (d, &on) in self.dirs.iter_mut().zip(&self.chosen) {
            if on {
                d.push(data, ends);
            }
        }
    }

    /// Put every line handled so far on disk (and stderr) before reading on.
    fn flush(&mut self) {
        for d in &mut self.dirs {
            d.flush_lines();
        }
        if !self.echo.is_empty() {
            let _ = io::stderr().lock().write_all(&self.echo);
            self.echo.clear();
        }
    }
}

/// `e`: the line cut at 200 bytes, marked `...` when cut.
fn echo(out: &mut Vec<u8>, head: &[u8]) {
    out.extend_from_slice(&head[..head.len().min(ECHO)]);
    if head.len() > ECHO {
        out.extend_from_slice(b"...");
    }
    out.push(b'\n');
}

/// `=file`: the line's head, padded with newlines to 1001 bytes, at offset 0.
/// Like the original, a failed status update is not worth stopping the log for.
fn status(file: &File, head: &[u8]) {
    let mut rec = [b'\n'; HEAD + 1];
    rec[..head.len()].copy_from_slice(head);
    let _ = file.write_all_at(&rec, 0);
}

/// Read fd 0 directly: std's Stdin would copy through its own small buffer.
fn read_stdin(buf: &mut [u8]) -> io::Result<usize> {
    let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), i32::from(needle), hay.len()) };
    if p.is_null() {
        None
    } else {
        Some(p as usize - hay.as_ptr() as usize)
    }
}
