//! The dns* client tools against nsd on loopback: fixed expectations on a
//! run-time port, and byte-for-byte comparison with Debian's djbdns-utils
//! (which only talk to port 53, so that part needs root).

mod support;

use support::*;

const ALL: [&str; 7] = [
    "dnsip", "dnsipq", "dnsmx", "dnsname", "dnstxt", "dnsq", "dnsqr",
];

fn ours(prog: &str) -> &'static str {
    match prog {
        "dnsip" => env!("CARGO_BIN_EXE_dnsip"),
        "dnsipq" => env!("CARGO_BIN_EXE_dnsipq"),
        "dnsmx" => env!("CARGO_BIN_EXE_dnsmx"),
        "dnsname" => env!("CARGO_BIN_EXE_dnsname"),
        "dnstxt" => env!("CARGO_BIN_EXE_dnstxt"),
        "dnsq" => env!("CARGO_BIN_EXE_dnsq"),
        "dnsqr" => env!("CARGO_BIN_EXE_dnsqr"),
        _ => panic!("no such tool {prog}"),
    }
}

#[test]
fn outputs_on_a_runtime_port() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let ip = nsd.addr.to_string();
    let env = [("DNSCACHEIP", ip.as_str())];
    let o = run(
        ours("dnsip"),
        &["www.example.test", "nx.example.test", "[1.2.3.4]"],
        &env,
    );
    assert_eq!(o.stdout, "10.1.2.3 \n\n1.2.3.4 \n");
    assert_eq!(o.code, 0);
    let o = run(ours("dnsmx"), &["example.test", "WWW.example.test."], &env);
    assert_eq!(
        o.stdout,
        "10 mail.example.test\n20 mail2.elsewhere.test\n0 www.example.test\n"
    );
    let o = run(
        ours("dnstxt"),
        &["txt.example.test", "nx.example.test"],
        &env,
    );
    assert_eq!(o.stdout, "helloworldsecond?x\n\n");
    let o = run(
        ours("dnsname"),
        &["127.0.0.1", "2001:db8::1", "127.0.0.2"],
        &env,
    );
    assert_eq!(o.stdout, "localhost.example.test\nsix.example.test\n\n");
    let o = run(ours("dnsq"), &["mx", "example.test", &ip], &[]);
    assert_eq!(
        o.stdout,
        "15 example.test:\n\
         133 bytes, 1+2+1+2 records, response, authoritative, noerror\n\
         query: 15 example.test\n\
         answer: example.test 3600 MX 10 mail.example.test\n\
         answer: example.test 3600 MX 20 mail2.elsewhere.test\n\
         authority: example.test 3600 NS ns1.example.test\n\
         additional: mail.example.test 3600 A 10.1.2.4\n\
         additional: ns1.example.test 3600 A 127.0.0.1\n"
    );
    let o = run(ours("dnsqr"), &["a", "nx.example.test"], &env);
    assert_eq!(
        o.stdout,
        "1 nx.example.test:\n\
         84 bytes, 1+0+1+0 records, response, authoritative, nxdomain\n\
         query: 1 nx.example.test\n\
         authority: example.test 300 SOA ns1.example.test hostmaster.example.test 1 3600 900 604800 300\n"
    );
    let env2 = [
        ("DNSCACHEIP", ip.as_str()),
        ("LOCALDOMAIN", "nowhere.example.test example.test"),
        ("DNSREWRITEFILE", "/nonexistent"),
    ];
    let o = run(ours("dnsipq"), &["www", "mail", "nx"], &env2);
    assert_eq!(
        o.stdout,
        "www.example.test 10.1.2.3 \nmail.example.test 10.1.2.4 \nnx.example.test \n"
    );
}

#[test]
fn failures_print_nothing_on_stdout_and_exit_111() {
    let Some(nsd) = Nsd::start("127.0.0.1", 0, &standard_zones()) else {
        return;
    };
    let ip = nsd.addr.to_string();
    let env = [("DNSCACHEIP", ip.as_str())];
    let o = run(
        ours("dnsip"),
        &["www.example.test", "www.unknown.test"],
        &env,
    );
    assert_eq!((o.stdout.as_str(), o.code), ("", 111));
    assert_eq!(
        o.stderr,
        "dnsip: fatal: unable to find IP address for www.unknown.test: temporary failure\n"
    );
    let o = run(ours("dnsname"), &["foo"], &env);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("dnsname: fatal: unable to parse IP address foo\n", 111)
    );
    let o = run(ours("dnsq"), &["a"], &env);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("dnsq: usage: dnsq type name server\n", 100)
    );
    let o = run(ours("dnsqr"), &["a", "b", "c"], &env);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("dnsqr: usage: dnsqr type name\n", 100)
    );
    let o = run(ours("dnsqr"), &["a", "www.unknown.test"], &env);
    assert_eq!(
        (o.stdout.as_str(), o.code),
        ("1 www.unknown.test:\ntemporary failure\n", 0)
    );
}

/// Variables a run gets.
type Env<'a> = [(&'a str, &'a str)];

/// Sort the space-separated addresses of each line (the tools shuffle them).
fn canonical(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut w: Vec<&str> = l.split(' ').collect();
            if w.iter()
                .all(|x| x.is_empty() || x.parse::<std::net::Ipv4Addr>().is_ok())
            {
                w.sort();
            }
            w.join(" ") + "\n"
        })
        .collect()
}

