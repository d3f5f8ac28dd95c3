//! qmail-smtpd: receive mail by SMTP from the client on fds 0 and 1 (run
//! by tcpserver) and hand each message to qmail-queue, answering every
//! command with netqmail 1.06's reply texts. Relaying is decided per
//! recipient: RELAYCLIENT (appended to the address) or rcpthosts.
//!
//! The session reads like RFC 5321's state machine: HELO/EHLO name the
//! client, MAIL starts an envelope, RCPT adds recipients, DATA reads and
//! queues the message. Commands are read with a length bound and answered
//! in pipelining order; output is flushed before waiting for input.

pub mod addr;
pub mod data;
mod ext;
pub mod io;

use crate::queue::client::Qmail;
use crate::rcpthosts::RcptHosts;
use common::Error;
use io::{Conn, Line};
use std::collections::HashSet;
use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::ffi::OsStringExt;

/// A message looping this often is refused.
const MAXHOPS: usize = 100;
/// Longest command line read; longer ones are refused and dropped.
const MAXCMD: usize = 8192;

const TIMEOUT_REPLY: &[u8] = b"451 timeout (#4.4.2)\r\n";

/// An address from MAIL or RCPT and the parameters after it.
type Address<'a> = (Vec<u8>, &'a [u8]);

/// Everything read once at startup: controls and tcpserver's environment.
pub struct Config {
    pub greeting: Vec<u8>,
    pub liphost: Option<String>,
    pub timeout: u64,
    pub rcpthosts: RcptHosts,
    pub bmf: HashSet<Vec<u8>>,
    pub databytes: u64,
    pub peer: addr::Peer,
    pub relayclient: Option<Vec<u8>>,
    /// This host's addresses, found the first time an address literal
    /// needs them (as qmail's ipme_is does), not for every connection.
    pub ipme: Option<HashSet<IpAddr>>,
    /// checkprogram and its arguments: SMTP AUTH is offered when given.
    pub checkprog: Vec<OsString>,
    /// SMTPAUTH=`!...`: MAIL is refused until AUTH succeeds.
    pub authrequired: bool,
}

fn env(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(OsString::into_vec)
}

fn control_error() -> Error {
    Error::temp("unable to read controls")
}

impl Config {
    /// qmail-smtpd's setup(): every control and variable it reads.
    pub fn load() -> Result<Config, Error> {
        let greeting = match c(crate::control::read_line("smtpgreeting"))? {
            Some(g) => g,
            None => c(crate::control::me())?.ok_or_else(control_error)?,
        };
        let liphost = match c(crate::control::read_line("localiphost"))? {
            Some(l) => Some(l),
            None => c(crate::control::me())?,
        };
        let timeout = c(crate::control::read_int("timeoutsmtpd", 1200))?.max(1) as u64;
        let bmf = c(crate::control::read_lines("badmailfrom"))?
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.into_bytes().to_ascii_lowercase())
            .collect();
        let mut databytes = c(crate::control::read_int("databytes", 0))?.max(0) as u64;
        if let Some(x) = std::env::var_os("DATABYTES") {
            databytes = common::getopt::scan_ulong(&x).0;
        }
        Ok(Config {
            greeting: greeting.into_bytes(),
            liphost,
            timeout,
            rcpthosts: c(RcptHosts::load())?,
            bmf,
            databytes,
            peer: peer_from_env(),
            relayclient: env("RELAYCLIENT"),
            ipme: None,
            checkprog: Vec::new(),
            authrequired: false,
        })
    }
}

/// Any failure to read a control is the same 421 to the client.
fn c<T, E>(r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|_| control_error())
}

/// TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEINFO and TCPLOCALHOST as qmail reads them.
fn peer_from_env() -> addr::Peer {
    addr::Peer {
        remoteip: env("TCPREMOTEIP").unwrap_or_else(|| b"unknown".to_vec()),
        remotehost: env("TCPREMOTEHOST").unwrap_or_else(|| b"unknown".to_vec()),
        remoteinfo: env("TCPREMOTEINFO"),
        local: env("TCPLOCALHOST")
            .or_else(|| env("TCPLOCALIP"))
            .unwrap_or_else(|| b"unknown".to_vec()),
    }
}

/// The envelope being collected.
#[derive(Default)]
struct Envelope {
    seenmail: bool,
    flagbarf: bool,
    mailfrom: Vec<u8>,
    rcptto: Vec<Vec<u8>>,
}

