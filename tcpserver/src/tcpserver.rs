//! tcpserver: accept TCP connections and run a program for each, with the
//! connection on descriptors 0 and 1 and the UCSPI variables in its
//! environment; rules from a cdb, a limit on concurrent children, the
//! original's -v log lines.
//!
//! One poll loop (signals through a self-pipe) owns the state. When a
//! connection may need lookups (names, ident), which can take seconds, the
//! loop forks and the child does the per-connection work (banner, lookups,
//! rules) before exec, as the original does. Without lookups the loop does
//! that work itself, which costs microseconds, and starts the child
//! detached (detach.rs): no copy of our address space, and no wait for the
//! exec, which on a 2-core machine kept a CPU idle under load.
//!
//! Opt-in beyond the original: -k hands connections to programs that ask
//! for more (common::keep, common::pool) instead of starting one per
//! connection, when no lookups are made; MAXCONNIP / MAXCONNC / MAXLOAD /
//! DIEMSG (as the widely shipped limits patch names them, set in the
//! environment or by a rule) cap the connections per client address and
//! per /24.

use crate::detach::{self, Detached, Line, Then};
use crate::env::{Argv, ChildEnv};
use crate::net;
use crate::rules;
use common::error::Errno;
use common::getopt::{getopt, scan_ulong};
use common::pool::{Pool, Report};
use common::{Error, Result};
use dnscache::stub::Resolver;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "tcpserver [ -461UXpPhHrRoOdDqQvk ] [ -c limit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] [ -I interface ] host port program";
const DROP: &str = "tcpserver: warning: dropping connection, ";
/// -k: connections one program serves (Postfix's smtpd default) and how
/// long it may wait for the next.
const KEEP_USES: u32 = 100;
const KEEP_IDLE: Duration = Duration::from_secs(60);

/// The command line.
pub struct Config {
    verbosity: u8,
    limit: usize,
    rules: Option<PathBuf>,
    allow_no_rules: bool,
    banner: Vec<u8>,
    uid: u32,
    gid: u32,
    backlog: i32,
    localname: Option<Vec<u8>>,
    remotehost: bool,
    paranoid: bool,
    remoteinfo: bool,
    timeout: u64,
    killopts: bool,
    delay: bool,
    print_port: bool,
    v4_only: bool,
    v6_env: bool,
    interface: Option<String>,
    /// -k: keep programs that can take more connections (common::pool).
    keep: bool,
    host: String,
    port: String,
    argv: Vec<OsString>,
}

fn num(o: &common::getopt::Opt) -> u64 {
    scan_ulong(o.arg.as_deref().unwrap_or_default()).0
}

/// Parse the options the way the original's getopt loop does.
pub fn parse(args: &[OsString]) -> Result<Config> {
    let p = getopt("tcpserver", args, "461UXpPhHrRoOdDqQvkc:x:B:g:u:b:l:t:I:")
        .ok_or_else(|| Error::usage(USAGE))?;
    let mut c = Config {
        verbosity: 1,
        limit: 40,
        rules: None,
        allow_no_rules: false,
        banner: Vec::new(),
        uid: 0,
        gid: 0,
        backlog: 20,
        localname: None,
        remotehost: true,
        paranoid: false,
        remoteinfo: true,
        timeout: 26,
        killopts: true,
        delay: true,
        print_port: false,
        v4_only: false,
        v6_env: false,
        interface: None,
        keep: false,
        host: String::new(),
        port: String::new(),
        argv: Vec::new(),
    };
    for o in &p.opts {
        let arg = || o.arg.clone().unwrap_or_default();
        match o.flag {
            b'b' => c.backlog = num(o).min(i32::MAX as u64) as i32,
            b'c' => c.limit = num(o) as usize,
            b'X' => c.allow_no_rules = true,
            b'x' => c.rules = Some(PathBuf::from(arg())),
            b'B' => c.banner = arg().as_bytes().to_vec(),
            b'd' => c.delay = true,
            b'D' => c.delay = false,
            b'v' => c.verbosity = 2,
            b'q' => c.verbosity = 0,
            b'Q' => c.verbosity = 1,
            b'P' => c.paranoid = false,
            b'p' => c.paranoid = true,
            b'O' => c.killopts = true,
            b'o' => c.killopts = false,
            b'H' => c.remotehost = false,
            b'h' => c.remotehost = true,
            b'R' => c.remoteinfo = false,
            b'r' => c.remoteinfo = true,
            b't' => c.timeout = num(o),
            b'U' => env_uid_gid(&mut c),
            b'u' => c.uid = num(o) as u32,
            b'g' => c.gid = num(o) as u32,
            b'1' => c.print_port = true,
            b'l' => c.localname = Some(arg().as_bytes().to_vec()),
            b'4' => c.v4_only = true,
            b'6' => c.v6_env = true,
            b'I' => c.interface = Some(arg().to_string_lossy().into_owned()),
            b'k' => c.keep = true,
            _ => {}
        }
    }
    let mut ops = p.operands.into_iter();
    let (Some(host), Some(port)) = (ops.next(), ops.next()) else {
        return Err(Error::usage(USAGE));
    };
    c.host = host.to_string_lossy().into_owned();
    c.port = port.to_string_lossy().into_owned();
    c.argv = ops.collect();
    if c.argv.is_empty() {
        return Err(Error::usage(USAGE));
    }
    Ok(c)
}

