//! Processing todo/N: write info/S/N (the sender), local/S/N and
//! remote/S/N (rewritten recipients), fsync those written and their
//! directories,
//! then ask qmail-clean to remove todo/N and intd/N. A crash at any point
//! leaves todo/N in place, and the work is simply redone.

use super::*;
use crate::queue;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where the scan of todo/ stands.
pub struct Todo {
    dir: Option<std::vec::IntoIter<u64>>,
    next_run: i64,
    trigger: Option<File>,
}

impl Todo {
    pub fn new() -> Todo {
        Todo {
            dir: None,
            next_run: now(),
            trigger: open_trigger(),
        }
    }
}

/// lock/trigger, opened for reading without blocking; re-opened after each
/// pull so that the fifo is readable again only on the next write.
fn open_trigger() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("lock/trigger")
        .ok()
}

fn create(path: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The parsed todo file.
struct Envelope {
    uid: u64,
    pid: u64,
    sender: Option<Vec<u8>>,
    recips: Vec<Vec<u8>>,
}

fn parse(data: &[u8]) -> Result<Envelope, ()> {
    let mut env = Envelope {
        uid: 0,
        pid: 0,
        sender: None,
        recips: Vec::new(),
    };
    let num = |r: &[u8]| {
        let d: Vec<u8> = r.iter().copied().take_while(u8::is_ascii_digit).collect();
        String::from_utf8_lossy(&d).parse().unwrap_or(0)
    };
    let mut rest = data;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        let rec = &rest[..end];
        rest = &rest[end + 1..];
        match rec.first() {
            Some(b'u') => env.uid = num(&rec[1..]),
            Some(b'p') => env.pid = num(&rec[1..]),
            Some(b'F') => env.sender = Some(rec[1..].to_vec()),
            Some(b'T') => env.recips.push(rec[1..].to_vec()),
            _ => return Err(()),
        }
    }
    Ok(env)
}

impl Send {
    pub(super) fn todo_selprep(&self, fds: &mut Vec<libc::pollfd>, wakeup: &mut i64) {
        if self.exitasap {
            return;
        }
        if let Some(t) = &self.todo.trigger {
            fds.push(pollfd(t.as_raw_fd(), libc::POLLIN));
        }
        if self.todo.dir.is_some() {
            *wakeup = 0;
        }
        *wakeup = (*wakeup).min(self.todo.next_run);
    }

    pub(super) fn todo_do(&mut self, ready: &Ready) {
        if self.exitasap {
            return;
        }
        if self.todo.dir.is_none() {
            let pulled = self
                .todo
                .trigger
                .as_ref()
                .is_some_and(|t| ready.has(t.as_raw_fd(), libc::POLLIN));
            if !pulled && self.recent < self.todo.next_run {
                return;
            }
            // Close before reopening, so the fifo's buffer and end-of-file
            // state go away with the last opener (qmail's trigger_set).
            self.todo.trigger = None;
            self.todo.trigger = open_trigger();
            match queue::list("todo", false) {
                Ok(mut ids) => {
                    ids.sort_unstable();
                    self.todo.dir = Some(ids.into_iter());
                }
                Err(_) => {
                    log("alert: unable to opendir todo, sleeping...\n");
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    return;
                }
            }
            self.todo.next_run = self.recent + SLEEP_TODO;
        }
        match self.todo.dir.as_mut().and_then(Iterator::next) {
            None => self.todo.dir = None,
            Some(id) => self.todo_one(id),
        }
    }

    fn todo_one(&mut self, id: u64) {
        let todo = queue::todo(id);
        let Ok(data) = std::fs::read(&todo) else {
            log(&format!("warning: unable to open {todo}\n"));
            return;
        };
        let Some(chans) = self.todo_write(id, &data) else {
            return;
        };
        if !self.clean(&todo) {
            return;
        }
        let t = now();
        for (c, has) in chans.iter().enumerate() {
            if *has {
                self.pqchan[c].push(Reverse((t, id)));
            }
        }
        if !chans.iter().any(|&b| b) {
            self.pqdone.push(Reverse((t, id)));
        }
    }

