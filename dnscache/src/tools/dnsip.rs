//! dnsip: the IPv4 addresses of each name, one line per name, each address
//! followed by a space.

use crate::stub::Resolver;
use std::ffi::OsString;

pub fn run(args: &[OsString]) -> common::Result<()> {
    let resolver = Resolver::from_env();
    let mut out = String::new();
    for arg in args {
        let name = super::text(arg);
        let ips = resolver
            .ip4(&name)
            .map_err(|e| super::lookup_failed("IP address", &name, &e))?;
        for ip in ips {
            out.push_str(&format!("{ip} "));
        }
        out.push('\n');
    }
    super::emit(out.as_bytes());
    Ok(())
}
