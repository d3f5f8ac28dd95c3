//! qmail-qstat and qmail-qread: what is in the queue. qmail-qstat counts
//! messages (files under mess/) and those not yet preprocessed (todo/);
//! qmail-qread lists each message with its queue time, number, size and
//! sender, then its recipients per channel, `done` for finished ones.

use crate::queue;
use common::Error;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// qmail-qstat
pub fn qstat(out: &mut impl Write) -> Result<(), Error> {
    let q = crate::home::home().join("queue");
    let mess = count_files(&q.join("mess"));
    let todo = count_files(&q.join("todo"));
    writeln!(out, "messages in queue: {mess}")
        .and_then(|_| writeln!(out, "messages in queue but not yet preprocessed: {todo}"))
        .map_err(|e| Error::sys("unable to write output", e))
}

/// Printable bytes kept, others shown as '_'.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (32..=126).contains(&c) {
                c as char
            } else {
                '_'
            }
        })
        .collect()
}

/// The summary line of one message.
pub fn stats_line(qtime: i64, id: u64, size: u64, sender: &[u8], bouncing: bool) -> String {
    let date = crate::date822::fmt(qtime);
    let date = date.trim_end_matches(" -0000");
    let mut s = format!("{date} GMT  #{id}  {size}  <");
    s.push_str(&printable(sender));
    s.push_str("> ");
    if bouncing {
        s.push_str(" bouncing");
    }
    s
}

fn warn(out: &mut impl Write, id: u64, e: &std::io::Error) {
    let _ = writeln!(
        out,
        "warning: trouble with #{id}: {}",
        common::error::Errno::from(e).text()
    );
}

/// One message's lines; Err for the warning.
fn read_one(out: &mut impl Write, id: u64) -> std::io::Result<()> {
    let size = std::fs::metadata(queue::mess(id))?.len();
    let bouncing = std::fs::metadata(queue::bounce(id)).is_ok();
    let info = std::fs::File::open(queue::info(id))?;
    let qtime = info.metadata()?.mtime();
    let mut data = Vec::new();
    info.take(2048).read_to_end(&mut data)?;
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let sender = data.get(1..end).unwrap_or_default();
    writeln!(out, "{}", stats_line(qtime, id, size, sender, bouncing))?;
    for c in 0..2 {
        let recs = match std::fs::read(queue::chan(c, id)) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                warn(out, id, &e);
                continue;
            }
        };
        for r in recs.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let chan = ["local", "remote"][c];
            match r[0] {
                b'D' => writeln!(out, "  done\t{chan}\t{}", printable(&r[1..]))?,
                b'T' => writeln!(out, "\t{chan}\t{}", printable(&r[1..]))?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// qmail-qread
pub fn qread(out: &mut impl Write) -> Result<(), Error> {
    let q = crate::home::home().join("queue");
    std::env::set_current_dir(&q).map_err(|e| {
        let _ = writeln!(
            out,
            "fatal: unable to chdir: {}",
            common::error::Errno::from(&e).text()
        );
        Error::silent(111)
    })?;
    for s in 0..queue::SPLIT {
        let dir = format!("info/{s}");
        let mut ids = match queue::list(&dir, false) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "fatal: unable to opendir {dir}: {}",
                    common::error::Errno::from(&e).text()
                );
                return Err(Error::silent(111));
            }
        };
        ids.sort_unstable();
        for id in ids {
            if let Err(e) = read_one(out, id) {
                warn(out, id, &e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stats_line_layout() {
        assert_eq!(
            super::stats_line(811_140_414, 457, 1234, b"a@b", true),
            "15 Sep 1995 04:46:54 GMT  #457  1234  <a@b>  bouncing"
        );
    }
}
