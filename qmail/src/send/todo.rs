//! Processing todo/N: write info/S/N (the sender), local/S/N and
//! remote/S/N (rewritten recipients), fsync those written and their
//! directories, then ask qmail-clean to remove todo/N and intd/N. A crash
//! at any point leaves todo/N in place, and the work is simply redone.
//!
//! Beyond qmail, this runs in a thread of its own (as the ext_todo patch's
//! qmail-todo does in a process), so that the latency of its syncs never
//! holds up the delivery loop, and it takes entries in batches, so that one
//! round of syncs covers many messages. The loop learns of each processed
//! batch through a channel and schedules its messages; "new msg" is logged
//! before any delivery of the message can start.

use super::*;
use crate::queue;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

/// The most todo entries processed with one round of syncs.
const TODO_BATCH: usize = 32;

/// What the todo thread tells the delivery loop.
enum Report {
    /// These messages are in info/ and their chan files; todo/N is gone.
    Done(Vec<(u64, [bool; 2])>),
    /// qmail-clean is gone.
    CleanDied,
}

/// The delivery loop's end of the todo thread.
pub struct Todo {
    reports: mpsc::Receiver<Report>,
    /// Readable when a report is waiting.
    wake: UnixStream,
    /// Dropped to tell the thread to stop after its current batch.
    stop: Option<UnixStream>,
    /// The thread's side until it starts, then the thread.
    worker: Option<Worker>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The thread's copy of the rewriting rules, replaced on SIGHUP.
    rw: Arc<Mutex<Rewriter>>,
}

/// The thread's side.
struct Worker {
    reports: mpsc::Sender<Report>,
    wake: UnixStream,
    stop: UnixStream,
    rw: Arc<Mutex<Rewriter>>,
    clean: Cleaner,
}

impl Todo {
    /// The loop's end, ready for `go`.
    pub fn new(rw: Rewriter, clean: Cleaner) -> Result<Todo, Error> {
        let pair = || {
            let (r, w) = UnixStream::pair().map_err(|e| Error::sys("unable to create pipe", e))?;
            r.set_nonblocking(true)
                .and_then(|_| w.set_nonblocking(true))
                .map_err(|e| Error::sys("unable to set nonblocking", e))?;
            Ok::<_, Error>((r, w))
        };
        let (wake_r, wake_w) = pair()?;
        let (stop_r, stop_w) = pair()?;
        let (tx, rx) = mpsc::channel();
        let rw = Arc::new(Mutex::new(rw));
        let w = Worker {
            reports: tx,
            wake: wake_w,
            stop: stop_r,
            rw: rw.clone(),
            clean,
        };
        Ok(Todo {
            reports: rx,
            wake: wake_r,
            stop: Some(stop_w),
            worker: Some(w),
            thread: None,
            rw,
        })
    }

    /// Start the thread; only once the loop has scheduled what info/
    /// already held, so that no message is scheduled twice.
    pub fn go(&mut self) -> Result<(), Error> {
        let Some(w) = self.worker.take() else {
            return Ok(());
        };
        let t = std::thread::Builder::new()
            .name("todo".into())
            .spawn(move || w.run())
            .map_err(|e| Error::sys("unable to start todo thread", e))?;
        self.thread = Some(t);
        Ok(())
    }

    /// The thread's rewriting rules. The thread holds the lock whenever it
    /// works in the queue, so holding it also keeps the thread out while
    /// the loop is away from the queue directory.
    pub fn rewriter(&self) -> Arc<Mutex<Rewriter>> {
        self.rw.clone()
    }

