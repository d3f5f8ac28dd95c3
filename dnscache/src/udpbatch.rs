//! Many UDP datagrams per system call: recvmmsg(2) to read every client
//! packet waiting on the socket, sendmmsg(2) to send the answers of one
//! loop turn. With many clients a turn sees tens of packets, and the
//! per-packet system calls were most of the cost of a cached answer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams handled per call.
pub const BATCH: usize = 32;
/// Room for one client packet (a query is far smaller).
const PACKET: usize = 4096;

/// Buffers for one recvmmsg call, kept between calls.
pub struct Receiver {
    bufs: Vec<[u8; PACKET]>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
}

impl Default for Receiver {
    fn default() -> Receiver {
        Receiver {
            bufs: vec![[0u8; PACKET]; BATCH],
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
        }
    }
}

impl Receiver {
    /// Read up to BATCH waiting datagrams without blocking; how many.
    pub fn recv(&mut self, fd: RawFd) -> usize {
        let mut iov: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: PACKET,
            })
            .collect();
        // SAFETY: mmsghdr is plain data; every pointer set below outlives the call.
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            m.msg_hdr.msg_iov = &mut iov[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs holds BATCH valid headers pointing at owned buffers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return 0;
        }
        for (i, m) in msgs.iter().take(n as usize).enumerate() {
            self.lens[i] = m.msg_len as usize;
        }
        n as usize
    }

    /// Datagram `i` of the last recv and who sent it.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let peer = from_storage(&self.addrs[i])?;
        Some((&self.bufs[i][..self.lens[i]], peer))
    }
}

/// Send every (peer, packet) pair, BATCH per call; errors are dropped as a
/// failed sendto's were (UDP answers are best effort).
pub fn send_all(fd: RawFd, out: &[(SocketAddr, Vec<u8>)]) {
    for chunk in out.chunks(BATCH) {
        let mut addrs: Vec<(libc::sockaddr_storage, u32)> =
            chunk.iter().map(|(a, _)| to_storage(a)).collect();
        let mut iov: Vec<libc::iovec> = chunk
            .iter()
            .map(|(_, p)| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: plain data, filled in below with pointers that outlive the call.
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; chunk.len()];
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = (&mut addrs[i].0 as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = addrs[i].1;
            m.msg_hdr.msg_iov = &mut iov[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: the remaining headers are valid, as above.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs[sent..].as_mut_ptr(),
                    (msgs.len() - sent) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            // A datagram the kernel refuses is skipped, not retried forever.
            sent += if n <= 0 { 1 } else { n as usize };
        }
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(a: &SocketAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: plain data; the variant written matches the family set.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let p = (&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            unsafe {
                (*p).sin_family = libc::AF_INET as libc::sa_family_t;
                (*p).sin_port = v4.port().to_be();
                (*p).sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let p = (&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            unsafe {
                (*p).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*p).sin6_port = v6.port().to_be();
                (*p).sin6_addr.s6_addr = v6.ip().octets();
                (*p).sin6_flowinfo = v6.flowinfo();
                (*p).sin6_scope_id = v6.scope_id();
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let out: Vec<(SocketAddr, Vec<u8>)> = (0..40u8).map(|i| (to, vec![i; 3])).collect();
        send_all(client.as_raw_fd(), &out);
        let mut r = Receiver::default();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = r.recv(server.as_raw_fd());
            for i in 0..n {
                let (p, from) = r.get(i).unwrap();
                assert_eq!(from, client.local_addr().unwrap());
                got.push(p.to_vec());
            }
            if got.len() == 40 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, (0..40u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
    }
}