    /// Write info and the chan files; which channels got recipients.
    fn todo_write(&mut self, id: u64, data: &[u8]) -> Option<[bool; 2]> {
        let size = match std::fs::metadata(queue::mess(id)) {
            Ok(md) => md.len(),
            Err(_) => {
                log(&format!("warning: unable to stat {}\n", queue::mess(id)));
                return None;
            }
        };
        // Leftovers of an attempt a crash cut short; their removal is
        // synced with the new files, so none can come back stale.
        let mut removed = Vec::new();
        for f in [queue::chan(0, id), queue::chan(1, id), queue::info(id)] {
            match std::fs::remove_file(&f) {
                Ok(()) => removed.push(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => {
                    log(&format!("warning: unable to unlink {f}\n"));
                    return None;
                }
            }
        }
        let Ok(env) = parse(data) else {
            log(&format!(
                "warning: unknown record type in {}\n",
                queue::todo(id)
            ));
            return None;
        };
        let info = queue::info(id);
        let Ok(mut fdinfo) = create(&info) else {
            log(&format!("warning: unable to create {info}\n"));
            return None;
        };
        log(&format!("new msg {id}\n"));
        if let Some(sender) = &env.sender {
            let mut rec = b"F".to_vec();
            rec.extend_from_slice(sender);
            rec.push(0);
            if fdinfo.write_all(&rec).is_err() {
                log(&format!("warning: trouble writing to {info}\n"));
                return None;
            }
            log(&format!(
                "info msg {id}: bytes {size} from <{}> qp {} uid {}\n",
                safe(sender),
                env.pid,
                env.uid
            ));
        }
        let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for r in &env.recips {
            let (addr, chan) = self.ctl.rw.rewrite(&String::from_utf8_lossy(r));
            let b = &mut bufs[chan as usize];
            b.push(b'T');
            b.extend_from_slice(addr.as_bytes());
            b.push(0);
        }
        let mut files = vec![(info.clone(), fdinfo)];
        let mut chans = [false, false];
        for c in 0..2 {
            if bufs[c].is_empty() {
                continue;
            }
            let f = queue::chan(c, id);
            files.push((f.clone(), write_chan(&f, &bufs[c])?));
            chans[c] = true;
        }
        if !durable(&files, &removed) {
            return None;
        }
        Some(chans)
    }
}

/// The files written for todo/N, their directory entries and the removal
/// of `removed` reach the disk before todo/N may go. Writeback of every
/// file starts first, so that a journaling filesystem commits them together
/// at the first fsync.
fn durable(files: &[(String, File)], removed: &[String]) -> bool {
    for (_, file) in files {
        // SAFETY: a hint on our own descriptor; failure only costs speed.
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    for (f, file) in files {
        if file.sync_all().is_err() {
            log(&format!("warning: trouble fsyncing {f}\n"));
            return false;
        }
    }
    let mut synced: Vec<&Path> = Vec::new();
    for f in files.iter().map(|(f, _)| f).chain(removed) {
        let dir = Path::new(f).parent();
        if synced.iter().any(|d| Some(*d) == dir) {
            continue;
        }
        synced.extend(dir);
        if queue::sync_dir(Path::new(f)).is_err() {
            log(&format!("warning: trouble fsyncing {f}\n"));
            return false;
        }
    }
    true
}

fn write_chan(f: &str, data: &[u8]) -> Option<File> {
    let Ok(mut file) = create(f) else {
        log(&format!("warning: unable to create {f}\n"));
        return None;
    };
    if file.write_all(data).is_err() {
        log(&format!("warning: trouble writing to {f}\n"));
        return None;
    }
    Some(file)
}
