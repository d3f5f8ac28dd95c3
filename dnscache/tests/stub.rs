//! The stub resolver against a real authoritative server (nsd) on loopback,
//! and against hand-made misbehaving servers for ids, questions and timeouts.

mod support;

use dnscache::stub::{DnsError, Resolver};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::*;

fn resolver(nsd: &Nsd) -> Resolver {
    Resolver::with_servers(vec![nsd.addr])
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn addresses_cnames_and_nxdomain() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let r = resolver(&nsd);
    assert_eq!(
        r.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        r.ip4("WWW.Example.TEST.").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        sorted(r.ip4("multi.example.test").unwrap()),
        vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
    );
    assert_eq!(
        r.ip4("alias2.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    // The CNAME leaves the zone: asked again at its target.
    assert_eq!(
        r.ip4("ext.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 5, 5, 5)]
    );
    assert_eq!(r.ip4("nx.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    assert_eq!(
        r.ip4("v6.example.test").unwrap(),
        Vec::<Ipv4Addr>::new(),
        "NODATA"
    );
    assert_eq!(
        r.ip4("loop1.example.test").unwrap(),
        Vec::<Ipv4Addr>::new(),
        "CNAME loop ends"
    );
    assert_eq!(
        r.ip4("odd\\.name.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 7, 7, 7)]
    );
    assert_eq!(r.ip4("[1.2.3.4]").unwrap(), vec![Ipv4Addr::new(1, 2, 3, 4)]);
    assert_eq!(
        sorted(r.ip6("v6.example.test").unwrap()),
        vec![
            "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            "2001:db8::2".parse().unwrap()
        ]
    );
    assert_eq!(
        r.ip6("both.example.test").unwrap(),
        vec!["2001:db8::9".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(r.ip6("[::1]").unwrap(), vec![Ipv6Addr::LOCALHOST]);
    assert_eq!(r.ip6("www.example.test").unwrap(), Vec::<Ipv6Addr>::new());
}

#[test]
fn mx_txt_and_ptr() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let r = resolver(&nsd);
    assert_eq!(
        r.mx("example.test").unwrap(),
        vec![
            (10, "mail.example.test".to_string()),
            (20, "mail2.elsewhere.test".to_string())
        ]
    );
    assert_eq!(
        r.mx("mxalias.example.test").unwrap().len(),
        2,
        "MX through a CNAME"
    );
    assert_eq!(
        r.mx("www.example.test").unwrap(),
        Vec::<(u16, String)>::new()
    );
    assert_eq!(
        r.mx("nx.example.test").unwrap(),
        Vec::<(u16, String)>::new()
    );
    assert_eq!(
        r.txt("txt.example.test").unwrap(),
        vec!["helloworld".to_string(), "second?x".to_string()]
    );
    assert_eq!(r.txt("www.example.test").unwrap(), Vec::<String>::new());
    assert_eq!(
        r.name(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))).unwrap(),
        Some("localhost.example.test".to_string())
    );
    assert_eq!(
        r.name(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).unwrap(),
        None
    );
    assert_eq!(
        r.name("2001:db8::1".parse().unwrap()).unwrap(),
        Some("six.example.test".to_string())
    );
}

#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let r = resolver(&nsd);
    let t = r.txt("big.test").unwrap();
    assert_eq!(t.len(), 6);
    assert!(t.iter().all(|s| s.len() == 200));
    assert_eq!(r.ip4("big.test").unwrap().len(), 40);
}

#[test]
fn refusing_server_is_a_temporary_failure_and_the_next_is_asked() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let r = resolver(&nsd);
    let start = Instant::now();
    assert_eq!(
        r.ip4("www.unknown.test"),
        Err(DnsError::Temp("temporary failure".into()))
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a refusal does not wait out the rounds"
    );
    // A port with nobody behind it: connection refused, then the next server.
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1")));
    let r2 = Resolver::with_servers(vec![dead, nsd.addr]);
    assert_eq!(
        r2.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    let r3 = Resolver::with_servers(vec![dead]);
    assert_eq!(
        r3.ip4("www.example.test"),
        Err(DnsError::Temp("connection refused".into()))
    );
}

#[test]
fn bad_names_are_permanent() {
    let r = Resolver::with_servers(vec![SocketAddr::from(([127, 0, 0, 1], 9))]);
    let long = "a".repeat(64) + ".test";
    assert_eq!(r.ip4(&long), Err(DnsError::Perm("protocol error".into())));
}

/// A server that first sends answers that must be ignored (wrong id, wrong
/// question, not a response) and then the real one.
#[test]
fn spoofed_and_irrelevant_packets_are_ignored() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        let q = buf[..n].to_vec();
        let mut ans = q.clone();
        ans[2] |= 0x80;
        ans[7] = 1;
        ans.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01");
        let mut wrong_id = ans.clone();
        wrong_id[0] ^= 0xff;
        wrong_id[15] = 99;
        server.send_to(&wrong_id, peer).unwrap();
        let mut wrong_q = ans.clone();
        wrong_q[13] ^= 1;
        server.send_to(&wrong_q, peer).unwrap();
        server.send_to(&q, peer).unwrap();
        server.send_to(b"\x00", peer).unwrap();
        // A spoofer on another port of the same host: the kernel drops it.
        let spoof = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bad = ans.clone();
        let last = bad.len() - 1;
        bad[last] = 66;
        spoof.send_to(&bad, peer).unwrap();
        server.send_to(&ans, peer).unwrap();
    });
    let r = Resolver::with_servers(vec![addr]);
    assert_eq!(r.ip4("a.test").unwrap(), vec![Ipv4Addr::new(10, 0, 0, 1)]);
    t.join().unwrap();
}

#[test]
fn silent_server_times_out_within_the_rounds() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = Resolver::with_servers(vec![server.local_addr().unwrap()])
        .with_timeouts(&[Duration::from_millis(200), Duration::from_millis(300)]);
    let start = Instant::now();
    assert_eq!(r.ip4("a.test"), Err(DnsError::Temp("timed out".into())));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "both rounds waited: {took:?}"
    );
    // Both tries reached the server, from different source ports.
    let mut buf = [0u8; 512];
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (_, p1) = server.recv_from(&mut buf).unwrap();
    let id1 = [buf[0], buf[1]];
    let (_, p2) = server.recv_from(&mut buf).unwrap();
    assert!(p1.port() != p2.port() || id1 != [buf[0], buf[1]]);
}

#[test]
fn from_env_reads_dnscacheip_with_ports() {
    // Only this test touches the variable.
    std::env::set_var("DNSCACHEIP", "127.0.0.1:5353 [::1]:5354");
    let r = Resolver::from_env();
    std::env::remove_var("DNSCACHEIP");
    assert_eq!(
        r.servers(),
        &[
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:5354".parse::<SocketAddr>().unwrap()
        ]
    );
}

#[test]
fn ipv6_transport() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: no ::1 on this machine");
        return;
    }
    let Some(nsd) = Nsd::start("::1", 0, &standard_zones()) else {
        return;
    };
    let r = resolver(&nsd);
    assert_eq!(
        r.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(r.txt("big.test").unwrap().len(), 6, "TCP over IPv6 too");
}
