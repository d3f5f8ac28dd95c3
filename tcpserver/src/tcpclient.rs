//! tcpclient: connect to a TCP server and run a program with the
//! connection on descriptors 6 (read) and 7 (write) and the UCSPI variables
//! in its environment. Also the connecting half of tcpcat and mconnect.

use crate::env::ChildEnv;
use crate::net;
use common::error::Errno;
use common::getopt::{getopt, scan_ulong};
use common::{Error, Result};
use dnscache::stub::Resolver;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

const USAGE: &str = "tcpclient [ -46hHrRdDqQv ] [ -i localip ] [ -p localport ] [ -T timeoutconn ] [ -l localname ] [ -t timeoutinfo ] [ -I interface ] host port program";

/// The command line.
pub struct Config {
    pub verbosity: u8,
    pub remotehost: bool,
    pub remoteinfo: bool,
    pub delay: bool,
    pub local_ip: Option<IpAddr>,
    pub local_port: u16,
    /// First round's and second round's connect timeouts (`-T 2+58`).
    pub timeouts: [u64; 2],
    pub localname: Option<Vec<u8>>,
    pub info_timeout: u64,
    pub v4_only: bool,
    pub interface: Option<String>,
    pub host: String,
    pub port: String,
    pub argv: Vec<OsString>,
}

impl Config {
    /// The settings of tcpcat and mconnect: `-RHl0`.
    pub fn quiet_lookupless(host: String, port: String) -> Config {
        Config {
            verbosity: 1,
            remotehost: false,
            remoteinfo: false,
            delay: true,
            local_ip: None,
            local_port: 0,
            timeouts: [2, 58],
            localname: Some(b"0".to_vec()),
            info_timeout: 26,
            v4_only: false,
            interface: None,
            host,
            port,
            argv: Vec::new(),
        }
    }
}

