//! The djbdns client tools, one module each: dnsip, dnsipq, dnsmx, dnsname,
//! dnstxt, dnsq, dnsqr. Like the originals they collect their output and
//! write it only when every argument has been answered, so a fatal error
//! leaves nothing half-printed on stdout.

pub mod dnsip;
pub mod dnsipq;
pub mod dnsmx;
pub mod dnsname;
pub mod dnsq;
pub mod dnsqr;
pub mod dnstxt;

use crate::stub::DnsError;
use common::Error;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

/// Write the collected output; a failing stdout is not reported, as in the
/// originals.
fn emit(out: &[u8]) {
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(out);
    let _ = so.flush();
}

/// An argument as text for lookups and messages.
fn text(arg: &OsString) -> String {
    String::from_utf8_lossy(arg.as_bytes()).into_owned()
}

/// `unable to find WHAT for ARG: why`, exit 111.
fn lookup_failed(what: &str, arg: &str, e: &DnsError) -> Error {
    Error::temp(format!("unable to find {what} for {arg}: {e}"))
}

/// The query line dnsq and dnsqr start with: `TYPE NAME:`.
fn query_line(qtype: u16, qname: &[u8]) -> String {
    let mut s = format!("{qtype} ");
    crate::packet::name_to_dot_cat(&mut s, qname);
    s.push_str(":\n");
    s
}

/// dnsq's and dnsqr's fatal error for a name or packet they cannot handle.
fn unable_to_parse() -> Error {
    Error::temp(format!(
        "unable to parse: {}",
        common::errstr::text(libc::EPROTO)
    ))
}
