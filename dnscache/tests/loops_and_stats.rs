//! dnscache's bounds on a client query's work, seen through dig: a CNAME
//! loop that crosses two servers and a true referral loop between two
//! servers both end in SERVFAIL after bounded work; and the opt-in
//! statistics file a monitoring system reads.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

const DNSCACHE: &str = env!("CARGO_BIN_EXE_dnscache");

/// dig's reply status (`NOERROR`, `SERVFAIL`, ...) for `name` asked of the
/// cache, or None when dig is not installed.
fn dig_status(cache: &Cache, name: &str) -> Option<String> {
    if !have("dig") {
        eprintln!("skipped: dig is not installed");
        return None;
    }
    let server = format!("@{}", cache.addr.ip());
    let port = cache.addr.port().to_string();
    let args = [
        server.as_str(),
        "-p",
        &port,
        "+tries=1",
        "+time=60",
        name,
        "A",
    ];
    let out = run("dig", &args, &[]);
    assert_eq!(out.code, 0, "dig failed: {out:?}");
    let status = out
        .stdout
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig's output: {}", out.stdout));
    Some(status.to_string())
}

fn tx_lines(cache: &Cache) -> usize {
    cache.log().lines().filter(|l| l.starts_with("tx ")).count()
}

#[test]
fn a_cname_loop_across_two_servers_ends_in_servfail() {
    let soa = "@ IN SOA ns h 1 3600 900 604800 300\n@ IN NS ns\nns IN A 127.0.0.1\n";
    let a = format!("$ORIGIN a.test.\n$TTL 3600\n{soa}x IN CNAME y.b.test.\n");
    let b = format!("$ORIGIN b.test.\n$TTL 3600\n{soa}y IN CNAME x.a.test.\n");
    let Some(nsd_a) = Nsd::start("127.0.0.1", 0, &[("a.test", a)]) else {
        return;
    };
    let Some(nsd_b) = Nsd::start("127.0.0.1", 0, &[("b.test", b)]) else {
        return;
    };
    let servers = [
        ("a.test", format!("{}\n", nsd_a.addr)),
        ("b.test", format!("{}\n", nsd_b.addr)),
    ];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    let Some(status) = dig_status(&cache, "x.a.test") else {
        return;
    };
    assert_eq!(status, "SERVFAIL", "log: {}", cache.log());
    let log = cache.log();
    assert!(log.contains("cname x.a.test. y.b.test."), "{log}");
    assert!(log.contains("cname y.b.test. x.a.test."), "{log}");
    let asked = tx_lines(&cache);
    assert!(
        (2..=4).contains(&asked),
        "each CNAME asked about once or twice, then taken from the cache: {log}"
    );
    // Asked again, the loop is followed through the cache alone.
    assert_eq!(dig_status(&cache, "y.b.test").unwrap(), "SERVFAIL");
    assert_eq!(tx_lines(&cache), asked, "{}", cache.log());
}

