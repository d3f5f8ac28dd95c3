//! The dnscache program: its environment (IP, IPSEND, CACHESIZE, ROOT,
//! UID, GID, FORWARDONLY, HIDETTL), its start-up in djbdns' order and
//! words, and its single event loop over non-blocking sockets: "wait for a
//! client query, an upstream answer, or a deadline; hand it to the query's
//! resolution; send what it says".
//!
//! Beyond djbdns, IP may carry a port (`127.0.0.1:5300`, `[::1]:5300`) so the
//! cache can run unprivileged; IPv6 addresses work for IP and IPSEND.
//!
//! Statistics for monitoring (opt-in, beyond djbdns): with `STATSFILE` set
//! in env/ (a path relative to ROOT, e.g. `STATSFILE=stats/dnscache.prom`
//! with root/stats/ writable by the dnscache user), counters of queries,
//! answers by rcode, truncations, refused clients, drops, upstream questions
//! and cache use are kept in that file in the Prometheus text format,
//! rewritten atomically at most once a second while anything changes (see
//! `stats`). Unset, nothing is written and the log is djbdns' own.

use crate::access::Access;
use crate::cache::Cache;
use crate::dnslog;
use crate::packet;
use crate::resolve::{Ctx, Resolution, Step};
use crate::roots::Roots;
use crate::stats::{Counters, Gauges, StatsFile};
use crate::transmit::{Event, Transmit};
use crate::udpbatch::{self, Receiver};
use common::Error;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// djbdns' limits on queries in progress.
const MAX_UDP: usize = 200;
const MAX_TCP: usize = 20;
/// How long a TCP client may take to send its query or read the answer.
const TCP_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings read from the environment.
struct Config {
    ipsend: IpAddr,
    cachesize: u64,
    forward_only: bool,
    hide_ttl: bool,
}

pub fn run() -> common::Result<()> {
    let ip = env("IP")?;
    let listen =
        parse_listen(&ip).ok_or_else(|| Error::temp(format!("unable to parse IP address {ip}")))?;
    let udp = UdpSocket::bind(listen).map_err(|e| Error::sys("unable to bind UDP socket", e))?;
    let tcp = TcpListener::bind(listen).map_err(|e| Error::sys("unable to bind TCP socket", e))?;
    droproot()?;
    read_seed();
    let send = env("IPSEND")?;
    let ipsend =
        parse_ip(&send).ok_or_else(|| Error::temp(format!("unable to parse IP address {send}")))?;
    let size = env("CACHESIZE")?;
    let cachesize = common::getopt::scan_ulong(std::ffi::OsStr::new(&size)).0;
    let cfg = Config {
        ipsend,
        cachesize,
        forward_only: std::env::var_os("FORWARDONLY").is_some(),
        hide_ttl: std::env::var_os("HIDETTL").is_some(),
    };
    let roots =
        Roots::load(Path::new("servers")).map_err(|e| Error::sys("unable to read servers", e))?;
    udp.set_nonblocking(true)
        .map_err(|e| Error::sys("unable to bind UDP socket", e))?;
    tcp.set_nonblocking(true)
        .map_err(|e| Error::sys("unable to listen on TCP socket", e))?;
    let mut server = Server::new(cfg, roots, udp, tcp);
    log_lines(&[dnslog::starting()]);
    server.serve()
}

fn env(name: &str) -> common::Result<String> {
    std::env::var(name).map_err(|_| Error::temp(format!("${name} not set")))
}

/// IP as an address (port 53) or address with port.
fn parse_listen(s: &str) -> Option<SocketAddr> {
    crate::stub::parse_server(s.trim())
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let bare = s.trim().trim_start_matches('[').trim_end_matches(']');
    bare.parse().ok()
}

/// chdir to $ROOT; when root, chroot there and become $GID/$UID.
fn droproot() -> common::Result<()> {
    let root = env("ROOT")?;
    std::env::set_current_dir(&root)
        .map_err(|e| Error::sys(format!("unable to chdir to {root}"), e))?;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    nix::unistd::chroot(".").map_err(|e| Error::sys(format!("unable to chroot to {root}"), e))?;
    let gid = env("GID")?;
    common::privs::set_gid(common::getopt::scan_ulong(std::ffi::OsStr::new(&gid)).0 as u32)?;
    let uid = env("UID")?;
    common::privs::set_uid(common::getopt::scan_ulong(std::ffi::OsStr::new(&uid)).0 as u32)
}

