//! The iterative resolution of one client question, as djbdns' query.c
//! does it, without any I/O: the engine says which servers to ask what
//! (`Step::Send`), is handed their answers, and finally gives the records to
//! send back (`Step::Done`). The event loop in server.rs does the sending.
//!
//! It starts at the longest suffix of the name that root/servers or the
//! cache knows servers for, follows referrals (with glue from the referring
//! packet, or by looking the name servers' addresses up itself, "glueless",
//! a bounded number of levels deep), chases CNAMEs, and caches what servers
//! say about names inside their bailiwick only. NS records for the zone the
//! server was asked as are not re-cached from its own answers, so a deleted
//! delegation cannot be kept alive by its old servers (CVE-2012-1191).
//! Name servers' IPv6 addresses (AAAA glue, cached AAAA records) are used
//! beside their IPv4 ones. Every question has a bounded amount of work (loop count, levels, CNAME
//! hops, upstream sends) and ends in SERVFAIL rather than silence.

use crate::cache::Cache;
use crate::dnslog::{self, RrData};
use crate::packet::{
    self, Message, Record, C_IN, T_A, T_AAAA, T_ANY, T_CNAME, T_MX, T_NS, T_PTR, T_SOA,
};
use crate::roots::Roots;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Work limits for one question.
const MAX_LOOPS: u32 = 100;
const MAX_LEVELS: usize = 5;
const MAX_CNAMES: u32 = 10;
const MAX_SENDS: u32 = 64;
/// TTL of the answers dnscache makes up itself (localhost), as djbdns.
const LOCAL_TTL: u32 = 655_360;
/// Cache key type for "this name does not exist".
const KEY_NXDOMAIN: u16 = 0xfffe;

/// Server responses' codes the engine gives back.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;

/// What the engine works with: the cache, the configured servers, the
/// options, and the log lines it produces.
pub struct Ctx<'a> {
    pub cache: &'a mut Cache,
    pub roots: &'a Roots,
    pub forward_only: bool,
    pub log: &'a mut Vec<String>,
    pub now: Instant,
}

/// What to do next for a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask `servers` (in turn) for `qname`/`qtype`, recursively when forwarding.
    Send {
        servers: Vec<SocketAddr>,
        qname: Vec<u8>,
        qtype: u16,
        recursive: bool,
    },
    /// The answer just received is useless (lame, failing): ask the next server.
    NextServer,
    /// Answer the client: rcode and answer records (`ancount` of them, wire form).
    Done {
        rcode: u8,
        records: Vec<u8>,
        ancount: u16,
    },
}

/// One level of the search: the question itself (level 0) or the address
/// of a name server a level above needs.
#[derive(Debug, Clone)]
struct Level {
    name: Vec<u8>,
    qtype: u16,
    control: Vec<u8>,
    ns: Vec<Vec<u8>>,
    tried: Vec<Vec<u8>>,
    servers: Vec<SocketAddr>,
}

impl Level {
    fn new(name: Vec<u8>, qtype: u16) -> Level {
        Level {
            name,
            qtype,
            control: Vec::new(),
            ns: Vec::new(),
            tried: Vec::new(),
            servers: Vec::new(),
        }
    }
    fn rename(&mut self, name: Vec<u8>) {
        *self = Level::new(name, self.qtype);
    }
}

/// The state of one client question.
#[derive(Debug, Clone)]
pub struct Resolution {
    records: Vec<u8>,
    ancount: u16,
    levels: Vec<Level>,
    loops: u32,
    cnames: u32,
    sends: u32,
}

/// How a level ended.
enum Outcome {
    Found,
    Failed,
}

impl Resolution {
    pub fn new(qname: &[u8], qtype: u16) -> Resolution {
        Resolution {
            records: Vec::new(),
            ancount: 0,
            levels: vec![Level::new(qname.to_ascii_lowercase(), qtype)],
            loops: 0,
            cnames: 0,
            sends: 0,
        }
    }