/// -U: $UID and $GID, as envuidgid leaves them.
fn env_uid_gid(c: &mut Config) {
    if let Some(u) = std::env::var_os("UID") {
        c.uid = scan_ulong(&u).0 as u32;
    }
    if let Some(g) = std::env::var_os("GID") {
        c.gid = scan_ulong(&g).0 as u32;
    }
}

/// `tcpserver opts host port prog...`
pub fn run(args: &[OsString]) -> Result<()> {
    let cfg = parse(args)?;
    let quiet = cfg.verbosity == 0;
    serve(cfg).map_err(|e| if quiet { Error::silent(e.code) } else { e })
}

/// What the parent knows of one live child.
struct Child {
    pid: libc::pid_t,
    ip: IpAddr,
    /// A detached child's data, which it may use until it execs.
    _detached: Option<Box<Detached>>,
}

struct Server {
    cfg: Config,
    listener: OwnedFd,
    sig_r: OwnedFd,
    term: Arc<AtomicBool>,
    children: Vec<Child>,
    pool: Pool,
    pollfds: Vec<libc::pollfd>,
    env: ChildEnv,
    argv: Argv,
    key: Vec<u8>,
    data: Vec<u8>,
    line: Vec<u8>,
}

fn serve(cfg: Config) -> Result<()> {
    let (sig_r, term) = signals()?;
    let host = net::parse_listen_host(&cfg.host, cfg.v4_only)?;
    let port = net::parse_port("tcpserver", &cfg.port)?;
    let listener = net::listen(
        host,
        port,
        cfg.backlog,
        cfg.v4_only,
        cfg.interface.as_deref(),
    )?;
    let local = net::local_addr(listener.as_raw_fd())
        .map_err(|e| Error::sys("unable to get local address", e))?;
    if cfg.gid != 0 {
        common::privs::set_gid(cfg.gid).map_err(|e| reword(e, "unable to set gid"))?;
    }
    if cfg.uid != 0 {
        common::privs::set_uid(cfg.uid).map_err(|e| reword(e, "unable to set uid"))?;
    }
    if cfg.print_port {
        let mut out = io::stdout();
        let _ = writeln!(out, "{}", local.port()).and_then(|()| out.flush());
    }
    // The original closes 0 and 1 once listening; /dev/null in their
    // place keeps accepted sockets off descriptors 0 and 1.
    common::keep::null_stdio();
    // Only the programs we start with -k may see it.
    std::env::remove_var(common::keep::VAR);
    let argv = Argv::new(&cfg.argv).ok_or_else(|| Error::usage(USAGE))?;
    let limit = cfg.limit;
    let mut s = Server {
        cfg,
        listener,
        sig_r,
        term,
        children: Vec::with_capacity(limit.min(65536)),
        pool: Pool::new(KEEP_USES, KEEP_IDLE),
        pollfds: Vec::new(),
        env: ChildEnv::from_process(),
        argv,
        key: Vec::with_capacity(256),
        data: Vec::with_capacity(256),
        line: Vec::with_capacity(512),
    };
    s.status(0);
    s.main_loop()
}

