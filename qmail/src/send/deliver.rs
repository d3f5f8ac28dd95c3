//! Deliveries: the jobs (one per message and channel being worked on), the
//! passes that walk a local/ or remote/ file recipient by recipient, the
//! requests written to the spawners and the reports read back, marking
//! recipients done, and the priority queues that decide when a message is
//! tried again (the chan file's mtime holds its next retry time).
//!
//! Beyond qmail, a remote delivery carries all of a message's recipients at
//! one domain (up to GROUP_MAX), so that qmail-remote hands them to the
//! server over one connection; each recipient still has its own delivery
//! number, log lines, report and done mark.

use super::clean::{After, Who};
use super::*;
use crate::queue;
use std::os::unix::fs::MetadataExt;

struct Job {
    refs: usize,
    id: u64,
    channel: usize,
    retry: i64,
    sender: String,
    numtodo: usize,
    flaghiteof: bool,
    flagdying: bool,
}

/// The most recipients one remote delivery carries (Postfix's default
/// smtp_destination_recipient_limit; every server takes at least 100).
const GROUP_MAX: usize = 50;

/// Requests waiting to be written to a spawner, in bytes, beyond which no
/// delivery starts; several may wait, so one loop can start many.
const COMM_MAX: usize = 4096;
/// The most records one loop takes from a channel's pass.
const PASS_STEPS: usize = 200;
/// The most finished messages between the removal of info/N and qmail-clean's
/// removal of mess/N at any time: what a crash can leave in mess/ for
/// qmail-send's 36-hour cleanup.
pub(super) const FINISHING_MAX: usize = 64;

/// One recipient of a delivery: its number in the log, where its record
/// is in the chan file, and the address.
struct Recip {
    delid: u64,
    mpos: u64,
    addr: String,
}

/// One delivery: a spawner slot working for job `j` on `recips`, of which
/// the first `reported` have had their report.
struct Del {
    j: usize,
    recips: Vec<Recip>,
    reported: usize,
}

/// Reading one chan file: its records, where we are, and the records
/// further on that an earlier delivery already carries.
struct Pass {
    id: u64,
    j: usize,
    data: Vec<u8>,
    pos: usize,
    taken: std::collections::HashSet<usize>,
}

impl Pass {
    /// Take the not yet started recipients after the current position that
    /// can share a delivery with `first`: same domain, same envelope sender.
    fn companions(&mut self, first: &str, sender: &str) -> Vec<(u64, String)> {
        let domain = |r: &str| r.rfind('@').map(|at| r[at + 1..].to_ascii_lowercase());
        let (want, envelope) = (domain(first), sender_for(sender, first));
        let mut found = Vec::new();
        let mut pos = self.pos;
        while found.len() + 1 < GROUP_MAX {
            let Some(end) = self.data[pos..].iter().position(|&b| b == 0) else {
                break;
            };
            let rec = &self.data[pos..pos + end];
            if rec.first() == Some(&b'T') && !self.taken.contains(&pos) {
                let r = String::from_utf8_lossy(&rec[1..]);
                if want.is_some() && domain(&r) == want && sender_for(sender, &r) == envelope {
                    self.taken.insert(pos);
                    found.push((pos as u64, r.into_owned()));
                }
            }
            pos += end + 1;
        }
        found
    }
}

pub struct Deliveries {
    concurrency: [usize; 2],
    used: [usize; 2],
    dels: [Vec<Option<Del>>; 2],
    jobs: Vec<Option<Job>>,
    pass: [Option<Pass>; 2],
    comm: [Vec<u8>; 2],
    comm_pos: [usize; 2],
    dline: [Vec<u8>; 2],
    masterdelid: u64,
}