#[test]
fn a_referral_loop_between_two_servers_ends_in_servfail() {
    let (Some(c), Some(d)) = (free_port53_address(), free_port53_address()) else {
        eprintln!("skipped: servers at port 53 (referral glue has no port) need root");
        return;
    };
    // Both serve a `test.` zone delegating loop.test to the other, and
    // gl1.test and gl2.test to name servers inside each other, without glue.
    let zone = |ns: &str, addr: &str| {
        format!(
            "$ORIGIN test.\n$TTL 3600\n@ IN SOA ns h 1 3600 900 604800 300\n@ IN NS ns\nns IN A {addr}\nloop IN NS {ns}.loop.test.\n{ns}.loop IN A {addr}\ngl1 IN NS ns.gl2.test.\ngl2 IN NS ns.gl1.test.\n"
        )
    };
    let Some(_c) = Nsd::start(&c, 53, &[("test", zone("nsd", &d))]) else {
        return;
    };
    let Some(_d) = Nsd::start(&d, 53, &[("test", zone("nsc", &c))]) else {
        return;
    };
    let servers = [("@", format!("{c}\n"))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127"], &[]);
    let started = Instant::now();
    let Some(status) = dig_status(&cache, "www.loop.test") else {
        return;
    };
    assert_eq!(status, "SERVFAIL", "log: {}", cache.log());
    assert!(started.elapsed() < Duration::from_secs(60));
    let log = cache.log();
    assert!(tx_lines(&cache) >= 2, "the referral was followed: {log}");
    // A referral back to the zone asked about is lame, as in djbdns: the
    // loop ends at the second server instead of going round.
    assert!(log.contains(" loop.test. loop.test.\n"), "{log}");
    assert!(log.contains("servfail www.loop.test."), "{log}");
    // Two zones whose servers are named only inside each other: bounded
    // by the glueless depth, then SERVFAIL.
    let before = tx_lines(&cache);
    assert_eq!(dig_status(&cache, "www.gl1.test").unwrap(), "SERVFAIL");
    let asked = tx_lines(&cache) - before;
    assert!(asked >= 2, "{}", cache.log());
    assert!(asked <= 64, "the work is bounded: {asked} upstream queries");
    // The cache still serves other questions afterwards.
    assert_eq!(dig_status(&cache, "ns.test").unwrap(), "NOERROR");
}

/// Poll `path` (bounded) until it holds every line of `want`.
fn wait_for_stats(path: &Path, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "stats file lacks {want:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn statistics_file_only_when_asked_for() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let servers = [("example.test", format!("{}\n", nsd.addr))];
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let env = [("STATSFILE", "stats/dnscache.prom")];
    let cache = Cache::start(DNSCACHE, &listen, &servers, &["127.0.0.1"], &env);
    let stats_dir = cache.dir.path().join("root/stats");
    std::fs::create_dir(&stats_dir).unwrap();
    if is_root() {
        // dnscache has become UID/GID 65534 by now.
        std::os::unix::fs::chown(&stats_dir, Some(65534), Some(65534)).unwrap();
    }
    let path = stats_dir.join("dnscache.prom");
    // Written once the directory exists, even with nothing asked yet.
    wait_for_stats(&path, &["dnscache_queries_total{transport=\"udp\"} 0"]);
    let Some(status) = dig_status(&cache, "www.example.test") else {
        return;
    };
    assert_eq!(status, "NOERROR");
    assert_eq!(dig_status(&cache, "www.example.test").unwrap(), "NOERROR");
    assert_eq!(dig_status(&cache, "nx.example.test").unwrap(), "NXDOMAIN");
    // A client root/ip does not allow.
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    let q = dnscache::packet::build_query(1, b"\x03www\x07example\x04test\x00", 1, true);
    s.send_to(&q, cache.addr).unwrap();
    let text = wait_for_stats(
        &path,
        &[
            "dnscache_queries_total{transport=\"udp\"} 3",
            "dnscache_responses_total{rcode=\"NOERROR\"} 2",
            "dnscache_responses_total{rcode=\"NXDOMAIN\"} 1",
            "dnscache_responses_total{rcode=\"SERVFAIL\"} 0",
            "dnscache_refused_clients_total 1",
            "dnscache_upstream_queries_total 2",
            "dnscache_active_queries{transport=\"udp\"} 0",
            "dnscache_cache_size_bytes 1000000",
        ],
    );
    assert!(text.contains("# TYPE dnscache_queries_total counter\n"));
    assert!(!stats_dir.join("dnscache.prom.tmp").exists());

    // Without STATSFILE, root/ holds only what the operator put there.
    let plain = Cache::start(
        DNSCACHE,
        &format!("127.0.0.1:{}", free_port("127.0.0.1")),
        &servers,
        &["127"],
        &[],
    );
    assert_eq!(dig_status(&plain, "www.example.test").unwrap(), "NOERROR");
    let mut entries: Vec<String> = std::fs::read_dir(plain.dir.path().join("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["ip", "servers"]);
}
