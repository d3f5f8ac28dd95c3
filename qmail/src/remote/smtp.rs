//! The SMTP conversation of qmail-remote: greeting, EHLO (HELO when the
//! server refuses EHLO), MAIL, one RCPT per recipient, DATA with the message
//! converted to CRLF lines and dot-stuffed after every CRLF it emits (so no
//! stored byte sequence, a lone CR before a dot included, can end DATA early
//! at the next server), then QUIT.
//!
//! Beyond qmail, which spoke only HELO: when the server offers PIPELINING
//! (RFC 2920) MAIL, every RCPT and DATA go out in one write and the replies
//! are read in order, and when it offers SIZE (RFC 1870) MAIL carries the
//! message's size so that a server can refuse an oversized message before
//! it is sent. When it offers STARTTLS the session goes on encrypted
//! (see `starttls` for which hosts and how). The records qmail-rspawn reads
//! are the same either way.

use super::route::Target;
use super::starttls::{self, Policy};
use super::{Controls, Report};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};

/// Most reply text kept for the report.
const HUGESMTPTEXT: usize = 5000;

/// The connection died (timeout, reset, EOF): report and stop.
#[derive(Debug)]
pub struct Dropped;

/// What happened to the message bytes on the way in.
enum BlastError {
    Dropped,
    Read,
    Partial,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Offers {
    pub pipelining: bool,
    pub size: bool,
    pub starttls: bool,
}

impl Offers {
    /// The extension keywords of an EHLO reply's text (lines without CRs,
    /// the first being the greeting line).
    pub fn parse(text: &[u8]) -> Offers {
        let mut o = Offers::default();
        for line in text.split(|&b| b == b'\n').skip(1) {
            let kw = line.get(4..).unwrap_or_default();
            let kw = kw.split(|&b| b == b' ').next().unwrap_or_default();
            match kw.to_ascii_uppercase().as_slice() {
                b"PIPELINING" => o.pipelining = true,
                b"SIZE" => o.size = true,
                b"STARTTLS" => o.starttls = true,
                _ => {}
            }
        }
        o
    }
}

/// The connection's bytes: plain TCP, or TLS over it after STARTTLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Only while the plain stream is being handed to TLS.
    Gone,
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(t) => t.flush(),
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// An open SMTP connection.
pub struct Conn {
    io: BufReader<Transport>,
    partner: IpAddr,
    /// The host name the partner was found under, for TLS.
    name: String,
    critical: bool,
    text: Vec<u8>,
}

impl Conn {
    /// Connect within timeoutconnect; the error says whether it timed out.
    pub fn connect(t: &Target, ctl: &Controls) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&t.addr, ctl.timeoutconnect)?;
        s.set_read_timeout(Some(ctl.timeoutremote))?;
        s.set_write_timeout(Some(ctl.timeoutremote))?;
        Ok(Conn {
            io: BufReader::new(Transport::Plain(s)),
            partner: t.addr.ip(),
            name: t.name.clone(),
            critical: false,
            text: Vec::new(),
        })
    }

    fn send(&mut self, s: &[u8]) -> Result<(), Dropped> {
        let w = self.io.get_mut();
        w.write_all(s).and_then(|_| w.flush()).map_err(|_| Dropped)
    }

    /// Read one reply: its code and (into self.text) its lines without CRs.
    fn reply(&mut self) -> Result<u32, Dropped> {
        self.text.clear();
        let mut code = None;
        loop {
            let mut line = Vec::new();
            let n = self.io.read_until(b'\n', &mut line).map_err(|_| Dropped)?;
            if n == 0 || line.last() != Some(&b'\n') {
                return Err(Dropped);
            }
            for &b in line.iter().filter(|&&b| b != b'\r') {
                if self.text.len() < HUGESMTPTEXT {
                    self.text.push(b);
                }
            }
            let c = code.get_or_insert_with(|| {
                line.iter()
                    .take(3)
                    .fold(0u32, |a, &d| a * 10 + u32::from(d.wrapping_sub(b'0')) % 256)
            });
            if line.get(3) != Some(&b'-') {
                return Ok(*c);
            }
        }
    }

    /// `Remote host said: ...` with the last reply, if there was one.
    fn said(&mut self, rep: &mut Report) {
        if self.text.is_empty() {
            return;
        }
        rep.text("Remote host said: ");
        rep.out
            .extend(self.text.iter().map(|&b| if b == 0 { b'?' } else { b }));
        self.text.clear();
    }

    /// Say QUIT (without waiting for the answer) and write the final record.
    fn quit(&mut self, prepend: &str, append: &str, rep: &mut Report) -> Result<(), Dropped> {
        let _ = self.send(b"QUIT\r\n");
        rep.text(&format!("{prepend}{}{append}.\n", self.partner));
        self.said(rep);
        rep.end();
        Ok(())
    }

    fn dropped(&self, rep: &mut Report) {
        let dup = if self.critical {
            "Possible duplicate! "
        } else {
            ""
        };
        rep.last(&format!(
            "ZConnected to {} but connection died. {dup}(#4.4.2)\n",
            self.partner
        ));
    }

    /// The whole conversation, ending with the final record.
    pub fn session(mut self, helo: &str, sender: &str, recips: &[String], rep: &mut Report) {
        if let Err(Dropped) = self.talk(helo, sender, recips, rep) {
            self.dropped(rep);
        }
    }

    fn talk(
        &mut self,
        helo: &str,
        sender: &str,
        recips: &[String],
        rep: &mut Report,
    ) -> Result<(), Dropped> {
        if self.reply()? != 220 {
            return self.quit("ZConnected to ", " but greeting failed", rep);
        }
        let Some(mut offers) = self.hello(helo)? else {
            return self.quit("ZConnected to ", " but my name was rejected", rep);
        };
        let policy = Policy::for_host(&self.name);
        if offers.starttls && policy != Policy::Off {
            self.send(b"STARTTLS\r\n")?;
            if self.reply()? == 220 {
                if let Err(why) = self.upgrade(&policy) {
                    // Nothing more can be said on a connection whose
                    // handshake failed.
                    rep.last(&format!("ZTLS connect failed: {why}\n"));
                    return Ok(());
                }
                let Some(o) = self.hello(helo)? else {
                    return self.quit("ZTLS connected to ", " but my name was rejected", rep);
                };
                offers = o;
                offers.starttls = false;
            }
        }
        if let (Policy::Verify(_), Transport::Plain(_)) = (&policy, self.io.get_ref()) {
            let _ = self.send(b"QUIT\r\n");
            let pem = format!("control/tlshosts/{}.pem", self.name.to_ascii_lowercase());
            rep.last(&format!("ZNo TLS achieved while {pem} exists.\n"));
            return Ok(());
        }
        let mail = match offers.size.then(message_size).flatten() {
            Some(n) => format!("MAIL FROM:<{sender}> SIZE={n}\r\n"),
            None => format!("MAIL FROM:<{sender}>\r\n"),
        };
        if offers.pipelining {
            let mut group = mail.into_bytes();
            for r in recips {
                group.extend(format!("RCPT TO:<{r}>\r\n").as_bytes());
            }
            group.extend(b"DATA\r\n");
            self.send(&group)?;
        } else {
            self.send(mail.as_bytes())?;
        }
        let code = self.reply()?;
        if code >= 400 {
            let z = if code >= 500 { "D" } else { "Z" };
            return self.quit(
                &format!("{z}Connected to "),
                " but sender was rejected",
                rep,
            );
        }
        if !self.recipients(recips, offers.pipelining, rep)? {
            if offers.pipelining && self.reply()? == 354 {
                // A server that took DATA with no recipient gets an empty
                // message, which it must refuse.
                self.send(b".\r\n")?;
                self.reply()?;
            }
            // The record is the one an unpipelined session gives.
            self.text.clear();
            return self.quit("DGiving up on ", "", rep);
        }
        if !offers.pipelining {
            self.send(b"DATA\r\n")?;
        }
        let code = self.reply()?;
        if code >= 400 {
            let z = if code >= 500 { "D" } else { "Z" };
            return self.quit(z, " failed on DATA command", rep);
        }
        match self.blast() {
            Ok(()) => {}
            Err(BlastError::Dropped) => return Err(Dropped),
            Err(BlastError::Read) => {
                rep.last("ZUnable to read message. (#4.3.0)\n");
                return Ok(());
            }
            Err(BlastError::Partial) => {
                rep.last("DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n");
                return Ok(());
            }
        }
        let code = self.reply()?;
        self.critical = false;
        let (z, what) = match code {
            500.. => ("D", " failed after I sent the message"),
            400.. => ("Z", " failed after I sent the message"),
            _ => ("K", " accepted message"),
        };
        self.quit(z, what, rep)
    }

    /// Hand the connection to TLS and finish the handshake.
    fn upgrade(&mut self, policy: &Policy) -> Result<(), String> {
        if !self.io.buffer().is_empty() {
            return Err("server sent data before the handshake".into());
        }
        let cfg = starttls::config(policy)?;
        let name = starttls::server_name(&self.name)
            .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(self.partner.into()));
        let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
        let Transport::Plain(sock) = std::mem::replace(self.io.get_mut(), Transport::Gone) else {
            return Err("TLS already started".into());
        };
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        *self.io.get_mut() = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// EHLO, or HELO when EHLO is refused; None when HELO is refused too.
    fn hello(&mut self, helo: &str) -> Result<Option<Offers>, Dropped> {
        self.send(format!("EHLO {helo}\r\n").as_bytes())?;
        if self.reply()? == 250 {
            return Ok(Some(Offers::parse(&self.text)));
        }
        self.send(format!("HELO {helo}\r\n").as_bytes())?;
        Ok((self.reply()? == 250).then(Offers::default))
    }

    /// One RCPT per recipient with its record (the commands already sent
    /// when pipelining); whether any was accepted.
    fn recipients(
        &mut self,
        recips: &[String],
        pipelined: bool,
        rep: &mut Report,
    ) -> Result<bool, Dropped> {
        let mut any = false;
        for r in recips {
            if !pipelined {
                self.send(format!("RCPT TO:<{r}>\r\n").as_bytes())?;
            }
            let code = self.reply()?;
            if code >= 400 {
                let hs = if code >= 500 { "h" } else { "s" };
                rep.text(&format!("{hs}{} does not like recipient.\n", self.partner));
                self.said(rep);
                rep.end();
            } else {
                rep.last("r");
                any = true;
            }
        }
        Ok(any)
    }

    /// Send the message from stdin, then the final dot.
    fn blast(&mut self) -> Result<(), BlastError> {
        let mut input = std::io::stdin().lock();
        let mut out = std::io::BufWriter::with_capacity(65536, self.io.get_mut());
        let mut st = Stuffer::default();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(BlastError::Read),
            };
            let chunk = st.feed(&buf[..n]);
            out.write_all(&chunk).map_err(|_| BlastError::Dropped)?;
        }
        let tail = st.finish().ok_or(BlastError::Partial)?;
        self.critical = true;
        out.write_all(&tail).map_err(|_| BlastError::Dropped)?;
        out.flush().map_err(|_| BlastError::Dropped)
    }
}

