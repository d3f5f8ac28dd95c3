//! qmail-local: deliver one message (on fd 0, seekable) for one user as
//! qmail-local(8) says: find the controlling .qmail file, set up the
//! documented environment, refuse loops, then carry out its lines in order
//! (maildir, mbox, program, forward). Results go to qmail-lspawn as qmail
//! prints them: bare texts on stderr with exit 0/100/111, and `did F+W+P`
//! (plus `qp N` after forwarding) on stdout.

pub mod env;

use crate::dotqmail::{self, Line};
use crate::forward::QueueJob;
use crate::{maildir, mbox};
use common::error::Style;
use common::Error;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// An error printed as the bare text qmail-local and its peers use.
pub fn bare(code: i32, msg: impl Into<String>) -> Error {
    Error {
        code,
        msg: msg.into(),
        style: Style::Bare,
    }
}

/// djb's error_temp: errno values that mean "try again later".
pub fn temp_errno(e: i32) -> bool {
    use libc::*;
    [
        EINTR,
        ENOMEM,
        ETXTBSY,
        EIO,
        ETIMEDOUT,
        EAGAIN,
        EWOULDBLOCK,
        EBUSY,
        ECONNABORTED,
        ECONNREFUSED,
        ECONNRESET,
        EDEADLK,
        EDQUOT,
        EFBIG,
        EHOSTDOWN,
        EHOSTUNREACH,
        EMFILE,
        ENETDOWN,
        ENETRESET,
        ENETUNREACH,
        ENFILE,
        ENOBUFS,
        ENOLCK,
        ENOSPC,
        ESTALE,
        ETOOMANYREFS,
        EUSERS,
    ]
    .contains(&e)
}

fn errtext(e: impl Into<common::error::Errno>) -> &'static str {
    e.into().text()
}

const USAGE: &str =
    "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty";

/// The command line: `[-nN] user homedir local dash ext domain sender aliasempty`.
#[derive(Debug, Clone)]
pub struct Args {
    /// false with -n: print what would be done instead of doing it.
    pub doit: bool,
    pub user: Vec<u8>,
    pub homedir: Vec<u8>,
    pub local: Vec<u8>,
    pub dash: Vec<u8>,
    pub ext: Vec<u8>,
    pub host: Vec<u8>,
    pub sender: Vec<u8>,
    pub aliasempty: Vec<u8>,
}

impl Args {
    pub fn parse(args: &[OsString]) -> Result<Args, Error> {
        let usage = || bare(100, USAGE);
        let p = common::getopt::parse(args, "nN").map_err(|_| usage())?;
        let doit = p.opts.last().is_none_or(|o| o.flag == b'N');
        let ops: Vec<Vec<u8>> = p.operands.into_iter().map(OsString::into_vec).collect();
        let [user, homedir, local, dash, ext, host, sender, aliasempty]: [Vec<u8>; 8] =
            ops.try_into().map_err(|_| usage())?;
        if homedir.first() != Some(&b'/') {
            return Err(usage());
        }
        Ok(Args {
            doit,
            user,
            homedir,
            local,
            dash,
            ext,
            host,
            sender,
            aliasempty,
        })
    }
}

/// What the deliveries have done so far.
#[derive(Debug, Default)]
struct Counts {
    file: u64,
    forward: u64,
    program: u64,
}

/// State for one run.
struct Local {
    args: Args,
    env: env::Env,
    msg: File,
    counts: Counts,
    forwardonly: bool,
    flag99: bool,
    recips: Vec<Vec<u8>>,
}

/// Run qmail-local with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let args = Args::parse(args)?;
    let home = OsStr::from_bytes(&args.homedir);
    std::env::set_current_dir(home).map_err(|e| {
        let home = String::from_utf8_lossy(&args.homedir);
        bare(
            111,
            format!("Unable to switch to {home}: {}. (#4.3.0)", errtext(e)),
        )
    })?;
    check_home(args.doit)?;
    let msg = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|_| bare(111, "Unable to rewind message. (#4.3.0)"))?;
    let env = env::Env::new(&args);
    let mut l = Local {
        args,
        env,
        msg,
        counts: Counts::default(),
        forwardonly: false,
        flag99: false,
        recips: Vec::new(),
    };
    l.deliver()
}

/// The home directory must not be group/world writable (that would let
/// others write .qmail files); sticky means the user is editing .qmail.
fn check_home(doit: bool) -> Result<(), Error> {
    let st = std::fs::metadata(".").map_err(|e| {
        bare(
            111,
            format!("Unable to stat home directory: {}. (#4.3.0)", errtext(e)),
        )
    })?;
    if st.mode() & 0o002 != 0 {
        return Err(bare(111, "Uh-oh: home directory is writable. (#4.7.0)"));
    }
    if st.mode() & 0o1000 != 0 {
        if doit {
            return Err(bare(
                111,
                "Home directory is sticky: user is editing his .qmail file. (#4.2.1)",
            ));
        }
        eprintln!("Warning: home directory is sticky.");
    }
    Ok(())
}