#[test]
fn same_bytes_as_debians_djbdns_utils() {
    let Some(addr) = free_port53_address() else {
        eprintln!(
            "skipped: comparing with djbdns-utils needs root (the originals use port 53 only)"
        );
        return;
    };
    if !ALL
        .iter()
        .all(|p| std::path::Path::new(&format!("/usr/bin/{p}")).is_file())
    {
        eprintln!("skipped: djbdns-utils is not installed");
        return;
    }
    let Some(_nsd) = Nsd::start(&addr, 53, &standard_zones()) else {
        return;
    };
    let dir = TempDir::new("rewrite");
    let rw = dir.path().join("dnsrewrite");
    std::fs::write(
        &rw,
        "=localhost:127.0.0.1\n-.local:www.example.test\n?:.example.test\n*.:\n",
    )
    .unwrap();
    let rw = rw.to_str().unwrap().to_string();
    let a = addr.as_str();
    let plain = [("DNSCACHEIP", a), ("DNSREWRITEFILE", "/nonexistent")];
    let local = [
        ("DNSCACHEIP", a),
        ("DNSREWRITEFILE", "/nonexistent"),
        ("LOCALDOMAIN", "example.test other.test"),
    ];
    let file = [("DNSCACHEIP", a), ("DNSREWRITEFILE", rw.as_str())];
    let big_label = format!("{}.test", "a".repeat(70));
    let cases: Vec<(&str, Vec<&str>, &Env)> = vec![
        (
            "dnsip",
            vec![
                "www.example.test",
                "alias.example.test",
                "alias2.example.test",
                "multi.example.test",
                "nx.example.test",
                "v6.example.test",
                "1.2.3.4",
                "[5.6.7.8]",
                "1.2.3.4.5.6.7.8.9",
                "big.test",
            ],
            &plain,
        ),
        ("dnsip", vec![], &plain),
        ("dnsip", vec![big_label.as_str()], &plain),
        (
            "dnsip",
            vec!["www.example.test", "www.unknown.test"],
            &plain,
        ),
        (
            "dnsipq",
            vec!["www", "ns1", "www.", "nx", "mail.example.test"],
            &local,
        ),
        (
            "dnsipq",
            vec!["localhost", "x.local", "www", "www.example.test."],
            &file,
        ),
        (
            "dnsmx",
            vec![
                "example.test",
                "www.example.test",
                "nx.example.test",
                "EXAMPLE.test.",
                "A\\.b.example.test",
                "mxalias.example.test",
            ],
            &plain,
        ),
        (
            "dnstxt",
            vec![
                "txt.example.test",
                "www.example.test",
                "nx.example.test",
                "big.test",
            ],
            &plain,
        ),
        (
            "dnsname",
            vec!["127.0.0.1", "127.0.0.2", "127.0.0.1junk"],
            &plain,
        ),
        ("dnsname", vec!["foo"], &plain),
        ("dnsq", vec!["a", "www.example.test", a], &plain),
        ("dnsq", vec!["mx", "example.test", a], &plain),
        ("dnsq", vec!["any", "example.test", a], &plain),
        ("dnsq", vec!["txt", "big.test", a], &plain),
        ("dnsq", vec!["a", "big.test", a], &plain),
        ("dnsq", vec!["A", "nx.example.test", a], &plain),
        ("dnsq", vec!["aaaa", "v6.example.test", a], &plain),
        ("dnsq", vec!["ptr", "1.0.0.127.in-addr.arpa", a], &plain),
        ("dnsq", vec!["ns", "example.test", a], &plain),
        ("dnsq", vec!["cname", "alias.example.test", a], &plain),
        ("dnsq", vec!["soa", "example.test", a], &plain),
        ("dnsq", vec!["65551", "example.test", a, "extra"], &plain),
        ("dnsq", vec!["a", "www.example.test", "ns1"], &file),
        ("dnsq", vec![], &plain),
        ("dnsq", vec!["a", "b"], &plain),
        ("dnsq", vec!["bogus", "b", a], &plain),
        ("dnsq", vec!["a", big_label.as_str(), a], &plain),
        ("dnsqr", vec!["any", "example.test"], &plain),
        ("dnsqr", vec!["txt", "txt.example.test"], &plain),
        ("dnsqr", vec!["a", "alias2.example.test"], &plain),
        ("dnsqr", vec!["mx", "nx.example.test"], &plain),
        ("dnsqr", vec!["a", "www.unknown.test"], &plain),
        ("dnsqr", vec!["a"], &plain),
        ("dnsqr", vec!["a", "b", "c"], &plain),
        ("dnsqr", vec!["bogus", "x"], &plain),
    ];
    let mut answered = false;
    for (prog, args, env) in cases {
        let theirs = run(&format!("/usr/bin/{prog}"), &args, env);
        let mine = run(ours(prog), &args, env);
        let (mut t, mut m) = (theirs.clone(), mine.clone());
        if prog == "dnsip" || prog == "dnsipq" {
            t.stdout = canonical(&t.stdout);
            m.stdout = canonical(&m.stdout);
        }
        assert_eq!(m, t, "{prog} {args:?} differs from the original");
        answered |= mine.stdout.contains("10.1.2.3");
    }
    assert!(answered, "the server was reached");
}
