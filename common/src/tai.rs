//! TAI64N labels as daemontools writes them. daemontools counts seconds from
//! 2^62 + 10 (it assumes TAI-UTC = 10 s and knows no leap seconds), not the
//! true 2^62 + 37 of today: every label we write or read uses djb's offset,
//! or supervise/status and multilog files disagree with the originals by 27 s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The TAI64 label of the Unix epoch in daemontools' convention.
pub const UNIX_EPOCH_LABEL: u64 = (1 << 62) + 10;

/// A TAI64N moment: seconds label and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tai64n {
    pub secs: u64,
    pub nanos: u32,
}

impl Tai64n {
    pub fn now() -> Tai64n {
        Tai64n::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Tai64n {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Tai64n {
                secs: UNIX_EPOCH_LABEL + d.as_secs(),
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let mut secs = UNIX_EPOCH_LABEL - d.as_secs();
                let mut nanos = 0;
                if d.subsec_nanos() > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - d.subsec_nanos();
                }
                Tai64n { secs, nanos }
            }
        }
    }

    /// Seconds since the Unix epoch (negative before it).
    pub fn unix_secs(&self) -> i64 {
        self.secs as i64 - UNIX_EPOCH_LABEL as i64
    }

    pub fn to_system(&self) -> SystemTime {
        let s = self.unix_secs();
        let base = if s >= 0 {
            UNIX_EPOCH + Duration::from_secs(s as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
        };
        base + Duration::from_nanos(u64::from(self.nanos))
    }

    /// The 12-byte packed form: big-endian seconds, big-endian nanoseconds.
    pub fn pack(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.secs.to_be_bytes());
        b[8..].copy_from_slice(&self.nanos.to_be_bytes());
        b
    }

    pub fn unpack(b: &[u8; 12]) -> Tai64n {
        let secs = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        let nanos = u32::from_be_bytes(b[8..].try_into().expect("4 bytes"));
        Tai64n { secs, nanos }
    }

    /// The external form `@` + 24 lowercase hex digits, as multilog `t` writes.
    pub fn label(&self) -> String {
        format!("@{:016x}{:08x}", self.secs, self.nanos)
    }

    /// Write the 25-byte label into `out` without allocating.
    pub fn write_label(&self, out: &mut [u8; 25]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out[0] = b'@';
        for (i, byte) in self.pack().iter().enumerate() {
            out[1 + 2 * i] = HEX[usize::from(byte >> 4)];
            out[2 + 2 * i] = HEX[usize::from(byte & 15)];
        }
    }

    /// Parse the 24 hex digits after `@`; None when they are not all hex.
    pub fn parse_hex(hex: &[u8]) -> Option<Tai64n> {
        if hex.len() < 24 {
            return None;
        }
        let mut b = [0u8; 12];
        for (i, slot) in b.iter_mut().enumerate() {
            let hi = (hex[2 * i] as char).to_digit(16)?;
            let lo = (hex[2 * i + 1] as char).to_digit(16)?;
            *slot = (hi * 16 + lo) as u8;
        }
        Some(Tai64n::unpack(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn djb_offset() {
        let t = Tai64n::from_system(UNIX_EPOCH + Duration::new(1_000_000_000, 5));
        assert_eq!(t.secs, 0x400000003b9aca0a);
        assert_eq!(t.label(), "@400000003b9aca0a00000005");
        let mut out = [0u8; 25];
        t.write_label(&mut out);
        assert_eq!(&out[..], t.label().as_bytes());
        assert_eq!(Tai64n::parse_hex(&t.label().as_bytes()[1..]), Some(t));
        assert_eq!(Tai64n::unpack(&t.pack()), t);
        assert_eq!(t.to_system(), UNIX_EPOCH + Duration::new(1_000_000_000, 5));
    }
}
