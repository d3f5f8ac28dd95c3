//! Work qmail-send hands to helper processes and does not wait for:
//! removals by qmail-clean (`foop/N`, `todo/N`), and the unlinks of chan
//! files and info/N and the syncs of info/ directories by qmail-send's own
//! child, qmail-done (`u<path>`, `s<path>`: unlink, sync the directory of).
//! Each request is answered with one byte, `+` or not, in order; what must
//! follow a request happens when its answer comes.
//!
//! Beyond qmail, whose qmail-send unlinked and waited for qmail-clean in
//! its one loop: unlinks cost a block discard and a wait on the directory
//! on today's disks, and qmail-send's loop is what starts every delivery,
//! so those waits now run beside the deliveries instead of holding them
//! up. The order of the steps for one message is the original's: a chan
//! file is gone before the message counts as done, info/N's removal is
//! synced before qmail-clean removes mess/N, and a todo batch's messages
//! are scheduled only once their todo/N is gone (a message whose todo/N
//! still exists is never finished).

use super::*;
use crate::queue;
use nix::unistd::{ForkResult, Pid};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Requests written and not yet answered beyond which the loop waits for
/// answers before writing more; far below what the pipes hold, so neither
/// side ever blocks on a full pipe while the other waits for it.
const PENDING_MAX: usize = 1024;

/// What to do once a request is answered.
pub enum After {
    Nothing,
    /// todo/N is gone: schedule the message on the channels it has.
    Schedule(u64, [bool; 2]),
    /// The chan file of channel c is gone: the job is finished.
    ChanGone(u64, usize),
    /// info/N is gone: the message may go once its directory is synced.
    InfoGone(u64),
    /// The info/ directories of these messages are synced.
    Synced(Vec<u64>),
    /// mess/N of a finished message is gone (or could not be removed).
    Finished,
}

/// A helper spoken to in requests answered one byte each, in order.
pub struct Peer {
    out: RawFd,
    inp: RawFd,
    pending: VecDeque<(String, After)>,
    /// qmail-done's pipes and pid (qmail-clean's fds are qmail-start's).
    child: Option<(OwnedFd, OwnedFd, Pid)>,
}

impl Peer {
    pub fn clean() -> Peer {
        Peer {
            out: CLEANOUT,
            inp: CLEANIN,
            pending: VecDeque::new(),
            child: None,
        }
    }

    /// Fork qmail-done; None if it cannot be started (the work is then
    /// done in the loop itself, as qmail did).
    pub fn done() -> Option<Peer> {
        let (req_r, req_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let (ans_r, ans_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        // SAFETY: qmail-send is single-threaded; the child serves its pipe
        // and leaves through _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => done_child(req_r, ans_w),
            Ok(ForkResult::Parent { child }) => Some(Peer {
                out: req_w.as_raw_fd(),
                inp: ans_r.as_raw_fd(),
                pending: VecDeque::new(),
                child: Some((req_w, ans_r, child)),
            }),
            Err(_) => None,
        }
    }
}

/// qmail-done: serve unlink and sync requests until qmail-send goes away.
/// It keeps nothing else of qmail-send's open (fd 0, the log, aside): the
/// spawners and qmail-clean must see qmail-send's end when it ends, and a
/// restarted qmail-send must find lock/sendmutex free.
fn done_child(req: OwnedFd, ans: OwnedFd) -> ! {
    use std::os::fd::FromRawFd;
    // SAFETY: plain system calls in a single-threaded child; fds 1 and 2
    // are taken over from qmail-send's spawner pipes, which the child has
    // no use for, and everything above them is closed.
    let (req, mut ans) = unsafe {
        libc::prctl(libc::PR_SET_NAME, c"qmail-done".as_ptr());
        if libc::dup2(req.as_raw_fd(), 1) == -1 || libc::dup2(ans.as_raw_fd(), 2) == -1 {
            libc::_exit(111);
        }
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) == -1 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
        std::mem::forget((req, ans));
        (File::from_raw_fd(1), File::from_raw_fd(2))
    };
    let mut input = std::io::BufReader::new(req);
    loop {
        let mut r = Vec::new();
        match input.read_until(0, &mut r) {
            Ok(n) if n > 1 && r.pop() == Some(0) => {}
            _ => unsafe { libc::_exit(0) },
        }
        let answer = fs_op(&r);
        if ans.write_all(&[answer]).is_err() {
            unsafe { libc::_exit(111) }
        }
    }
}

/// Carry out one qmail-done request.
fn fs_op(req: &[u8]) -> u8 {
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&req[1..]));
    let ok = match req[0] {
        b'u' => std::fs::remove_file(path).is_ok(),
        b's' => queue::sync_dir(path).is_ok(),
        _ => false,
    };
    if ok {
        b'+'
    } else {
        b'!'
    }
}

/// Which helper a request is for.
#[derive(Clone, Copy)]
pub enum Who {
    Clean,
    Done,
}

impl Send {
    fn peer(&mut self, who: Who) -> Option<&mut Peer> {
        match who {
            Who::Clean => Some(&mut self.clean),
            Who::Done => self.fsdone.as_mut(),
        }
    }

