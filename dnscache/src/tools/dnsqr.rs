//! dnsqr: ask the local cache (as the resolver does) for one type and name
//! and print the whole response, with the RD and RA bits cleared so a
//! normal recursive answer shows no "weird" flags.

use crate::printpacket;
use crate::stub::Resolver;
use common::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

const USAGE: &str = "dnsqr type name";

pub fn run(args: &[OsString]) -> common::Result<()> {
    let usage = || Error::usage(USAGE);
    let qtype = args.first().ok_or_else(usage)?;
    let qtype = printpacket::parse_type(qtype.as_bytes()).ok_or_else(usage)?;
    let name = args.get(1).ok_or_else(usage)?;
    let qname =
        crate::packet::name_from_dot(name.as_bytes()).map_err(|_| super::unable_to_parse())?;
    if args.len() > 2 {
        return Err(usage());
    }
    let mut out = super::query_line(qtype, &qname);
    match Resolver::from_env().query(&qname, qtype, true) {
        Err(e) => out.push_str(&format!("{e}\n")),
        Ok(mut p) => {
            if p.len() < 4 {
                return Err(super::unable_to_parse());
            }
            p[2] &= !1;
            p[3] &= !128;
            printpacket::print_packet(&mut out, &p).map_err(|_| super::unable_to_parse())?;
        }
    }
    super::emit(out.as_bytes());
    Ok(())
}
