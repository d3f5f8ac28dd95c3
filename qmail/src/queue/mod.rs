//! The queue's layout under QMAILHOME/queue: which directories exist, which
//! are split into conf-split subdirectories, how a message's files are named,
//! and the durability helpers every writer of the queue shares.
//!
//! A message is identified by the inode number of the file qmail-queue first
//! creates in pid/; its files are mess/S/N, intd/N, todo/N, info/S/N,
//! local/S/N, remote/S/N and bounce/N, with S = N % SPLIT.
//!
//! qmail assumed directory updates are synchronous (BSD FFS); ext4 and XFS
//! do not promise that, so every link, rename or unlink the queue's safety
//! depends on is followed by an fsync of the directory ([`sync_dir`]).

pub mod client;

use std::fs::File;
use std::io;
use std::path::Path;

/// conf-split: how many subdirectories the split directories have.
pub const SPLIT: u64 = 23;

/// The directories split into SPLIT subdirectories.
pub const SPLIT_DIRS: [&str; 4] = ["mess", "info", "local", "remote"];

/// The queue's flat directories.
pub const FLAT_DIRS: [&str; 5] = ["pid", "intd", "todo", "bounce", "lock"];

/// `dir/N` or `dir/S/N` relative to the queue directory (fmtqfn).
pub fn name(dir: &str, id: u64, split: bool) -> String {
    if split {
        format!("{dir}/{}/{id}", id % SPLIT)
    } else {
        format!("{dir}/{id}")
    }
}

pub fn mess(id: u64) -> String {
    name("mess", id, true)
}
pub fn info(id: u64) -> String {
    name("info", id, true)
}
pub fn todo(id: u64) -> String {
    name("todo", id, false)
}
pub fn intd(id: u64) -> String {
    name("intd", id, false)
}
pub fn bounce(id: u64) -> String {
    name("bounce", id, false)
}

/// local/S/N (channel 0) or remote/S/N (channel 1).
pub fn chan(c: usize, id: u64) -> String {
    name(["local", "remote"][c], id, true)
}

/// The directory holding `path` ("." for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Make a directory entry durable: fsync the directory holding `path`.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(dir_of(path))?.sync_all()
}

/// Make the entries of `paths` durable, fsyncing each directory once; the
/// directories that could not be synced.
pub fn sync_dirs<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a Path> {
    let mut synced: Vec<&Path> = Vec::new();
    let mut failed = Vec::new();
    for p in paths {
        let dir = dir_of(Path::new(p));
        if synced.contains(&dir) {
            continue;
        }
        synced.push(dir);
        if sync_dir(Path::new(p)).is_err() {
            failed.push(dir);
        }
    }
    failed
}

/// Wake qmail-send through the lock/trigger fifo (relative to the queue
/// directory); a missing or full fifo is harmless, qmail-send scans anyway.
pub fn pull_trigger() {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("lock/trigger")
    {
        let _ = io::Write::write(&mut f, b"\0");
    }
}

/// The message number of a file name in a queue directory: all digits.
pub fn parse_id(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Every message number in `dir` (flat) or its SPLIT subdirectories.
pub fn list(dir: &str, split: bool) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    if split {
        for s in 0..SPLIT {
            list_into(&format!("{dir}/{s}"), &mut ids)?;
        }
    } else {
        list_into(dir, &mut ids)?;
    }
    Ok(ids)
}

fn list_into(dir: &str, ids: &mut Vec<u64>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if let Some(id) = e.file_name().to_str().and_then(parse_id) {
            ids.push(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_fmtqfn() {
        assert_eq!(mess(457), "mess/20/457");
        assert_eq!(todo(457), "todo/457");
        assert_eq!(intd(457), "intd/457");
        assert_eq!(chan(1, 46), "remote/0/46");
        assert_eq!(bounce(5), "bounce/5");
    }

    #[test]
    fn ids_are_all_digits() {
        assert_eq!(parse_id("123"), Some(123));
        assert_eq!(parse_id("12a"), None);
        assert_eq!(parse_id(""), None);
    }
}