/// The size of the message on stdin (a queue file, so fstat knows it), for
/// SIZE=; None when stdin is not a regular file.
fn message_size() -> Option<u64> {
    let meta = nix::sys::stat::fstat(0).ok()?;
    (meta.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(meta.st_size as u64)
}

/// The conversion of stored bytes to SMTP DATA: LF and CRLF and a lone CR
/// each become CRLF, and a dot right after any CRLF we emit (or at the very
/// start) is doubled.
#[derive(Debug)]
pub struct Stuffer {
    at_start: bool,
    pending_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Stuffer {
        Stuffer {
            at_start: true,
            pending_cr: false,
        }
    }
}

impl Stuffer {
    fn newline(&mut self, out: &mut Vec<u8>) {
        out.extend(b"\r\n");
        self.at_start = true;
    }

    /// Convert a chunk.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 4);
        for &b in data {
            if self.pending_cr {
                self.pending_cr = false;
                self.newline(&mut out);
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.newline(&mut out),
                _ => {
                    if self.at_start && b == b'.' {
                        out.push(b'.');
                    }
                    self.at_start = false;
                    out.push(b);
                }
            }
        }
        out
    }

    /// The end of DATA; None when the message ends in a partial line.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if self.pending_cr {
            self.newline(&mut out);
        }
        if !self.at_start {
            return None;
        }
        out.extend(b".\r\n");
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{Offers, Stuffer};

    #[test]
    fn ehlo_keywords() {
        let o =
            Offers::parse(b"250-mx.example.org hi\n250-8BITMIME\n250-size 1000\n250 PIPELINING\n");
        assert_eq!(
            o,
            Offers {
                pipelining: true,
                size: true,
                starttls: false
            }
        );
        assert_eq!(
            Offers::parse(b"250 mx.example.org PIPELINING\n"),
            Offers::default()
        );
    }

    fn conv(parts: &[&[u8]]) -> Option<Vec<u8>> {
        let mut s = Stuffer::default();
        let mut out = Vec::new();
        for p in parts {
            out.extend(s.feed(p));
        }
        out.extend(s.finish()?);
        Some(out)
    }

    #[test]
    fn crlf_and_dot_stuffing_after_every_line_end() {
        assert_eq!(
            conv(&[b".a\nb\n..c\n"]).unwrap(),
            b"..a\r\nb\r\n...c\r\n.\r\n"
        );
        assert_eq!(conv(&[b"a\r\n.b\n"]).unwrap(), b"a\r\n..b\r\n.\r\n");
        // A lone CR before a dot: the dot is stuffed, DATA cannot end early.
        assert_eq!(conv(&[b"a\r.\r\nb\n"]).unwrap(), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(
            conv(&[b"a\r", b"\nb\r", b".x\n"]).unwrap(),
            b"a\r\nb\r\n..x\r\n.\r\n"
        );
        assert_eq!(conv(&[b""]).unwrap(), b".\r\n");
        assert_eq!(conv(&[b"partial"]), None);
    }
}