/// One SMTP session.
pub struct Session {
    cfg: Config,
    conn: Conn,
    /// The HELO name when it differs from the client's host name.
    fakehelo: Option<Vec<u8>>,
    env: Envelope,
    /// The client authenticated (AUTH succeeded).
    authd: bool,
    /// qmail-queue started after MAIL, waiting for DATA's message.
    early: Option<Qmail>,
}

/// How a command ends the session or lets it go on.
enum Next {
    Go,
    Quit,
}

/// Run qmail-smtpd: the whole session on fds 0 and 1.
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let mut early = Conn::new(1200, TIMEOUT_REPLY);
    match setup() {
        Ok(mut cfg) => {
            cfg.checkprog = auth_program(args);
            cfg.authrequired = auth_required(&cfg.checkprog);
            Session::new(cfg).serve()
        }
        Err(reply) => {
            early.out(reply);
            let _ = early.flush();
            Err(io::gone())
        }
    }
}

/// `qmail-smtpd checkprogram subprogram...`: the program that checks AUTH
/// credentials, unless SMTPAUTH is `-` (AUTH switched off for this client).
fn auth_program(args: &[OsString]) -> Vec<OsString> {
    if std::env::var_os("SMTPAUTH").is_some_and(|v| v == "-") {
        return Vec::new();
    }
    args.get(1..).unwrap_or_default().to_vec()
}

/// SMTPAUTH starting with `!` (as the widely used SMTP-AUTH patch reads it)
/// makes AUTH compulsory for this client: no MAIL until it has
/// authenticated. Only meaningful when there is a checkprogram to ask.
fn auth_required(checkprog: &[OsString]) -> bool {
    !checkprog.is_empty()
        && std::env::var_os("SMTPAUTH").is_some_and(|v| v.as_encoded_bytes().starts_with(b"!"))
}

/// chdir to QMAILHOME and read the controls; on failure the 421 reply to
/// give.
fn setup() -> Result<Config, &'static [u8]> {
    const CONTROLS: &[u8] = b"421 unable to read controls (#4.3.0)\r\n";
    std::env::set_current_dir(crate::home::home()).map_err(|_| CONTROLS)?;
    Config::load().map_err(|_| CONTROLS)
}

impl Session {
    pub fn new(cfg: Config) -> Session {
        let conn = Conn::new(cfg.timeout, TIMEOUT_REPLY);
        let mut s = Session {
            cfg,
            conn,
            fakehelo: None,
            env: Envelope::default(),
            authd: false,
            early: None,
        };
        let host = s.cfg.peer.remotehost.clone();
        s.dohelo(&host);
        s
    }

    fn greet(&mut self, code: &[u8]) {
        self.conn.out(code);
        let g = self.cfg.greeting.clone();
        self.conn.out(&g);
    }

    /// The command loop.
    pub fn serve(mut self) -> Result<(), Error> {
        self.greet(b"220 ");
        self.conn.out(b" ESMTP\r\n");
        loop {
            self.start_queue_early()?;
            let line = match self.conn.line(MAXCMD)? {
                Line::Ok(l) => l,
                Line::TooLong => {
                    self.conn
                        .out(b"500 sorry, that command line is too long (#5.5.2)\r\n");
                    self.conn.flush()?;
                    continue;
                }
            };
            if let Next::Quit = self.command(&line)? {
                return Ok(());
            }
        }
    }

    /// Once MAIL is accepted and the client is to answer, start qmail-queue
    /// for the coming DATA: its start overlaps the client's RCPTs instead of
    /// following DATA. Not when more commands are already here (DATA may be
    /// among them), nor for a sender every RCPT will refuse.
    fn start_queue_early(&mut self) -> Result<(), Error> {
        let wanted = self.env.seenmail && !self.env.flagbarf && self.early.is_none();
        if wanted && !self.conn.buffered() && Qmail::early() {
            self.conn.flush()?;
            self.early = Qmail::open().ok();
        }
        Ok(())
    }

    /// Split a line into verb and argument as qmail's commands() does and run it.
    fn command(&mut self, line: &[u8]) -> Result<Next, Error> {
        let mut l = line;
        if let Some(p) = l.iter().position(|&b| b == 0) {
            l = &l[..p];
        }
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        let sp = l.iter().position(|&b| b == b' ').unwrap_or(l.len());
        let verb = l[..sp].to_ascii_lowercase();
        let mut arg = &l[sp..];
        while arg.first() == Some(&b' ') {
            arg = &arg[1..];
        }
        let flush = self.dispatch(&verb, arg)?;
        if let Next::Quit = flush {
            return Ok(Next::Quit);
        }
        if !matches!(verb.as_slice(), b"rcpt" | b"mail" | b"rset") {
            self.conn.flush()?;
        }
        Ok(Next::Go)
    }