/// Keep the system call's reason, with the original's wording before it.
fn reword(e: Error, what: &str) -> Error {
    let why = e.msg.rsplit(": ").next().unwrap_or("").to_string();
    Error::temp(format!("{what}: {why}"))
}

/// SIGCHLD and SIGTERM wake the loop through a pipe; SIGTERM also sets a flag.
fn signals() -> Result<(OwnedFd, Arc<AtomicBool>)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == -1 {
        return Err(Error::sys("unable to create pipe", Errno::last()));
    }
    // SAFETY: both descriptors were just created and are ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let term = Arc::new(AtomicBool::new(false));
    let fail = |e: io::Error| Error::sys("unable to catch signals", e);
    signal_hook::flag::register(libc::SIGTERM, Arc::clone(&term)).map_err(fail)?;
    let w2 = w.try_clone().map_err(fail)?;
    signal_hook::low_level::pipe::register(libc::SIGCHLD, w).map_err(fail)?;
    signal_hook::low_level::pipe::register(libc::SIGTERM, w2).map_err(fail)?;
    Ok((r, term))
}

/// The verdict on one connection.
enum Verdict {
    Allow,
    /// Denied by a rule, or by a limit (its log tag).
    Deny(Option<&'static str>),
    /// The original's "dropping connection" cases.
    Drop(String),
}

/// What the -v lines say about a connection.
#[derive(Default)]
struct Seen {
    local_host: Option<Vec<u8>>,
    local_ip: String,
    local_port: String,
    remote_host: Option<Vec<u8>>,
    remote_ip: String,
    remote_port: String,
    info: Option<Vec<u8>>,
}

impl Server {
    fn main_loop(&mut self) -> Result<()> {
        loop {
            let can_accept = self.children.len() < self.cfg.limit;
            let timeout = self.pool.expire(Instant::now());
            self.fill_pollfds(can_accept);
            let fds = &mut self.pollfds;
            // SAFETY: poll on our own array of pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n <= 0 {
                continue;
            }
            if self.pollfds[0].revents != 0 {
                self.drain_signals();
                if self.term.load(Ordering::Relaxed) {
                    return Ok(());
                }
                self.reap();
            }
            for i in 2..self.pollfds.len() {
                if self.pollfds[i].revents != 0 {
                    self.kept_done(self.pollfds[i].fd);
                }
            }
            if can_accept && self.pollfds[1].revents != 0 {
                self.accept_some();
            }
        }
    }

    /// The signal pipe, the listener (while below the limit), and the
    /// sockets of kept programs serving a connection.
    fn fill_pollfds(&mut self, can_accept: bool) {
        let fd = |fd, on: bool| libc::pollfd {
            fd,
            events: if on { libc::POLLIN } else { 0 },
            revents: 0,
        };
        self.pollfds.clear();
        self.pollfds.push(fd(self.sig_r.as_raw_fd(), true));
        self.pollfds.push(fd(self.listener.as_raw_fd(), can_accept));
        self.pollfds.extend(self.pool.busy().map(|s| fd(s, true)));
    }

    /// A kept program's connection is over: its end, as the original logs
    /// a child's exit.
    fn kept_done(&mut self, sock: RawFd) {
        if let Some(Report::Done(pid, code)) = self.pool.read(sock, Instant::now()) {
            self.ended(pid, (code & 0xff) << 8);
        }
    }