impl Deliveries {
    pub fn new(concurrency: [usize; 2]) -> Deliveries {
        fn slots<T>(n: usize) -> Vec<Option<T>> {
            (0..n).map(|_| None).collect()
        }
        Deliveries {
            concurrency,
            used: [0, 0],
            dels: [slots(concurrency[0]), slots(concurrency[1])],
            jobs: slots(concurrency[0] + concurrency[1]),
            pass: [None, None],
            comm: [Vec::new(), Vec::new()],
            comm_pos: [0, 0],
            dline: [Vec::new(), Vec::new()],
            masterdelid: 1,
        }
    }

    fn job_avail(&self) -> bool {
        self.jobs.iter().any(Option::is_none)
    }
}

/// The envelope sender in info/S/N and the file's mtime (the message's birth).
pub fn getinfo(id: u64) -> Option<(String, i64)> {
    let f = std::fs::File::open(queue::info(id)).ok()?;
    let birth = f.metadata().ok()?.mtime();
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut f.take(4096), &mut data).ok()?;
    let end = data.iter().position(|&b| b == 0)?;
    if data.first() != Some(&b'F') {
        return None;
    }
    Some((String::from_utf8_lossy(&data[1..end]).into_owned(), birth))
}

fn missing(path: &str) -> Result<bool, ()> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(_) => Err(()),
    }
}

impl Send {
    pub(super) fn del_status(&self) {
        let mut s = String::from("status:");
        for c in 0..2 {
            s.push_str(&format!(
                "{}{}/{}",
                CHANSTATUS[c], self.d.used[c], self.d.concurrency[c]
            ));
        }
        if self.exitasap {
            s.push_str(" exitasap");
        }
        s.push('\n');
        log(&s);
    }

    pub(super) fn del_canexit(&self) -> bool {
        (0..2).all(|c| !self.spawn_alive[c] || self.d.used[c] == 0)
    }

    fn del_avail(&self, c: usize) -> bool {
        self.spawn_alive[c]
            && self.d.comm[c].len() < COMM_MAX
            && self.d.used[c] < self.d.concurrency[c]
    }

    pub(super) fn comm_selprep(&self, fds: &mut Vec<libc::pollfd>) {
        for c in 0..2 {
            if self.spawn_alive[c] && !self.d.comm[c].is_empty() {
                fds.push(pollfd(CHANFDOUT[c], libc::POLLOUT));
            }
        }
    }