    /// Start (or go on with) the search.
    pub fn run(&mut self, ctx: &mut Ctx) -> Step {
        loop {
            self.loops += 1;
            if self.loops > MAX_LOOPS {
                return self.servfail(ctx);
            }
            if let Some(step) = self.try_cache(ctx) {
                match step {
                    Ok(done) => return done,
                    Err(()) => continue,
                }
            }
            match self.servers(ctx) {
                Some(true) => {}
                Some(false) => continue,
                None => match self.finish_level(ctx, Outcome::Failed) {
                    Some(done) => return done,
                    None => continue,
                },
            }
            self.sends += 1;
            if self.sends > MAX_SENDS {
                return self.servfail(ctx);
            }
            let level = self.levels.len() - 1;
            let lv = &self.levels[level];
            ctx.log.push(dnslog::tx(
                level,
                lv.qtype,
                &lv.name,
                &lv.control,
                &lv.servers,
            ));
            return Step::Send {
                servers: lv.servers.clone(),
                qname: lv.name.clone(),
                qtype: lv.qtype,
                recursive: ctx.forward_only,
            };
        }
    }

    /// Every server asked failed or never answered.
    pub fn all_failed(&mut self, ctx: &mut Ctx) -> Step {
        match self.finish_level(ctx, Outcome::Failed) {
            Some(done) => done,
            None => self.run(ctx),
        }
    }

    /// Answer from the cache or from dnscache itself, if possible.
    /// Ok(step): done; Err(()): the level changed, loop again; None: ask.
    fn try_cache(&mut self, ctx: &mut Ctx) -> Option<Result<Step, ()>> {
        let level = self.levels.len() - 1;
        let (d, dtype) = {
            let lv = &self.levels[level];
            (lv.name.clone(), lv.qtype)
        };
        if let Some(recs) = local_answer(&d, dtype) {
            for (t, data) in recs {
                self.add_record(&d, t, LOCAL_TTL, &data);
            }
            return Some(self.finish_level(ctx, Outcome::Found).ok_or(()));
        }
        if dtype != T_CNAME {
            if let Some((data, ttl)) = ctx.cache.get(&key(T_CNAME, &d), ctx.now) {
                let target = split_rdata(data).into_iter().next().unwrap_or_default();
                ctx.log.push(dnslog::cached_cname(&d, &target));
                return Some(self.follow_cname(ctx, &d, &target, ttl));
            }
        }
        if ctx.cache.get(&key(KEY_NXDOMAIN, &d), ctx.now).is_some() {
            ctx.log.push(dnslog::cached_nxdomain(&d));
            return Some(self.nxdomain(ctx));
        }
        if dtype == T_ANY {
            return None;
        }
        let (data, ttl) = ctx.cache.get(&key(dtype, &d), ctx.now)?;
        let data = data.to_vec();
        ctx.log.push(dnslog::cached(dtype, &d));
        for rdata in split_rdata(&data) {
            self.add_record(&d, dtype, ttl, &rdata);
        }
        Some(self.finish_level(ctx, Outcome::Found).ok_or(()))
    }

    /// Record a CNAME from `d` to `target` and go on with the target.
    fn follow_cname(
        &mut self,
        ctx: &mut Ctx,
        d: &[u8],
        target: &[u8],
        ttl: u32,
    ) -> Result<Step, ()> {
        self.cnames += 1;
        if self.cnames > MAX_CNAMES || target.is_empty() {
            return Ok(self.servfail(ctx));
        }
        if self.levels.len() == 1 {
            self.add_record(d, T_CNAME, ttl, target);
        }
        let lv = self.levels.last_mut().expect("a level");
        lv.rename(target.to_ascii_lowercase());
        Err(())
    }

    /// The name does not exist: the answer for level 0, a dead end above.
    fn nxdomain(&mut self, ctx: &mut Ctx) -> Result<Step, ()> {
        if self.levels.len() == 1 {
            return Ok(self.done(RCODE_NXDOMAIN));
        }
        self.finish_level(ctx, Outcome::Failed).ok_or(())
    }

