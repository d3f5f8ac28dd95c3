//! dnscache's upstream queries, non-blocking for its single event loop:
//! like djbdns' dns_transmit, each question goes to its servers in rounds
//! of growing timeouts (1, 3, 11, 45 s), each try from a fresh socket on a
//! random port with a random id, connected to the server asked; an answer
//! counts only if it is a response to exactly that question. A truncated
//! answer is asked again over TCP of the same server. Servers that fail or
//! refuse are not asked again for this question. Unlike djbdns the sockets
//! of earlier tries stay open until the question is settled, so a slow
//! server's late but genuine answer is still taken.

use crate::packet;
use crate::stub::random_bytes;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

const ROUNDS: [u64; 4] = [1, 3, 11, 45];
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Earlier tries still listened to.
const MAX_OLD: usize = 8;

/// The connection of the current try.
enum Conn {
    None,
    Udp(UdpSocket),
    /// TCP: the stream, bytes still to write, bytes read so far.
    Tcp(TcpStream, Vec<u8>, Vec<u8>),
}

/// What became of a transmission.
pub enum Event {
    Pending,
    /// A relevant answer from this server.
    Answer(SocketAddr, Vec<u8>),
    /// Every server has failed or timed out.
    Failed,
}

/// One question on its way to a list of servers.
pub struct Transmit {
    qname: Vec<u8>,
    qtype: u16,
    recursive: bool,
    query: Vec<u8>,
    servers: Vec<SocketAddr>,
    failed: Vec<bool>,
    round: usize,
    idx: usize,
    ipsend: IpAddr,
    pub deadline: Instant,
    conn: Conn,
    /// Whether to offer EDNS0; dropped for a server that answers FORMERR.
    edns: bool,
    /// Earlier UDP tries: socket, the query sent on it, the server asked.
    old: Vec<(UdpSocket, Vec<u8>, SocketAddr)>,
}

impl Transmit {
    /// Start asking `servers` (from address `ipsend`).
    pub fn start(
        servers: Vec<SocketAddr>,
        qname: &[u8],
        qtype: u16,
        recursive: bool,
        ipsend: IpAddr,
        now: Instant,
    ) -> (Transmit, Event) {
        let n = servers.len();
        let mut t = Transmit {
            qname: qname.to_vec(),
            qtype,
            recursive,
            query: Vec::new(),
            servers,
            failed: vec![false; n],
            round: 0,
            idx: 0,
            ipsend,
            deadline: now,
            conn: Conn::None,
            edns: true,
            old: Vec::new(),
        };
        let ev = if n == 0 {
            Event::Failed
        } else {
            t.try_current(now)
        };
        (t, ev)
    }

    /// The descriptors to poll (the current try first, then earlier
    /// ones) and whether to wait for writability.
    /// Each comes with its number: 0 for the current try, k for old[k-1].
    pub fn poll_fds(&self) -> Vec<(usize, RawFd, bool)> {
        let mut fds = match &self.conn {
            Conn::None => vec![],
            Conn::Udp(s) => vec![(0, s.as_raw_fd(), false)],
            Conn::Tcp(s, out, _) => vec![(0, s.as_raw_fd(), !out.is_empty())],
        };
        let old = self.old.iter().enumerate();
        fds.extend(old.map(|(k, (s, _, _))| (k + 1, s.as_raw_fd(), false)));
        fds
    }

    /// An earlier try's socket (`k` counting from 1) is readable.
    pub fn old_ready(&mut self, k: usize) -> Event {
        let Some((s, query, server)) = self.old.get(k - 1) else {
            return Event::Pending;
        };
        let mut buf = vec![0u8; 65535];
        while let Ok(n) = s.recv(&mut buf) {
            let answer = &buf[..n];
            if crate::stub::is_answer_to(answer, query) && answer[2] & 2 == 0 {
                return Event::Answer(*server, answer.to_vec());
            }
        }
        Event::Pending
    }

    /// Send to the current server; on an immediate error go to the next.
    fn try_current(&mut self, now: Instant) -> Event {
        loop {
            let server = self.servers[self.idx];
            self.query = packet::build_query(random_u16(), &self.qname, self.qtype, self.recursive);
            if self.edns {
                self.query = packet::with_edns(std::mem::take(&mut self.query), packet::EDNS_SIZE);
            }
            self.deadline = now + Duration::from_secs(ROUNDS[self.round]);
            match udp_send(server, self.ipsend, &self.query) {
                Ok(s) => {
                    self.conn = Conn::Udp(s);
                    return Event::Pending;
                }
                Err(_) => {
                    self.failed[self.idx] = true;
                    if !self.advance() {
                        return Event::Failed;
                    }
                }
            }
        }
    }

