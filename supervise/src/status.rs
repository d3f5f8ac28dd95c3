//! The supervise/status file: daemontools' 18-byte record that supervise
//! rewrites on every change and svstat reads. Layout (never change it, the
//! originals read ours and we read theirs):
//!   bytes 0..12  TAI64N of the last pid change, big-endian, djb's 2^62+10 epoch
//!   bytes 12..16 pid of the service, little-endian, 0 when down
//!   byte  16     paused flag (meaningful only while up)
//!   byte  17     what supervise wants: b'u' up, b'd' down, 0 nothing (after `o`)

use common::error::Errno;
use common::tai::Tai64n;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Size of the record on disk.
pub const LEN: usize = 18;

/// What supervise wants the service to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
    /// Neither: the service was started once (`svc -o`) and is left alone.
    Nothing,
}

impl Want {
    fn byte(self) -> u8 {
        match self {
            Want::Up => b'u',
            Want::Down => b'd',
            Want::Nothing => 0,
        }
    }
}

/// The decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub when: Tai64n,
    pub pid: u32,
    /// The raw paused byte (svstat treats any non-zero value as paused).
    pub paused: u8,
    /// The raw want byte (svstat compares it with b'u' and b'd').
    pub want: u8,
}

impl Status {
    pub fn new(when: Tai64n, pid: u32, paused: bool, want: Want) -> Status {
        Status {
            when,
            pid,
            paused: u8::from(paused && pid != 0),
            want: want.byte(),
        }
    }

    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..12].copy_from_slice(&self.when.pack());
        b[12..16].copy_from_slice(&self.pid.to_le_bytes());
        b[16] = self.paused;
        b[17] = self.want;
        b
    }

    /// Decode the first 18 bytes; None when there are fewer (svstat's "bad format").
    pub fn decode(b: &[u8]) -> Option<Status> {
        let b: &[u8; LEN] = b.get(..LEN)?.try_into().ok()?;
        let when = Tai64n::unpack(b[..12].try_into().ok()?);
        let pid = u32::from_le_bytes(b[12..16].try_into().ok()?);
        Some(Status {
            when,
            pid,
            paused: b[16],
            want: b[17],
        })
    }
}

/// Replace `path` with `data` atomically: write `tmp`, then rename it over
/// `path`, so a reader sees the old record or the new one, never half of one.
/// The error names the failed step ("open", "write", "rename") and the cause,
/// errno 0 meaning a partial write.
pub fn replace_file(tmp: &str, path: &str, data: &[u8]) -> Result<(), (&'static str, Errno)> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK)
        .open(tmp)
        .map_err(|e| ("open", Errno::from(e)))?;
    match f.write(data) {
        Err(e) => return Err(("write", Errno::from(e))),
        Ok(n) if n < data.len() => return Err(("write", Errno(0))),
        Ok(_) => {}
    }
    drop(f);
    std::fs::rename(tmp, path).map_err(|e| ("rename", Errno::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_daemontools() {
        let when = Tai64n {
            secs: 0x4000_0000_6b02_94d0,
            nanos: 0x0316_94ac,
        };
        let s = Status::new(when, 0x22d6, false, Want::Up);
        let b = s.encode();
        assert_eq!(
            b,
            [
                0x40, 0, 0, 0, 0x6b, 0x02, 0x94, 0xd0, 0x03, 0x16, 0x94, 0xac, 0xd6, 0x22, 0, 0, 0,
                b'u'
            ]
        );
        assert_eq!(Status::decode(&b), Some(s));
    }

    #[test]
    fn paused_only_while_up_and_want_bytes() {
        let t = Tai64n { secs: 1, nanos: 0 };
        assert_eq!(
            Status::new(t, 0, true, Want::Down).encode()[16..],
            [0, b'd']
        );
        assert_eq!(
            Status::new(t, 5, true, Want::Nothing).encode()[16..],
            [1, 0]
        );
    }

    #[test]
    fn short_record_is_bad_format() {
        assert_eq!(Status::decode(b"abc"), None);
        assert!(Status::decode(&[0u8; 40]).is_some());
    }
}
