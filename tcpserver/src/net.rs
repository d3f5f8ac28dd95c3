//! Addresses and sockets as ucspi-tcp sees them: host and port operands
//! (`0`, literals, names through the DNS stub resolver, /etc/services
//! names), the text form of addresses in the environment (IPv4 peers on a
//! dual-stack socket look exactly as in the IPv4-only original), listening
//! and connecting sockets, and the ident (RFC 1413) query behind
//! TCPREMOTEINFO.

use common::Error;
use dnscache::stub::{DnsError, Resolver};
use std::ffi::CString;
use std::io::{Read, Write};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A port operand: digits, or a name from /etc/services (tcp).
pub fn parse_port(prog: &str, s: &str) -> Result<u16, Error> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(s.parse::<u64>().map(|v| v as u16).unwrap_or(u16::MAX));
    }
    let name = CString::new(s).map_err(|_| bad_port(s))?;
    // SAFETY: getservbyname returns a pointer to static storage or null;
    // the program is single-threaded.
    let ent = unsafe { libc::getservbyname(name.as_ptr(), c"tcp".as_ptr()) };
    if ent.is_null() {
        let _ = prog;
        return Err(bad_port(s));
    }
    // SAFETY: ent is a valid servent just returned.
    let port = unsafe { (*ent).s_port };
    Ok(u16::from_be(port as u16))
}

fn bad_port(s: &str) -> Error {
    Error::temp(format!("unable to figure out port number for {s}"))
}

/// The local address to listen on: `0` (every address), a literal, or a
/// name whose first address is used.
pub fn parse_listen_host(s: &str, v4_only: bool) -> Result<Option<IpAddr>, Error> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    if s == "::" && !v4_only {
        return Ok(None);
    }
    if let Some(ip) = literal(s) {
        return Ok(Some(ip));
    }
    let ips = lookup_host(&Resolver::from_env(), s, v4_only).map_err(|e| match e {
        LookupError::Dns(why) => Error::temp(format!(
            "temporarily unable to figure out IP address for {s}: {why}"
        )),
        LookupError::None => Error::temp(format!("no IP address for {s}")),
    })?;
    Ok(Some(ips[0]))
}

/// Why a name gave no address.
pub enum LookupError {
    Dns(DnsError),
    None,
}

/// Every address of `name`: IPv4 first (as the original), then IPv6.
pub fn lookup_host(r: &Resolver, name: &str, v4_only: bool) -> Result<Vec<IpAddr>, LookupError> {
    if let Some(ip) = literal(name) {
        return Ok(vec![ip]);
    }
    let mut out: Vec<IpAddr> = r
        .ip4(name)
        .map_err(LookupError::Dns)?
        .into_iter()
        .map(IpAddr::V4)
        .collect();
    if out.is_empty() && !v4_only {
        out.extend(
            r.ip6(name)
                .map_err(LookupError::Dns)?
                .into_iter()
                .map(IpAddr::V6),
        );
    }
    if out.is_empty() {
        return Err(LookupError::None);
    }
    Ok(out)
}