    /// Make sure the current level has servers to ask. Some(true): it has;
    /// Some(false): a new level was pushed; None: no way to go on.
    fn servers(&mut self, ctx: &mut Ctx) -> Option<bool> {
        let depth = self.levels.len();
        let lv = self.levels.last_mut().expect("a level");
        if lv.servers.is_empty() && lv.ns.is_empty() {
            find_servers(lv, ctx)?;
        }
        if lv.servers.is_empty() {
            lv.servers = cached_addresses(&lv.ns, ctx);
        }
        if !lv.servers.is_empty() {
            return Some(true);
        }
        if depth >= MAX_LEVELS {
            return None;
        }
        let next = lv.ns.iter().find(|n| !lv.tried.contains(n))?.clone();
        lv.tried.push(next.clone());
        self.levels.push(Level::new(next, T_A));
        Some(false)
    }

    /// End the current level: level 0 gives the client's answer; a name
    /// server's level hands back to the level that needed it.
    fn finish_level(&mut self, ctx: &mut Ctx, how: Outcome) -> Option<Step> {
        if self.levels.len() == 1 {
            return Some(match how {
                Outcome::Found => self.done(RCODE_NOERROR),
                Outcome::Failed => self.servfail(ctx),
            });
        }
        self.levels.pop();
        let parent = self.levels.last_mut().expect("a level");
        parent.servers.clear();
        None
    }

    fn servfail(&mut self, ctx: &mut Ctx) -> Step {
        let d = self
            .levels
            .last()
            .map(|l| l.name.clone())
            .unwrap_or_default();
        ctx.log
            .push(dnslog::servfail(&d, common::errstr::text(libc::EIO)));
        Step::Done {
            rcode: RCODE_SERVFAIL,
            records: Vec::new(),
            ancount: 0,
        }
    }

    fn done(&mut self, rcode: u8) -> Step {
        Step::Done {
            rcode,
            records: std::mem::take(&mut self.records),
            ancount: self.ancount,
        }
    }

    fn add_record(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        if self.levels.len() != 1 {
            return;
        }
        self.records.extend_from_slice(owner);
        self.records.extend_from_slice(&rtype.to_be_bytes());
        self.records.extend_from_slice(&C_IN.to_be_bytes());
        self.records.extend_from_slice(&ttl.to_be_bytes());
        self.records
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.records.extend_from_slice(rdata);
        self.ancount += 1;
    }

    /// A response from `server` to the current level's question.
    pub fn response(&mut self, ctx: &mut Ctx, server: SocketAddr, buf: &[u8]) -> Step {
        let Some(msg) = packet::parse(buf) else {
            return Step::NextServer;
        };
        let rcode = msg.header.rcode();
        if rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN {
            return Step::NextServer;
        }
        let (d, dtype, control) = {
            let lv = self.levels.last().expect("a level");
            (lv.name.clone(), lv.qtype, lv.control.clone())
        };
        let sets = rrsets(buf, &msg);
        cache_rrsets(ctx, server.ip(), &sets, &control);
        if dtype != T_CNAME {
            if let Some(set) = find(&sets, &d, T_CNAME, true) {
                let target = set.rdata.first().cloned().unwrap_or_default();
                return match self.follow_cname(ctx, &d, &target, set.ttl) {
                    Ok(step) => step,
                    Err(()) => self.run(ctx),
                };
            }
        }
        let answers: Vec<&RrSet> = sets
            .iter()
            .filter(|s| s.answer && packet::name_equal(&s.owner, &d))
            .filter(|s| s.rtype == dtype || (dtype == T_ANY && s.rtype != T_CNAME))
            .collect();
        if !answers.is_empty() {
            return self.found(ctx, &d, &answers);
        }
        if rcode == RCODE_NXDOMAIN {
            let ttl = negative_ttl(&sets);
            ctx.log.push(dnslog::nxdomain(server.ip(), ttl, &d));
            ctx.cache.set(&key(KEY_NXDOMAIN, &d), b"", ttl, ctx.now);
            return match self.nxdomain(ctx) {
                Ok(step) => step,
                Err(()) => self.run(ctx),
            };
        }
        if let Some(step) = self.referral(ctx, server, &sets, &d, &control) {
            return step;
        }
        let ttl = negative_ttl(&sets);
        ctx.log.push(dnslog::nodata(server.ip(), ttl, dtype, &d));
        ctx.cache.set(&key(dtype, &d), b"", ttl, ctx.now);
        match self.finish_level(ctx, Outcome::Found) {
            Some(step) => step,
            None => self.run(ctx),
        }
    }

