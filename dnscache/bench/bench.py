#!/usr/bin/env python3
"""Benchmark our dnscache beside Debian's dnscache (djbdns 1.05) and
Unbound, with dnsperf as the client, against an nsd hierarchy (root,
test., bench.test.) on loopback addresses at port 53.

All three run at once, each on its own address; the measurements take
turns between them so that load from elsewhere on the machine falls on all
alike, and the best of ROUNDS cached runs counts. Measured for each:
  cold    -- COLD_NAMES distinct names, each asked once: every answer needs
             upstream queries (the referrals root -> test. are cached after
             the first; bench.test's answers are not);
  cached  -- a set of CACHED_NAMES names asked before, then asked again and
             again for SECONDS seconds: answers straight from the cache;
  memory  -- resident and peak resident memory (VmRSS, VmHWM) at the end.
Then prints a Markdown table and the ratios ours/theirs.

Needs root (servers at port 53; the referral glue carries no port), nsd,
dnsperf, dnscache (Debian's, /usr/sbin/dnscache) and unbound installed.
Uses only 127.54.0.0/16. Every process it starts is killed by pid.

usage: bench.py PATH-TO-OUR-DNSCACHE [SECONDS]
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

COLD_NAMES = 20000
CACHED_NAMES = 1000
CACHESIZE = 10_000_000
CLIENTS = 10
ROOT_NS, TLD_NS, LEAF_NS = "127.54.0.1", "127.54.0.2", "127.54.0.3"
LISTEN = {"ours": "127.54.1.1", "djbdns": "127.54.1.2", "unbound": "127.54.1.3"}
ROUNDS = 3


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(111)


class Procs:
    """Started processes, killed by pid on exit."""

    def __init__(self):
        self.children = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.children.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.children.remove(p)

    def stop_all(self):
        for p in list(self.children):
            self.stop(p)


def wait_answer(ip, name=b"\x00", qtype=6, timeout=30):
    """Poll with a UDP query until ip:53 answers (bounded)."""
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name
    q += qtype.to_bytes(2, "big") + b"\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            s.sendto(q, (ip, 53))
            s.recv(4096)
            return
        except OSError:
            continue
    die(f"nothing answers on {ip}:53")


def nsd(procs, work, ip, zones):
    d = os.path.join(work, "nsd-" + ip)
    os.makedirs(d)
    conf = (
        f"server:\n ip-address: {ip}\n port: 53\n username: \"\"\n chroot: \"\"\n"
        f" zonesdir: \"{d}\"\n database: \"\"\n pidfile: \"{d}/pid\"\n"
        f" xfrdfile: \"{d}/xfrd\"\n xfrdir: \"{d}\"\n zonelistfile: \"{d}/zl\"\n"
        f" logfile: \"{d}/log\"\n server-count: 1\n verbosity: 0\n"
        " rrl-ratelimit: 0\nremote-control:\n control-enable: no\n"
    )
    for name, text in zones:
        fname = (name.strip(".") or "root") + ".zone"
        with open(os.path.join(d, fname), "w") as f:
            f.write(text)
        conf += f"zone:\n name: \"{name}\"\n zonefile: \"{fname}\"\n"
    with open(os.path.join(d, "nsd.conf"), "w") as f:
        f.write(conf)
    procs.start(["nsd", "-d", "-c", os.path.join(d, "nsd.conf")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_answer(ip)


def hierarchy(procs, work):
    soa = "@ IN SOA ns.test. h.test. 1 3600 900 604800 300\n"
    root = f"$ORIGIN .\n$TTL 86400\n{soa}. IN NS a.root.\na.root. IN A {ROOT_NS}\n"
    root += f"test. IN NS ns.test.\nns.test. IN A {TLD_NS}\n"
    tld = f"$ORIGIN test.\n$TTL 86400\n{soa}@ IN NS ns\nns IN A {TLD_NS}\n"
    tld += f"bench IN NS ns.bench\nns.bench IN A {LEAF_NS}\n"
    leaf = [f"$ORIGIN bench.test.\n$TTL 86400\n{soa}@ IN NS ns\nns IN A {LEAF_NS}\n"]
    leaf += [f"c{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(COLD_NAMES)]
    leaf += [f"h{i} IN A 10.200.{i >> 8 & 255}.{i & 255}\n" for i in range(CACHED_NAMES)]
    nsd(procs, work, ROOT_NS, [(".", root)])
    nsd(procs, work, TLD_NS, [("test", tld)])
    nsd(procs, work, LEAF_NS, [("bench.test", "".join(leaf))])


def djb_style(procs, work, prog, tag):
    """A dnscache (ours or Debian's) as its run script starts it."""
    root = os.path.join(work, tag, "root")
    os.makedirs(os.path.join(root, "ip"))
    os.makedirs(os.path.join(root, "servers"))
    open(os.path.join(root, "ip", "127"), "w").close()
    with open(os.path.join(root, "servers", "@"), "w") as f:
        f.write(ROOT_NS + "\n")
    env = {"PATH": "/usr/bin:/bin", "IP": LISTEN[tag], "IPSEND": "0.0.0.0",
           "CACHESIZE": str(CACHESIZE), "ROOT": root, "UID": "65534", "GID": "65534"}
    seed = open("/dev/urandom", "rb")
    p = procs.start([prog], env=env, stdin=seed, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    seed.close()
    return p


def unbound(procs, work, tag):
    d = os.path.join(work, tag)
    os.makedirs(d)
    with open(os.path.join(d, "hints"), "w") as f:
        f.write(f". 3600000 NS a.root.\na.root. 3600000 A {ROOT_NS}\n")
    conf = (
        f"server:\n interface: {LISTEN[tag]}\n port: 53\n do-ip6: no\n num-threads: 1\n"
        f" access-control: 127.0.0.0/8 allow\n username: \"\"\n chroot: \"\"\n"
        f" directory: \"{d}\"\n pidfile: \"{d}/pid\"\n root-hints: \"{d}/hints\"\n"
        f" do-not-query-localhost: no\n module-config: \"iterator\"\n"
        f" msg-cache-size: {CACHESIZE // 2}\n rrset-cache-size: {CACHESIZE // 2}\n"
        f" use-syslog: no\n logfile: \"\"\n verbosity: 0\n qname-minimisation: no\n"
        f" harden-referral-path: no\n prefetch: no\n"
        "remote-control:\n control-enable: no\n"
    )
    with open(os.path.join(d, "unbound.conf"), "w") as f:
        f.write(conf)
    return procs.start(["unbound", "-d", "-c", os.path.join(d, "unbound.conf")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dnsperf(ip, data, extra):
    out = subprocess.run(["dnsperf", "-s", ip, "-d", data, "-c", str(CLIENTS)] + extra,
                         capture_output=True, text=True, timeout=600).stdout
    def num(label):
        m = re.search(label + r":\s+([0-9.]+)", out)
        if not m:
            die(f"no {label} in dnsperf's output:\n{out}")
        return float(m.group(1))
    return {"qps": num("Queries per second"), "lat_ms": num("Average Latency \\(s\\)") * 1000,
            "lost": num("Queries lost")}


def memory(pid):
    status = open(f"/proc/{pid}/status").read()
    get = lambda k: int(re.search(k + r":\s+(\d+)", status).group(1))
    return get("VmRSS"), get("VmHWM")


def measure(work, pids, seconds):
    """Cold runs, then cached rounds taking turns; memory at the end."""
    cold = os.path.join(work, "cold.txt")
    cached = os.path.join(work, "cached.txt")
    res = {name: {} for name in pids}
    for name in pids:
        wait_answer(LISTEN[name], b"\x02ns\x04test\x00", 1)
        res[name]["cold"] = dnsperf(LISTEN[name], cold, ["-n", "1", "-t", "10"])
        dnsperf(LISTEN[name], cached, ["-n", "1"])  # fill the cache with the cached set
    for _ in range(ROUNDS):
        for name in pids:
            r = dnsperf(LISTEN[name], cached, ["-l", str(seconds)])
            if r["qps"] > res[name].get("cached", {"qps": 0})["qps"]:
                res[name]["cached"] = r
    for name, pid in pids.items():
        res[name]["rss_kb"], res[name]["hwm_kb"] = memory(pid)
        print(f"{name}: {res[name]}", file=sys.stderr)
    return res


def main():
    if len(sys.argv) < 2:
        die("usage: bench.py PATH-TO-OUR-DNSCACHE [SECONDS]")
    ours = os.path.abspath(sys.argv[1])
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    if os.geteuid() != 0:
        die("needs root: the hierarchy's servers listen on port 53")
    for prog in ["nsd", "dnsperf", "unbound"]:
        if not shutil.which(prog, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            die(f"{prog} is not installed")
    if not os.path.exists("/usr/sbin/dnscache"):
        die("Debian's dnscache is not installed")
    os.environ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    procs = Procs()
    work = tempfile.mkdtemp(prefix="dnscache-bench-")
    os.chmod(work, 0o755)
    try:
        with open(os.path.join(work, "cold.txt"), "w") as f:
            f.writelines(f"c{i}.bench.test A\n" for i in range(COLD_NAMES))
        with open(os.path.join(work, "cached.txt"), "w") as f:
            f.writelines(f"h{i}.bench.test A\n" for i in range(CACHED_NAMES))
        hierarchy(procs, work)
        pids = {
            "ours": djb_style(procs, work, ours, "ours").pid,
            "djbdns": djb_style(procs, work, "/usr/sbin/dnscache", "djbdns").pid,
            "unbound": unbound(procs, work, "unbound").pid,
        }
        res = measure(work, pids, seconds)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    report(res, seconds)


def report(res, seconds):
    print(f"| resolver | cached q/s | cached latency ms | cold q/s | cold latency ms | lost (cold) | RSS kB | peak RSS kB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in res.items():
        c, k = r["cached"], r["cold"]
        print(f"| {name} | {c['qps']:.0f} | {c['lat_ms']:.3f} | {k['qps']:.0f} | {k['lat_ms']:.3f} | {k['lost']:.0f} | {r['rss_kb']} | {r['hwm_kb']} |")
    o = res["ours"]
    print()
    for other in ["djbdns", "unbound"]:
        t = res[other]
        print(f"ours/{other}: cached throughput {o['cached']['qps'] / t['cached']['qps']:.2f}x, "
              f"cold throughput {o['cold']['qps'] / t['cold']['qps']:.2f}x, "
              f"peak memory {o['hwm_kb'] / t['hwm_kb']:.2f}x")
    print(f"\n(cached: {CACHED_NAMES} names for {seconds} s, best of {ROUNDS}; cold: {COLD_NAMES} names once; "
          f"{CLIENTS} dnsperf clients; CACHESIZE {CACHESIZE}; logs to /dev/null)")


if __name__ == "__main__":
    main()
