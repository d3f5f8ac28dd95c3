//! qmail-qmqpd: receive one message by QMQP (a netstring holding the
//! message, the sender and the recipients, each a netstring) and queue it
//! with qmail-queue; the answer is one netstring, `K`, `Z` or `D` first.
//! QMQP clients are trusted (tcpserver's rules decide who may connect), so
//! there is no relay control here, as in the original.
//!
//! Exit codes: 0 after answering or when the client hangs up, 100 on a
//! protocol violation, 111 on a local problem or after an hour.

use crate::qmtpd::{badproto, resources};
use crate::queue::client::Qmail;
use crate::smtpd::addr::received;
use crate::smtpd::io::Conn;
use common::Error;

/// Reads that may not go past the end of the outer netstring.
struct Counted {
    c: Conn,
    left: u64,
}

impl Counted {
    fn byte(&mut self) -> Result<u8, Error> {
        if self.left == 0 {
            return Err(badproto());
        }
        self.left -= 1;
        self.c.byte()
    }

    fn getlen(&mut self) -> Result<u64, Error> {
        let mut len: u64 = 0;
        loop {
            let ch = self.byte()?;
            if ch == b':' {
                return Ok(len);
            }
            if len > 200_000_000 {
                return Err(resources());
            }
            if !ch.is_ascii_digit() {
                return Err(badproto());
            }
            len = 10 * len + u64::from(ch - b'0');
        }
    }

    fn getcomma(&mut self) -> Result<(), Error> {
        if self.byte()? != b',' {
            return Err(badproto());
        }
        Ok(())
    }

    /// `n` bytes handed to `f` chunk by chunk.
    fn copy(&mut self, mut n: u64, mut f: impl FnMut(&[u8])) -> Result<(), Error> {
        if n > self.left {
            return Err(badproto());
        }
        self.left -= n;
        while n > 0 {
            let avail = self.c.peek()?;
            let k = avail.len().min(n.min(usize::MAX as u64) as usize);
            f(&avail[..k]);
            self.c.consume(k);
            n -= k as u64;
        }
        Ok(())
    }

    /// An address netstring: Some(address) when shorter than 1000 bytes
    /// and free of NUL.
    fn getbuf(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let len = self.getlen()?;
        let mut v = Vec::new();
        self.copy(len, |b| {
            if len < 1000 {
                v.extend_from_slice(b)
            }
        })?;
        self.getcomma()?;
        Ok((len < 1000 && !v.contains(&0)).then_some(v))
    }
}

pub fn run() -> Result<(), Error> {
    crate::qmtpd::start_lifetime();
    let mut r = Counted {
        c: crate::qmtpd::conn(),
        left: 100,
    };
    r.left = r.getlen()?;
    let len = r.getlen()?;
    std::env::set_current_dir(crate::home::home()).map_err(|_| resources())?;
    let mut qq = Qmail::open().map_err(|_| resources())?;
    let qp = qq.qp();
    let peer = crate::qmtpd::peer();
    qq.put(&received(&peer, None, "QMQP", crate::date822::now()));
    r.copy(len, |b| qq.put(b))?;
    r.getcomma()?;
    let sender = r.getbuf()?;
    let mut flagok = sender.is_some();
    let mut rcpts = Vec::new();
    while r.left > 0 {
        match r.getbuf()? {
            Some(a) => rcpts.push(a),
            None => flagok = false,
        }
    }
    r.left = 1;
    r.getcomma()?;
    let result = if flagok {
        qq.from(&String::from_utf8_lossy(&sender.unwrap_or_default()));
        for a in &rcpts {
            qq.to(&String::from_utf8_lossy(a));
        }
        match qq.close() {
            Ok(()) => format!("Kok {} qp {qp}", crate::date822::now()),
            Err(x) => x,
        }
    } else {
        qq.fail();
        let _ = qq.close();
        "Dsorry, I can't accept addresses like that (#5.1.3)".to_string()
    };
    r.c.out(format!("{}:{result},", result.len()).as_bytes());
    r.c.flush()
}