/// djbdns seeds its generator from stdin; ours uses the kernel's, but the
/// seed is still consumed so the run script's `exec <seed` behaves the same.
fn read_seed() {
    let mut seed = [0u8; 128];
    let _ = io::stdin().read(&mut seed);
}

/// Write log lines to stderr at once.
fn log_lines(lines: &[String]) {
    let mut log = LogBuf::default();
    log.lines(lines);
    log.flush();
}

/// Most bytes one write to the log carries: a pipe's atomic write size, so
/// multilog always reads whole lines, never a line split by another writer.
const LOG_WRITE: usize = 4096;

/// Log lines gathered during one turn of the loop and written together at
/// its end or before an answer leaves: one write for many lines instead of
/// one per line, the same bytes as djbdns writes.
#[derive(Default)]
struct LogBuf(Vec<u8>);

impl LogBuf {
    fn lines(&mut self, lines: &[String]) {
        for l in lines {
            if self.0.len() + l.len() + 1 > LOG_WRITE {
                self.flush();
            }
            self.0.extend_from_slice(l.as_bytes());
            self.0.push(b'\n');
        }
    }

    fn flush(&mut self) {
        if !self.0.is_empty() {
            let _ = io::stderr().lock().write_all(&self.0);
            self.0.clear();
        }
    }
}

/// Who asked a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Udp(SocketAddr),
    Tcp(usize),
}

/// A client query in progress.
struct Active {
    qnum: u64,
    client: Client,
    /// The client's header bytes 0..4 (id and flags) and question as sent.
    id: u16,
    rd: bool,
    question: Vec<u8>,
    /// The UDP payload size the client offered with EDNS0, if it did.
    edns: Option<u16>,
    resolution: Resolution,
    started: u64,
}

/// One upstream question in flight and the client queries waiting for its
/// answer: identical questions to the same servers are asked once
/// (CVE-2008-4392), so a spoofer gets one chance per question, not many.
struct Flight {
    transmit: Transmit,
    key: (Vec<u8>, u16, bool, Vec<SocketAddr>),
    waiters: Vec<usize>,
}

/// A TCP client connection.
struct TcpClient {
    stream: TcpStream,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    busy: bool,
    deadline: Instant,
}

/// What a poll entry stands for.
#[derive(Clone, Copy)]
enum Token {
    Udp,
    Listen,
    Tcp(usize),
    /// A flight and which of its sockets.
    Upstream(usize, usize),
}

struct Server {
    cfg: Config,
    roots: Roots,
    cache: Cache,
    udp: UdpSocket,
    tcp: TcpListener,
    queries: Vec<Option<Active>>,
    flights: Vec<Option<Flight>>,
    tcps: Vec<Option<TcpClient>>,
    numqueries: u64,
    last_stats: Instant,
    counters: Counters,
    stats_file: Option<StatsFile>,
    log: LogBuf,
    access: Access,
    receiver: Receiver,
    /// UDP answers of this loop turn, sent together once the log lines
    /// that led to them are written.
    udp_out: Vec<(SocketAddr, Vec<u8>)>,
}

impl Server {
    fn new(cfg: Config, roots: Roots, udp: UdpSocket, tcp: TcpListener) -> Server {
        Server {
            cache: Cache::new(cfg.cachesize),
            cfg,
            roots,
            udp,
            tcp,
            queries: Vec::new(),
            flights: Vec::new(),
            tcps: Vec::new(),
            numqueries: 0,
            last_stats: Instant::now(),
            counters: Counters::default(),
            stats_file: StatsFile::from_env(),
            log: LogBuf::default(),
            access: Access::new("ip"),
            receiver: Receiver::default(),
            udp_out: Vec::new(),
        }
    }