/// Open a .qmail candidate: Some((contents, owner-x-bit)) when it is a
/// regular file; a temporary or permission error defers.
fn open_qmail(name: &[u8]) -> Result<Option<(Vec<u8>, bool)>, Error> {
    let path = Path::new(OsStr::from_bytes(name));
    let shown = String::from_utf8_lossy(name);
    let fail = |e: std::io::Error| {
        bare(
            111,
            format!("Unable to open {shown}: {}. (#4.3.0)", errtext(e)),
        )
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let n = e.raw_os_error().unwrap_or(0);
            if temp_errno(n) || n == libc::EPERM || n == libc::EACCES {
                return Err(fail(e));
            }
            return Ok(None);
        }
    };
    let st = f.metadata().map_err(fail)?;
    if !st.file_type().is_file() {
        return Ok(None);
    }
    if st.mode() & 0o002 != 0 {
        return Err(bare(111, "Uh-oh: .qmail file is writable. (#4.7.0)"));
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut &f, &mut text)
        .map_err(|_| bare(111, "Out of memory. (#4.3.0)"))?;
    Ok(Some((text, st.mode() & 0o100 != 0)))
}

/// Whether an owner file exists (stat), deferring on temporary errors.
fn exists(name: &[u8]) -> Result<bool, Error> {
    match std::fs::metadata(Path::new(OsStr::from_bytes(name))) {
        Ok(_) => Ok(true),
        Err(e) if temp_errno(e.raw_os_error().unwrap_or(0)) => Err(bare(
            111,
            format!(
                "Unable to open {}: {}. (#4.3.0)",
                String::from_utf8_lossy(name),
                errtext(e)
            ),
        )),
        Err(_) => Ok(false),
    }
}

impl Local {
    fn deliver(&mut self) -> Result<(), Error> {
        if self.args.doit {
            self.check_loop()?;
        }
        self.env.export_early();
        let found = self.search()?;
        if found.is_none() && !self.args.dash.is_empty() {
            return Err(bare(100, "Sorry, no mailbox here by that name. (#5.1.1)"));
        }
        let newsender = self.new_sender()?;
        self.env.set("NEWSENDER", &newsender);
        let mut cmds = match found {
            Some((text, cutable)) if !text.is_empty() => {
                self.forwardonly = cutable;
                text
            }
            _ => self.args.aliasempty.clone(),
        };
        if cmds.last() != Some(&b'\n') {
            cmds.push(b'\n');
        }
        for (n, line) in dotqmail::parse(&cmds).into_iter().enumerate() {
            self.line(n, line)?;
            if self.flag99 {
                break;
            }
        }
        if !self.recips.is_empty() && self.args.doit {
            self.forward(&newsender)?;
        }
        self.print_counts();
        Ok(())
    }