    /// Move to the next server not yet failed, round after round.
    fn advance(&mut self) -> bool {
        if let Conn::Udp(s) = std::mem::replace(&mut self.conn, Conn::None) {
            if self.old.len() >= MAX_OLD {
                self.old.remove(0);
            }
            self.old
                .push((s, self.query.clone(), self.servers[self.idx]));
        }
        loop {
            if self.failed.iter().all(|&f| f) {
                return false;
            }
            self.idx += 1;
            if self.idx >= self.servers.len() {
                self.idx = 0;
                self.round += 1;
                if self.round >= ROUNDS.len() {
                    return false;
                }
            }
            if !self.failed[self.idx] {
                return true;
            }
        }
    }

    /// The current server is of no use (the engine found its answer lame).
    pub fn next_server(&mut self, now: Instant) -> Event {
        self.failed[self.idx] = true;
        if self.advance() {
            self.try_current(now)
        } else {
            Event::Failed
        }
    }

    /// The deadline passed without an answer.
    pub fn timeout(&mut self, now: Instant) -> Event {
        if matches!(self.conn, Conn::Tcp(..)) {
            self.failed[self.idx] = true;
        }
        if self.advance() {
            self.try_current(now)
        } else {
            Event::Failed
        }
    }

    /// The socket is ready.
    pub fn ready(&mut self, now: Instant) -> Event {
        match std::mem::replace(&mut self.conn, Conn::None) {
            Conn::None => Event::Pending,
            Conn::Udp(s) => self.udp_ready(s, now),
            Conn::Tcp(s, out, inp) => self.tcp_ready(s, out, inp, now),
        }
    }

    fn udp_ready(&mut self, s: UdpSocket, now: Instant) -> Event {
        let mut buf = vec![0u8; 65535];
        loop {
            match s.recv(&mut buf) {
                Ok(n) => {
                    let answer = &buf[..n];
                    if !crate::stub::is_answer_to(answer, &self.query) {
                        continue;
                    }
                    let server = self.servers[self.idx];
                    if answer[3] & 15 == 1 && self.edns {
                        // FORMERR: an old server that knows no EDNS0; ask it plainly.
                        self.edns = false;
                        return self.try_current(now);
                    }
                    if answer[2] & 2 != 0 {
                        return self.start_tcp(server, now);
                    }
                    return Event::Answer(server, answer.to_vec());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.conn = Conn::Udp(s);
                    return Event::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.next_server(now),
            }
        }
    }

    fn start_tcp(&mut self, server: SocketAddr, now: Instant) -> Event {
        match tcp_connect(server) {
            Ok(s) => {
                let mut out = (self.query.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&self.query);
                self.conn = Conn::Tcp(s, out, Vec::new());
                self.deadline = now + TCP_TIMEOUT;
                Event::Pending
            }
            Err(_) => self.next_server(now),
        }
    }

    fn tcp_ready(
        &mut self,
        mut s: TcpStream,
        mut out: Vec<u8>,
        mut inp: Vec<u8>,
        now: Instant,
    ) -> Event {
        if !out.is_empty() {
            match s.write(&out) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.next_server(now),
            }
            self.conn = Conn::Tcp(s, out, inp);
            return Event::Pending;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => return self.next_server(now),
            Ok(n) => inp.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return self.next_server(now),
        }
        if inp.len() >= 2 {
            let want = usize::from(u16::from_be_bytes([inp[0], inp[1]]));
            if inp.len() >= 2 + want {
                let answer = inp[2..2 + want].to_vec();
                if crate::stub::is_answer_to(&answer, &self.query) {
                    return Event::Answer(self.servers[self.idx], answer);
                }
                return self.next_server(now);
            }
        }
        self.conn = Conn::Tcp(s, out, inp);
        Event::Pending
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    random_bytes(&mut b);
    u16::from_ne_bytes(b)
}

/// A non-blocking UDP socket on a random port of `from` (or of the
/// wildcard of the server's family), connected to `server`, query sent.
fn udp_send(server: SocketAddr, from: IpAddr, query: &[u8]) -> io::Result<UdpSocket> {
    let local: IpAddr = match (server, from) {
        (SocketAddr::V4(_), IpAddr::V4(v4)) => v4.into(),
        (SocketAddr::V4(_), _) => Ipv4Addr::UNSPECIFIED.into(),
        (SocketAddr::V6(_), IpAddr::V6(v6)) => v6.into(),
        (SocketAddr::V6(_), _) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let mut sock = None;
    for _ in 0..10 {
        let port = 1025 + random_u16() % (65535 - 1024);
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(local, port)) {
            sock = Some(s);
            break;
        }
    }
    let s = match sock {
        Some(s) => s,
        None => UdpSocket::bind(SocketAddr::new(local, 0))?,
    };
    s.connect(server)?;
    s.set_nonblocking(true)?;
    s.send(query)?;
    Ok(s)
}

/// Start a non-blocking TCP connection to `server`.
fn tcp_connect(server: SocketAddr) -> io::Result<TcpStream> {
    let family = match server {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(server)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}
