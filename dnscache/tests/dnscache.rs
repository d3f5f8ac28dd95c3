//! dnscache against nsd on loopback: answers through the stub resolver and
//! raw packets, the log lines, access control, malformed and spoofed
//! packets, truncation and TCP both ways; as root also a real delegation
//! hierarchy on port 53, compared with Debian's dnscache.

mod support;

use dnscache::stub::{DnsError, Resolver};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;
use support::*;

const DNSCACHE: &str = env!("CARGO_BIN_EXE_dnscache");

/// nsd with the standard zones and our dnscache sending every zone to it.
fn setup(env: &[(&str, &str)]) -> Option<(Nsd, Cache)> {
    let nsd = Nsd::start("127.0.0.1", 0, &standard_zones())?;
    let up = format!("{}\n", nsd.addr);
    let servers: Vec<(&str, String)> = [
        "@",
        "example.test",
        "other.test",
        "big.test",
        "0.0.127.in-addr.arpa",
    ]
    .iter()
    .map(|z| (*z, up.clone()))
    .collect();
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127.0.0.1"], env);
    Some((nsd, cache))
}

fn ask(cache: &Cache) -> Resolver {
    Resolver::with_servers(vec![cache.addr])
}

#[test]
fn answers_and_log_lines() {
    let Some((nsd, cache)) = setup(&[]) else {
        return;
    };
    let r = ask(&cache);
    assert_eq!(
        r.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        r.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        r.ip4("alias2.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        r.ip4("ext.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 5, 5, 5)],
        "CNAME into another zone"
    );
    assert_eq!(r.ip4("nx.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    assert_eq!(r.ip4("nx.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    assert_eq!(r.ip4("v6.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    assert_eq!(r.ip6("v6.example.test").unwrap().len(), 2);
    assert_eq!(
        r.mx("example.test").unwrap()[0],
        (10, "mail.example.test".to_string())
    );
    assert_eq!(
        r.txt("txt.example.test").unwrap(),
        vec!["helloworld", "second?x"]
    );
    assert_eq!(
        r.name("127.0.0.1".parse().unwrap()).unwrap(),
        Some("localhost".into())
    );
    assert_eq!(r.ip4("localhost").unwrap(), vec![Ipv4Addr::LOCALHOST]);
    // Too big for UDP both upstream and to the client: TCP both ways.
    assert_eq!(r.txt("big.test").unwrap().len(), 6);
    assert_eq!(r.ip4("big.test").unwrap().len(), 40);
    assert!(
        matches!(r.ip4("loop1.example.test"), Err(DnsError::Temp(_))),
        "a CNAME loop ends in SERVFAIL"
    );
    cache.wait_for("sent 16 ");
    let log = cache.log();
    let up = dnscache::dnslog::ip(nsd.addr.ip());
    for line in [
        "starting".to_string(),
        format!("tx 0 1 www.example.test. example.test. {up}"),
        format!("rr {up} 3600 1 www.example.test. 0a010203"),
        "cached 1 www.example.test.".to_string(),
        format!("rr {up} 3600 cname alias2.example.test. alias.example.test."),
        "cached cname alias.example.test. www.example.test.".into(),
        format!("nxdomain {up} 300 nx.example.test."),
        "cached nxdomain nx.example.test.".into(),
        format!("nodata {up} 300 1 v6.example.test."),
        format!("rr {up} 3600 mx example.test. 10 mail.example.test."),
        "tcpopen 7f000001:".into(),
        "servfail ".into(),
    ] {
        assert!(
            log.lines().any(|l| l.starts_with(&line)),
            "no line {line:?} in\n{log}"
        );
    }
    assert!(log
        .lines()
        .any(|l| l.starts_with("query 1 7f000001:") && l.ends_with(" 1 www.example.test.")));
}

#[test]
fn access_control_and_bad_packets() {
    let Some((_nsd, cache)) = setup(&[("HIDETTL", "")]) else {
        return;
    };
    let q = dnscache::packet::build_query(0x4242, b"\x03www\x07example\x04test\x00", 1, true);
    let ask_from = |src: &str, pkt: &[u8]| -> Option<Vec<u8>> {
        let s = UdpSocket::bind((src, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        s.send_to(pkt, cache.addr).unwrap();
        let mut buf = [0u8; 4096];
        s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    };
    assert_eq!(
        ask_from("127.0.0.2", &q),
        None,
        "127.0.0.2 is not in root/ip"
    );
    assert_eq!(ask_from("127.0.0.1", b"\x01"), None);
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert_eq!(
        ask_from("127.0.0.1", &resp),
        None,
        "responses are not queries"
    );
    let mut two = q.clone();
    two[5] = 2;
    assert_eq!(ask_from("127.0.0.1", &two), None);
    let mut bad_ptr = q[..12].to_vec();
    bad_ptr.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
    assert_eq!(ask_from("127.0.0.1", &bad_ptr), None, "pointer loop");
    let a = ask_from("127.0.0.1", &q).expect("an answer");
    assert_eq!(&a[..4], &[0x42, 0x42, 0x81, 0x80]);
    let m = dnscache::packet::parse(&a).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 0, "HIDETTL");
    assert_eq!(m.answers[0].data(&a), &[10, 1, 2, 3]);
    // EDNS0: 40 addresses fit in 1232 bytes, not in 512.
    let edns = dnscache::packet::with_edns(
        dnscache::packet::build_query(8, b"\x03big\x04test\x00", 1, true),
        1232,
    );
    let e = ask_from("127.0.0.1", &edns).expect("an answer");
    let m = dnscache::packet::parse(&e).unwrap();
    assert_eq!((e[2] & 2, m.answers.len(), m.additional.len()), (0, 40, 1));
    assert_eq!(dnscache::packet::edns_size(&m), Some(1232));
    // A truncated UDP answer carries no records.
    let big = dnscache::packet::build_query(7, b"\x03big\x04test\x00", 16, true);
    let t = ask_from("127.0.0.1", &big).expect("an answer");
    assert_eq!((t[2] & 2, &t[6..12]), (2, &[0u8; 6][..]));
}

#[test]
fn spoofed_upstream_answers_are_ignored_and_failures_give_servfail() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        fake.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 512];
        let (n, peer) = fake.recv_from(&mut buf).unwrap();
        let mut ans = strip_edns(&buf[..n]);
        ans[2] |= 0x84;
        ans[7] = 1;
        ans.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04");
        let mut wrong = ans.clone();
        wrong[0] ^= 0x55;
        wrong.extend_from_slice(&[6, 6, 6, 6]);
        fake.send_to(&wrong, peer).unwrap();
        ans.extend_from_slice(&[1, 1, 1, 1]);
        fake.send_to(&ans, peer).unwrap();
    });
    let servers = vec![
        ("fake.test", format!("{fake_addr}\n")),
        ("refused.test", format!("{}\n", nsd.addr)),
    ];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    let r = ask(&cache);
    assert_eq!(
        r.ip4("a.fake.test").unwrap(),
        vec![Ipv4Addr::new(1, 1, 1, 1)]
    );
    t.join().unwrap();
    // nsd refuses a zone it does not serve: SERVFAIL, at once.
    let q = dnscache::packet::build_query(9, b"\x01x\x07refused\x04test\x00", 1, true);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.send_to(&q, cache.addr).unwrap();
    let mut buf = [0u8; 512];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(buf[3] & 15, 2, "SERVFAIL");
    assert!(n >= 12);
    cache.wait_for("servfail x.refused.test. input/output error");
    // No root server configured at all: SERVFAIL too.
    let q = dnscache::packet::build_query(10, b"\x01y\x00", 1, true);
    s.send_to(&q, cache.addr).unwrap();
    let n = s.recv(&mut buf).unwrap();
    assert_eq!((n >= 12, buf[3] & 15), (true, 2));
}

