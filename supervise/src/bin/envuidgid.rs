//! The `envuidgid` command; its logic is in the library. It keeps the C entry
//! point (`no_main`) because Rust's own would set SIGPIPE to "ignore", and
//! the programs it runs would inherit that, unlike under daemontools.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main() -> std::ffi::c_int {
    common::error::main_exit(
        "envuidgid",
        supervise::envuidgid::run(std::env::args_os().skip(1).collect()),
    )
}