    fn dispatch(&mut self, verb: &[u8], arg: &[u8]) -> Result<Next, Error> {
        match verb {
            b"rcpt" => self.rcpt(arg)?,
            b"auth" if !self.cfg.checkprog.is_empty() => self.auth(arg)?,
            b"starttls" if self.conn.tls().is_none() => self.starttls(arg)?,
            b"mail" => self.mail(arg)?,
            b"data" => self.data()?,
            b"quit" => {
                self.greet(b"221 ");
                self.conn.out(b"\r\n");
                self.conn.flush()?;
                return Ok(Next::Quit);
            }
            b"helo" => self.helo(arg),
            b"ehlo" => self.ehlo(arg),
            b"rset" => {
                self.env.seenmail = false;
                self.conn.out(b"250 flushed\r\n");
            }
            b"help" => self
                .conn
                .out(b"214 qmail home page: http://pobox.com/~djb/qmail.html\r\n"),
            b"noop" => self.conn.out(b"250 ok\r\n"),
            b"vrfy" => self.conn.out(b"252 send some mail, i'll try my best\r\n"),
            _ => self.conn.out(b"502 unimplemented (#5.5.1)\r\n"),
        }
        Ok(Next::Go)
    }

    fn dohelo(&mut self, arg: &[u8]) {
        self.fakehelo = if arg.eq_ignore_ascii_case(&self.cfg.peer.remotehost) {
            None
        } else {
            Some(arg.to_vec())
        };
    }

    fn helo(&mut self, arg: &[u8]) {
        self.greet(b"250 ");
        self.conn.out(b"\r\n");
        self.env.seenmail = false;
        self.dohelo(arg);
    }

    fn ehlo(&mut self, arg: &[u8]) {
        self.greet(b"250-");
        self.conn.out(b"\r\n");
        if !self.cfg.checkprog.is_empty() && !self.authd {
            self.conn.out(crate::auth::EHLO_LINES);
        }
        self.conn.out(b"250-PIPELINING\r\n250-8BITMIME\r\n");
        if self.conn.tls().is_none() && crate::tls::available() {
            self.conn.out(b"250-STARTTLS\r\n");
        }
        let size = format!("250 SIZE {}\r\n", self.cfg.databytes);
        self.conn.out(size.as_bytes());
        self.env.seenmail = false;
        self.dohelo(arg);
    }