#[test]
fn small_cache_stays_within_its_budget() {
    let Some((_nsd, cache)) = setup(&[("CACHESIZE", "10000")]) else {
        return;
    };
    let r = ask(&cache);
    for i in 0..300 {
        assert_eq!(
            r.ip4(&format!("n{i}.example.test")).unwrap(),
            Vec::<Ipv4Addr>::new()
        );
    }
    assert_eq!(r.ip4("n299.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    assert_eq!(r.ip4("n0.example.test").unwrap(), Vec::<Ipv4Addr>::new());
    cache.wait_for("sent 302 ");
    let log = cache.log();
    assert!(
        log.contains("cached nxdomain n299.example.test."),
        "the newest are kept"
    );
    let asked = log
        .lines()
        .filter(|l| l.starts_with("tx 0 1 n0.example.test."))
        .count();
    assert_eq!(asked, 2, "the oldest were dropped and asked again");
}

/// A fake root, a `test.` server and a server for example.test and
/// other.test, each nsd on its own address at port 53; other.test's server
/// has no glue, lame.test is delegated to the root server.
fn hierarchy() -> Option<(Vec<Nsd>, String)> {
    let [a, b, c] = [(); 3].map(|_| free_port53_address());
    let (a, b, c) = (a?, b?, c?);
    let soa = "@ IN SOA ns.test. h.test. 1 3600 900 604800 300\n";
    let root = format!("$ORIGIN .\n$TTL 3600\n{soa}. IN NS a.root.\na.root. IN A {a}\ntest. IN NS ns.test.\nns.test. IN A {b}\n");
    let tld = format!(
        "$ORIGIN test.\n$TTL 3600\n{soa}@ IN NS ns.test.\nns IN A {b}\nexample IN NS ns1.example.test.\nns1.example IN A {c}\nother IN NS ns.example.test.\nlame IN NS ns.lame.test.\nns.lame IN A {a}\nv6only IN NS ns.v6only.test.\nns.v6only IN AAAA ::1\n"
    );
    let example = EXAMPLE_ZONE.replace("ns1 IN A 127.0.0.1", &format!("ns1 IN A {c}\nns IN A {c}"));
    let other = OTHER_ZONE.to_string();
    let root_nsd = Nsd::start(&a, 53, &[(".", root)])?;
    let tld_nsd = Nsd::start(&b, 53, &[("test", tld)])?;
    let leaf = Nsd::start(&c, 53, &[("example.test", example), ("other.test", other)])?;
    let mut all = vec![root_nsd, tld_nsd, leaf];
    // A zone served over IPv6 only, reached through AAAA glue.
    let v6_free =
        UdpSocket::bind("[::1]:53").is_ok() && std::net::TcpListener::bind("[::1]:53").is_ok();
    if v6_free {
        let zone = format!(
            "$ORIGIN v6only.test.\n$TTL 3600\n{soa}@ IN NS ns\nns IN AAAA ::1\nwww IN A 10.6.6.6\n"
        );
        all.extend(Nsd::start("::1", 53, &[("v6only.test", zone)]));
    }
    Some((all, a))
}

#[test]
fn real_hierarchy_same_answers_as_debians_dnscache() {
    let Some((servers, root)) = hierarchy() else {
        eprintln!("skipped: a hierarchy on port 53 needs root");
        return;
    };
    let roots = vec![("@", format!("{root}\n"))];
    let ours = Cache::start(
        DNSCACHE,
        &free_port53_address().unwrap(),
        &roots,
        &["127"],
        &[],
    );
    let r = ask(&ours);
    let names = [
        "www.example.test",
        "alias2.example.test",
        "ext.example.test",
        "www.other.test",
        "nx.example.test",
        "v6.example.test",
        "multi.example.test",
    ];
    let mut mine = Vec::new();
    for n in names {
        let mut ips = r.ip4(n).unwrap();
        ips.sort();
        mine.push(ips);
    }
    assert_eq!(mine[0], vec![Ipv4Addr::new(10, 1, 2, 3)]);
    assert_eq!(
        mine[3],
        vec![Ipv4Addr::new(10, 5, 5, 5)],
        "glueless delegation"
    );
    assert_eq!(r.mx("example.test").unwrap().len(), 2);
    if servers.len() == 4 {
        assert_eq!(
            r.ip4("www.v6only.test").unwrap(),
            vec![Ipv4Addr::new(10, 6, 6, 6)],
            "AAAA glue"
        );
    } else {
        eprintln!("no IPv6 glue check: [::1]:53 is not available");
    }
    let quick = Resolver::with_servers(vec![ours.addr]).with_timeouts(&[Duration::from_secs(20)]);
    assert!(quick.ip4("www.lame.test").is_err());
    let log = ours.log();
    let ip = |s: &str| dnscache::dnslog::ip(s.parse().unwrap());
    for line in [
        format!("tx 0 1 www.example.test. . {}", ip(&root)),
        "tx 0 1 www.example.test. test. ".into(),
        "tx 0 1 www.example.test. example.test. ".into(),
        "tx 1 1 ns.example.test. ".into(),
        "lame ".into(),
    ] {
        assert!(
            log.lines().any(|l| l.starts_with(&line)),
            "no line {line:?} in\n{log}"
        );
    }
    let theirs_prog = "/usr/sbin/dnscache";
    if !std::path::Path::new(theirs_prog).is_file() {
        eprintln!("skipped the comparison: Debian's dnscache is not installed");
        return;
    }
    let theirs = Cache::start(
        theirs_prog,
        &free_port53_address().unwrap(),
        &roots,
        &["127"],
        &[],
    );
    let t = ask(&theirs);
    for (n, m) in names.iter().zip(mine.iter()) {
        let mut ips = t.ip4(n).unwrap();
        ips.sort();
        assert_eq!(&ips, m, "{n}");
    }
    assert_eq!(t.mx("example.test").unwrap(), r.mx("example.test").unwrap());
    assert_eq!(
        t.txt("txt.example.test").unwrap(),
        r.txt("txt.example.test").unwrap()
    );
}

/// A query without its OPT record, as a server knowing no EDNS0 sees it.
fn strip_edns(query: &[u8]) -> Vec<u8> {
    let mut q = query.to_vec();
    if q[10..12] == [0, 1] {
        q.truncate(q.len() - 11);
        q[11] = 0;
    }
    q
}

/// The answer a fake upstream gives to `query`: one A record, 1.1.1.1.
fn fake_answer(query: &[u8]) -> Vec<u8> {
    let mut ans = strip_edns(query);
    ans[2] |= 0x84;
    ans[7] = 1;
    ans.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x01\x01\x01");
    ans
}

#[test]
fn identical_questions_share_one_upstream_query() {
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let servers = vec![("merge.test", format!("{fake_addr}\n"))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    let addr = cache.addr;
    let clients: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || Resolver::with_servers(vec![addr]).ip4("x.merge.test")))
        .collect();
    fake.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, peer) = fake.recv_from(&mut buf).unwrap();
    let first = buf[..n].to_vec();
    // Let the other clients' queries reach the cache before answering.
    cache.wait_for("query 3 ");
    fake.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let more = fake.recv_from(&mut buf).is_ok();
    fake.send_to(&fake_answer(&first), peer).unwrap();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), vec![Ipv4Addr::new(1, 1, 1, 1)]);
    }
    assert!(!more, "one upstream query for three identical questions");
}