    pub(super) fn comm_do(&mut self, ready: &Ready) {
        for c in 0..2 {
            if !self.spawn_alive[c]
                || self.d.comm[c].is_empty()
                || !ready.has(CHANFDOUT[c], libc::POLLOUT)
            {
                continue;
            }
            let rest = &self.d.comm[c][self.d.comm_pos[c]..];
            let w = unsafe { libc::write(CHANFDOUT[c], rest.as_ptr().cast(), rest.len()) };
            if w <= 0 {
                if w == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE) {
                    self.spawndied(c);
                }
                continue;
            }
            self.d.comm_pos[c] += w as usize;
            if self.d.comm_pos[c] == self.d.comm[c].len() {
                self.d.comm[c].clear();
                self.d.comm_pos[c] = 0;
            }
        }
    }

    /// Hand recipients `recips` (chan file position, address) of job `j`,
    /// all at one domain, to the channel's spawner as one delivery.
    fn del_start(&mut self, j: usize, recips: Vec<(u64, String)>) {
        let job = self.d.jobs[j].as_mut().expect("open job");
        let c = job.channel;
        let Some(i) = self.d.dels[c].iter().position(Option::is_none) else {
            return;
        };
        job.refs += 1;
        let (id, sender) = (job.id, job.sender.clone());
        let mut buf = vec![i as u8];
        buf.extend_from_slice(queue::name("", id, true).trim_start_matches('/').as_bytes());
        buf.push(0);
        buf.extend_from_slice(sender_for(&sender, &recips[0].1).as_bytes());
        buf.push(0);
        if recips.len() > 1 {
            buf.push(0);
        }
        let mut del = Del {
            j,
            recips: Vec::with_capacity(recips.len()),
            reported: 0,
        };
        for (mpos, addr) in recips {
            let delid = self.d.masterdelid;
            self.d.masterdelid += 1;
            log(&format!(
                "starting delivery {delid}: msg {id}{}{}\n",
                TOCHAN[c],
                safe(addr.as_bytes())
            ));
            buf.extend_from_slice(addr.as_bytes());
            buf.push(0);
            del.recips.push(Recip { delid, mpos, addr });
        }
        if del.recips.len() > 1 {
            buf.push(0);
        }
        self.d.dels[c][i] = Some(del);
        self.d.used[c] += 1;
        self.d.comm[c].extend_from_slice(&buf);
        self.del_status();
    }

    /// Mark the recipient at `pos` of the chan file done ('T' -> 'D').
    fn markdone(&self, c: usize, id: u64, pos: u64) {
        use std::io::{Seek, SeekFrom, Write};
        let f = queue::chan(c, id);
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .and_then(|mut file| {
                file.seek(SeekFrom::Start(pos))?;
                file.write_all(b"D")
            });
        if ok.is_err() {
            log(&format!(
                "warning: trouble marking {f}; message will be delivered twice!\n"
            ));
        }
    }

    pub(super) fn del_selprep(&self, fds: &mut Vec<libc::pollfd>) {
        for c in 0..2 {
            if self.spawn_alive[c] {
                fds.push(pollfd(CHANFDIN[c], libc::POLLIN));
            }
        }
    }

    pub(super) fn del_do(&mut self, ready: &Ready) {
        for c in 0..2 {
            if self.spawn_alive[c] && ready.has(CHANFDIN[c], libc::POLLIN) {
                self.del_dochan(c);
            }
        }
    }

    fn del_dochan(&mut self, c: usize) {
        let mut buf = [0u8; 2048];
        let r = unsafe { libc::read(CHANFDIN[c], buf.as_mut_ptr().cast(), buf.len()) };
        if r == -1 {
            return;
        }
        if r == 0 {
            self.spawndied(c);
            return;
        }
        for &ch in &buf[..r as usize] {
            if self.d.dline[c].len() < REPORTMAX {
                self.d.dline[c].push(ch);
            }
            if ch == 0 && self.d.dline[c].len() > 1 {
                let line = std::mem::take(&mut self.d.dline[c]);
                self.del_report(c, line);
            }
        }
    }

    /// One report: delivery number, K/Z/D, text, \0. It is for the
    /// delivery's next recipient; the last one frees the slot.
    fn del_report(&mut self, c: usize, mut line: Vec<u8>) {
        let delnum = usize::from(line[0]);
        let Some(d) = self.d.dels[c].get_mut(delnum).and_then(Option::as_mut) else {
            log("warning: internal error: delivery report out of range\n");
            return;
        };
        let j = d.j;
        let del = &d.recips[d.reported];
        let (delid, mpos, recip) = (del.delid, del.mpos, del.addr.clone());
        d.reported += 1;
        let finished = d.reported == d.recips.len();
        line.pop();
        if line.len() < 2 {
            // No result letter: a spawner bug; treat like an unknown letter.
            line.push(b'?');
        }
        let dying = self.d.jobs[j].as_ref().is_some_and(|j| j.flagdying);
        if line[1] == b'Z' && dying {
            line[1] = b'D';
            line.extend_from_slice(
                b"I'm not going to try again; this message has been in the queue too long.\n",
            );
        }
        let text = safe(&line[2..]);
        let id = self.d.jobs[j].as_ref().map_or(0, |j| j.id);
        match line[1] {
            b'K' => {
                log(&format!("delivery {delid}: success: {text}\n"));
                self.markdone(c, id, mpos);
                self.job_mut(j).numtodo -= 1;
            }
            b'Z' => log(&format!("delivery {delid}: deferral: {text}\n")),
            b'D' => {
                log(&format!("delivery {delid}: failure: {text}\n"));
                let report = String::from_utf8_lossy(&line[2..]).into_owned();
                self.addbounce(id, &recip, &report);
                self.markdone(c, id, mpos);
                self.job_mut(j).numtodo -= 1;
            }
            _ => log(&format!("delivery {}: report mangled, will defer\n", delid)),
        }
        if finished {
            self.d.dels[c][delnum] = None;
            self.job_close(j);
            self.d.used[c] -= 1;
            self.del_status();
        }
    }

    fn job_mut(&mut self, j: usize) -> &mut Job {
        self.d.jobs[j].as_mut().expect("open job")
    }

    fn job_open(&mut self, id: u64, channel: usize) -> Option<usize> {
        let j = self.d.jobs.iter().position(Option::is_none)?;
        self.d.jobs[j] = Some(Job {
            refs: 1,
            id,
            channel,
            retry: 0,
            sender: String::new(),
            numtodo: 0,
            flaghiteof: false,
            flagdying: false,
        });
        Some(j)
    }

    /// Drop a reference; the last one either finishes the chan file (all
    /// recipients done) or schedules the retry.
    fn job_close(&mut self, j: usize) {
        let job = self.job_mut(j);
        job.refs -= 1;
        if job.refs > 0 {
            return;
        }
        let job = self.d.jobs[j].take().expect("open job");
        let c = job.channel;
        let dt = job.retry;
        if job.flaghiteof && job.numtodo == 0 {
            let f = format!("u{}", queue::chan(c, job.id));
            self.ask(Who::Done, vec![(f, After::ChanGone(job.id, c))]);
            return;
        }
        self.pqchan[c].push(Reverse((dt, job.id)));
    }

    pub(super) fn pass_selprep(&self, wakeup: &mut i64) {
        if self.exitasap {
            return;
        }
        for c in 0..2 {
            if self.d.pass[c].is_some() && self.del_avail(c) {
                *wakeup = 0;
                return;
            }
        }
        if self.d.job_avail() {
            for c in 0..2 {
                if self.d.pass[c].is_none() {
                    if let Some((dt, _)) = pq_min(&self.pqchan[c]) {
                        *wakeup = (*wakeup).min(dt);
                    }
                }
            }
        }
        // A finished message waits while 64 others are being finished;
        // qmail-done's answer ends the wait, so no timer is needed then.
        let done = (self.finishing < FINISHING_MAX).then_some(&self.pqdone);
        for q in [Some(&self.pqfail), done].into_iter().flatten() {
            if let Some((dt, _)) = pq_min(q) {
                *wakeup = (*wakeup).min(dt);
            }
        }
    }

    /// Take the next record of channel `c`'s pass, opening the next due
    /// message when none is open; false when nothing more can be done now.
    fn pass_dochan(&mut self, c: usize) -> bool {
        if self.exitasap {
            return false;
        }
        if self.d.pass[c].is_none() && !self.pass_open(c) {
            return false;
        }
        if !self.del_avail(c) {
            return false;
        }
        let p = self.d.pass[c].as_mut().expect("open pass");
        let rest = &p.data[p.pos..];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            let j = p.j;
            self.d.pass[c] = None;
            self.job_mut(j).flaghiteof = true;
            self.job_close(j);
            return true;
        };
        let rec = rest[..end].to_vec();
        let (j, mpos) = (p.j, p.pos);
        p.pos += end + 1;
        match rec.first() {
            Some(b'T') if p.taken.contains(&mpos) => {}
            Some(b'T') => {
                let recip = String::from_utf8_lossy(&rec[1..]).into_owned();
                let mut recips = vec![(mpos as u64, recip)];
                if c == 1 {
                    let sender = self.d.jobs[j].as_ref().expect("open job").sender.clone();
                    recips.extend(p.companions(&recips[0].1, &sender));
                }
                self.job_mut(j).numtodo += recips.len();
                self.del_start(j, recips);
            }
            Some(b'D') => {}
            _ => {
                log(&format!(
                    "warning: unknown record type in {}!\n",
                    queue::chan(c, self.d.pass[c].as_ref().map_or(0, |p| p.id))
                ));
                self.d.pass[c] = None;
                self.job_close(j);
            }
        }
        true
    }

    /// Start a pass over the next due message of channel `c`.
    fn pass_open(&mut self, c: usize) -> bool {
        if !self.d.job_avail() {
            return false;
        }
        let Some((dt, id)) = pq_min(&self.pqchan[c]) else {
            return false;
        };
        if dt > self.recent {
            return false;
        }
        self.pqchan[c].pop();
        let f = queue::chan(c, id);
        let (data, info) = match (std::fs::read(&f), getinfo(id)) {
            (Ok(d), Some(i)) => (d, i),
            _ => {
                log(&format!(
                    "warning: trouble opening {f}; will try again later\n"
                ));
                self.pqchan[c].push(Reverse((self.recent + SLEEP_SYSFAIL, id)));
                return false;
            }
        };
        let Some(j) = self.job_open(id, c) else {
            return false;
        };
        let (sender, birth) = info;
        let (recent, lifetime) = (self.recent, self.ctl.lifetime);
        let job = self.job_mut(j);
        job.retry = nextretry(birth, recent, c);
        job.flagdying = recent > birth + lifetime;
        job.sender = sender;
        self.d.pass[c] = Some(Pass {
            id,
            j,
            data,
            pos: 0,
            taken: Default::default(),
        });
        true
    }

    /// Start what deliveries the channels have room for, take one failed
    /// message back, and finish the messages that are done.
    pub(super) fn pass_do(&mut self) {
        for c in 0..2 {
            for _ in 0..PASS_STEPS {
                if !self.pass_dochan(c) {
                    break;
                }
            }
        }
        if let Some((dt, id)) = pq_min(&self.pqfail) {
            if dt <= self.recent {
                self.pqfail.pop();
                self.pqadd(id);
            }
        }
        while self.finishing < FINISHING_MAX {
            match pq_min(&self.pqdone) {
                Some((dt, id)) if dt <= self.recent => {
                    self.pqdone.pop();
                    self.messdone(id);
                }
                _ => break,
            }
        }
        self.done_flush();
    }

    /// Every channel is finished: send the bounce, remove info, clean up.
    fn messdone(&mut self, id: u64) {
        let fail = |s: &mut Send| s.pqdone.push(Reverse((now() + SLEEP_SYSFAIL, id)));
        for f in [queue::chan(0, id), queue::chan(1, id), queue::todo(id)] {
            match missing(&f) {
                Ok(true) => {}
                Ok(false) => return,
                Err(()) => {
                    log(&format!(
                        "warning: unable to stat {f}; will try again later\n"
                    ));
                    return fail(self);
                }
            }
        }
        match missing(&queue::info(id)) {
            Ok(true) => return,
            Ok(false) => {}
            Err(()) => {
                log(&format!(
                    "warning: unable to stat {}; will try again later\n",
                    queue::info(id)
                ));
                return fail(self);
            }
        }
        if !self.injectbounce(id) {
            return fail(self);
        }
        log(&format!("end msg {id}\n"));
        let info = format!("u{}", queue::info(id));
        self.finishing += 1;
        self.ask(Who::Done, vec![(info, After::InfoGone(id))]);
    }

    /// The chan file of channel c is gone (ok) or could not be removed:
    /// the job is finished, and the message too if its other channel is.
    pub(super) fn chan_gone(&mut self, id: u64, c: usize, ok: bool) {
        if !ok {
            log(&format!(
                "warning: unable to unlink {}; will try again later\n",
                queue::chan(c, id)
            ));
            self.pqchan[c].push(Reverse((now() + SLEEP_SYSFAIL, id)));
            return;
        }
        // Its own answer will finish the message.
        if self.chan_unlink_pending(id, 1 - c) {
            return;
        }
        let other = queue::chan(1 - c, id);
        match missing(&other) {
            Ok(false) => return,
            Ok(true) => {}
            Err(()) => log(&format!("warning: unable to stat {other}\n")),
        }
        self.pqdone.push(Reverse((now(), id)));
    }

    /// info/N is gone (ok) or could not be removed.
    pub(super) fn info_gone(&mut self, id: u64, ok: bool) {
        if ok {
            self.done.push(id);
            return;
        }
        self.finishing -= 1;
        log(&format!(
            "warning: unable to unlink {}; will try again later\n",
            queue::info(id)
        ));
        self.pqdone.push(Reverse((now() + SLEEP_SYSFAIL, id)));
    }

    /// Let qmail-clean remove the messages messdone finished, after the
    /// unlinks of their info/N are synced (each directory once). Synced
    /// first: on a filesystem that keeps no order between directories,
    /// info/N could otherwise come back after a crash without its message,
    /// and with an unlinked bounce/N back too the bounce could never be
    /// built again.
    fn done_flush(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.done);
        let infos: Vec<String> = ids.iter().map(|&id| queue::info(id)).collect();
        let mut seen: Vec<&str> = Vec::new();
        let mut reqs: Vec<(String, After)> = Vec::new();
        for f in &infos {
            let dir = f.rsplit_once('/').map_or(".", |(d, _)| d);
            if !seen.contains(&dir) {
                seen.push(dir);
                reqs.push((format!("s{f}"), After::Nothing));
            }
        }
        if let Some(last) = reqs.last_mut() {
            last.1 = After::Synced(ids);
        }
        self.ask(Who::Done, reqs);
    }

    /// Schedule a message found in info/ at start or after a stat failure.
    pub(super) fn pqadd(&mut self, id: u64) {
        let fail = |s: &mut Send, f: &str| {
            log(&format!(
                "warning: unable to stat {f}; will try again later\n"
            ));
            s.pqfail.push(Reverse((now() + SLEEP_SYSFAIL, id)));
        };
        let info = queue::info(id);
        match missing(&info) {
            Ok(true) => return,
            Ok(false) => {}
            Err(()) => return fail(self, &info),
        }
        let todo = queue::todo(id);
        match missing(&todo) {
            Ok(false) => return,
            Ok(true) => {}
            Err(()) => return fail(self, &todo),
        }
        let mut found = [None, None];
        for (c, slot) in found.iter_mut().enumerate() {
            let f = queue::chan(c, id);
            match std::fs::metadata(&f) {
                Ok(md) => *slot = Some(md.mtime()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return fail(self, &f),
            }
        }
        for (c, slot) in found.iter().enumerate() {
            if let Some(dt) = slot {
                self.pqchan[c].push(Reverse((*dt, id)));
            }
        }
        if found.iter().all(Option::is_none) {
            self.pqdone.push(Reverse((now(), id)));
        }
    }

    pub(super) fn pqstart(&mut self) {
        for id in queue::list("info", true).unwrap_or_default() {
            self.pqadd(id);
        }
    }

    /// On exit, store each pending retry time in its chan file's mtime.
    pub(super) fn pqfinish(&mut self) {
        for c in 0..2 {
            while let Some(Reverse((dt, id))) = self.pqchan[c].pop() {
                let f = queue::chan(c, id);
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(dt.max(0) as u64);
                let times = std::fs::FileTimes::new().set_accessed(t).set_modified(t);
                let ok = std::fs::File::options()
                    .write(true)
                    .open(&f)
                    .and_then(|file| file.set_times(times));
                if ok.is_err() {
                    log(&format!(
                        "warning: unable to utime {f}; message will be retried too soon\n"
                    ));
                }
            }
        }
    }

    /// SIGALRM: everything waiting is due now.
    pub(super) fn pqrun(&mut self) {
        let recent = self.recent;
        for c in 0..2 {
            let q = std::mem::take(&mut self.pqchan[c]);
            self.pqchan[c] = q
                .into_iter()
                .map(|Reverse((_, id))| Reverse((recent, id)))
                .collect();
        }
    }
}
