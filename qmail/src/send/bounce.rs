//! Bounces: a failed recipient's report is appended to bounce/N; when the
//! message is finished, the collected reports go back to the sender in
//! qmail's format (QSBMF), a bounce of a bounce goes to doublebounceto,
//! and a bounce of a double bounce (sender `#@[]`) is discarded.

use super::*;
use crate::queue;
use crate::queue::client::Qmail;
use crate::quote::{quote, quote2};
use std::io::Write;

/// The text added to bounce/N for one recipient: `<recip>:` then the
/// report, with blank lines turned into `/` so paragraphs stay one per
/// recipient, and a blank line after.
pub fn bounce_text(recip: &str, report: &str) -> Vec<u8> {
    let mut t = format!("<{}>:\n", recip.replace('\n', "_")).into_bytes();
    t.extend_from_slice(report.as_bytes());
    if !report.is_empty() && !report.ends_with('\n') {
        t.push(b'\n');
    }
    let mut pos = t.len() - 2;
    while pos > 0 {
        if t[pos] == b'\n' && t[pos - 1] == b'\n' {
            t[pos] = b'/';
        }
        pos -= 1;
    }
    t.push(b'\n');
    t
}

impl Send {
    pub(super) fn addbounce(&mut self, id: u64, recip: &str, report: &str) {
        let text = bounce_text(self.ctl.rw.strip_vdom_prepend(recip), report);
        let f = queue::bounce(id);
        loop {
            let r = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&f)
                .and_then(|mut file| {
                    file.write_all(&text)?;
                    file.sync_all()
                });
            if r.is_ok() {
                return;
            }
            log("alert: unable to append to bounce message; HELP! sleeping...\n");
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
    }

    /// Send bounce/N if there is one; false means try again later.
    pub(super) fn injectbounce(&mut self, id: u64) -> bool {
        let Some((mut sender, _)) = deliver::getinfo(id) else {
            return false;
        };
        // owner-@host-@[] (VERP) bounces to owner-@host.
        if let Some(base) = sender.strip_suffix("-@[]") {
            sender = base.to_string();
        }
        let bf = queue::bounce(id);
        match std::fs::metadata(&bf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) => {
                log(&format!("warning: unable to stat {bf}\n"));
                return false;
            }
        }
        if sender == "#@[]" {
            log(&format!("triple bounce: discarding {bf}\n"));
        } else if !self.send_bounce(id, &sender, &bf) {
            return false;
        }
        if std::fs::remove_file(&bf).is_err() {
            log(&format!("warning: unable to unlink {bf}\n"));
            return false;
        }
        true
    }

    fn send_bounce(&mut self, id: u64, sender: &str, bf: &str) -> bool {
        let Ok(mut qq) = Qmail::open() else {
            log("warning: unable to start qmail-queue, will try later\n");
            return false;
        };
        let qp = qq.qp();
        let (bsender, brecip) = if sender.is_empty() {
            ("#@[]", self.ctl.doublebounceto.clone())
        } else {
            ("", sender.to_string())
        };
        let head = bounce_head(&self.ctl, &brecip, !sender.is_empty());
        qq.put(head.as_bytes());
        match std::fs::read(bf) {
            Ok(b) => qq.put(&b),
            Err(_) => qq.fail(),
        }
        qq.put(if sender.is_empty() {
            b"--- Below this line is the original bounce.\n\n"
        } else {
            b"--- Below this line is a copy of the message.\n\n"
        });
        qq.put(format!("Return-Path: <{}>\n", quote2(sender)).as_bytes());
        match std::fs::read(queue::mess(id)) {
            Ok(b) => qq.put(&b),
            Err(_) => qq.fail(),
        }
        qq.from(bsender);
        qq.to(&brecip);
        if qq.close().is_err() {
            log("warning: trouble injecting bounce message, will try later\n");
            return false;
        }
        log(&format!("bounce msg {id} qp {qp}\n"));
        true
    }
}

/// The bounce's header and QSBMF introduction.
fn bounce_head(ctl: &Controls, recip: &str, single: bool) -> String {
    let mut h = format!(
        "Date: {}\nFrom: {}@{}\nTo: {}\nSubject: failure notice\n\n",
        crate::date822::fmt(now()),
        quote(&ctl.bouncefrom),
        ctl.bouncehost,
        quote2(recip)
    );
    h.push_str(&format!(
        "Hi. This is the qmail-send program at {}.\n",
        ctl.bouncehost
    ));
    h.push_str(if single {
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\
         This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
    } else {
        "I tried to deliver a bounce message to this address, but the bounce bounced!\n\n"
    });
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_paragraphs() {
        assert_eq!(
            bounce_text("a@b", "Sorry.\n\nMore.\n"),
            b"<a@b>:\nSorry.\n/More.\n\n".to_vec()
        );
        assert_eq!(bounce_text("a\nb@c", "x"), b"<a_b@c>:\nx\n\n".to_vec());
    }
}