    /// Stop the thread and wait for it to finish its batch.
    pub fn finish(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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
    pub(super) fn todo_selprep(&self, fds: &mut Vec<libc::pollfd>) {
        fds.push(pollfd(self.todo.wake.as_raw_fd(), libc::POLLIN));
    }

    /// Schedule the messages the todo thread has processed.
    pub(super) fn todo_do(&mut self, ready: &Ready) {
        if self.exitasap {
            self.todo.stop = None;
        }
        if !ready.has(self.todo.wake.as_raw_fd(), libc::POLLIN) {
            return;
        }
        drain(&self.todo.wake);
        let t = now();
        while let Ok(r) = self.todo.reports.try_recv() {
            match r {
                Report::CleanDied => self.cleandied(),
                Report::Done(ids) => {
                    for (id, chans) in ids {
                        for (c, has) in chans.iter().enumerate() {
                            if *has {
                                self.pqchan[c].push(Reverse((t, id)));
                            }
                        }
                        if !chans.iter().any(|&b| b) {
                            self.pqdone.push(Reverse((t, id)));
                        }
                    }
                }
            }
        }
    }
}

impl Worker {
    fn run(self) {
        let mut trigger = open_trigger();
        let mut next_run = now();
        loop {
            let mut fds = vec![pollfd(self.stop.as_raw_fd(), libc::POLLIN)];
            if let Some(t) = &trigger {
                fds.push(pollfd(t.as_raw_fd(), libc::POLLIN));
            }
            let timeout = (next_run - now()).clamp(0, SLEEP_FOREVER) * 1000 + 1;
            let r =
                unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout as i32) };
            if self.stopped() {
                return;
            }
            let ready = Ready(fds);
            let pulled = trigger
                .as_ref()
                .is_some_and(|t| r > 0 && ready.has(t.as_raw_fd(), libc::POLLIN));
            if !pulled && now() < next_run {
                continue;
            }
            // Close before reopening, so the fifo's buffer and end-of-file
            // state go away with the last opener (qmail's trigger_set).
            drop(trigger.take());
            trigger = open_trigger();
            let listed = {
                let _in_queue = self.rw.lock().unwrap_or_else(|e| e.into_inner());
                queue::list("todo", false)
            };
            let mut ids = match listed {
                Ok(ids) => ids,
                Err(_) => {
                    log("alert: unable to opendir todo, sleeping...\n");
                    next_run = now() + 10;
                    continue;
                }
            };
            ids.sort_unstable();
            next_run = now() + SLEEP_TODO;
            for batch in ids.chunks(TODO_BATCH) {
                if self.stopped() || !self.batch(batch) {
                    return;
                }
            }
        }
    }

    /// True once the delivery loop has asked the thread to stop.
    fn stopped(&self) -> bool {
        let mut b = [0u8; 16];
        !matches!((&self.stop).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Process several todo entries with one round of syncs: their files
    /// are all written first, then synced together, then todo/N goes for
    /// each whose files are on disk. False when qmail-clean is gone.
    fn batch(&self, ids: &[u64]) -> bool {
        let rw = self.rw.lock().unwrap_or_else(|e| e.into_inner());
        let written: Vec<Written> = ids.iter().filter_map(|&id| todo_write(&rw, id)).collect();
        let written = durable(written);
        drop(rw);
        let reqs: Vec<String> = written.iter().map(|w| queue::todo(w.id)).collect();
        let report = match self.clean.clean_all(&reqs) {
            Ok(()) => Report::Done(written.iter().map(|w| (w.id, w.chans)).collect()),
            Err(()) => Report::CleanDied,
        };
        let alive = matches!(report, Report::Done(_));
        if self.reports.send(report).is_err() {
            return false;
        }
        let _ = (&self.wake).write(b"t");
        alive
    }
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
    let paths = |w: &Written| -> Vec<String> {
        let files = w.files.iter().map(|(f, _)| f.clone());
        files.chain(w.removed.iter().cloned()).collect()
    };
    let mut synced: Vec<&Path> = Vec::new();
    let all: Vec<Vec<String>> = written.iter().map(paths).collect();
    for (i, fs) in all.iter().enumerate() {
        for f in fs {
            let dir = Path::new(f).parent().unwrap_or(Path::new("."));
            if synced.contains(&dir) {
                continue;
            }
            synced.push(dir);
            if queue::sync_dir(Path::new(f)).is_err() {
                log(&format!("warning: trouble fsyncing {f}\n"));
                // Every entry with a file there waits for the next scan.
                for (j, other) in all.iter().enumerate().skip(i) {
                    if other.iter().any(|o| Path::new(o).parent() == Some(dir)) {
                        ok[j] = false;
                    }
                }
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
