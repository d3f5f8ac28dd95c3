//! One multilog log directory: its `lock`, the `current` file (mode 644
//! while written, 744 once complete), rotation to `@<TAI64N>.s` (or `.u` for
//! files not known to be complete), keeping fewer than `n` old files, and the
//! processor protocol (`previous` -> processor -> `processed`, `state` ->
//! `newstate`). Every failure after startup is warned about and retried after
//! a pause, never skipped, so no line is lost or written twice.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::error::Errno;
use common::tai::Tai64n;
use common::{Error, Result};

use crate::script::DirSpec;
use crate::sys;

/// How long multilog waits before retrying a failed operation, as the original.
const PAUSE: Duration = Duration::from_secs(5);

/// When `current` reaches `size - SLACK`, the next line end closes it, so
/// files end at a line boundary unless one line alone overflows.
const SLACK: u64 = 2000;

/// How many bytes of an unfinished line wait in memory before being written.
const HOLD: usize = 64 * 1024;

/// Warn `multilog: warning: MSG` and wait before the caller retries.
pub fn pause(msg: impl std::fmt::Display) {
    common::error::warn("multilog", msg);
    std::thread::sleep(PAUSE);
}

fn why(e: &io::Error) -> &'static str {
    Errno::from(e).text()
}

/// The directory itself: where names are resolved and old files counted.
struct Dir {
    /// The directory as the script names it, for messages.
    name: String,
    path: Vec<u8>,
    fd: OwnedFd,
    num: u64,
}

pub struct LogDir {
    d: Dir,
    _lock: File,
    current: File,
    /// Bytes in `current` including `pending`; set to `size` once full.
    bytes: u64,
    size: u64,
    processor: Option<Vec<u8>>,
    /// Bytes accepted but not yet written to `current`.
    pending: Vec<u8>,
}

impl LogDir {
    /// Create (mode 700) if needed, open, lock and recover the directory.
    pub fn open(spec: &DirSpec) -> Result<LogDir> {
        let name = String::from_utf8_lossy(&spec.path).into_owned();
        let _ = sys::mkdir(&spec.path, 0o700);
        let fd = sys::open_dir(&spec.path)
            .map_err(|e| Error::sys(format!("unable to open directory {name}"), e))?;
        let lock = sys::open_at(Some(fd.as_raw_fd()), b"lock", append_flags(), 0o600)
            .and_then(|f| sys::lock_exnb(&f).map(|()| f))
            .map_err(|e| Error::sys(format!("unable to lock directory {name}"), e))?;
        let d = Dir {
            name,
            path: spec.path.clone(),
            fd,
            num: spec.num,
        };
        let (current, bytes) = d.recover()?;
        Ok(LogDir {
            d,
            _lock: lock,
            current,
            bytes,
            size: spec.size,
            processor: spec.processor.clone(),
            pending: Vec::new(),
        })
    }
    /// Accept part of a line (`end`: it is the last part, newline included).
    /// A part that would overflow `size` is cut there and continues in the
    /// next file; the end of a line past `size - 2000` closes the file.
    pub fn push(&mut self, mut data: &[u8], end: bool) {
        while !data.is_empty() {
            if self.bytes >= self.size {
                self.rotate();
            }
            let n = data.len().min((self.size - self.bytes) as usize);
            self.pending.extend_from_slice(&data[..n]);
            self.bytes += n as u64;
            data = &data[n..];
        }
        if end && self.bytes >= self.size - SLACK {
            self.bytes = self.size;
        }
    }

    /// Write everything accepted to `current`; on failure warn, pause and
    /// retry from the first unwritten byte.
    pub fn flush(&mut self) {
        let mut done = 0;
        while done < self.pending.len() {
            match self.current.write(&self.pending[done..]) {
                Ok(0) => pause(format!(
                    "unable to write to {}/current, pausing: {}",
                    self.d.name,
                    Errno(libc::EIO).text()
                )),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => pause(format!(
                    "unable to write to {}/current, pausing: {}",
                    self.d.name,
                    why(&e)
                )),
            }
        }
        self.pending.clear();
    }

    /// Write the complete lines accepted so far. The bytes of a line still
    /// being read wait for its end, as in the original's buffer (so SIGALRM
    /// moves the whole line to the new file), unless they pile up.
    pub fn flush_lines(&mut self) {
        let tail = self.take_partial();
        if tail.len() > HOLD {
            self.pending.extend_from_slice(&tail);
            self.flush();
            return;
        }
        self.flush();
        self.pending = tail;
    }

