//! Constant databases in djb's cdb format: a writer that lays out the file
//! exactly as cdb_make does (so our rules.cdb is byte-identical to the one
//! Debian's tcprules writes from the same input) and a reader that looks a
//! key up with a few positioned reads on an open file, never loading it, so
//! tcpserver can reopen the rules for every connection at a cost that does
//! not depend on the number of rules.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// cdb's hash: h = 5381; h = (h * 33) ^ byte.
pub fn hash(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &b| {
        (h.wrapping_shl(5).wrapping_add(h)) ^ u32::from(b)
    })
}

/// Builds a cdb on a writer; records go out as they are added, the hash
/// tables at `finish`.
pub struct Writer<W: Write> {
    out: BufWriter<W>,
    pos: u32,
    /// (hash, record position) of every record, in the order added.
    entries: Vec<(u32, u32)>,
}

fn too_big() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOMEM)
}

impl<W: Write> Writer<W> {
    /// Start a cdb: a zeroed 2048-byte header goes out first and is filled
    /// in when the tables are known; only the index is kept in memory.
    pub fn new(inner: W) -> io::Result<Writer<W>> {
        let mut out = BufWriter::with_capacity(64 * 1024, inner);
        out.write_all(&[0u8; 2048])?;
        Ok(Writer {
            out,
            pos: 2048,
            entries: Vec::new(),
        })
    }

    pub fn add(&mut self, key: &[u8], data: &[u8]) -> io::Result<()> {
        let klen = u32::try_from(key.len()).map_err(|_| too_big())?;
        let dlen = u32::try_from(data.len()).map_err(|_| too_big())?;
        self.entries.push((hash(key), self.pos));
        self.out.write_all(&klen.to_le_bytes())?;
        self.out.write_all(&dlen.to_le_bytes())?;
        self.out.write_all(key)?;
        self.out.write_all(data)?;
        self.pos = self
            .pos
            .checked_add(8)
            .and_then(|p| p.checked_add(klen))
            .and_then(|p| p.checked_add(dlen))
            .ok_or_else(too_big)?;
        Ok(())
    }

    /// Write the hash tables; returns the inner writer and the header, which
    /// the caller must write at offset 0 (see [`write_file`]).
    fn finish_tables(mut self) -> io::Result<(W, [u8; 2048])> {
        let mut count = [0u32; 256];
        for &(h, _) in &self.entries {
            count[(h & 255) as usize] += 1;
        }
        // Records of each bucket in the order they were added, as cdb_make does.
        let mut start = [0usize; 256];
        let mut acc = 0usize;
        for (i, c) in count.iter().enumerate() {
            start[i] = acc;
            acc += *c as usize;
        }
        let mut split = vec![(0u32, 0u32); self.entries.len()];
        let mut fill = start;
        for &e in &self.entries {
            let b = (e.0 & 255) as usize;
            split[fill[b]] = e;
            fill[b] += 1;
        }
        let mut header = [0u8; 2048];
        let mut table: Vec<(u32, u32)> = Vec::new();
        for b in 0..256 {
            let len = count[b] * 2;
            header[8 * b..8 * b + 4].copy_from_slice(&self.pos.to_le_bytes());
            header[8 * b + 4..8 * b + 8].copy_from_slice(&len.to_le_bytes());
            table.clear();
            table.resize(len as usize, (0, 0));
            for &(h, p) in &split[start[b]..start[b] + count[b] as usize] {
                let mut w = ((h >> 8) % len) as usize;
                while table[w].1 != 0 {
                    w = (w + 1) % len as usize;
                }
                table[w] = (h, p);
            }
            for &(h, p) in &table {
                self.out.write_all(&h.to_le_bytes())?;
                self.out.write_all(&p.to_le_bytes())?;
            }
            self.pos = self.pos.checked_add(len * 8).ok_or_else(too_big)?;
        }
        let inner = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((inner, header))
    }
}

