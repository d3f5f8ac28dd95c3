//! The conversation with qmail-clean: requests (`foop/N`, `todo/N`) are
//! written as soon as they are known and answered in order, one byte each.
//!
//! Beyond qmail, the loop does not wait for the answers: qmail-clean's
//! unlinks (two inodes freed per message, each a block discard on some
//! disks) run beside the deliveries instead of holding up the one loop
//! that starts them. What must follow a removal waits for its answer: the
//! messages of a todo batch are scheduled only once their todo/N is gone,
//! since a message whose todo/N still exists is never finished.

use super::*;
use std::collections::VecDeque;

/// Requests written and not yet answered beyond which the loop waits for
/// answers before writing more; far below what the pipes hold, so neither
/// side ever blocks on a full pipe while the other waits for it.
const PENDING_MAX: usize = 1024;

/// What to do once a request is answered.
pub enum After {
    Nothing,
    /// todo/N is gone: schedule the message on the channels it has.
    Schedule(u64, [bool; 2]),
}

/// Requests in flight, oldest first.
#[derive(Default)]
pub struct Pending(VecDeque<(String, After)>);

impl Send {
    /// Hand qmail-clean some removals; false if it died.
    pub(super) fn clean_send(&mut self, reqs: Vec<(String, After)>) -> bool {
        if reqs.is_empty() {
            return true;
        }
        while self.pending.0.len() + reqs.len() > PENDING_MAX && !self.pending.0.is_empty() {
            if !self.clean_read() {
                return false;
            }
        }
        let mut msg = Vec::new();
        for (r, _) in &reqs {
            msg.extend_from_slice(r.as_bytes());
            msg.push(0);
        }
        if !write_all(CLEANOUT, &msg) {
            self.cleandied();
            return false;
        }
        self.pending.0.extend(reqs);
        true
    }

    /// Whether answers are still to come.
    pub(super) fn clean_busy(&self) -> bool {
        !self.pending.0.is_empty()
    }

    pub(super) fn clean_selprep(&self, fds: &mut Vec<libc::pollfd>) {
        if self.clean_busy() {
            fds.push(pollfd(CLEANIN, libc::POLLIN));
        }
    }

    pub(super) fn clean_do(&mut self, ready: &Ready) {
        if self.clean_busy() && ready.has(CLEANIN, libc::POLLIN) {
            self.clean_read();
        }
    }

    /// Read the answers that are there (waiting for at least one) and act
    /// on them; false if qmail-clean died.
    fn clean_read(&mut self) -> bool {
        let mut buf = [0u8; 256];
        let want = self.pending.0.len().min(buf.len());
        let n = loop {
            let n = unsafe { libc::read(CLEANIN, buf.as_mut_ptr().cast(), want) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break n;
        };
        if n <= 0 {
            self.pending.0.clear();
            self.cleandied();
            return false;
        }
        for &answer in &buf[..n as usize] {
            let Some((req, after)) = self.pending.0.pop_front() else {
                break;
            };
            if answer != b'+' {
                log(&format!("warning: qmail-clean unable to clean up {req}\n"));
            }
            if let After::Schedule(id, chans) = after {
                self.schedule(id, chans);
            }
        }
        true
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