    /// Hand a helper some requests; false if qmail-clean died.
    pub(super) fn ask(&mut self, who: Who, reqs: Vec<(String, After)>) -> bool {
        if reqs.is_empty() {
            return true;
        }
        let Some(peer) = self.peer(who) else {
            for (r, after) in reqs {
                let answer = fs_op(r.as_bytes());
                self.answered(&r, answer, after);
            }
            return true;
        };
        let (out, len) = (peer.out, peer.pending.len());
        if len + reqs.len() > PENDING_MAX && !self.read_answers(who) {
            return self.ask_again(who, reqs);
        }
        let mut msg = Vec::new();
        for (r, _) in &reqs {
            msg.extend_from_slice(r.as_bytes());
            msg.push(0);
        }
        if !write_all(out, &msg) {
            self.peerdied(who);
            return self.ask_again(who, reqs);
        }
        if let Some(p) = self.peer(who) {
            p.pending.extend(reqs);
        }
        true
    }

    /// The helper died with `reqs` unsent: qmail-done's work is done in
    /// the loop from now on; without qmail-clean qmail-send is exiting.
    fn ask_again(&mut self, who: Who, reqs: Vec<(String, After)>) -> bool {
        match who {
            Who::Clean => false,
            Who::Done => self.ask(who, reqs),
        }
    }

    /// Whether answers are still to come.
    pub(super) fn helpers_busy(&self) -> bool {
        !self.clean.pending.is_empty()
            || self.fsdone.as_ref().is_some_and(|p| !p.pending.is_empty())
    }

    pub(super) fn helpers_selprep(&self, fds: &mut Vec<libc::pollfd>) {
        for p in [Some(&self.clean), self.fsdone.as_ref()]
            .into_iter()
            .flatten()
        {
            if !p.pending.is_empty() {
                fds.push(pollfd(p.inp, libc::POLLIN));
            }
        }
    }

    pub(super) fn helpers_do(&mut self, ready: &Ready) {
        for who in [Who::Clean, Who::Done] {
            let Some(p) = self.peer(who) else { continue };
            if !p.pending.is_empty() && ready.has(p.inp, libc::POLLIN) {
                self.read_answers(who);
            }
        }
    }

    /// Read the answers that are there (waiting for at least one) and act
    /// on them; false if the helper died.
    fn read_answers(&mut self, who: Who) -> bool {
        let Some(p) = self.peer(who) else {
            return true;
        };
        let mut buf = [0u8; 256];
        let want = p.pending.len().clamp(1, buf.len());
        let inp = p.inp;
        let n = loop {
            let n = unsafe { libc::read(inp, buf.as_mut_ptr().cast(), want) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break n;
        };
        if n <= 0 {
            self.peerdied(who);
            return false;
        }
        for &answer in &buf[..n as usize] {
            let Some((req, after)) = self.peer(who).and_then(|p| p.pending.pop_front()) else {
                break;
            };
            self.answered(&req, answer, after);
        }
        true
    }

    /// qmail-clean gone is fatal, as in qmail; qmail-done gone leaves its
    /// requests unanswered as failures and its work to the loop.
    fn peerdied(&mut self, who: Who) {
        match who {
            Who::Clean => {
                self.clean.pending.clear();
                self.cleandied();
            }
            Who::Done => {
                let Some(mut p) = self.fsdone.take() else {
                    return;
                };
                log("warning: lost qmail-done, carrying on without it\n");
                if let Some((_, _, pid)) = p.child.take() {
                    let _ = nix::sys::wait::waitpid(pid, None);
                }
                for (req, after) in std::mem::take(&mut p.pending) {
                    self.answered(&req, b'!', after);
                }
            }
        }
    }

    fn answered(&mut self, req: &str, answer: u8, after: After) {
        let ok = answer == b'+';
        match after {
            After::Nothing => {
                if !ok && !req.starts_with('s') {
                    log(&format!("warning: qmail-clean unable to clean up {req}\n"));
                }
            }
            After::Schedule(id, chans) => {
                if !ok {
                    log(&format!("warning: qmail-clean unable to clean up {req}\n"));
                }
                self.todo_released(id);
                self.schedule(id, chans);
            }
            After::ChanGone(id, c) => self.chan_gone(id, c, ok),
            After::InfoGone(id) => self.info_gone(id, ok),
            After::Synced(ids) => {
                if !ok {
                    // qmail-done is gone or failed: sync here, as before it.
                    for id in &ids {
                        let _ = queue::sync_dir(std::path::Path::new(&queue::info(*id)));
                    }
                }
                let reqs = ids
                    .iter()
                    .map(|id| (format!("foop/{id}"), After::Finished))
                    .collect();
                self.ask(Who::Clean, reqs);
            }
            After::Finished => {
                if !ok {
                    log(&format!("warning: qmail-clean unable to clean up {req}\n"));
                }
                self.finishing -= 1;
            }
        }
    }

    /// Whether qmail-done still has to remove the chan file of channel c.
    pub(super) fn chan_unlink_pending(&self, id: u64, c: usize) -> bool {
        self.fsdone.as_ref().is_some_and(|p| {
            p.pending
                .iter()
                .any(|(_, a)| matches!(a, After::ChanGone(i, ch) if *i == id && *ch == c))
        })
    }

    /// A message whose todo/N is gone: deliver on its channels, or finish
    /// it at once when it has no recipients.
    fn schedule(&mut self, id: u64, chans: [bool; 2]) {
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
}
