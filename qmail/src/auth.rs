//! SMTP AUTH for qmail-smtpd as the common qmail SMTP-AUTH patch does it:
//! `qmail-smtpd checkprogram subprogram...` offers LOGIN, CRAM-MD5 and
//! PLAIN; the credentials go to checkprogram on fd 3 (`user\0password\0\0`,
//! or `user\0digest\0challenge\0` for CRAM-MD5, the checkpassword
//! interface) and its exit code decides: 0 accepted, another code refused,
//! a crash a temporary failure. A client that authenticated may relay, as
//! with RELAYCLIENT, and is named in the Received line.
//!
//! The exchange itself (which prompt, which reply) is here; the session
//! gives it the line reader and the output.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The mechanisms announced in EHLO.
pub const EHLO_LINES: &[u8] = b"250-AUTH LOGIN CRAM-MD5 PLAIN\r\n250-AUTH=LOGIN CRAM-MD5 PLAIN\r\n";

pub const OK: &[u8] = b"235 ok, go ahead (#2.0.0)\r\n";
pub const FAILED: &[u8] = b"535 authentication failed (#5.7.1)\r\n";
pub const ALREADY: &[u8] = b"503 you're already authenticated (#5.5.0)\r\n";
pub const IN_MAIL: &[u8] = b"503 no auth during mail transaction (#5.5.0)\r\n";
pub const UNKNOWN_TYPE: &[u8] = b"504 auth type unimplemented (#5.5.1)\r\n";
pub const CANCELLED: &[u8] = b"501 auth exchange canceled (#5.0.0)\r\n";
pub const MALFORMED: &[u8] = b"501 malformed auth input (#5.5.4)\r\n";
pub const CHILD: &[u8] = b"454 oops, problem with child and I can't auth (#4.3.0)\r\n";
pub const FORK: &[u8] = b"454 oops, child won't start and I can't auth (#4.3.0)\r\n";

/// Credentials gathered from the client.
pub struct Creds {
    pub user: Vec<u8>,
    /// Password, or the CRAM-MD5 digest.
    pub secret: Vec<u8>,
    /// The CRAM-MD5 challenge; empty for LOGIN and PLAIN.
    pub challenge: Vec<u8>,
}

/// What checkprogram said.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// The reply to give (454).
    Trouble(&'static [u8]),
}

/// Run checkprogram with the credentials on fd 3.
pub fn check(argv: &[std::ffi::OsString], creds: &Creds) -> Verdict {
    let Ok((r, w)) = nix::unistd::pipe() else {
        return Verdict::Trouble(FORK);
    };
    let mut cmd = Command::new(&argv[0]);
    common::sig::default_signals(&mut cmd);
    // The network stays ours: checkprogram talks on fd 3 only.
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let rfd = std::os::fd::AsRawFd::as_raw_fd(&r);
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::close(wfd);
            if libc::dup2(rfd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(r);
    let Ok(mut child) = child else {
        return Verdict::Trouble(FORK);
    };
    let mut data = Vec::with_capacity(creds.user.len() + creds.secret.len() + 64);
    for part in [&creds.user, &creds.secret, &creds.challenge] {
        data.extend_from_slice(part);
        data.push(0);
    }
    let mut wf = std::fs::File::from(w);
    let _ = wf.write_all(&data);
    drop(wf);
    data.fill(0);
    match child.wait() {
        Ok(st) => match st.code() {
            Some(0) => Verdict::Accepted,
            Some(_) => Verdict::Refused,
            None => Verdict::Trouble(CHILD),
        },
        Err(_) => Verdict::Trouble(CHILD),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// Decode base64 (whitespace not allowed, padding optional); None when malformed.
pub fn b64decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// PLAIN's `authzid\0user\0password`.
pub fn plain(decoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = decoded.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?.to_vec();
    let pass = parts.next()?.to_vec();
    if parts.next().is_some() {
        return None;
    }
    Some((user, pass))
}

/// CRAM-MD5's `user digest`.
pub fn cram(decoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let sp = decoded.iter().rposition(|&b| b == b' ')?;
    Some((decoded[..sp].to_vec(), decoded[sp + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\0user\0pass"] {
            assert_eq!(b64decode(&b64encode(s)).unwrap(), s);
        }
        assert_eq!(b64encode(b"Username:"), b"VXNlcm5hbWU6");
        assert_eq!(b64decode(b"UGFzc3dvcmQ6").unwrap(), b"Password:");
        assert!(b64decode(b"a").is_none());
        assert!(b64decode(b"ab!=").is_none());
    }

    #[test]
    fn plain_and_cram_responses() {
        assert_eq!(plain(b"\0u\0p").unwrap(), (b"u".to_vec(), b"p".to_vec()));
        assert!(plain(b"u\0p").is_none());
        assert_eq!(
            cram(b"joe 0123abc").unwrap(),
            (b"joe".to_vec(), b"0123abc".to_vec())
        );
        assert!(cram(b"nospace").is_none());
    }
}