#[test]
fn a_late_answer_to_an_earlier_try_is_taken() {
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let servers = vec![("late.test", format!("{fake_addr}\n"))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    fake.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = cache.addr;
    let client = std::thread::spawn(move || Resolver::with_servers(vec![addr]).ip4("y.late.test"));
    let mut buf = [0u8; 512];
    let (n, peer1) = fake.recv_from(&mut buf).unwrap();
    let first = buf[..n].to_vec();
    let (_, peer2) = fake.recv_from(&mut buf).unwrap();
    assert_ne!(peer1, peer2, "the retry comes from a new port");
    fake.send_to(&fake_answer(&first), peer1).unwrap();
    assert_eq!(
        client.join().unwrap().unwrap(),
        vec![Ipv4Addr::new(1, 1, 1, 1)]
    );
}

#[test]
fn servers_without_edns_are_asked_plainly() {
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let servers = vec![("old.test", format!("{fake_addr}\n"))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    fake.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = cache.addr;
    let client = std::thread::spawn(move || Resolver::with_servers(vec![addr]).ip4("z.old.test"));
    let mut buf = [0u8; 512];
    let (n, peer) = fake.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[10..12], &[0, 1], "EDNS0 offered upstream");
    let mut formerr = buf[..12].to_vec();
    formerr[2] |= 0x80;
    formerr[3] = 1;
    formerr[4..12].fill(0);
    formerr[5] = 1;
    formerr.extend_from_slice(&buf[12..n - 11]);
    fake.send_to(&formerr, peer).unwrap();
    let (n, peer) = fake.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[10..12], &[0, 0], "asked again without EDNS0");
    fake.send_to(&fake_answer(&buf[..n]), peer).unwrap();
    assert_eq!(
        client.join().unwrap().unwrap(),
        vec![Ipv4Addr::new(1, 1, 1, 1)]
    );
}