/// An IPv4 or IPv6 literal (IPv6 optionally in brackets).
pub fn literal(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// An address as the IPv6 patch shows it when forced to IPv6 (`-6`).
pub fn mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A socket address from the kernel's representation.
pub fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The kernel representation of a socket address.
pub fn to_storage(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn cvt(r: libc::c_int) -> Result<libc::c_int, common::error::Errno> {
    if r == -1 {
        Err(common::error::Errno::last())
    } else {
        Ok(r)
    }
}

/// A listening socket, as tcpserver makes it: address reuse, the backlog
/// asked for, close-on-exec and non-blocking (the loop polls it). Host `None`
/// is every address: dual-stack `::` unless IPv4 is forced or IPv6 missing.
pub fn listen(
    host: Option<IpAddr>,
    port: u16,
    backlog: i32,
    v4_only: bool,
    interface: Option<&str>,
) -> Result<OwnedFd, Error> {
    let any = if v4_only {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let ip = host.unwrap_or(any);
    let fd = match socket_for(ip) {
        Err(e) if host.is_none() && !v4_only && e.0 == libc::EAFNOSUPPORT => {
            return listen(None, port, backlog, true, interface);
        }
        r => r.map_err(|e| Error::sys("unable to create socket", e))?,
    };
    let on: libc::c_int = 1;
    let off: libc::c_int = 0;
    setopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &on);
    if ip.is_ipv6() {
        setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &off);
    }
    let scope = interface.map(if_index).unwrap_or(0);
    let addr = match ip {
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
    };
    let (ss, len) = to_storage(&addr);
    // SAFETY: ss/len describe a valid socket address.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    })
    .map_err(|e| Error::sys("unable to bind", e))?;
    // SAFETY: plain system call on our descriptor.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })
        .map_err(|e| Error::sys("unable to listen", e))?;
    Ok(fd)
}

/// The index of a network interface, 0 if unknown.
pub fn if_index(name: &str) -> u32 {
    let Ok(c) = CString::new(name) else { return 0 };
    // SAFETY: c is a valid C string.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

/// The name of interface `index`, for TCP6INTERFACE.
pub fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn socket_for(ip: IpAddr) -> Result<OwnedFd, common::error::Errno> {
    let family = if ip.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain system call; the result is a fresh descriptor we own.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: fd was just returned by socket.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set an int socket option, ignoring failure (the originals do).
pub fn setopt(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, v: &libc::c_int) {
    // SAFETY: v points to an int of the given size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            v as *const _ as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Drop IP options (source routes) on an IPv4 connection, as -O does.
pub fn kill_ip_options(fd: RawFd) {
    // SAFETY: an empty option buffer clears the options.
    unsafe {
        libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_OPTIONS, std::ptr::null(), 0);
    }
}

/// The local address of a socket.
pub fn local_addr(fd: RawFd) -> Result<SocketAddr, common::error::Errno> {
    // SAFETY: zeroed storage is valid; the kernel fills at most len bytes.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    cvt(unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) })?;
    from_storage(&ss).ok_or(common::error::Errno(libc::EAFNOSUPPORT))
}

/// Accept one connection: a blocking, close-on-exec descriptor and the peer.
pub fn accept(listener: RawFd) -> Result<(OwnedFd, SocketAddr), common::error::Errno> {
    // SAFETY: as in local_addr.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let fd = cvt(unsafe {
        libc::accept4(
            listener,
            &mut ss as *mut _ as *mut libc::sockaddr,
            &mut len,
            libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by accept4.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let peer = from_storage(&ss).ok_or(common::error::Errno(libc::EAFNOSUPPORT))?;
    Ok((fd, peer))
}

/// Connect to `to` from `from` (port 0 = any) within `timeout`.
pub fn connect(
    from: Option<SocketAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, common::error::Errno> {
    let fd = socket_for(to.ip())?;
    if let Some(f) = from {
        let (ss, len) = to_storage(&f);
        // SAFETY: valid address.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &ss as *const _ as *const libc::sockaddr,
                len,
            )
        })?;
    }
    let (ss, len) = to_storage(&to);
    // SAFETY: valid address; the socket is non-blocking.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r == -1 {
        let e = common::error::Errno::last();
        if e.0 != libc::EINPROGRESS {
            return Err(e);
        }
        wait_fd(fd.as_raw_fd(), libc::POLLOUT, Instant::now() + timeout)?;
        let mut err: libc::c_int = 0;
        let mut elen = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: err/elen describe an int.
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut _ as *mut libc::c_void,
                &mut elen,
            )
        };
        if err != 0 {
            return Err(common::error::Errno(err));
        }
    }
    // SAFETY: the descriptor is ours; clear O_NONBLOCK for ordinary use.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    Ok(TcpStream::from(fd))
}

/// Wait until `fd` is ready for `events` or the deadline passes (ETIMEDOUT).
pub fn wait_fd(fd: RawFd, events: i16, deadline: Instant) -> Result<(), common::error::Errno> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(common::error::Errno(libc::ETIMEDOUT));
        }
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut p, 1, ms.max(1)) } {
            -1 if common::error::Errno::last().0 == libc::EINTR => continue,
            -1 => return Err(common::error::Errno::last()),
            0 => continue,
            _ => return Ok(()),
        }
    }
}

/// Ask the peer's identd who owns the connection (TCPREMOTEINFO). None
/// when it cannot be asked or does not answer in time; otherwise the text
/// after the third colon of its answer (empty if it has none).
pub fn remote_info(local: SocketAddr, remote: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let from = SocketAddr::new(local.ip(), 0);
    let mut s = connect(Some(from), SocketAddr::new(remote.ip(), 113), timeout).ok()?;
    let query = format!("{} , {}\r\n", remote.port(), local.port());
    s.write_all(query.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.contains(&b'\n') && answer.len() < 1024 {
        wait_fd(s.as_raw_fd(), libc::POLLIN, deadline).ok()?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some(ident_user(&answer))
}

/// The user field of an ident answer: after the third colon, leading
/// blanks skipped, up to the line end.
pub fn ident_user(answer: &[u8]) -> Vec<u8> {
    let mut colons = 0;
    let mut out = Vec::new();
    for &c in answer {
        if c == b'\r' || c == b'\n' {
            break;
        }
        if colons < 3 {
            if c == b':' {
                colons += 1;
            }
            continue;
        }
        if out.is_empty() && (c == b' ' || c == b'\t') {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_hosts() {
        assert_eq!(parse_port("t", "25").unwrap(), 25);
        assert_eq!(parse_port("t", "smtp").unwrap(), 25);
        assert!(parse_port("t", "no-such-service-x").is_err());
        assert_eq!(parse_listen_host("0", false).unwrap(), None);
        assert_eq!(
            parse_listen_host("127.0.0.1", false).unwrap(),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            unmap("::ffff:1.2.3.4".parse().unwrap()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ident_answers() {
        assert_eq!(
            ident_user(b"6191, 23 : USERID : UNIX : stjohns\r\n"),
            b"stjohns"
        );
        assert_eq!(ident_user(b"6191, 23 : ERROR : NO-USER\r\n"), b"");
    }
}
