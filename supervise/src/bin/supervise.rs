//! The `supervise` program: all of it is in the library's `supervise::supervise` module.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    common::error::main_exit("supervise", supervise::supervise::run(&args));
}