#[test]
fn forward_only_and_ttl_expiry() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let servers = vec![("@", format!("{}\n", nsd.addr))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(
        DNSCACHE,
        &listen,
        &servers,
        &["127"],
        &[("FORWARDONLY", "1")],
    );
    let r = ask(&cache);
    assert_eq!(
        r.ip4("www.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 1, 2, 3)]
    );
    assert_eq!(
        r.ip4("ext.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 5, 5, 5)]
    );
    assert_eq!(
        r.ip4("short.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 3, 3, 3)]
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        r.ip4("short.example.test").unwrap(),
        vec![Ipv4Addr::new(10, 3, 3, 3)]
    );
    cache.wait_for("sent 4 ");
    let log = cache.log();
    let up = dnscache::dnslog::ip(nsd.addr.ip());
    assert!(
        log.contains(&format!("tx 0 1 www.example.test. . {up}")),
        "{log}"
    );
    let asked = log
        .lines()
        .filter(|l| l.starts_with("tx 0 1 short.example.test."))
        .count();
    assert_eq!(asked, 2, "a 1-second TTL expired: {log}");
}

#[test]
fn a_silent_server_is_passed_over_after_its_timeout() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let servers = vec![(
        "example.test",
        format!("{}\n{}\n", silent.local_addr().unwrap(), nsd.addr),
    )];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    let r = Resolver::with_servers(vec![cache.addr]).with_timeouts(&[Duration::from_secs(20)]);
    // Both servers are asked in turn; which first is the cache's choice.
    for name in ["www.example.test", "mail.example.test", "ns1.example.test"] {
        assert_eq!(r.ip4(name).unwrap().len(), 1, "{name}");
    }
}

#[test]
fn runs_from_a_dnscache_conf_service_directory() {
    let conf = env!("CARGO_BIN_EXE_dnscache-conf");
    let Some(ip) = free_port53_address() else {
        eprintln!("skipped: the service's dnscache listens on port 53, which needs root");
        return;
    };
    if !have("envuidgid") || !have("softlimit") || !have("envdir") {
        eprintln!("skipped: daemontools (envdir, envuidgid, softlimit) not installed");
        return;
    }
    let tmp = TempDir::new("service");
    let d = tmp.path().join("dnscache");
    let o = run(conf, &["nobody", "nobody", d.to_str().unwrap(), &ip], &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    std::fs::write(d.join("root/ip/127"), "").unwrap();
    let log = std::fs::File::create(tmp.path().join("log")).unwrap();
    let mut child = std::process::Command::new(d.join("run"))
        .current_dir(&d)
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut started = false;
    while std::time::Instant::now() < deadline && !started {
        started = std::fs::read_to_string(tmp.path().join("log"))
            .unwrap_or_default()
            .contains("starting");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r =
        Resolver::with_servers(vec![listen_addr(&ip)]).with_timeouts(&[Duration::from_secs(10)]);
    let answer = r.ip4("localhost");
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "no starting line");
    assert_eq!(answer.unwrap(), vec![Ipv4Addr::LOCALHOST]);
}

#[test]
fn a_hundred_thousand_names_stay_within_the_cache_budget() {
    let Some((_nsd, cache)) = setup(&[("CACHESIZE", "100000")]) else {
        return;
    };
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut answered = 0;
    let mut rss_after_warmup = 0;
    for batch in 0..2000u32 {
        for i in 0..50u32 {
            let name = format!("n{}.example.test", batch * 50 + i);
            let wire = dnscache::packet::name_from_dot(name.as_bytes()).unwrap();
            let q = dnscache::packet::build_query(i as u16, &wire, 1, true);
            s.send_to(&q, cache.addr).unwrap();
        }
        for _ in 0..50 {
            match s.recv(&mut buf) {
                Ok(_) => answered += 1,
                Err(_) => break,
            }
        }
        if batch == 200 {
            rss_after_warmup = cache.rss_kb();
        }
    }
    let rss = cache.rss_kb();
    assert!(answered > 99_000, "only {answered} answers");
    assert!(
        rss < rss_after_warmup + 4096,
        "memory grew from {rss_after_warmup} kB to {rss} kB"
    );
}