impl Writer<File> {
    /// Finish a cdb being written to a file: tables, header, fsync.
    pub fn finish(self) -> io::Result<File> {
        let (file, header) = self.finish_tables()?;
        file.write_all_at(&header, 0)?;
        file.sync_all()?;
        Ok(file)
    }
}

/// Finish into memory (tests, and callers that want the bytes).
pub fn finish_vec(w: Writer<Vec<u8>>) -> io::Result<Vec<u8>> {
    let (mut v, header) = w.finish_tables()?;
    v[..2048].copy_from_slice(&header);
    Ok(v)
}

/// Anything a cdb can be read from by position.
pub trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, pos)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let start = usize::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EPROTO))?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn u32_at<R: ReadAt + ?Sized>(r: &R, pos: u64) -> io::Result<(u32, u32)> {
    let mut b = [0u8; 8];
    r.read_exact_at(&mut b, pos)?;
    Ok((
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

/// Find the first record for `key`; its data is appended to `out` (cleared
/// first). Returns whether the key exists. A truncated or corrupt file is
/// an error (EPROTO), as in djb's cdb_find.
pub fn find<R: ReadAt + ?Sized>(r: &R, key: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
    let h = hash(key);
    let (hpos, hlen) = u32_at(r, u64::from(h & 255) * 8)?;
    if hlen == 0 {
        return Ok(false);
    }
    let mut slot = (h >> 8) % hlen;
    let mut kbuf = [0u8; 256];
    for _ in 0..hlen {
        let (sh, pos) = u32_at(r, u64::from(hpos) + u64::from(slot) * 8)?;
        if pos == 0 {
            return Ok(false);
        }
        if sh == h && record_matches(r, pos, key, &mut kbuf)? {
            let (klen, dlen) = u32_at(r, u64::from(pos))?;
            out.clear();
            out.resize(dlen as usize, 0);
            r.read_exact_at(out, u64::from(pos) + 8 + u64::from(klen))?;
            return Ok(true);
        }
        slot += 1;
        if slot == hlen {
            slot = 0;
        }
    }
    Ok(false)
}

fn record_matches<R: ReadAt + ?Sized>(
    r: &R,
    pos: u32,
    key: &[u8],
    kbuf: &mut [u8; 256],
) -> io::Result<bool> {
    let (klen, _) = u32_at(r, u64::from(pos))?;
    if klen as usize != key.len() {
        return Ok(false);
    }
    let mut off = 0;
    while off < key.len() {
        let n = (key.len() - off).min(kbuf.len());
        r.read_exact_at(&mut kbuf[..n], u64::from(pos) + 8 + off as u64)?;
        if kbuf[..n] != key[off..off + n] {
            return Ok(false);
        }
        off += n;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_duplicates_first_wins() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.add(b"a", b"1").unwrap();
        w.add(b"bb", b"2").unwrap();
        w.add(b"a", b"3").unwrap();
        w.add(b"", b"empty").unwrap();
        let v = finish_vec(w).unwrap();
        let mut out = Vec::new();
        assert!(find(&v[..], b"a", &mut out).unwrap());
        assert_eq!(out, b"1");
        assert!(find(&v[..], b"bb", &mut out).unwrap());
        assert_eq!(out, b"2");
        assert!(find(&v[..], b"", &mut out).unwrap());
        assert_eq!(out, b"empty");
        assert!(!find(&v[..], b"c", &mut out).unwrap());
    }

    #[test]
    fn empty_db_has_only_header() {
        let v = finish_vec(Writer::new(Vec::new()).unwrap()).unwrap();
        assert_eq!(v.len(), 2048);
        assert_eq!(&v[..8], &[0, 8, 0, 0, 0, 0, 0, 0]);
        assert!(!find(&v[..], b"x", &mut Vec::new()).unwrap());
    }

    #[test]
    fn truncated_is_an_error() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.add(b"key", b"data").unwrap();
        let v = finish_vec(w).unwrap();
        assert!(find(&v[..100], b"key", &mut Vec::new()).is_err());
    }
}
