//! dnsipq: qualify each name by the rewriting rules (dnsrewrite, LOCALDOMAIN,
//! resolv.conf's search list), then print the full name and its addresses.

use crate::rewrite;
use crate::stub::{DnsError, Resolver};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub fn run(args: &[OsString]) -> common::Result<()> {
    let resolver = Resolver::from_env();
    let mut out = String::new();
    for arg in args {
        let name = super::text(arg);
        let rules = rewrite::rules_from_env().map_err(|e| {
            let why = common::error::Errno::from(&e).text();
            super::lookup_failed("IP address", &name, &DnsError::Temp(why.into()))
        })?;
        let (fqdn, ips) = rewrite::ip4_qualify(&resolver, arg.as_bytes(), &rules)
            .map_err(|e| super::lookup_failed("IP address", &name, &e))?;
        out.push_str(&String::from_utf8_lossy(&fqdn));
        out.push(' ');
        for ip in ips {
            out.push_str(&format!("{ip} "));
        }
        out.push('\n');
    }
    super::emit(out.as_bytes());
    Ok(())
}