    fn drain_signals(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into our buffer from our non-blocking pipe.
        while unsafe { libc::read(self.sig_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0
        {
        }
    }

    fn reap(&mut self) {
        loop {
            let mut wstat = 0;
            // SAFETY: plain waitpid on any child.
            let pid = unsafe { libc::waitpid(-1, &mut wstat, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.pool.forget(pid);
            self.ended(pid, wstat);
        }
    }

    /// Child `pid` is done with its connection; a kept program waiting for
    /// the next one has had its end logged already.
    fn ended(&mut self, pid: libc::pid_t, wstat: i32) {
        let Some(i) = self.children.iter().position(|c| c.pid == pid) else {
            return;
        };
        self.children.swap_remove(i);
        if self.cfg.verbosity >= 2 {
            self.line.clear();
            let _ = writeln!(self.line, "tcpserver: end {pid} status {wstat}");
            write_stderr(&self.line);
        }
        self.status(self.children.len());
    }

    fn status(&mut self, n: usize) {
        if self.cfg.verbosity >= 2 {
            self.line.clear();
            let _ = writeln!(self.line, "tcpserver: status: {n}/{}", self.cfg.limit);
            write_stderr(&self.line);
        }
    }

    /// Accept while below the limit and connections are waiting.
    fn accept_some(&mut self) {
        for _ in 0..16 {
            if self.children.len() >= self.cfg.limit {
                return;
            }
            match net::accept(self.listener.as_raw_fd()) {
                Ok((fd, peer)) => self.handle(fd, peer),
                Err(e) if e.0 == libc::EAGAIN => return,
                Err(_) => continue,
            }
        }
    }

    /// Whether a connection needs the resolver (names or ident).
    fn lookups(&self) -> bool {
        self.cfg.remotehost || self.cfg.remoteinfo || self.cfg.localname.is_none()
    }

    fn handle(&mut self, fd: OwnedFd, peer: SocketAddr) {
        let remote = if self.cfg.v6_env {
            SocketAddr::new(IpAddr::V6(net::mapped(peer.ip())), peer.port())
        } else {
            SocketAddr::new(net::unmap(peer.ip()), peer.port())
        };
        self.status(self.children.len() + 1);
        let started = if self.lookups() {
            self.fork_child(fd.as_raw_fd(), remote, peer)
                .map(|pid| (pid, None))
        } else {
            self.detach_child(fd.as_raw_fd(), remote, peer)
        };
        match started {
            Ok((pid, detached)) => self.children.push(Child {
                pid,
                ip: remote.ip(),
                _detached: detached,
            }),
            Err(e) => {
                if self.cfg.verbosity >= 1 {
                    write_stderr(format!("{DROP}unable to fork: {}\n", e.text()).as_bytes());
                }
                self.status(self.children.len());
            }
        }
    }

    /// With lookups (which may take seconds) a forked child does
    /// everything the original's child does.
    fn fork_child(
        &mut self,
        fd: RawFd,
        remote: SocketAddr,
        peer: SocketAddr,
    ) -> std::result::Result<libc::pid_t, Errno> {
        // SAFETY: the program is single-threaded; the child only runs our
        // code and then execs or exits.
        match unsafe { libc::fork() } {
            -1 => Err(Errno::last()),
            0 => self.child(fd, remote, peer),
            pid => Ok(pid),
        }
    }

    /// Without lookups we examine the connection ourselves and a detached
    /// child writes the -v lines and execs (or exits, when denied); under
    /// -k a kept program may take the connection instead.
    fn detach_child(
        &mut self,
        fd: RawFd,
        remote: SocketAddr,
        peer: SocketAddr,
    ) -> std::result::Result<(libc::pid_t, Option<Box<Detached>>), Errno> {
        let (seen, verdict) = self.examine(fd, remote, peer, false);
        let mut lines = Vec::new();
        if self.cfg.verbosity >= 2 {
            lines.push(Line {
                head: b"tcpserver: pid ".to_vec(),
                pid: true,
                tail: format!(" from {}\n", remote.ip()).into_bytes(),
            });
        }
        let (more, code) = self.outcome(fd, &seen, verdict, false);
        lines.extend(more);
        let then = match code {
            Some(code) => Then::Exit(code),
            None if self.cfg.keep => return self.keep_child(fd, lines),
            None => self.exec(fd, None),
        };
        let (pid, d) = detach::spawn(lines, then).map_err(Errno)?;
        Ok((pid, Some(d)))
    }

    /// -k: a waiting program takes the connection, or a new one starts
    /// that may take more.
    fn keep_child(
        &mut self,
        fd: RawFd,
        lines: Vec<Line>,
    ) -> std::result::Result<(libc::pid_t, Option<Box<Detached>>), Errno> {
        if self.pool.has_idle() {
            if let Some(pid) = self.pool.hand_over(fd, self.env.snapshot().bytes()) {
                self.write_lines(pid, &lines);
                return Ok((pid, None));
            }
        }
        let (ours, theirs) = Pool::pair().map_err(|e| Errno(e as i32))?;
        self.env.set(
            common::keep::VAR.as_bytes(),
            Some(self.cfg.argv[0].as_bytes()),
        );
        let then = self.exec(fd, Some(theirs.as_raw_fd()));
        let (pid, d) = detach::spawn(lines, then).map_err(Errno)?;
        self.pool.add(pid, ours);
        Ok((pid, Some(d)))
    }

    /// A detached child's exec of the program on connection `fd`, with
    /// `keep` as its descriptor 3 under -k.
    fn exec(&self, fd: RawFd, keep: Option<RawFd>) -> Then {
        let fail = (self.cfg.verbosity >= 1).then(|| {
            let prog = self.cfg.argv[0].to_string_lossy();
            format!("{DROP}unable to run {prog}: ").into_bytes()
        });
        Then::Exec {
            fd,
            keep: keep.unwrap_or(-1),
            prog: self.argv.prog(),
            argv: self.argv.as_ptr(),
            env: self.env.snapshot(),
            fail,
        }
    }

    /// The child's part: log, examine, then exec or exit.
    fn child(&mut self, fd: RawFd, remote: SocketAddr, peer: SocketAddr) -> ! {
        // SAFETY: closing our copy of the listening descriptor.
        unsafe { libc::close(self.listener.as_raw_fd()) };
        let pid = self.own_pid();
        self.log_from(pid, &remote);
        let lookups = self.lookups();
        let (seen, verdict) = self.examine(fd, remote, peer, lookups);
        self.finish_child(fd, seen, verdict)
    }

    /// In a forked child: report the verdict, then exec the program or exit.
    fn finish_child(&mut self, fd: RawFd, seen: Seen, verdict: Verdict) -> ! {
        let pid = self.own_pid();
        let (lines, code) = self.outcome(fd, &seen, verdict, true);
        self.write_lines(pid, &lines);
        match code {
            Some(code) => exit(code),
            None => self.exec_here(fd),
        }
    }

    /// The -v lines of a connection served by `pid`.
    fn write_lines(&mut self, pid: libc::pid_t, lines: &[Line]) {
        for l in lines {
            self.line.clear();
            self.line.extend_from_slice(&l.head);
            if l.pid {
                let _ = write!(self.line, "{pid}");
            }
            self.line.extend_from_slice(&l.tail);
            write_stderr(&self.line);
        }
    }

    /// What a verdict means, for a forked or a detached child: the -v
    /// lines to write (after the `pid ... from` line), and the exit code,
    /// or None to run the program. A limit's DIEMSG goes to the client here.
    fn outcome(
        &self,
        fd: RawFd,
        seen: &Seen,
        verdict: Verdict,
        may_pause: bool,
    ) -> (Vec<Line>, Option<i32>) {
        match verdict {
            Verdict::Drop(why) => {
                let lines = (self.cfg.verbosity >= 1).then(|| Line {
                    head: format!("{DROP}{why}\n").into_bytes(),
                    pid: false,
                    tail: Vec::new(),
                });
                (lines.into_iter().collect(), Some(111))
            }
            Verdict::Deny(tag) => {
                let lines = self.verdict_line(seen, &Verdict::Deny(tag));
                if tag.is_some() {
                    self.refuse_for_limit(fd, may_pause);
                }
                (lines.into_iter().collect(), Some(100))
            }
            Verdict::Allow => {
                let lines = self.verdict_line(seen, &Verdict::Allow);
                (lines.into_iter().collect(), None)
            }
        }
    }

    /// The child's pid for the -v lines (not asked for when nothing is logged).
    fn own_pid(&self) -> libc::pid_t {
        if self.cfg.verbosity >= 2 {
            std::process::id() as libc::pid_t
        } else {
            0
        }
    }

    /// The limits patch: DIEMSG and CRLF to the client, or a pause (in a
    /// forked child; the accept loop itself must not pause, so without a
    /// child of our own the connection is closed at once).
    fn refuse_for_limit(&self, fd: RawFd, may_pause: bool) {
        match self.env.get(b"DIEMSG") {
            Some(msg) => {
                let mut m = msg.to_vec();
                m.extend_from_slice(b"\r\n");
                write_fd(fd, &m);
            }
            None if may_pause => std::thread::sleep(Duration::from_secs(1)),
            None => {}
        }
    }

    fn exec_here(&mut self, fd: RawFd) -> ! {
        // SAFETY: descriptor and signal plumbing in the child before exec.
        unsafe {
            if libc::dup2(fd, 0) == -1 || libc::dup2(fd, 1) == -1 {
                let e = Errno::last();
                write_stderr(
                    format!("{DROP}unable to set up descriptors: {}\n", e.text()).as_bytes(),
                );
                exit(111);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            let envp = self.env.envp();
            libc::execvpe(
                self.argv.prog(),
                self.argv.as_ptr(),
                envp as *const *mut libc::c_char as *const *const libc::c_char,
            );
        }
        let e = Errno::last();
        if self.cfg.verbosity >= 1 {
            let prog = self.cfg.argv[0].to_string_lossy();
            write_stderr(format!("{DROP}unable to run {prog}: {}\n", e.text()).as_bytes());
        }
        exit(111)
    }

    /// Everything the original's child does before exec: socket options,
    /// banner, local address, names, ident, environment, rules, limits.
    fn examine(
        &mut self,
        fd: RawFd,
        remote: SocketAddr,
        peer: SocketAddr,
        lookups: bool,
    ) -> (Seen, Verdict) {
        let mut seen = Seen::default();
        if self.cfg.killopts && peer.ip().to_canonical().is_ipv4() {
            net::kill_ip_options(fd);
        }
        if !self.cfg.delay {
            net::setopt(&Raw(fd), libc::IPPROTO_TCP, libc::TCP_NODELAY, &1);
        }
        if !self.cfg.banner.is_empty() && !write_fd(fd, &self.cfg.banner) {
            return (
                seen,
                Verdict::Drop(format!("unable to print banner: {}", Errno::last().text())),
            );
        }
        let local = match net::local_addr(fd) {
            Ok(l) => l,
            Err(e) => {
                return (
                    seen,
                    Verdict::Drop(format!("unable to get local address: {}", e.text())),
                )
            }
        };
        let local_ip = if self.cfg.v6_env {
            IpAddr::V6(net::mapped(local.ip()))
        } else if remote.is_ipv4() {
            net::unmap(local.ip())
        } else {
            local.ip()
        };
        let v6 = local_ip.is_ipv6();
        seen.local_ip = local_ip.to_string();
        seen.local_port = local.port().to_string();
        seen.remote_ip = remote.ip().to_string();
        seen.remote_port = remote.port().to_string();
        let resolver = lookups.then(Resolver::from_env);
        seen.local_host = match (&self.cfg.localname, &resolver) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(r)) => r
                .name(local.ip().to_canonical())
                .ok()
                .flatten()
                .map(String::into_bytes),
            (None, None) => None,
        };
        if let (true, Some(r)) = (self.cfg.remotehost, &resolver) {
            seen.remote_host = self.remote_name(r, remote.ip());
        }
        if self.cfg.remoteinfo && lookups {
            seen.info = net::remote_info(local, peer, Duration::from_secs(self.cfg.timeout));
        }
        self.set_env(&seen, v6, peer);
        let mut verdict = match self.apply_rules(&seen) {
            Ok(v) => v,
            Err(e) => return (seen, Verdict::Drop(e)),
        };
        if let Verdict::Allow = verdict {
            verdict = self.check_limits(remote.ip());
        }
        (seen, verdict)
    }

    /// TCPREMOTEHOST, checked against its addresses under -p.
    fn remote_name(&self, r: &Resolver, ip: IpAddr) -> Option<Vec<u8>> {
        let name = r.name(ip.to_canonical()).ok().flatten()?;
        if self.cfg.paranoid {
            let ips = net::lookup_host(r, &name, false).ok()?;
            if !ips.iter().any(|a| net::unmap(*a) == ip.to_canonical()) {
                return None;
            }
        }
        Some(name.into_bytes())
    }

    fn set_env(&mut self, seen: &Seen, v6: bool, peer: SocketAddr) {
        let e = &mut self.env;
        e.clear();
        e.set_str("PROTO", Some(if v6 { "TCP6" } else { "TCP" }));
        let prefixes: &[&str] = if v6 { &["TCP", "TCP6"] } else { &["TCP"] };
        for p in prefixes {
            let name = |s: &str| format!("{p}{s}");
            e.set(name("LOCALIP").as_bytes(), Some(seen.local_ip.as_bytes()));
            e.set(
                name("LOCALPORT").as_bytes(),
                Some(seen.local_port.as_bytes()),
            );
            e.set(name("LOCALHOST").as_bytes(), seen.local_host.as_deref());
            e.set(name("REMOTEIP").as_bytes(), Some(seen.remote_ip.as_bytes()));
            e.set(
                name("REMOTEPORT").as_bytes(),
                Some(seen.remote_port.as_bytes()),
            );
            e.set(name("REMOTEHOST").as_bytes(), seen.remote_host.as_deref());
            e.set(name("REMOTEINFO").as_bytes(), seen.info.as_deref());
        }
        if let SocketAddr::V6(a) = peer {
            if v6 && a.scope_id() != 0 {
                let ifname = net::if_name(a.scope_id());
                e.set_str("TCP6INTERFACE", ifname.as_deref());
            }
        }
    }

    /// Follow the first matching rule: deny, or set its variables.
    fn apply_rules(&mut self, seen: &Seen) -> std::result::Result<Verdict, String> {
        let Some(path) = &self.cfg.rules else {
            return Ok(Verdict::Allow);
        };
        let fail = |e: &io::Error| {
            format!(
                "unable to read {}: {}",
                path.display(),
                Errno::from(e).text()
            )
        };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && self.cfg.allow_no_rules => {
                return Ok(Verdict::Allow)
            }
            Err(e) => return Err(fail(&e)),
        };
        let peer = rules::Peer {
            ip: &seen.remote_ip,
            host: seen.remote_host.as_deref(),
            info: seen.info.as_deref(),
        };
        let found =
            rules::lookup(&file, &peer, &mut self.key, &mut self.data).map_err(|e| fail(&e))?;
        let mut deny = false;
        if found {
            for (ins, _) in rules::instructions(&self.data) {
                match ins {
                    rules::Instruction::Deny => deny = true,
                    rules::Instruction::Set(n, v) => self.env.set(n, Some(v)),
                    rules::Instruction::Other => {}
                }
            }
        }
        Ok(if deny {
            Verdict::Deny(None)
        } else {
            Verdict::Allow
        })
    }

    /// MAXLOAD, MAXCONNIP, MAXCONNC when set (environment or rule).
    fn check_limits(&self, ip: IpAddr) -> Verdict {
        let get = |n: &[u8]| {
            self.env
                .get(n)
                .map(|v| scan_ulong(std::ffi::OsStr::from_bytes(v)).0 as usize)
        };
        if let Some(max) = get(b"MAXLOAD") {
            let mut load = [0f64; 1];
            // SAFETY: room for one sample.
            if unsafe { libc::getloadavg(load.as_mut_ptr(), 1) } == 1
                && (load[0] * 100.0) as usize >= max
            {
                return Verdict::Deny(Some("LOAD:"));
            }
        }
        if let Some(max) = get(b"MAXCONNIP") {
            if self.children.iter().filter(|c| c.ip == ip).count() >= max {
                return Verdict::Deny(Some("MAXCONNIP:"));
            }
        }
        if let Some(max) = get(b"MAXCONNC") {
            let same_net = |a: &IpAddr| match (a, &ip) {
                (IpAddr::V4(x), IpAddr::V4(y)) => x.octets()[..3] == y.octets()[..3],
                (IpAddr::V6(x), IpAddr::V6(y)) => x.segments()[..4] == y.segments()[..4],
                _ => false,
            };
            if self.children.iter().filter(|c| same_net(&c.ip)).count() >= max {
                return Verdict::Deny(Some("MAXCONNC:"));
            }
        }
        Verdict::Allow
    }

    fn log_from(&mut self, pid: libc::pid_t, remote: &SocketAddr) {
        if self.cfg.verbosity >= 2 {
            self.line.clear();
            let _ = writeln!(self.line, "tcpserver: pid {pid} from {}", remote.ip());
            write_stderr(&self.line);
        }
    }

    /// The verdict's -v line, `tcpserver: ok|deny PID lhost:lip:lport
    /// rhost:rip:info:rport`, the pid left out (None below -v).
    fn verdict_line(&self, seen: &Seen, v: &Verdict) -> Option<Line> {
        if self.cfg.verbosity < 2 {
            return None;
        }
        let head = match v {
            Verdict::Allow => b"tcpserver: ok ".to_vec(),
            _ => b"tcpserver: deny ".to_vec(),
        };
        let mut l = vec![b' '];
        safe(&mut l, seen.local_host.as_deref());
        let _ = write!(l, ":{}:{} ", seen.local_ip, seen.local_port);
        safe(&mut l, seen.remote_host.as_deref());
        let _ = write!(l, ":{}:", seen.remote_ip);
        safe(&mut l, seen.info.as_deref());
        let _ = write!(l, ":{}", seen.remote_port);
        if let Verdict::Deny(Some(tag)) = v {
            let _ = write!(l, " {tag}");
        }
        l.push(b'\n');
        Some(Line {
            head,
            pid: true,
            tail: l,
        })
    }
}

/// A raw descriptor as AsRawFd, for net::setopt.
struct Raw(RawFd);
impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A field of a log line as the original prints it: at most 100 bytes (then
/// `...`), bytes outside 33..126 and the separator `:` as `?`.
fn safe(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else { return };
    for &c in s.iter().take(100) {
        out.push(if !(33..=126).contains(&c) || c == b':' {
            b'?'
        } else {
            c
        });
    }
    if s.len() > 100 {
        out.extend_from_slice(b"...");
    }
}

fn write_fd(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last().0 == libc::EINTR {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// One log line, one write.
fn write_stderr(line: &[u8]) {
    write_fd(2, line);
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips the parent's atexit handlers and buffers, as a
    // forked child must.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn guide_command_lines_parse() {
        let c = parse(&args(
            "-l 0 -H -v -p -x /etc/tcp.smtp.cdb -u 7770 -g 2108 0 smtp prog",
        ))
        .unwrap();
        assert_eq!(
            (c.uid, c.gid, c.verbosity, c.paranoid, c.remotehost),
            (7770, 2108, 2, true, false)
        );
        let c = parse(&args(
            "-H -R -x /etc/tcp.smtp.cdb -c100 -u508 -g503 0 smtp prog a",
        ))
        .unwrap();
        assert_eq!(
            (c.limit, c.uid, c.gid, c.remoteinfo),
            (100, 508, 503, false)
        );
        assert_eq!(c.argv.len(), 2);
        let c = parse(&args("-vRHl0 0 25 x")).unwrap();
        assert_eq!(c.localname.as_deref(), Some(&b"0"[..]));
        assert_eq!((c.limit, c.backlog, c.timeout), (40, 20, 26));
        assert!(parse(&args("0 25")).is_err());
        assert_eq!(
            parse(&args("-Z 0 25 x")).err().unwrap().line("tcpserver"),
            format!("tcpserver: usage: {USAGE}")
        );
    }

    #[test]
    fn log_fields_are_sanitised() {
        let mut v = Vec::new();
        safe(&mut v, Some(b"a b:c\x7f"));
        assert_eq!(v, b"a?b?c?");
        v.clear();
        safe(&mut v, Some(&[b'x'; 101]));
        assert_eq!(v.len(), 103);
    }
}