    /// An address from MAIL or RCPT, this host's literals rewritten; None
    /// for a syntax error. Not knowing this host's addresses ends the
    /// session, as in qmail.
    fn address<'a>(&mut self, arg: &'a [u8]) -> Result<Option<Address<'a>>, Error> {
        let Some((a, params)) = addr::parse(arg) else {
            return Ok(None);
        };
        let Some(l) = &self.cfg.liphost else {
            return Ok(Some((a, params)));
        };
        if self.cfg.ipme.is_none() && addr::has_literal(&a) {
            match addr::ipme() {
                Ok(me) => self.cfg.ipme = Some(me),
                Err(_) => {
                    self.conn
                        .out(b"421 unable to figure out my IP addresses (#4.3.0)\r\n");
                    let _ = self.conn.flush();
                    return Err(io::gone());
                }
            }
        }
        let a = match &self.cfg.ipme {
            Some(me) => addr::local_literal(a, me, l),
            None => a,
        };
        Ok(Some((a, params)))
    }

    fn mail(&mut self, arg: &[u8]) -> Result<(), Error> {
        if self.cfg.authrequired && !self.authd {
            self.conn.out(b"530 authentication required (#5.7.1)\r\n");
            return Ok(());
        }
        let Some((a, params)) = self.address(arg)? else {
            self.conn.out(b"555 syntax error (#5.5.4)\r\n");
            return Ok(());
        };
        let db = self.cfg.databytes;
        if db > 0 && addr::size_param(params).is_some_and(|s| s > db) {
            self.conn
                .out(b"552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n");
            return Ok(());
        }
        self.env.flagbarf = addr::bad_mail_from(&self.cfg.bmf, &a);
        self.env.seenmail = true;
        self.env.rcptto.clear();
        self.env.mailfrom = a;
        self.conn.out(b"250 ok\r\n");
        Ok(())
    }

    fn rcpt(&mut self, arg: &[u8]) -> Result<(), Error> {
        if !self.env.seenmail {
            self.conn.out(b"503 MAIL first (#5.5.1)\r\n");
            return Ok(());
        }
        let Some((mut a, _)) = self.address(arg)? else {
            self.conn.out(b"555 syntax error (#5.5.4)\r\n");
            return Ok(());
        };
        if self.env.flagbarf {
            self.conn
                .out(b"553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n");
            return Ok(());
        }
        if let Some(rc) = &self.cfg.relayclient {
            a.extend_from_slice(rc);
        } else if !self.allowed(&a)? {
            self.conn
                .out(b"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n");
            return Ok(());
        }
        self.env.rcptto.push(a);
        self.conn.out(b"250 ok\r\n");
        Ok(())
    }

    fn allowed(&mut self, a: &[u8]) -> Result<bool, Error> {
        match self.cfg.rcpthosts.allowed(a) {
            Ok(ok) => Ok(ok),
            Err(_) => {
                self.conn.out(b"421 unable to read controls (#4.3.0)\r\n");
                let _ = self.conn.flush();
                Err(io::gone())
            }
        }
    }

    fn data(&mut self) -> Result<(), Error> {
        if !self.env.seenmail {
            self.conn.out(b"503 MAIL first (#5.5.1)\r\n");
            return Ok(());
        }
        if self.env.rcptto.is_empty() {
            self.conn.out(b"503 RCPT first (#5.5.1)\r\n");
            return Ok(());
        }
        self.env.seenmail = false;
        let Some(mut qq) = self.early.take().or_else(|| Qmail::open().ok()) else {
            self.conn.out(b"451 qqt failure (#4.3.0)\r\n");
            return Ok(());
        };
        let qp = qq.qp();
        self.conn.out(b"354 go ahead\r\n");
        let mut sink = QueueSink::new(qq, self.cfg.databytes);
        let proto = match self.conn.tls() {
            Some(t) => format!("({} encrypted) SMTP", t.cipher()),
            None => "SMTP".to_string(),
        };
        let rcvd = addr::received(
            &self.cfg.peer,
            self.fakehelo.as_deref(),
            &proto,
            crate::date822::now(),
        );
        sink.qq.put(&rcvd);
        let hops = data::blast(&mut self.conn, &mut sink)? >= MAXHOPS;
        let overflow = sink.overflowed();
        let result = sink.finish(hops, &self.env);
        self.reply_data(result, hops, overflow, qp);
        Ok(())
    }

    fn reply_data(&mut self, result: Result<(), String>, hops: bool, overflow: bool, qp: u32) {
        let qqx = match result {
            Ok(()) => {
                let r = format!("250 ok {} qp {qp}\r\n", crate::date822::now());
                self.conn.out(r.as_bytes());
                return;
            }
            Err(x) => x,
        };
        if hops {
            self.conn
                .out(b"554 too many hops, this message is looping (#5.4.6)\r\n");
        } else if overflow {
            self.conn
                .out(b"552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n");
        } else {
            let code: &[u8] = if qqx.starts_with('D') {
                b"554 "
            } else {
                b"451 "
            };
            self.conn.out(code);
            self.conn.out(qqx.get(1..).unwrap_or("").as_bytes());
            self.conn.out(b"\r\n");
        }
    }
}

/// The message on its way to qmail-queue, counting bytes against databytes.
struct QueueSink {
    qq: Qmail,
    /// Bytes still allowed plus one; 0 once the limit is passed (0 = no limit set).
    left: u64,
    limited: bool,
    failed: bool,
}

impl QueueSink {
    fn new(qq: Qmail, databytes: u64) -> QueueSink {
        QueueSink {
            qq,
            left: databytes.saturating_add(1),
            limited: databytes > 0,
            failed: false,
        }
    }

    fn overflowed(&self) -> bool {
        self.limited && self.left == 0
    }

    /// Finish: the envelope when all went well; otherwise an empty envelope,
    /// which qmail-queue refuses, so nothing partial is ever queued.
    fn finish(mut self, hops: bool, env: &Envelope) -> Result<(), String> {
        if hops || self.failed {
            self.qq.fail();
            let _ = self.qq.close();
            return Err("Zqq failed (#4.3.0)".into());
        }
        self.qq.from(&String::from_utf8_lossy(&env.mailfrom));
        for r in &env.rcptto {
            self.qq.to(&String::from_utf8_lossy(r));
        }
        self.qq.close()
    }
}

impl data::Sink for QueueSink {
    fn put(&mut self, b: &[u8]) {
        if self.failed {
            return;
        }
        if self.limited {
            let n = b.len() as u64;
            if n >= self.left {
                self.left = 0;
                self.failed = true;
                return;
            }
            self.left -= n;
        }
        self.qq.put(b);
    }
}