    /// SIGALRM: close a non-empty `current` now; a line being read goes on
    /// in the new one.
    pub fn rotate_now(&mut self) {
        let tail = self.take_partial();
        self.bytes -= tail.len() as u64;
        if self.bytes > 0 {
            self.rotate();
        }
        self.bytes += tail.len() as u64;
        self.pending = tail;
    }

    /// Remove and return the pending bytes after the last newline.
    fn take_partial(&mut self) -> Vec<u8> {
        let start = self
            .pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.pending.split_off(start)
    }

    /// Close `current` now and start a new one.
    pub fn rotate(&mut self) {
        self.flush();
        self.sync_current();
        match self.processor.clone() {
            None => {
                self.chmod_current(0o744);
                self.d.finish(b"current", b's');
            }
            Some(p) => {
                while let Err(e) = sys::rename_at(&self.d.fd, b"current", b"previous") {
                    pause(format!(
                        "unable to rename {}/current to previous, pausing: {}",
                        self.d.name,
                        why(&e)
                    ));
                }
                self.new_current();
                self.process(&p);
                return;
            }
        }
        self.new_current();
    }

    fn new_current(&mut self) {
        self.current = self.d.open_current();
        self.bytes = 0;
    }

    /// At exit: everything on disk and `current` marked complete (744).
    pub fn close(&mut self) {
        self.flush();
        self.sync_current();
        self.chmod_current(0o744);
    }

    fn sync_current(&mut self) {
        while let Err(e) = self.current.sync_all() {
            pause(format!(
                "unable to write {}/current to disk, pausing: {}",
                self.d.name,
                why(&e)
            ));
        }
    }

    fn chmod_current(&mut self, mode: u32) {
        while let Err(e) = self
            .current
            .set_permissions(std::fs::Permissions::from_mode(mode))
        {
            pause(format!(
                "unable to set mode of {}/current, pausing: {}",
                self.d.name,
                why(&e)
            ));
        }
    }

    /// Run the processor on `previous` until it succeeds, then make its
    /// output durable and save it as `@<TAI64N>.s`, `newstate` as `state`.
    fn process(&mut self, processor: &[u8]) {
        while !crate::processor::run(&self.d.fd, processor) {
            pause(format!("processor failed in {}, pausing", self.d.name));
        }
        self.d.sync_file(b"processed", true);
        self.d.sync_file(b"newstate", false);
        self.d.remove(b"previous");
        while let Err(e) = sys::rename_at(&self.d.fd, b"newstate", b"state") {
            pause(format!(
                "unable to rename {}/newstate to state, pausing: {}",
                self.d.name,
                why(&e)
            ));
        }
        self.d.finish(b"processed", b's');
    }

    pub fn name(&self) -> &str {
        &self.d.name
    }
}