pub fn parse(args: &[OsString]) -> Result<Config> {
    let p =
        getopt("tcpclient", args, "46hHrRdDqQvi:p:T:l:t:I:").ok_or_else(|| Error::usage(USAGE))?;
    let mut c = Config::quiet_lookupless(String::new(), String::new());
    (c.remotehost, c.remoteinfo, c.localname) = (true, true, None);
    for o in &p.opts {
        let arg = o.arg.clone().unwrap_or_default();
        match o.flag {
            b'h' => c.remotehost = true,
            b'H' => c.remotehost = false,
            b'r' => c.remoteinfo = true,
            b'R' => c.remoteinfo = false,
            b'd' => c.delay = true,
            b'D' => c.delay = false,
            b'q' => c.verbosity = 0,
            b'Q' => c.verbosity = 1,
            b'v' => c.verbosity = 2,
            b'l' => c.localname = Some(arg.as_bytes().to_vec()),
            b't' => c.info_timeout = scan_ulong(&arg).0,
            b'T' => c.timeouts = conn_timeouts(arg.as_bytes()),
            b'i' => {
                c.local_ip =
                    Some(net::literal(&arg.to_string_lossy()).ok_or_else(|| Error::usage(USAGE))?)
            }
            b'p' => c.local_port = net::parse_port("tcpclient", &arg.to_string_lossy())?,
            b'4' => c.v4_only = true,
            b'I' => c.interface = Some(arg.to_string_lossy().into_owned()),
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

/// `-T x+y`: x for the first try of each address, y for the retry of
/// those that timed out; `-T x` alone means no retry.
fn conn_timeouts(s: &[u8]) -> [u64; 2] {
    let (x, n) = scan_ulong(std::ffi::OsStr::from_bytes(s));
    let y = match s.get(n) {
        Some(b'+') => scan_ulong(std::ffi::OsStr::from_bytes(&s[n + 1..])).0,
        _ => 0,
    };
    [x, y]
}

/// `tcpclient opts host port prog...`
pub fn run(args: &[OsString]) -> Result<()> {
    let c = parse(args)?;
    let quiet = c.verbosity == 0;
    let r = connect_and_run(&c);
    r.map_err(|e| if quiet { Error::silent(e.code) } else { e })
}

fn connect_and_run(c: &Config) -> Result<()> {
    let (fd, mut env) = connect(c)?;
    // SAFETY: moving the connection onto 6 and 7 before exec.
    unsafe {
        if libc::dup2(fd, 6) == -1 || libc::dup2(6, 7) == -1 {
            return Err(Error::sys("unable to set up descriptors", Errno::last()));
        }
        if fd != 6 && fd != 7 {
            libc::close(fd);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let envp = env.envp();
        let argv = crate::env::Argv::new(&c.argv).ok_or_else(|| Error::usage(USAGE))?;
        libc::execvpe(
            argv.prog(),
            argv.as_ptr(),
            envp as *const *mut libc::c_char as *const *const libc::c_char,
        );
    }
    Err(Error::sys(
        format!("unable to run {}", c.argv[0].to_string_lossy()),
        Errno::last(),
    ))
}

/// Resolve, connect (two rounds of timeouts) and describe the connection
/// in a child environment; returns the connected descriptor.
pub fn connect(c: &Config) -> Result<(i32, ChildEnv)> {
    let host = if c.host.is_empty() || c.host == "0" {
        "127.0.0.1"
    } else {
        &c.host
    };
    let port = net::parse_port("tcpclient", &c.port)?;
    let resolver = Resolver::from_env();
    let addrs = net::lookup_host(&resolver, host, c.v4_only).map_err(|e| match e {
        net::LookupError::Dns(why) => Error::temp(format!(
            "temporarily unable to figure out IP address for {host}: {why}"
        )),
        net::LookupError::None => Error::temp(format!("no IP address for {host}")),
    })?;
    let stream = try_all(c, &addrs, port)?;
    if !c.delay {
        net::setopt(&stream, libc::IPPROTO_TCP, libc::TCP_NODELAY, &1);
    }
    let local = net::local_addr(stream.as_raw_fd())
        .map_err(|e| Error::sys("unable to get local address", e))?;
    let remote = stream
        .peer_addr()
        .map_err(|e| Error::sys("unable to get remote address", e))?;
    let env = describe(c, &resolver, local, remote);
    Ok((stream.into_raw_fd(), env))
}

fn try_all(c: &Config, addrs: &[IpAddr], port: u16) -> Result<std::net::TcpStream> {
    let mut todo: Vec<IpAddr> = addrs.to_vec();
    for round in 0..2 {
        let mut again = Vec::new();
        for &ip in &todo {
            let to = SocketAddr::new(ip, port);
            let from = bind_addr(c, ip);
            let t = Duration::from_secs(c.timeouts[round]);
            match net::connect(from, to, t) {
                Ok(s) => return Ok(s),
                Err(e) if round == 0 && c.timeouts[1] > 0 && e.0 == libc::ETIMEDOUT => {
                    again.push(ip)
                }
                Err(e) if e.0 == libc::EADDRINUSE || e.0 == libc::EADDRNOTAVAIL => {
                    return Err(Error::sys("unable to bind socket", e))
                }
                Err(e) => {
                    if c.verbosity >= 1 {
                        eprintln!(
                            "tcpclient: unable to connect to {ip} port {port}: {}",
                            e.text()
                        );
                    }
                }
            }
        }
        todo = again;
    }
    Err(Error::silent(common::error::EXIT_TEMP))
}

/// The local address to bind, if -i or -p ask for one.
fn bind_addr(c: &Config, to: IpAddr) -> Option<SocketAddr> {
    if c.local_ip.is_none() && c.local_port == 0 {
        return None;
    }
    let any = match to {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    Some(SocketAddr::new(c.local_ip.unwrap_or(any), c.local_port))
}

fn describe(c: &Config, r: &Resolver, local: SocketAddr, remote: SocketAddr) -> ChildEnv {
    let mut env = ChildEnv::from_process();
    let v6 = remote.ip().to_canonical().is_ipv6();
    let lhost = match &c.localname {
        Some(n) => Some(n.clone()),
        None => r.name(local.ip()).ok().flatten().map(String::into_bytes),
    };
    let rhost = if c.remotehost {
        r.name(remote.ip()).ok().flatten().map(String::into_bytes)
    } else {
        None
    };
    let info = if c.remoteinfo {
        net::remote_info(local, remote, Duration::from_secs(c.info_timeout))
    } else {
        None
    };
    env.set_str("PROTO", Some(if v6 { "TCP6" } else { "TCP" }));
    let (lip, rip) = (
        local.ip().to_canonical().to_string(),
        remote.ip().to_canonical().to_string(),
    );
    let (lport, rport) = (local.port().to_string(), remote.port().to_string());
    for p in if v6 {
        &["TCP", "TCP6"][..]
    } else {
        &["TCP"][..]
    } {
        env.set(format!("{p}LOCALIP").as_bytes(), Some(lip.as_bytes()));
        env.set(format!("{p}LOCALPORT").as_bytes(), Some(lport.as_bytes()));
        env.set(format!("{p}LOCALHOST").as_bytes(), lhost.as_deref());
        env.set(format!("{p}REMOTEIP").as_bytes(), Some(rip.as_bytes()));
        env.set(format!("{p}REMOTEPORT").as_bytes(), Some(rport.as_bytes()));
        env.set(format!("{p}REMOTEHOST").as_bytes(), rhost.as_deref());
        env.set(format!("{p}REMOTEINFO").as_bytes(), info.as_deref());
    }
    env
}

/// `tcpcat [ host [ port ] ]`: print what the server sends (port 17).
pub fn tcpcat(args: &[OsString]) -> Result<()> {
    let fd = connect_plain(args, "17")?;
    crate::tools::relay_socket(fd, false)
}

/// `mconnect [ host [ port ] ]`: talk to a server (port 25), adding CR to
/// each line sent.
pub fn mconnect(args: &[OsString]) -> Result<()> {
    let fd = connect_plain(args, "25")?;
    crate::tools::relay_socket(fd, true)
}

/// Connect as `tcpclient -RHl0 -- host port` does for tcpcat and mconnect.
fn connect_plain(args: &[OsString], port: &str) -> Result<i32> {
    let arg = |i: usize, d: &str| {
        args.get(i)
            .map_or_else(|| d.to_string(), |a| a.to_string_lossy().into_owned())
    };
    let c = Config::quiet_lookupless(arg(0, "0"), arg(1, port));
    Ok(connect(&c)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_options() {
        assert_eq!(conn_timeouts(b"2+58"), [2, 58]);
        assert_eq!(conn_timeouts(b"5"), [5, 0]);
        let a: Vec<OsString> = ["-RHl0", "-T", "1+2", "x", "25", "prog"]
            .iter()
            .map(OsString::from)
            .collect();
        let c = parse(&a).unwrap();
        assert_eq!(
            (c.remotehost, c.remoteinfo, c.timeouts),
            (false, false, [1, 2])
        );
        let d = parse(&a[4..]);
        assert!(d.is_err());
        let a: Vec<OsString> = ["h", "p", "x"].iter().map(OsString::from).collect();
        let c = parse(&a).unwrap();
        assert!(c.remotehost && c.remoteinfo && c.localname.is_none());
    }
}
