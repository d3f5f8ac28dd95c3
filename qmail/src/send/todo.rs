//! Processing todo/N: write info/S/N (the sender), local/S/N and
//! remote/S/N (rewritten recipients), fsync those written and their
//! directories, then ask qmail-clean to remove todo/N and intd/N. A crash
//! at any point leaves todo/N in place, and the work is simply redone.
//!
//! Beyond qmail, entries are taken in batches, and a batch is written and
//! synced by a child process (named qmail-todo) while the loop goes on
//! delivering: one round of syncs covers many messages, and their latency
//! never holds up deliveries, yet qmail-send stays single-threaded. The
//! child logs "new msg" and "info msg" and reports which entries reached
//! the disk; only then does the loop have todo/N removed and schedule the
//! messages, so each is announced before any delivery of it starts.

use super::*;
use crate::queue;
use nix::unistd::{ForkResult, Pid};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most todo entries processed with one round of syncs.
const TODO_BATCH: usize = 128;
/// The most batches written at once: their flushes overlap at the disk.
const TODO_CHILDREN: usize = 3;

/// Where the scan of todo/ stands.
pub struct Todo {
    dir: Option<std::vec::IntoIter<u64>>,
    next_run: i64,
    trigger: Option<File>,
    /// The children working on batches.
    batches: Vec<Batch>,
    /// Entries in a batch or waiting for their todo/N to go: a new scan
    /// of todo/ must not hand them out a second time.
    inhand: std::collections::HashSet<u64>,
}

/// A batch in a child's hands: its entries, the child's pid and the pipe
/// its report comes on.
struct Batch {
    ids: Vec<u64>,
    pid: Pid,
    report: File,
    got: Vec<u8>,
}

impl Todo {
    pub fn new() -> Todo {
        Todo {
            dir: None,
            next_run: now(),
            trigger: open_trigger(),
            batches: Vec::new(),
            inhand: std::collections::HashSet::new(),
        }
    }

    /// Whether a batch is still being written.
    pub fn busy(&self) -> bool {
        !self.batches.is_empty()
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
        for b in &self.todo.batches {
            fds.push(pollfd(b.report.as_raw_fd(), libc::POLLIN));
        }
        if self.exitasap || self.todo.batches.len() >= TODO_CHILDREN {
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
        let mut i = 0;
        while i < self.todo.batches.len() {
            let b = &mut self.todo.batches[i];
            if ready.has(b.report.as_raw_fd(), libc::POLLIN) && b.read_some() {
                let b = self.todo.batches.remove(i);
                self.todo_finish(b);
            } else {
                i += 1;
            }
        }
        if self.exitasap || self.todo.batches.len() >= TODO_CHILDREN {
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
        let inhand = &self.todo.inhand;
        let ids: Vec<u64> = match self.todo.dir.as_mut() {
            Some(ids) => ids
                .filter(|id| !inhand.contains(id))
                .take(TODO_BATCH)
                .collect(),
            None => Vec::new(),
        };
        if ids.is_empty() {
            self.todo.dir = None;
            return;
        }
        self.todo_start(&ids);
    }

    /// Hand the batch to a child; if none can be started, do it here.
    fn todo_start(&mut self, ids: &[u64]) {
        self.todo.inhand.extend(ids);
        let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return self.todo_done(ids, &write_batch(&self.ctl.rw, ids));
        };
        // SAFETY: qmail-send is single-threaded; the child writes the
        // batch, reports on its pipe and leaves through _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                drop(r);
                // SAFETY: naming ourselves, for ps.
                unsafe { libc::prctl(libc::PR_SET_NAME, c"qmail-todo".as_ptr()) };
                let lines = report(&write_batch(&self.ctl.rw, ids));
                let ok = File::from(w).write_all(&lines).is_ok();
                unsafe { libc::_exit(if ok { 0 } else { 111 }) }
            }
            Ok(ForkResult::Parent { child }) => {
                self.todo.batches.push(Batch {
                    ids: ids.to_vec(),
                    pid: child,
                    report: File::from(r),
                    got: Vec::new(),
                });
            }
            Err(_) => self.todo_done(ids, &write_batch(&self.ctl.rw, ids)),
        }
    }

    /// The child has reported and gone: its entries' todo/N may go now.
    fn todo_finish(&mut self, b: Batch) {
        let status = nix::sys::wait::waitpid(b.pid, None);
        let done = match status {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => parse_report(&b.got),
            _ => {
                // Whatever it wrote stays, with todo/N, for the next scan.
                log("warning: trouble processing todo batch, will try later\n");
                Vec::new()
            }
        };
        self.todo_done(&b.ids, &done);
    }

    /// Have todo/N of the written entries removed; each message is
    /// scheduled when qmail-clean answers for it. The batch's other
    /// entries are left to the next scan.
    fn todo_done(&mut self, ids: &[u64], done: &[(u64, [bool; 2])]) {
        for id in ids {
            if !done.iter().any(|(d, _)| d == id) {
                self.todo.inhand.remove(id);
            }
        }
        let reqs = done
            .iter()
            .map(|&(id, chans)| (queue::todo(id), super::clean::After::Schedule(id, chans)))
            .collect();
        self.ask(super::clean::Who::Clean, reqs);
    }

    /// todo/N is gone (or could not be removed): the entry is out of hand.
    pub(super) fn todo_released(&mut self, id: u64) {
        self.todo.inhand.remove(&id);
    }
}