    /// The main loop: never returns except on a poll failure.
    fn serve(&mut self) -> common::Result<()> {
        loop {
            let (fds, tokens) = self.poll_set();
            let timeout = self.next_deadline().map_or(PollTimeout::NONE, |d| {
                let ms = d
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000) as u16;
                PollTimeout::from(ms)
            });
            let mut pfds: Vec<PollFd> = fds
                .iter()
                .map(|&(fd, write)| {
                    // SAFETY: every fd belongs to a socket owned by self for the whole poll.
                    let b = unsafe { BorrowedFd::borrow_raw(fd) };
                    PollFd::new(
                        b,
                        if write {
                            PollFlags::POLLOUT
                        } else {
                            PollFlags::POLLIN
                        },
                    )
                })
                .collect();
            match poll(&mut pfds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("unable to poll", e)),
            }
            let ready: Vec<Token> = pfds
                .iter()
                .zip(tokens.iter())
                .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, &t)| t)
                .collect();
            for t in ready {
                self.handle(t);
            }
            self.expire(Instant::now());
            self.log.flush();
            udpbatch::send_all(self.udp.as_raw_fd(), &self.udp_out);
            self.udp_out.clear();
            self.write_stats(Instant::now());
        }
    }

    /// Rewrite the opted-in statistics file when it is due.
    fn write_stats(&mut self, now: Instant) {
        let Some(file) = self.stats_file.as_mut() else {
            return;
        };
        let active_udp = self
            .queries
            .iter()
            .flatten()
            .filter(|q| matches!(q.client, Client::Udp(_)))
            .count();
        let g = Gauges {
            active_udp,
            active_tcp: self.queries.iter().flatten().count() - active_udp,
            flights: self.flights.iter().flatten().count(),
            cache_used: self.cache.used(),
            cache_size: self
                .cfg
                .cachesize
                .clamp(crate::cache::MIN_SIZE, crate::cache::MAX_SIZE),
            cache_motion: self.cache.motion,
        };
        file.maybe_write(now, &self.counters, &g);
    }

    /// Note a change the statistics file reports.
    fn touch(&mut self) {
        if let Some(f) = self.stats_file.as_mut() {
            f.touch();
        }
    }

    fn poll_set(&self) -> (Vec<(RawFd, bool)>, Vec<Token>) {
        let mut fds = vec![(self.udp.as_raw_fd(), false)];
        let mut tokens = vec![Token::Udp];
        if self.tcps.iter().flatten().count() < MAX_TCP {
            fds.push((self.tcp.as_raw_fd(), false));
            tokens.push(Token::Listen);
        }
        for (i, c) in self.tcps.iter().enumerate() {
            if let Some(c) = c {
                if !c.busy {
                    fds.push((c.stream.as_raw_fd(), !c.outbuf.is_empty()));
                    tokens.push(Token::Tcp(i));
                }
            }
        }
        for (f, flight) in self.flights.iter().enumerate() {
            for (k, fd, write) in flight.iter().flat_map(|fl| fl.transmit.poll_fds()) {
                fds.push((fd, write));
                tokens.push(Token::Upstream(f, k));
            }
        }
        (fds, tokens)
    }

    fn next_deadline(&self) -> Option<Instant> {
        let up = self.flights.iter().flatten().map(|f| f.transmit.deadline);
        let tc = self
            .tcps
            .iter()
            .flatten()
            .filter(|c| !c.busy)
            .map(|c| c.deadline);
        let st = self.stats_file.as_ref().and_then(StatsFile::deadline);
        up.chain(tc).chain(st).min()
    }

    fn handle(&mut self, t: Token) {
        let now = Instant::now();
        match t {
            Token::Udp => self.udp_queries(now),
            Token::Listen => self.accept(now),
            Token::Tcp(i) => self.tcp_io(i, now),
            Token::Upstream(f, k) => {
                let ev = match self.flights[f].as_mut() {
                    Some(fl) if k == 0 => fl.transmit.ready(now),
                    Some(fl) => fl.transmit.old_ready(k),
                    None => return,
                };
                self.flight_event(f, ev, now);
            }
        }
    }

    /// Deadlines: upstream tries time out, idle TCP clients are closed.
    fn expire(&mut self, now: Instant) {
        for f in 0..self.flights.len() {
            let ev = match self.flights[f].as_mut() {
                Some(fl) if fl.transmit.deadline <= now => fl.transmit.timeout(now),
                _ => continue,
            };
            self.flight_event(f, ev, now);
        }
        for i in 0..self.tcps.len() {
            if self.tcps[i]
                .as_ref()
                .is_some_and(|c| !c.busy && c.deadline <= now)
            {
                self.close_tcp(i, common::errstr::text(libc::ETIMEDOUT));
            }
        }
    }

    /// Read every waiting UDP query (a few batches at most per turn, so
    /// upstream answers and TCP clients get their turn too).
    fn udp_queries(&mut self, now: Instant) {
        self.access.refresh();
        for _ in 0..4 {
            let n = self.receiver.recv(self.udp.as_raw_fd());
            for i in 0..n {
                let Some((p, peer)) = self.receiver.get(i) else {
                    continue;
                };
                let packet = p.to_vec();
                self.udp_query(peer, &packet, now);
            }
            if n < udpbatch::BATCH {
                return;
            }
        }
    }

    fn udp_query(&mut self, peer: SocketAddr, packet: &[u8], now: Instant) {
        if !self.access.allowed(peer.ip()) {
            self.counters.refused_clients += 1;
            self.touch();
            return;
        }
        if self
            .queries
            .iter()
            .flatten()
            .filter(|q| matches!(q.client, Client::Udp(_)))
            .count()
            >= MAX_UDP
        {
            self.drop_oldest_udp();
        }
        self.new_query(Client::Udp(peer), packet, now);
    }

    fn drop_oldest_udp(&mut self) {
        let oldest = self
            .queries
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.as_ref().map(|q| (i, q)))
            .filter(|(_, q)| matches!(q.client, Client::Udp(_)))
            .min_by_key(|(_, q)| q.started)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            if let Some(q) = self.queries[i].take() {
                self.log
                    .lines(&[dnslog::drop(q.qnum, common::errstr::text(libc::ETIMEDOUT))]);
                self.counters.dropped += 1;
                self.leave_flights(i);
            }
        }
    }

    /// A client's packet: check it is one plain query, log it, start it.
    fn new_query(&mut self, client: Client, p: &[u8], now: Instant) {
        let Some(h) = packet::Header::parse(p) else {
            return;
        };
        if h.is_response() || h.flags[0] & 0x78 != 0 || h.qdcount != 1 {
            return;
        }
        let Some((q, end)) = packet::get_question(p, 12) else {
            return;
        };
        if q.qclass != packet::C_IN && q.qclass != packet::T_ANY {
            return;
        }
        self.numqueries += 1;
        match client {
            Client::Udp(_) => self.counters.udp_queries += 1,
            Client::Tcp(_) => self.counters.tcp_queries += 1,
        }
        self.touch();
        let peer = match client {
            Client::Udp(a) => a,
            Client::Tcp(i) => self.tcps[i]
                .as_ref()
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer),
        };
        self.log
            .lines(&[dnslog::query(self.numqueries, peer, h.id, q.qtype, &q.name)]);
        let mut question = q.name.clone();
        question.extend_from_slice(&p[end - 4..end]);
        let active = Active {
            qnum: self.numqueries,
            client,
            id: h.id,
            rd: h.flags[0] & 1 != 0,
            edns: packet::parse(p).and_then(|m| packet::edns_size(&m)),
            question,
            resolution: Resolution::new(&q.name, q.qtype),
            started: self.numqueries,
        };
        let slot = match self.queries.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.queries.push(None);
                self.queries.len() - 1
            }
        };
        self.queries[slot] = Some(active);
        let step = self.with_ctx(slot, now, |r, ctx| r.run(ctx));
        self.step(slot, step, now);
    }

    /// Run the query's resolution with the cache and roots, then log.
    fn with_ctx(
        &mut self,
        i: usize,
        now: Instant,
        f: impl FnOnce(&mut Resolution, &mut Ctx) -> Step,
    ) -> Step {
        let mut log = Vec::new();
        let step = {
            let q = self.queries[i].as_mut().expect("active query");
            let mut ctx = Ctx {
                cache: &mut self.cache,
                roots: &self.roots,
                forward_only: self.cfg.forward_only,
                log: &mut log,
                now,
            };
            f(&mut q.resolution, &mut ctx)
        };
        self.log.lines(&log);
        step
    }

    /// Carry out what the resolution said.
    fn step(&mut self, i: usize, step: Step, now: Instant) {
        match step {
            Step::Send {
                servers,
                qname,
                qtype,
                recursive,
            } => self.send(i, (qname, qtype, recursive, servers), now),
            Step::NextServer => {
                // Only answers give NextServer, and those are handled in
                // flight_event; a query without a flight has nothing to retry.
                let step = self.with_ctx(i, now, |r, ctx| r.all_failed(ctx));
                self.step(i, step, now);
            }
            Step::Done {
                rcode,
                records,
                ancount,
            } => self.respond(i, rcode, &records, ancount),
        }
    }

    /// Join the flight asking the same, or start one.
    fn send(&mut self, i: usize, key: (Vec<u8>, u16, bool, Vec<SocketAddr>), now: Instant) {
        let same = |f: &Option<Flight>| f.as_ref().is_some_and(|f| f.key == key);
        if let Some(f) = self.flights.iter().position(same) {
            if let Some(fl) = self.flights[f].as_mut() {
                fl.waiters.push(i);
            }
            return;
        }
        self.counters.upstream += 1;
        self.touch();
        let (qname, qtype, recursive, servers) = key.clone();
        let (transmit, ev) =
            Transmit::start(servers, &qname, qtype, recursive, self.cfg.ipsend, now);
        let flight = Flight {
            transmit,
            key,
            waiters: vec![i],
        };
        let f = match self.flights.iter().position(Option::is_none) {
            Some(f) => f,
            None => {
                self.flights.push(None);
                self.flights.len() - 1
            }
        };
        self.flights[f] = Some(flight);
        self.flight_event(f, ev, now);
    }

    /// A flight's answer or failure goes to every query waiting on it;
    /// those that find the answer lame keep the flight going to the next
    /// server.
    fn flight_event(&mut self, f: usize, ev: Event, now: Instant) {
        let mut ev = ev;
        loop {
            let waiters = match (&ev, self.flights[f].as_mut()) {
                (Event::Pending, _) | (_, None) => return,
                (_, Some(fl)) => std::mem::take(&mut fl.waiters),
            };
            let (server, buf) = match ev {
                Event::Answer(server, buf) => (server, buf),
                _ => {
                    self.flights[f] = None;
                    for w in waiters {
                        if self.queries[w].is_some() {
                            let step = self.with_ctx(w, now, |r, ctx| r.all_failed(ctx));
                            self.step(w, step, now);
                        }
                    }
                    return;
                }
            };
            let mut lame = Vec::new();
            let mut moved = Vec::new();
            for w in waiters {
                if self.queries[w].is_none() {
                    continue;
                }
                match self.with_ctx(w, now, |r, ctx| r.response(ctx, server, &buf)) {
                    Step::NextServer => lame.push(w),
                    step => moved.push((w, step)),
                }
            }
            self.maybe_stats(now);
            if lame.is_empty() {
                self.flights[f] = None;
            }
            for (w, step) in moved {
                self.step(w, step, now);
            }
            if lame.is_empty() {
                return;
            }
            let Some(fl) = self.flights[f].as_mut() else {
                return;
            };
            fl.waiters.extend(lame);
            ev = fl.transmit.next_server(now);
        }
    }

    fn maybe_stats(&mut self, now: Instant) {
        if now.duration_since(self.last_stats) >= Duration::from_secs(1) {
            self.last_stats = now;
            let udp = self
                .queries
                .iter()
                .flatten()
                .filter(|q| matches!(q.client, Client::Udp(_)))
                .count();
            let tcp = self.tcps.iter().flatten().count();
            self.log
                .lines(&[dnslog::stats(self.numqueries, self.cache.motion, udp, tcp)]);
        }
    }

    /// Send the answer to the client and end the query.
    fn respond(&mut self, i: usize, rcode: u8, records: &[u8], ancount: u16) {
        let Some(q) = self.queries[i].take() else {
            return;
        };
        self.count_rcode(rcode);
        let mut p = crate::response::build(&crate::response::Answer {
            id: q.id,
            rd: q.rd,
            rcode,
            question: &q.question,
            records,
            ancount,
            hide_ttl: self.cfg.hide_ttl,
            edns: q.edns.is_some(),
        });
        // What led to the answer reaches the log before the client has it:
        // UDP answers leave after the loop turn's log write, TCP answers
        // when the socket is next writable, after that write too.
        match q.client {
            Client::Udp(peer) => {
                let limit = q.edns.map_or(512, |s| s.clamp(512, packet::EDNS_SIZE));
                if p.len() > usize::from(limit) {
                    p.truncate(12 + q.question.len());
                    p[2] |= 2;
                    p[6..12].fill(0);
                    self.counters.truncated += 1;
                    if q.edns.is_some() {
                        crate::response::add_opt(&mut p);
                    }
                }
                let len = p.len();
                self.udp_out.push((peer, p));
                self.log.lines(&[dnslog::sent(q.qnum, len)]);
            }
            Client::Tcp(c) => {
                if let Some(c) = self.tcps[c].as_mut() {
                    c.outbuf = (p.len() as u16).to_be_bytes().to_vec();
                    c.outbuf.extend_from_slice(&p);
                    c.busy = false;
                    c.deadline = Instant::now() + TCP_CLIENT_TIMEOUT;
                }
                self.log.lines(&[dnslog::sent(q.qnum, p.len())]);
            }
        }
    }

    fn count_rcode(&mut self, rcode: u8) {
        match rcode {
            crate::resolve::RCODE_NXDOMAIN => self.counters.nxdomain += 1,
            crate::resolve::RCODE_SERVFAIL => self.counters.servfail += 1,
            _ => self.counters.noerror += 1,
        }
        self.touch();
    }

    fn accept(&mut self, now: Instant) {
        let Ok((stream, peer)) = self.tcp.accept() else {
            return;
        };
        self.access.refresh();
        if !self.access.allowed(peer.ip()) {
            self.counters.refused_clients += 1;
            self.touch();
            return;
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        self.log.lines(&[dnslog::tcpopen(peer)]);
        let c = TcpClient {
            stream,
            peer,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            busy: false,
            deadline: now + TCP_CLIENT_TIMEOUT,
        };
        match self.tcps.iter().position(Option::is_none) {
            Some(i) => self.tcps[i] = Some(c),
            None => self.tcps.push(Some(c)),
        }
    }

    /// A TCP client is readable or writable.
    fn tcp_io(&mut self, i: usize, now: Instant) {
        let Some(c) = self.tcps[i].as_mut() else {
            return;
        };
        if !c.outbuf.is_empty() {
            match c.stream.write(&c.outbuf) {
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.close_tcp(i, common::error::Errno::from(&e).text()),
            }
            return;
        }
        let mut buf = [0u8; 4096];
        match c.stream.read(&mut buf) {
            Ok(0) => return self.close_tcp(i, common::errstr::text(0)),
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => return self.close_tcp(i, common::error::Errno::from(&e).text()),
        }
        if c.inbuf.len() < 2 {
            return;
        }
        let want = usize::from(u16::from_be_bytes([c.inbuf[0], c.inbuf[1]]));
        if c.inbuf.len() < 2 + want {
            return;
        }
        let query: Vec<u8> = c.inbuf.drain(..2 + want).skip(2).collect();
        c.busy = true;
        self.new_query(Client::Tcp(i), &query, now);
        let pending = self
            .queries
            .iter()
            .flatten()
            .any(|q| q.client == Client::Tcp(i));
        let answered = self.tcps[i].as_ref().is_some_and(|c| !c.outbuf.is_empty());
        if !pending && !answered {
            self.close_tcp(i, common::errstr::text(libc::EPROTO));
        }
    }

    fn close_tcp(&mut self, i: usize, why: &str) {
        if let Some(c) = self.tcps[i].take() {
            self.log.lines(&[dnslog::tcpclose(c.peer, why)]);
        }
        for j in 0..self.queries.len() {
            if self.queries[j]
                .as_ref()
                .is_some_and(|q| q.client == Client::Tcp(i))
            {
                self.queries[j] = None;
                self.leave_flights(j);
            }
        }
    }

    /// A query was dropped: it waits on no flight any more, and a flight
    /// nobody waits on is abandoned.
    fn leave_flights(&mut self, i: usize) {
        for f in self.flights.iter_mut() {
            if let Some(fl) = f.as_mut() {
                fl.waiters.retain(|&w| w != i);
                if fl.waiters.is_empty() {
                    *f = None;
                }
            }
        }
    }
}