    /// The records asked for arrived: answer, or hand addresses up.
    fn found(&mut self, ctx: &mut Ctx, d: &[u8], sets: &[&RrSet]) -> Step {
        if self.levels.len() > 1 {
            let addrs = sets
                .iter()
                .flat_map(|s| s.rdata.iter())
                .filter_map(|r| <[u8; 4]>::try_from(r.as_slice()).ok())
                .map(|o| SocketAddr::new(IpAddr::from(o), 53));
            let found: Vec<SocketAddr> = addrs.collect();
            self.levels.pop();
            let parent = self.levels.last_mut().expect("a level");
            parent.servers = found;
            return self.run(ctx);
        }
        for s in sets {
            for r in &s.rdata {
                self.add_record(d, s.rtype, s.ttl, r);
            }
        }
        self.done(RCODE_NOERROR)
    }

    /// A referral deeper into the name: go on with the new zone's servers.
    /// One that does not lead closer is lame. None: not a referral at all.
    fn referral(
        &mut self,
        ctx: &mut Ctx,
        server: SocketAddr,
        sets: &[RrSet],
        d: &[u8],
        control: &[u8],
    ) -> Option<Step> {
        if sets.iter().any(|s| s.rtype == T_SOA && !s.answer) {
            return None;
        }
        let ns = sets.iter().find(|s| s.rtype == T_NS && !s.answer)?;
        let deeper = in_bailiwick(&ns.owner, control) && !packet::name_equal(&ns.owner, control);
        if ctx.forward_only || !deeper || !in_bailiwick(d, &ns.owner) {
            ctx.log.push(dnslog::lame(server.ip(), control, &ns.owner));
            return Some(Step::NextServer);
        }
        let glue: Vec<SocketAddr> = sets
            .iter()
            .filter(|s| (s.rtype == T_A || s.rtype == T_AAAA) && in_bailiwick(&s.owner, control))
            .filter(|s| ns.rdata.iter().any(|n| packet::name_equal(n, &s.owner)))
            .flat_map(|s| s.rdata.iter())
            .filter_map(|r| server_address(r))
            .take(16)
            .collect();
        let lv = self.levels.last_mut().expect("a level");
        lv.control = ns.owner.to_ascii_lowercase();
        lv.ns = ns.rdata.iter().map(|n| n.to_ascii_lowercase()).collect();
        lv.tried.clear();
        lv.servers = glue;
        Some(self.run(ctx))
    }
}

/// Names dnscache answers itself: localhost, its reverse, dotted quads.
fn local_answer(d: &[u8], dtype: u16) -> Option<Vec<(u16, Vec<u8>)>> {
    let wants = |t: u16| dtype == t || dtype == T_ANY;
    if packet::name_equal(d, b"\x09localhost\x00") {
        return Some(if wants(T_A) {
            vec![(T_A, vec![127, 0, 0, 1])]
        } else {
            vec![]
        });
    }
    if packet::name_equal(d, b"\x011\x010\x010\x03127\x07in-addr\x04arpa\x00") {
        let ptr = b"\x09localhost\x00".to_vec();
        return Some(if wants(T_PTR) {
            vec![(T_PTR, ptr)]
        } else {
            vec![]
        });
    }
    let dotted = packet::name_to_dot(d);
    let parts: Vec<&str> = dotted.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
    {
        let ip: Option<Vec<u8>> = parts.iter().map(|p| p.parse::<u8>().ok()).collect();
        let ip = ip?;
        return Some(if wants(T_A) { vec![(T_A, ip)] } else { vec![] });
    }
    None
}