impl Batch {
    /// Take what the child has written; true at its end.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match (&self.report).read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                self.got.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
        }
    }
}

/// Write and sync a batch; the entries whose files reached the disk, with
/// the channels that got recipients.
fn write_batch(rw: &Rewriter, ids: &[u64]) -> Vec<(u64, [bool; 2])> {
    let written: Vec<Written> = ids.iter().filter_map(|&id| todo_write(rw, id)).collect();
    durable(written).iter().map(|w| (w.id, w.chans)).collect()
}

/// The child's report: one line per entry, "N LR" with L and R 0 or 1.
fn report(done: &[(u64, [bool; 2])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, [l, r]) in done {
        out.extend_from_slice(format!("{id} {}{}\n", u8::from(*l), u8::from(*r)).as_bytes());
    }
    out
}

fn parse_report(b: &[u8]) -> Vec<(u64, [bool; 2])> {
    String::from_utf8_lossy(b)
        .lines()
        .filter_map(|l| {
            let (id, chans) = l.split_once(' ')?;
            let &[l, r] = chans.as_bytes() else {
                return None;
            };
            Some((id.parse().ok()?, [l == b'1', r == b'1']))
        })
        .collect()
}

/// Read todo/N and write info and the chan files, unsynced.
fn todo_write(rw: &Rewriter, id: u64) -> Option<Written> {
    let todo = queue::todo(id);
    let Ok(data) = std::fs::read(&todo) else {
        log(&format!("warning: unable to open {todo}\n"));
        return None;
    };
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
    let Ok(env) = parse(&data) else {
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
        let (addr, chan) = rw.rewrite(&String::from_utf8_lossy(r));
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
    Some(Written {
        id,
        chans,
        files,
        removed,
    })
}

/// A todo entry whose info and chan files are written but not yet synced.
struct Written {
    id: u64,
    /// Which channels got recipients.
    chans: [bool; 2],
    files: Vec<(String, File)>,
    /// Leftovers of an earlier attempt, removed.
    removed: Vec<String>,
}

impl Written {
    /// Every path whose directory entry the entry depends on.
    fn paths(&self) -> Vec<&str> {
        let files = self.files.iter().map(|(f, _)| f.as_str());
        files
            .chain(self.removed.iter().map(String::as_str))
            .collect()
    }
}

/// The entries whose files, directory entries and removals of leftovers
/// all reached the disk; only for those may todo/N go. Writeback of every
/// file starts first, so that a journaling filesystem commits them together
/// at the first fsync, and each directory is synced once for the batch.
fn durable(written: Vec<Written>) -> Vec<Written> {
    for (_, file) in written.iter().flat_map(|w| &w.files) {
        // SAFETY: a hint on our own descriptor; failure only costs speed.
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    let mut ok: Vec<bool> = written
        .iter()
        .map(|w| {
            w.files.iter().all(|(f, file)| {
                let synced = file.sync_all().is_ok();
                if !synced {
                    log(&format!("warning: trouble fsyncing {f}\n"));
                }
                synced
            })
        })
        .collect();
    let all: Vec<Vec<&str>> = written.iter().map(Written::paths).collect();
    for dir in queue::sync_dirs(all.iter().flatten().copied()) {
        log(&format!("warning: trouble fsyncing {}\n", dir.display()));
        // Every entry with a file there waits for the next scan.
        for (fs, ok) in all.iter().zip(ok.iter_mut()) {
            if fs.iter().any(|f| Path::new(f).parent() == Some(dir)) {
                *ok = false;
            }
        }
    }
    written
        .into_iter()
        .zip(ok)
        .filter_map(|(w, ok)| ok.then_some(w))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_report_comes_back_as_it_was_written() {
        let done = vec![(12, [true, false]), (7, [false, true]), (9, [false, false])];
        assert_eq!(report(&done), b"12 10\n7 01\n9 00\n");
        assert_eq!(parse_report(&report(&done)), done);
    }

    #[test]
    fn a_cut_or_garbled_report_line_schedules_nothing() {
        assert_eq!(parse_report(b"12 1"), vec![]);
        assert_eq!(parse_report(b"x 10\n5 11\n"), vec![(5, [true, true])]);
    }
}