impl Dir {
    /// Continue a complete `current` (mode 744) as the original does; after
    /// a crash, save every leftover as `.s` (processed completely) or `.u`
    /// (not known to be complete) and start an empty `current` and `state`.
    fn recover(&self) -> Result<(File, u64)> {
        match sys::stat_at(&self.fd, b"current") {
            Ok((mode, 1)) if mode & 0o100 != 0 => return self.reopen_current(),
            Ok((mode, _)) if mode & 0o100 != 0 => self.remove(b"current"),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("unable to stat {}/current", self.name),
                    e,
                ))
            }
        }
        match sys::stat_at(&self.fd, b"processed") {
            Ok((mode, _)) if mode & 0o100 != 0 => {
                self.remove(b"previous");
                self.finish(b"processed", b's');
            }
            _ => self.remove(b"processed"),
        }
        self.remove(b"newstate");
        self.finish(b"previous", b'u');
        self.finish(b"current", b'u');
        loop {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
            match sys::open_at(Some(self.fd.as_raw_fd()), b"state", flags, 0o644) {
                Ok(_) => break,
                Err(e) => pause(format!(
                    "unable to create {}/state, pausing: {}",
                    self.name,
                    why(&e)
                )),
            }
        }
        Ok((self.open_current(), 0))
    }

    /// Append to a complete `current` left by a clean exit.
    fn reopen_current(&self) -> Result<(File, u64)> {
        let f = sys::open_at(Some(self.fd.as_raw_fd()), b"current", append_flags(), 0o644)
            .map_err(|e| Error::sys(format!("unable to open {}/current", self.name), e))?;
        let len = f
            .metadata()
            .map_err(|e| Error::sys(format!("unable to stat {}/current", self.name), e))?
            .len();
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::sys(format!("unable to set mode of {}/current", self.name), e))?;
        Ok((f, len))
    }

    /// Start a new, empty `current` with mode 644.
    fn open_current(&self) -> File {
        let f = loop {
            match sys::open_at(Some(self.fd.as_raw_fd()), b"current", append_flags(), 0o644) {
                Ok(f) => break f,
                Err(e) => pause(format!(
                    "unable to create {}/current, pausing: {}",
                    self.name,
                    why(&e)
                )),
            }
        };
        while let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(0o644)) {
            pause(format!(
                "unable to set mode of {}/current, pausing: {}",
                self.name,
                why(&e)
            ));
        }
        f
    }

    /// fsync `name` (and mark it complete with mode 744 when `complete`).
    fn sync_file(&self, name: &[u8], complete: bool) {
        let shown = String::from_utf8_lossy(name);
        loop {
            let r = sys::open_at(Some(self.fd.as_raw_fd()), name, append_flags(), 0o644).and_then(
                |f| {
                    f.sync_all()?;
                    if complete {
                        f.set_permissions(std::fs::Permissions::from_mode(0o744))?;
                    }
                    Ok(())
                },
            );
            match r {
                Ok(()) => return,
                Err(e) => pause(format!(
                    "unable to write {}/{shown} to disk, pausing: {}",
                    self.name,
                    why(&e)
                )),
            }
        }
    }

    /// Remove `name` if it exists.
    fn remove(&self, name: &[u8]) {
        while let Err(e) = sys::unlink_at(&self.fd, name) {
            if e.kind() == io::ErrorKind::NotFound {
                return;
            }
            let shown = String::from_utf8_lossy(name);
            pause(format!(
                "unable to remove {}/{shown}, pausing: {}",
                self.name,
                why(&e)
            ));
        }
    }

    /// Save `name` (if present) as `@<TAI64N>.<code>`, then trim old files.
    fn finish(&self, name: &[u8], code: u8) {
        let shown = String::from_utf8_lossy(name).into_owned();
        let nlink = loop {
            match sys::stat_at(&self.fd, name) {
                Ok((_, n)) => break n,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => pause(format!(
                    "unable to stat {}/{shown}, pausing: {}",
                    self.name,
                    why(&e)
                )),
            }
        };
        // A link count above 1 means a crash came after the link: already saved.
        if nlink == 1 {
            self.link_new(name, code);
        }
        self.remove(name);
        self.sync_dir();
        self.trim();
    }

    /// Link `name` to a fresh `@<TAI64N>.<code>`.
    fn link_new(&self, name: &[u8], code: u8) {
        loop {
            let mut label = [0u8; 25];
            Tai64n::now().write_label(&mut label);
            let mut target = label.to_vec();
            target.extend_from_slice(&[b'.', code]);
            match sys::link_at(&self.fd, name, &target) {
                Ok(()) => break,
                // Two rotations within one clock tick: take a newer label.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let t = String::from_utf8_lossy(&target).into_owned();
                    pause(format!(
                        "unable to link to {}/{t}, pausing: {}",
                        self.name,
                        why(&e)
                    ))
                }
            }
        }
    }

    /// Delete the oldest `@` files until fewer than `num` remain.
    fn trim(&self) {
        loop {
            let mut names = match sys::old_logs(&self.path) {
                Ok(n) => n,
                Err(e) => {
                    pause(format!(
                        "unable to read {}, pausing: {}",
                        self.name,
                        why(&e)
                    ));
                    continue;
                }
            };
            if (names.len() as u64) < self.num {
                return;
            }
            names.sort();
            self.remove(&names[0]);
        }
    }

    /// Make links, renames and removals durable (ext4 does not do it for us).
    fn sync_dir(&self) {
        unsafe { libc::fsync(self.fd.as_raw_fd()) };
    }
}

fn append_flags() -> libc::c_int {
    libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT
}
