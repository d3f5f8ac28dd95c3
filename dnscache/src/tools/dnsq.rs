//! dnsq: ask the given server(s) one non-recursive question and print the
//! whole response. The server is an address or a name (qualified and looked
//! up as dnsipq does); beyond the original it may also be an IPv6 address or
//! carry a port (`127.0.0.1:5353`, `[::1]:5353`). Extra arguments are
//! ignored as the original ignores them.

use crate::stub::{self, Resolver};
use crate::{printpacket, rewrite};
use common::Error;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;

const USAGE: &str = "dnsq type name server";

pub fn run(args: &[OsString]) -> common::Result<()> {
    let usage = || Error::usage(USAGE);
    let qtype = args.first().ok_or_else(usage)?;
    let qtype = printpacket::parse_type(qtype.as_bytes()).ok_or_else(usage)?;
    let name = args.get(1).ok_or_else(usage)?;
    let qname =
        crate::packet::name_from_dot(name.as_bytes()).map_err(|_| super::unable_to_parse())?;
    let server = args.get(2).ok_or_else(usage)?;
    let servers = servers(server)?;
    let mut out = super::query_line(qtype, &qname);
    match Resolver::with_servers(servers).query(&qname, qtype, false) {
        Err(e) => out.push_str(&format!("{e}\n")),
        Ok(p) => printpacket::print_packet(&mut out, &p).map_err(|_| super::unable_to_parse())?,
    }
    super::emit(out.as_bytes());
    Ok(())
}

/// The servers named by the third argument, port 53 unless it says otherwise.
fn servers(arg: &OsString) -> common::Result<Vec<SocketAddr>> {
    let text = super::text(arg);
    if text.contains(':') {
        if let Some(sa) = stub::parse_server(&text) {
            return Ok(vec![sa]);
        }
    }
    let rules = rewrite::rules_from_env().map_err(|_| super::unable_to_parse())?;
    let resolver = Resolver::from_env();
    let (_, ips) = rewrite::ip4_qualify(&resolver, arg.as_bytes(), &rules)
        .map_err(|_| super::unable_to_parse())?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), 53))
        .collect())
}