/// Start a level at the nearest enclosing zone whose servers are known:
/// root/servers first, then (unless forwarding) NS records in the cache.
fn find_servers(lv: &mut Level, ctx: &mut Ctx) -> Option<()> {
    let mut pos = 0;
    loop {
        let s = &lv.name[pos..];
        if let Some(servers) = ctx.roots.get(s) {
            lv.control = s.to_vec();
            lv.servers = servers.to_vec();
            return Some(());
        }
        if !ctx.forward_only {
            if let Some((data, _)) = ctx.cache.get(&key(T_NS, s), ctx.now) {
                let names = split_rdata(data);
                if !names.is_empty() {
                    for n in &names {
                        ctx.log.push(dnslog::cached_ns(s, n));
                    }
                    lv.control = s.to_vec();
                    lv.ns = names;
                    return Some(());
                }
            }
        }
        let len = usize::from(*s.first()?);
        if len == 0 {
            return None;
        }
        pos += 1 + len;
    }
}

/// Addresses of the name servers `ns` found in the cache.
fn cached_addresses(ns: &[Vec<u8>], ctx: &Ctx) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for n in ns {
        for t in [T_A, T_AAAA] {
            if let Some((data, _)) = ctx.cache.get(&key(t, n), ctx.now) {
                out.extend(split_rdata(data).iter().filter_map(|r| server_address(r)));
            }
        }
        if out.len() >= 16 {
            break;
        }
    }
    out.truncate(16);
    out
}

/// A name server's address from A or AAAA data, port 53.
fn server_address(r: &[u8]) -> Option<SocketAddr> {
    if let Ok(o) = <[u8; 4]>::try_from(r) {
        return Some(SocketAddr::new(IpAddr::from(o), 53));
    }
    let o = <[u8; 16]>::try_from(r).ok()?;
    Some(SocketAddr::new(IpAddr::from(o), 53))
}

/// The cache key of a type and a name.
fn key(t: u16, name: &[u8]) -> Vec<u8> {
    let mut k = t.to_be_bytes().to_vec();
    k.extend(name.iter().map(u8::to_ascii_lowercase));
    k
}

