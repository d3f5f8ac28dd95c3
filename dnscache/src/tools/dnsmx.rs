//! dnsmx: the MX records of each name as `PREF HOST` lines; a name without
//! MX records gets `0 NAME`, the host mail would go to.

use crate::packet;
use crate::stub::Resolver;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub fn run(args: &[OsString]) -> common::Result<()> {
    let resolver = Resolver::from_env();
    let mut out = String::new();
    for arg in args {
        let name = super::text(arg);
        let mxs = resolver
            .mx(&name)
            .map_err(|e| super::lookup_failed("MX records", &name, &e))?;
        if mxs.is_empty() {
            let wire = packet::name_from_dot(arg.as_bytes())
                .map_err(|_| common::Error::temp("out of memory"))?;
            out.push_str("0 ");
            packet::name_to_dot_cat(&mut out, &wire);
            out.push('\n');
        }
        for (pref, host) in mxs {
            out.push_str(&format!("{pref} {host}\n"));
        }
    }
    super::emit(out.as_bytes());
    Ok(())
}
