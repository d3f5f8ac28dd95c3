//! The SMTP extensions beyond netqmail 1.06 in a session: STARTTLS
//! (RFC 3207) and the AUTH exchange (RFC 4954) of the qmail SMTP-AUTH
//! patch. The TLS machinery is in crate::tls, the credentials check in
//! crate::auth; here is what the client sees.

use super::io::Line;
use super::{Envelope, Session, MAXCMD};
use common::Error;

impl Session {
    /// STARTTLS: answer in plaintext, then everything is encrypted and the
    /// session starts over (no HELO, no envelope), as RFC 3207 requires.
    pub(super) fn starttls(&mut self, arg: &[u8]) -> Result<(), Error> {
        if !arg.is_empty() {
            self.conn
                .out(b"501 Syntax error (no parameters allowed) (#5.5.4)\r\n");
            return Ok(());
        }
        let session = match crate::tls::config().and_then(crate::tls::Session::new) {
            Ok(s) => s,
            Err(_) => {
                self.conn.out(b"454 TLS missing certificate (#4.3.0)\r\n");
                return Ok(());
            }
        };
        self.conn.out(b"220 ready for tls\r\n");
        self.conn.flush()?;
        self.conn.start_tls(session);
        self.env = Envelope::default();
        let host = self.cfg.peer.remotehost.clone();
        self.dohelo(&host);
        Ok(())
    }

    /// AUTH mechanism [initial-response].
    pub(super) fn auth(&mut self, arg: &[u8]) -> Result<(), Error> {
        if self.authd {
            self.conn.out(crate::auth::ALREADY);
            return Ok(());
        }
        if self.env.seenmail {
            self.conn.out(crate::auth::IN_MAIL);
            return Ok(());
        }
        let sp = arg.iter().position(|&b| b == b' ').unwrap_or(arg.len());
        let mech = arg[..sp].to_ascii_lowercase();
        let initial = arg[sp..].trim_ascii();
        let creds = match mech.as_slice() {
            b"login" => self.auth_login(initial)?,
            b"plain" => self.auth_plain(initial)?,
            b"cram-md5" if initial.is_empty() => self.auth_cram()?,
            b"cram-md5" => Err(crate::auth::MALFORMED),
            _ => Err(crate::auth::UNKNOWN_TYPE),
        };
        let reply = match creds {
            Ok(c) if c.user.is_empty() || c.secret.is_empty() => crate::auth::MALFORMED,
            Ok(c) => self.verify(c),
            Err(r) => r,
        };
        self.conn.out(reply);
        Ok(())
    }

    fn verify(&mut self, mut c: crate::auth::Creds) -> &'static [u8] {
        let verdict = crate::auth::check(&self.cfg.checkprog, &c);
        c.secret.fill(0);
        match verdict {
            crate::auth::Verdict::Accepted => {
                self.authd = true;
                self.cfg.relayclient = Some(Vec::new());
                self.cfg.peer.remoteinfo = Some(c.user);
                crate::auth::OK
            }
            crate::auth::Verdict::Refused => crate::auth::FAILED,
            crate::auth::Verdict::Trouble(r) => r,
        }
    }

    /// One base64 line of the exchange after a 334 prompt; `*` cancels.
    fn auth_line(&mut self, prompt: &[u8]) -> Result<Result<Vec<u8>, &'static [u8]>, Error> {
        self.conn.out(b"334 ");
        self.conn.out(prompt);
        self.conn.out(b"\r\n");
        let line = match self.conn.line(MAXCMD)? {
            Line::Ok(l) => l,
            Line::TooLong => return Ok(Err(crate::auth::MALFORMED)),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line == b"*" {
            return Ok(Err(crate::auth::CANCELLED));
        }
        Ok(decode(line))
    }

    fn auth_login(&mut self, initial: &[u8]) -> Result<AuthStep, Error> {
        let user = if initial.is_empty() {
            self.auth_line(b"VXNlcm5hbWU6")?
        } else {
            decode(initial)
        };
        let user = match user {
            Ok(u) => u,
            Err(r) => return Ok(Err(r)),
        };
        let pass = self.auth_line(b"UGFzc3dvcmQ6")?;
        Ok(pass.map(|secret| crate::auth::Creds {
            user,
            secret,
            challenge: Vec::new(),
        }))
    }

    fn auth_plain(&mut self, initial: &[u8]) -> Result<AuthStep, Error> {
        let resp = if initial.is_empty() {
            self.auth_line(b"")?
        } else {
            decode(initial)
        };
        Ok(resp.and_then(|r| {
            let (user, secret) = crate::auth::plain(&r).ok_or(crate::auth::MALFORMED)?;
            Ok(crate::auth::Creds {
                user,
                secret,
                challenge: Vec::new(),
            })
        }))
    }

    fn auth_cram(&mut self) -> Result<AuthStep, Error> {
        let host = self
            .cfg
            .greeting
            .split(|&b| b == b' ')
            .next()
            .unwrap_or(b"");
        let challenge = format!(
            "<{}.{}@{}>",
            std::process::id(),
            crate::date822::now(),
            String::from_utf8_lossy(host)
        )
        .into_bytes();
        let resp = self.auth_line(&crate::auth::b64encode(&challenge))?;
        Ok(resp.and_then(|r| {
            let (user, secret) = crate::auth::cram(&r).ok_or(crate::auth::MALFORMED)?;
            Ok(crate::auth::Creds {
                user,
                secret,
                challenge,
            })
        }))
    }
}

/// Credentials, or the reply that ends the exchange.
type AuthStep = Result<crate::auth::Creds, &'static [u8]>;

fn decode(s: &[u8]) -> Result<Vec<u8>, &'static [u8]> {
    crate::auth::b64decode(s).ok_or(crate::auth::MALFORMED)
}