/// Cached data: each record's data prefixed by its length.
fn join_rdata(rdata: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rdata {
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

fn split_rdata(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 2 <= data.len() {
        let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
        let Some(r) = data.get(pos + 2..pos + 2 + len) else {
            break;
        };
        out.push(r.to_vec());
        pos += 2 + len;
    }
    out
}

/// Whether `name` is `zone` or below it.
fn in_bailiwick(name: &[u8], zone: &[u8]) -> bool {
    let mut pos = 0;
    loop {
        let s = &name[pos..];
        if packet::name_equal(s, zone) {
            return true;
        }
        match s.first() {
            Some(&len) if len != 0 => pos += 1 + usize::from(len),
            _ => return false,
        }
    }
}

/// The records of one name and type in a response.
#[derive(Debug, Clone)]
struct RrSet {
    owner: Vec<u8>,
    rtype: u16,
    ttl: u32,
    /// Record data with names decompressed.
    rdata: Vec<Vec<u8>>,
    /// Whether the set came from the answer section.
    answer: bool,
}

/// Group a response's IN records by section, name and type, in djbdns'
/// order (type, then name as wire bytes), names inside data decompressed.
fn rrsets(buf: &[u8], msg: &Message) -> Vec<RrSet> {
    let mut sets: Vec<RrSet> = Vec::new();
    let sections = [
        (&msg.answers, true),
        (&msg.authority, false),
        (&msg.additional, false),
    ];
    for (records, answer) in sections {
        for r in records.iter().filter(|r| r.class == C_IN) {
            let Some(data) = expand(buf, r) else { continue };
            let owner = r.name.to_ascii_lowercase();
            match sets
                .iter_mut()
                .find(|s| s.answer == answer && s.rtype == r.rtype && s.owner == owner)
            {
                Some(s) => {
                    s.ttl = s.ttl.min(r.ttl);
                    if !s.rdata.contains(&data) {
                        s.rdata.push(data);
                    }
                }
                None => sets.push(RrSet {
                    owner,
                    rtype: r.rtype,
                    ttl: r.ttl,
                    rdata: vec![data],
                    answer,
                }),
            }
        }
    }
    sets.sort_by(|a, b| (a.rtype, &a.owner).cmp(&(b.rtype, &b.owner)));
    sets
}

/// A record's data with the names inside it written out in full.
fn expand(buf: &[u8], r: &Record) -> Option<Vec<u8>> {
    let name_at = |p: usize| packet::get_name(buf, p);
    let end = r.data_pos + r.data_len;
    let out = match r.rtype {
        T_NS | T_CNAME | T_PTR => {
            let (n, p) = name_at(r.data_pos)?;
            (p == end).then_some(n)?
        }
        T_MX => {
            let pref = buf.get(r.data_pos..r.data_pos + 2)?;
            let (n, p) = name_at(r.data_pos + 2)?;
            (p == end).then(|| [pref, &n].concat())?
        }
        T_SOA => {
            let (m, p) = name_at(r.data_pos)?;
            let (rn, p) = name_at(p)?;
            let nums = buf.get(p..p + 20)?;
            (p + 20 == end).then(|| [&m[..], &rn, nums].concat())?
        }
        T_A if r.data_len != 4 => return None,
        _ => r.data(buf).to_vec(),
    };
    Some(out)
}

/// Cache every set whose owner lies inside `control` (NS sets for the zone
/// itself excepted), logging an `rr` line per record.
fn cache_rrsets(ctx: &mut Ctx, server: IpAddr, sets: &[RrSet], control: &[u8]) {
    for s in sets {
        if !in_bailiwick(&s.owner, control) {
            continue;
        }
        if s.rtype == T_NS
            && !s.answer
            && packet::name_equal(&s.owner, control)
            && !ctx.forward_only
        {
            continue;
        }
        for r in &s.rdata {
            ctx.log.push(dnslog::rr(
                server,
                s.ttl,
                s.rtype,
                &s.owner,
                &rr_data(s.rtype, r),
            ));
        }
        ctx.cache.set(
            &key(s.rtype, &s.owner),
            &join_rdata(&s.rdata),
            s.ttl,
            ctx.now,
        );
    }
}

/// Record data as the log shows it.
fn rr_data(rtype: u16, r: &[u8]) -> RrData {
    match rtype {
        T_NS => RrData::Name("ns", r.to_vec()),
        T_CNAME => RrData::Name("cname", r.to_vec()),
        T_PTR => RrData::Name("ptr", r.to_vec()),
        T_MX if r.len() > 2 => RrData::Mx(u16::from_be_bytes([r[0], r[1]]), r[2..].to_vec()),
        T_SOA => {
            let split = packet::get_name(r, 0).and_then(|(m, p)| {
                let (rn, p) = packet::get_name(r, p)?;
                let n = r.get(p..p + 20)?;
                let mut nums = [0u32; 5];
                for (i, c) in n.chunks_exact(4).enumerate() {
                    nums[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                }
                Some(RrData::Soa(m, rn, nums))
            });
            split.unwrap_or_else(|| RrData::Raw(r.to_vec()))
        }
        _ => RrData::Raw(r.to_vec()),
    }
}

/// How long a negative answer is kept: the SOA's TTL, at most its minimum.
fn negative_ttl(sets: &[RrSet]) -> u32 {
    sets.iter()
        .find(|s| s.rtype == T_SOA && !s.answer)
        .and_then(|s| {
            let r = s.rdata.first()?;
            let min = r.get(r.len().checked_sub(4)?..)?;
            Some(
                s.ttl
                    .min(u32::from_be_bytes([min[0], min[1], min[2], min[3]])),
            )
        })
        .unwrap_or(0)
}

/// The set of `owner`/`rtype` in the answer (or any) section.
fn find<'a>(sets: &'a [RrSet], owner: &[u8], rtype: u16, answer: bool) -> Option<&'a RrSet> {
    sets.iter()
        .find(|s| s.answer == answer && s.rtype == rtype && packet::name_equal(&s.owner, owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_parts() -> (Cache, Roots) {
        let mut roots = Roots::default();
        roots.insert(b"\x00", vec!["127.0.0.9:53".parse().unwrap()]);
        (Cache::new(100_000), roots)
    }

    #[test]
    fn local_names() {
        let (mut cache, roots) = ctx_parts();
        let mut log = Vec::new();
        let mut ctx = Ctx {
            cache: &mut cache,
            roots: &roots,
            forward_only: false,
            log: &mut log,
            now: Instant::now(),
        };
        let mut r = Resolution::new(b"\x09LocalHost\x00", T_A);
        match r.run(&mut ctx) {
            Step::Done {
                rcode: 0,
                ancount: 1,
                records,
            } => assert!(records.ends_with(&[127, 0, 0, 1])),
            other => panic!("{other:?}"),
        }
        let mut r = Resolution::new(b"\x011\x012\x013\x014\x00", T_A);
        assert!(matches!(
            r.run(&mut ctx),
            Step::Done {
                rcode: 0,
                ancount: 1,
                ..
            }
        ));
    }

    #[test]
    fn starts_at_the_roots_and_follows_a_referral_with_glue() {
        let (mut cache, roots) = ctx_parts();
        let mut log = Vec::new();
        let mut ctx = Ctx {
            cache: &mut cache,
            roots: &roots,
            forward_only: false,
            log: &mut log,
            now: Instant::now(),
        };
        let q = b"\x03www\x01e\x04test\x00";
        let mut r = Resolution::new(q, T_A);
        let Step::Send { servers, qname, .. } = r.run(&mut ctx) else {
            panic!()
        };
        assert_eq!(
            (servers[0].to_string().as_str(), qname.as_slice()),
            ("127.0.0.9:53", &q[..])
        );
        // A referral to e.test with glue for ns.e.test.
        let mut p = packet::build_query(1, q, T_A, false);
        p[2] |= 0x80;
        p[9] = 1; // nscount
        p[11] = 1; // arcount
        p.extend_from_slice(
            b"\x01e\x04test\x00\x00\x02\x00\x01\x00\x00\x0e\x10\x00\x05\x02ns\xc0\x1c",
        );
        p.extend_from_slice(
            b"\x02ns\x01e\x04test\x00\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x0a\x00\x00\x05",
        );
        let server: SocketAddr = "127.0.0.9:53".parse().unwrap();
        let step = r.response(&mut ctx, server, &p);
        let Step::Send { servers, .. } = step else {
            panic!("{step:?}")
        };
        assert_eq!(servers, vec!["10.0.0.5:53".parse::<SocketAddr>().unwrap()]);
        assert!(
            log.iter()
                .any(|l| l == "rr 7f000009 3600 ns e.test. ns.e.test."),
            "{log:?}"
        );
    }

    #[test]
    fn mangled_responses_never_panic() {
        let q = b"\x03www\x01e\x04test\x00";
        let mut p = packet::build_query(1, q, T_A, false);
        p[2] |= 0x80;
        p[7] = 1;
        p[9] = 1;
        p[11] = 1;
        p.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x02\xc0\x10");
        p.extend_from_slice(
            b"\x01e\x04test\x00\x00\x06\x00\x01\x00\x00\x0e\x10\x00\x16\xc0\x1c\xc0\x1c",
        );
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        p.extend_from_slice(b"\xc0\x0c\x00\x0f\x00\x01\x00\x00\x0e\x10\x00\x04\x00\x01\xc0\x0c");
        let server: SocketAddr = "127.0.0.9:53".parse().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000 {
            let mut m = p.clone();
            for _ in 0..1 + round % 4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % m.len();
                m[at] = (seed >> 32) as u8;
            }
            if round % 7 == 0 {
                m.truncate((seed as usize >> 8) % m.len());
            }
            let (mut cache, roots) = ctx_parts();
            let mut log = Vec::new();
            let mut ctx = Ctx {
                cache: &mut cache,
                roots: &roots,
                forward_only: false,
                log: &mut log,
                now: Instant::now(),
            };
            let mut r = Resolution::new(q, T_A);
            let _ = r.run(&mut ctx);
            let _ = r.response(&mut ctx, server, &m);
            let _ = crate::printpacket::print_packet(&mut String::new(), &m);
        }
    }
}
