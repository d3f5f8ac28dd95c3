//! The `svc` program: all of it is in the library's `supervise::svc` module.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("svc", supervise::svc::run(&args));
}