    /// Refuse a message that already has our Delivered-To line in its header.
    fn check_loop(&mut self) -> Result<(), Error> {
        self.rewind()?;
        let dt = self.env.dtline.clone();
        let mut r = std::io::BufReader::new(&self.msg);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_until(&mut r, b'\n', &mut line).map_err(|e| {
                bare(
                    111,
                    format!("Unable to read message: {}. (#4.3.0)", errtext(e)),
                )
            })?;
            if n == 0 || line.last() != Some(&b'\n') || line.len() <= 1 {
                return Ok(());
            }
            if line == dt {
                return Err(bare(
                    100,
                    "This message is looping: it already has my Delivered-To line. (#5.4.6)",
                ));
            }
        }
    }

    /// The controlling .qmail file (contents and owner x bit), setting DEFAULT.
    fn search(&mut self) -> Result<Option<(Vec<u8>, bool)>, Error> {
        for (name, default) in dotqmail::candidates(&self.args.dash, &self.args.ext) {
            if let Some(found) = open_qmail(&name)? {
                if let Some(d) = default {
                    self.env.set("DEFAULT", &d);
                }
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// NEWSENDER: the sender, or the owner address when .qmail-EXT-owner
    /// exists (VERP form when .qmail-EXT-owner-default exists too).
    fn new_sender(&self) -> Result<Vec<u8>, Error> {
        let a = &self.args;
        if a.sender.is_empty() || a.sender == b"#@[]" {
            return Ok(a.sender.clone());
        }
        if !exists(&dotqmail::owner_name(&a.dash, &a.ext, "-owner"))? {
            return Ok(a.sender.clone());
        }
        let verp = exists(&dotqmail::owner_name(&a.dash, &a.ext, "-owner-default"))?;
        Ok(if verp {
            [&a.local[..], b"-owner-@", &a.host, b"-@[]"].concat()
        } else {
            [&a.local[..], b"-owner@", &a.host].concat()
        })
    }

    fn rewind(&mut self) -> Result<(), Error> {
        self.msg
            .seek(SeekFrom::Start(0))
            .map(|_| ())
            .map_err(|_| bare(111, "Unable to rewind message. (#4.3.0)"))
    }

    /// Say what -n would do.
    fn say(&self, kind: &str, what: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out
            .write_all(kind.as_bytes())
            .and_then(|_| out.write_all(what))
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
    }

    fn line(&mut self, n: usize, line: Line) -> Result<(), Error> {
        match line {
            Line::Blank if n == 0 => Err(bare(
                111,
                "Uh-oh: first line of .qmail file is blank. (#4.2.1)",
            )),
            Line::Blank | Line::Comment | Line::Ignored => Ok(()),
            Line::List => {
                self.forwardonly = true;
                Ok(())
            }
            Line::Maildir(p) => self.file(p, true),
            Line::Mbox(p) => self.file(p, false),
            Line::Program(p) => self.program(p),
            Line::Forward(a) => {
                self.counts.forward += 1;
                if self.args.doit {
                    self.recips.push(a);
                } else {
                    self.say("forward ", &a);
                }
                Ok(())
            }
        }
    }

    fn file(&mut self, path: Vec<u8>, is_maildir: bool) -> Result<(), Error> {
        self.counts.file += 1;
        if self.forwardonly {
            return Err(bare(
                111,
                "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)",
            ));
        }
        if !self.args.doit {
            self.say(if is_maildir { "maildir " } else { "mbox " }, &path);
            return Ok(());
        }
        self.rewind()?;
        let p = Path::new(OsStr::from_bytes(&path));
        let (rp, dt, uf) = (
            self.env.rpline.clone(),
            self.env.dtline.clone(),
            self.env.ufline.clone(),
        );
        if is_maildir {
            maildir::deliver(p, &rp, &dt, &mut self.msg)
        } else {
            mbox::deliver(p, &[&uf, &rp, &dt], &mut self.msg)
        }
    }

    fn program(&mut self, cmd: Vec<u8>) -> Result<(), Error> {
        self.counts.program += 1;
        if self.forwardonly {
            return Err(bare(
                111,
                "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)",
            ));
        }
        if !self.args.doit {
            self.say("program ", &cmd);
            return Ok(());
        }
        self.rewind()?;
        let _ = std::io::stdout().flush();
        let status = common::sig::default_signals(&mut std::process::Command::new("/bin/sh"))
            .arg("-c")
            .arg(OsStr::from_bytes(&cmd))
            .status()
            .map_err(|e| {
                bare(
                    111,
                    format!("Unable to run /bin/sh: {}. (#4.3.0)", errtext(e)),
                )
            })?;
        if status.signal().is_some() {
            return Err(bare(111, "Aack, child crashed. (#4.3.0)"));
        }
        match status.code().unwrap_or(111) {
            0 => Ok(()),
            99 => {
                self.flag99 = true;
                Ok(())
            }
            64 | 65 | 70 | 76 | 77 | 78 | 100 | 112 => Err(Error::silent(100)),
            _ => Err(Error::silent(111)),
        }
    }

    /// Send the message, with our Delivered-To on top, to every forward
    /// address in one qmail-queue run.
    fn forward(&mut self, newsender: &[u8]) -> Result<(), Error> {
        self.rewind()?;
        let fork_failed =
            |e: std::io::Error| bare(111, format!("Unable to fork: {}. (#4.3.0)", errtext(e)));
        let mut job = match QueueJob::open().map_err(fork_failed)? {
            Ok(job) => job,
            Err(e) => return Err(forward_failed(e)),
        };
        self.env.qp = job.pid();
        job.put(&self.env.dtline);
        if job.copy_from(&mut self.msg).is_err() {
            job.fail();
        }
        let to: Vec<&[u8]> = self.recips.iter().map(Vec::as_slice).collect();
        job.close(newsender, &to).map_err(forward_failed)
    }

    fn print_counts(&self) {
        let c = &self.counts;
        let mut s = format!("did {}+{}+{}\n", c.file, c.forward, c.program);
        if self.env.qp != 0 {
            s.push_str(&format!("qp {}\n", self.env.qp));
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
    }
}

fn forward_failed(e: crate::forward::QueueError) -> Error {
    bare(
        if e.permanent { 100 } else { 111 },
        format!("Unable to forward message: {}.", e.text),
    )
}
